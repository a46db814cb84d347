package dev.redlock.core.internal;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import io.lettuce.core.api.StatefulConnection;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * One connection to a master and the order of the commands sent on it.
 *
 * <p>Commands go out in the order they were issued, also those issued while the connection is
 * still opening: they wait in a queue that is sent, in a loop, once it is open (never as a chain of
 * completions, whose depth would grow with the number of callers). Every command's result is
 * bounded by its timeout counted from the moment it was issued, whatever the connection does:
 * opening, replying late, or never replying. A command whose caller has given up before it could
 * be sent is not sent at all, unless it is a release ({@code sendLate}): a release is harmless late
 * and may still remove keys an earlier command set.
 *
 * <p>The connection is opened on first use and opened anew after a failed connect; once open,
 * Lettuce reconnects it, rejecting commands while disconnected. Thread-safe; the state is guarded
 * by {@code lock}, under which commands are also handed to Lettuce (that is what keeps them in
 * issue order across threads).
 *
 * @param <C> the kind of connection (commands, or pub/sub)
 */
final class CommandLine<C extends StatefulConnection<String, String>> {
  private final Object lock;
  private final Supplier<CompletableFuture<C>> opener;
  private final Supplier<Duration> connectTimeout;
  private final ScheduledExecutorService timer;
  private final Failures failures;
  private final ArrayDeque<Pending<?, ?>> waiting = new ArrayDeque<>();

  /** Commands not yet answered, in the order of their deadlines (see {@link #bound}); guarded by the lock. */
  private final ArrayDeque<Pending<?, ?>> deadlines = new ArrayDeque<>();

  /** The timer task for the first of {@link #deadlines}, or null; guarded by the lock. */
  private Sweep sweep;
  private final java.util.concurrent.atomic.AtomicInteger outstanding = new java.util.concurrent.atomic.AtomicInteger();
  private final int maxOutstanding;
  private CompletableFuture<C> connection;
  private boolean closed;

  CommandLine(
      Object lock,
      Supplier<CompletableFuture<C>> opener,
      Supplier<Duration> connectTimeout,
      ScheduledExecutorService timer,
      Failures failures,
      int maxOutstanding) {
    this.maxOutstanding = maxOutstanding;
    this.lock = lock;
    this.opener = opener;
    this.connectTimeout = connectTimeout;
    this.timer = timer;
    this.failures = failures;
  }

  /**
   * A command waiting to be sent, and its caller's result: the reply mapped by {@code map}.
   * Implements the reply's callback itself, so that a command costs no extra closure.
   */
  private final class Pending<R, T> implements Runnable, java.util.function.BiConsumer<R, Throwable> {
    final Function<C, CompletableFuture<R>> command;
    final Function<? super R, ? extends T> map;
    final CompletableFuture<T> result = new CompletableFuture<>();
    final Duration timeout;
    final boolean sendLate;
    final Runnable dropped;
    final Runnable settled;
    volatile boolean sent;

    /** When the deadline passes ({@link System#nanoTime()}); on the line's deadline queue, or on its own timer task. */
    long due;

    /** Its own timer task, for a command whose deadline is earlier than those queued before it; else null. */
    ScheduledFuture<?> deadline;

    Pending(
        Function<C, CompletableFuture<R>> command,
        Function<? super R, ? extends T> map,
        Duration timeout,
        boolean sendLate,
        Runnable dropped,
        Runnable settled) {
      this.command = command;
      this.map = map;
      this.timeout = timeout;
      this.sendLate = sendLate;
      this.dropped = dropped;
      this.settled = settled;
    }

    /** The deadline passed. */
    @Override
    public void run() {
      result.completeExceptionally(failures.timedOut(timeout, sent));
    }

    /** Completes the result; stops its own timer task, if it has one. */
    private void finish(T value, MasterFailureException e) {
      boolean done = e == null ? result.complete(value) : result.completeExceptionally(e);
      ScheduledFuture<?> own = deadline;
      if (done && own != null) {
        own.cancel(false);
      }
    }

    /** Fails a command that was never sent; it never will be. */
    void discard(MasterFailureException e) {
      finish(null, e);
      dropped.run();
    }

    void fail(MasterFailureException e) {
      finish(null, e);
    }

    /** Sends the command on an open connection; its reply completes the result. */
    void send(C connection) {
      if (result.isDone() && !sendLate) {
        dropped.run(); // the caller gave up before it could be sent: never send it late
        return;
      }
      if (outstanding.get() >= maxOutstanding) {
        // A master that does not answer (paused, or far behind) would otherwise make every
        // command wait in the client's buffers, without bound: refuse at once instead.
        discard(new MasterFailureException(failures.master(), Kind.UNREACHABLE,
            "too many commands are waiting for this master's reply (" + maxOutstanding
                + "); it is paused or overloaded", null));
        return;
      }
      sent = true;
      outstanding.incrementAndGet();
      CompletableFuture<R> reply;
      try {
        reply = command.apply(connection);
      } catch (RuntimeException e) {
        outstanding.decrementAndGet();
        settled.run();
        fail(failures.of(e, timeout));
        return;
      }
      reply.whenComplete(this);
    }

    /** The reply (or the failure) came. */
    @Override
    public void accept(R r, Throwable e) {
      outstanding.decrementAndGet();
      settled.run();
      if (e != null) {
        fail(failures.of(e, timeout));
        return;
      }
      T value;
      try {
        value = map.apply(r);
      } catch (RuntimeException bad) {
        fail(failures.of(bad, timeout));
        return;
      }
      finish(value, null);
    }
  }

  /**
   * Issues a command: sends it now if the connection is open and nothing is queued, else queues it
   * behind the commands issued before it. The returned future completes with the reply mapped by
   * {@code map}, or fails with a {@link MasterFailureException} (also when no reply came within
   * {@code timeout} of this call); it never completes on the caller's thread before this method
   * returns, unless it failed at once.
   *
   * @param command what to send on the connection
   * @param map turns the reply into the result (on the thread the reply arrives on; a failure it
   *     throws fails the result)
   * @param timeout the bound on the whole call, counted from now
   * @param sendLate whether to send the command even after its caller gave up on it (releases)
   * @param dropped run, under the line's lock, if the command is discarded without being sent
   * @param settled run once the command was sent and its reply (or failure) came
   * @return the result
   */
  <R, T> CompletableFuture<T> issue(
      Function<C, CompletableFuture<R>> command,
      Function<? super R, ? extends T> map,
      Duration timeout,
      boolean sendLate,
      Runnable dropped,
      Runnable settled) {
    Pending<R, T> p = new Pending<>(command, map, timeout, sendLate, dropped, settled);
    synchronized (lock) {
      if (closed) {
        p.discard(closedFailure());
        return p.result;
      }
      bound(p);
      CompletableFuture<C> c = connection();
      if (!waiting.isEmpty() || !c.isDone()) {
        waiting.addLast(p);
      } else if (c.isCompletedExceptionally()) {
        p.discard(failures.connect(c.handle((x, e) -> e).join(), connectTimeout.get()));
      } else {
        p.send(c.join());
      }
    }
    return p.result;
  }

  /**
   * Issues a command whose reply is its result; see {@link #issue(Function, Function, Duration,
   * boolean, Runnable, Runnable)}.
   */
  <T> CompletableFuture<T> issue(
      Function<C, CompletableFuture<T>> command, Duration timeout, boolean sendLate, Runnable dropped) {
    return issue(command, Function.identity(), timeout, sendLate, dropped, NOTHING);
  }

  /**
   * Issues a command that has nothing to undo if it is discarded; see {@link #issue(Function,
   * Function, Duration, boolean, Runnable, Runnable)}.
   */
  <T> CompletableFuture<T> issue(Function<C, CompletableFuture<T>> command, Duration timeout, boolean sendLate) {
    return issue(command, Function.identity(), timeout, sendLate, NOTHING, NOTHING);
  }

  /**
   * Bounds [p] by its timeout, counted from now. Commands of one line mostly share one timeout, so
   * their deadlines come in the order they were issued: they wait on one queue, and one timer task
   * (for the earliest) serves them all, instead of a task scheduled and cancelled per command. A
   * command whose deadline is earlier than one already queued gets a task of its own. Call under
   * the lock.
   */
  private void bound(Pending<?, ?> p) {
    long now = System.nanoTime();
    p.due = now + p.timeout.toNanos();
    // Commands answered meanwhile leave the queue here, not only when the timer task runs: their
    // replies mostly come in the order they were sent, so the queue stays short. A command at the
    // tail that is answered (one with a longer timeout, say) no longer orders anything.
    for (Pending<?, ?> h; (h = deadlines.peekFirst()) != null && h.result.isDone(); ) {
      deadlines.pollFirst();
    }
    for (Pending<?, ?> t; (t = deadlines.peekLast()) != null && t.result.isDone(); ) {
      deadlines.pollLast();
    }
    Pending<?, ?> last = deadlines.peekLast();
    if (last != null && p.due - last.due < 0) {
      p.deadline = timer.schedule(p, p.due - now, TimeUnit.NANOSECONDS);
      return;
    }
    deadlines.addLast(p);
    arm(deadlines.peekFirst().due, now);
  }

  /** The deadline queue's timer task, for the deadline it was set for. */
  private final class Sweep implements Runnable {
    final long at;
    ScheduledFuture<?> task;

    Sweep(long at) {
      this.at = at;
    }

    @Override
    public void run() {
      sweep(this);
    }
  }

  /**
   * Makes sure the timer task runs by {@code due}: one set for a later moment (the queue's earlier
   * commands were answered, and a command with a shorter timeout now heads it) is replaced. Call
   * under the lock.
   */
  private void arm(long due, long now) {
    Sweep current = sweep;
    if (current != null) {
      if (current.at - due <= 0) {
        return;
      }
      current.task.cancel(false);
    }
    Sweep next = new Sweep(due);
    next.task = timer.schedule(next, due - now, TimeUnit.NANOSECONDS);
    sweep = next;
  }

  /** The timer task of the deadline queue: fails the commands whose deadline passed, and waits for the next. */
  private void sweep(Sweep self) {
    ArrayList<Pending<?, ?>> expired = null;
    synchronized (lock) {
      if (sweep != self) {
        return; // replaced by a task for an earlier deadline
      }
      sweep = null;
      long now = System.nanoTime();
      for (Pending<?, ?> h; (h = deadlines.peekFirst()) != null; ) {
        if (!h.result.isDone()) {
          if (h.due - now > 0) {
            break;
          }
          if (expired == null) {
            expired = new ArrayList<>();
          }
          expired.add(h);
        }
        deadlines.pollFirst();
      }
      Pending<?, ?> next = deadlines.peekFirst();
      // Also once closed: commands sent before are still bounded.
      if (next != null) {
        arm(next.due, now);
      }
    }
    // Outside the lock: failing a result runs what depends on it.
    if (expired != null) {
      for (Pending<?, ?> p : expired) {
        p.run();
      }
    }
  }

  private static final Runnable NOTHING = () -> { };

  private MasterFailureException closedFailure() {
    return new MasterFailureException(failures.master(), Kind.UNREACHABLE, "the lock client is closed", null);
  }

  /** The connection when it is open now, else {@code null} (never opens one). */
  C connectionNow() {
    synchronized (lock) {
      CompletableFuture<C> c = connection;
      return c != null && c.isDone() && !c.isCompletedExceptionally() && !closed ? c.join() : null;
    }
  }

  /** The connection, opened on first use and opened anew after a failed connect. Call under lock. */
  private CompletableFuture<C> connection() {
    CompletableFuture<C> c = connection;
    if (c != null && !c.isCompletedExceptionally()) {
      return c;
    }
    CompletableFuture<C> opening = opener.get();
    // The socket's connect timeout does not cover the handshake (a paused server accepts the TCP
    // connection and never answers HELLO): bound the whole opening, and close a connection that
    // completes after we gave up on it.
    CompletableFuture<C> bounded = new CompletableFuture<>();
    Duration limit = connectTimeout.get();
    ScheduledFuture<?> expiry =
        timer.schedule(
            () -> bounded.completeExceptionally(new java.util.concurrent.TimeoutException()),
            limit.toNanos(), TimeUnit.NANOSECONDS);
    opening.whenComplete(
        (conn, e) -> {
          expiry.cancel(false);
          if (e != null) {
            bounded.completeExceptionally(e);
          } else if (!bounded.complete(conn)) {
            conn.closeAsync();
          }
        });
    connection = bounded;
    bounded.whenComplete((conn, e) -> drain(bounded));
    return bounded;
  }

  /** Sends (or fails) everything queued while [opened] was opening, in order, in one loop. */
  private void drain(CompletableFuture<C> opened) {
    synchronized (lock) {
      if (connection != opened) {
        return; // closed (or replaced) meanwhile: what waited was failed there
      }
      if (opened.isCompletedExceptionally()) {
        Throwable why = opened.handle((x, e) -> e).join();
        MasterFailureException failure = failures.connect(why, connectTimeout.get());
        for (Pending<?, ?> p; (p = waiting.pollFirst()) != null; ) {
          p.discard(failure);
        }
        return;
      }
      C conn = opened.join();
      for (Pending<?, ?> p; (p = waiting.pollFirst()) != null; ) {
        p.send(conn);
      }
    }
  }

  /**
   * Marks the line closed, fails what waits, and takes the connection away for closing.
   *
   * @return the connection (possibly still opening), or {@code null}
   */
  CompletableFuture<C> close() {
    synchronized (lock) {
      closed = true;
      MasterFailureException failure = closedFailure();
      for (Pending<?, ?> p; (p = waiting.pollFirst()) != null; ) {
        p.discard(failure);
      }
      CompletableFuture<C> c = connection;
      connection = null;
      return c;
    }
  }
}

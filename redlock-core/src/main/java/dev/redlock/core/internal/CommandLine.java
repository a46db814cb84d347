package dev.redlock.core.internal;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import io.lettuce.core.api.StatefulConnection;
import java.time.Duration;
import java.util.ArrayDeque;
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
  private final ArrayDeque<Pending<?>> waiting = new ArrayDeque<>();
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

  /** A command waiting to be sent, and its caller's result. */
  private final class Pending<T> implements Runnable {
    final Function<C, CompletableFuture<T>> command;
    final CompletableFuture<T> result = new CompletableFuture<>();
    final Duration timeout;
    final boolean sendLate;
    final Failures failures;
    final Runnable dropped;
    volatile boolean sent;
    ScheduledFuture<?> deadline;

    Pending(
        Function<C, CompletableFuture<T>> command,
        Duration timeout,
        boolean sendLate,
        Failures failures,
        Runnable dropped) {
      this.command = command;
      this.timeout = timeout;
      this.sendLate = sendLate;
      this.failures = failures;
      this.dropped = dropped;
    }

    /** The deadline passed. */
    @Override
    public void run() {
      result.completeExceptionally(failures.timedOut(timeout, sent));
    }

    /** Fails a command that was never sent; it never will be. */
    void discard(MasterFailureException e) {
      if (result.completeExceptionally(e)) {
        deadline.cancel(false);
      }
      dropped.run();
    }

    void fail(MasterFailureException e) {
      if (result.completeExceptionally(e)) {
        deadline.cancel(false);
      }
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
      CompletableFuture<T> reply;
      try {
        reply = command.apply(connection);
      } catch (RuntimeException e) {
        outstanding.decrementAndGet();
        fail(failures.of(e, timeout));
        return;
      }
      reply.whenComplete(
          (r, e) -> {
            outstanding.decrementAndGet();
            if (e == null) {
              if (result.complete(r)) {
                deadline.cancel(false);
              }
            } else {
              fail(failures.of(e, timeout));
            }
          });
    }
  }

  /**
   * Issues a command: sends it now if the connection is open and nothing is queued, else queues it
   * behind the commands issued before it. The returned future completes with the reply, or fails
   * with a {@link MasterFailureException} (also when no reply came within {@code timeout} of this
   * call); it never completes on the caller's thread before this method returns, unless it failed
   * at once.
   *
   * @param command what to send on the connection
   * @param timeout the bound on the whole call, counted from now
   * @param sendLate whether to send the command even after its caller gave up on it (releases)
   * @param dropped run, under the line's lock, if the command is discarded without being sent
   * @return the result
   */
  <T> CompletableFuture<T> issue(
      Function<C, CompletableFuture<T>> command, Duration timeout, boolean sendLate, Runnable dropped) {
    Pending<T> p = new Pending<>(command, timeout, sendLate, failures, dropped);
    p.deadline = timer.schedule(p, timeout.toNanos(), TimeUnit.NANOSECONDS);
    synchronized (lock) {
      if (closed) {
        p.discard(closedFailure());
        return p.result;
      }
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
   * Issues a command that has nothing to undo if it is discarded; see {@link #issue(Function,
   * Duration, boolean, Runnable)}.
   */
  <T> CompletableFuture<T> issue(Function<C, CompletableFuture<T>> command, Duration timeout, boolean sendLate) {
    return issue(command, timeout, sendLate, NOTHING);
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
        for (Pending<?> p; (p = waiting.pollFirst()) != null; ) {
          p.discard(failure);
        }
        return;
      }
      C conn = opened.join();
      for (Pending<?> p; (p = waiting.pollFirst()) != null; ) {
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
      for (Pending<?> p; (p = waiting.pollFirst()) != null; ) {
        p.discard(failure);
      }
      CompletableFuture<C> c = connection;
      connection = null;
      return c;
    }
  }
}

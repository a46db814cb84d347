package dev.redlock.core.internal;

import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.StatefulRedisConnectionImpl;
import io.lettuce.core.TrackingArgs;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.push.PushMessage;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.protocol.ProtocolVersion;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Server-assisted tracking for one master (Redis client-side caching, used for its invalidations
 * only): the connection that runs the scripts has {@code CLIENT TRACKING on REDIRECT <id> NOLOOP},
 * so that every key a script reads is tracked, and the server pushes a change of it (by another
 * client: NOLOOP leaves out our own writes) to the notice connection, whose client id that is.
 *
 * <p>Set up whenever both connections are open: the first time before the commands connection
 * takes its first command (so the first lock's keys are tracked from the start), and again after
 * either reconnects (a new client id, an empty tracking table). Keys read while tracking was off
 * (before it was set up again, or on a connection that dropped) may have changed unheard: once it
 * is on again, the listener hears "everything changed".
 *
 * <p>Not available, and said once through the listener: a connection that speaks RESP2 (the server
 * or a proxy refused {@code HELLO 3}), {@code CLIENT ID} or {@code CLIENT TRACKING} refused (renamed
 * away, not allowed by the ACL, not known to the server). Locking then works without it.
 */
final class Tracking {
  private static final LockNode.TrackingListener NONE =
      new LockNode.TrackingListener() {
        @Override
        public void invalidated(List<String> keys) {}

        @Override
        public void disconnected() {}

        @Override
        public void unavailable(String reason) {}
      };

  /** How often a setup that failed without a refusal (a timeout, a reconnect under way) is retried. */
  private static final int RETRIES = 5;

  private final ScheduledExecutorService timer;
  private final Supplier<Duration> connectTimeout;

  private volatile LockNode.TrackingListener listener = NONE;
  private volatile boolean wanted;
  private volatile boolean closed;

  /** The notice connection's client id, where invalidations go; -1 while unknown. */
  private volatile long noticeId = -1;

  private volatile StatefulRedisConnection<String, String> commands;

  /** Whether tracking is on now. */
  private volatile boolean on;

  /** Whether keys may have been read untracked since tracking was last on (they may have changed unheard). */
  private volatile boolean unheard;

  /** Completed when tracking is on, or will not be: what the first commands connection waits for. */
  private volatile CompletableFuture<Void> settled = new CompletableFuture<>();

  Tracking(ScheduledExecutorService timer, Supplier<Duration> connectTimeout) {
    this.timer = timer;
    this.connectTimeout = connectTimeout;
  }

  /** Tracking is wanted; [listener] hears what the master pushes. */
  void want(LockNode.TrackingListener l) {
    listener = l;
    wanted = true;
  }

  boolean on() {
    return on;
  }

  /** Tracking cannot be set up for this node at all (no notice connection of ours). */
  void impossible(String reason) {
    listener.unavailable(reason);
    settled.complete(null);
  }

  /**
   * The commands connection opened (the first time: before its first command). Completes when
   * tracking is on, or will not be, or after a connect timeout (tracking then comes later, and
   * keys read meanwhile are checked once it is on).
   */
  CompletableFuture<Void> commandsOpened(StatefulRedisConnection<String, String> c) {
    commands = c;
    if (!wanted) {
      return CompletableFuture.completedFuture(null);
    }
    enable(RETRIES);
    CompletableFuture<Void> bounded = new CompletableFuture<>();
    settled.whenComplete((x, e) -> bounded.complete(null));
    timer.schedule(() -> bounded.complete(null), connectTimeout.get().toMillis(), TimeUnit.MILLISECONDS);
    return bounded;
  }

  /** The commands connection reopened (Lettuce reconnected it): set tracking up again on it. */
  void commandsReopened() {
    enable(RETRIES);
  }

  /** The commands connection dropped: whatever it tracked for us is gone with it. */
  void commandsDropped() {
    off();
    listener.disconnected();
  }

  /** A command that reads keys is about to be sent: read untracked when tracking is off. */
  void reading() {
    if (!on) {
      unheard = true;
    }
  }

  /** The notice connection (re)opened: learn its id, then set tracking up. */
  CompletableFuture<Void> noticesOpened(StatefulRedisPubSubConnection<String, String> c) {
    if (!wanted || closed) {
      return CompletableFuture.completedFuture(null);
    }
    return readNoticeId(c, RETRIES);
  }

  /** The notice connection dropped: invalidations sent to it meanwhile are lost. */
  void noticesDropped() {
    noticeId = -1;
    off();
  }

  /** A push on the notice connection: an invalidation is passed on, the rest ignored. */
  void pushed(PushMessage message) {
    if (!"invalidate".equals(message.getType())) {
      return;
    }
    List<Object> content = message.getContent(StringCodec.UTF8::decodeValue);
    Object keys = content.size() > 1 ? content.get(1) : null;
    if (keys instanceof List<?> list) {
      List<String> names = new ArrayList<>(list.size());
      for (Object k : list) {
        names.add(String.valueOf(k));
      }
      listener.invalidated(names);
    } else {
      // A nil array: the server flushed its table (FLUSHALL, FLUSHDB) or lost track of keys.
      listener.invalidated(null);
    }
  }

  void close() {
    closed = true;
    on = false;
    settled.complete(null);
  }

  private void off() {
    if (on) {
      on = false;
      unheard = true;
    }
    if (settled.isDone()) {
      settled = new CompletableFuture<>();
    }
  }

  private CompletableFuture<Void> readNoticeId(StatefulRedisPubSubConnection<String, String> c, int retries) {
    if (negotiated(c) == ProtocolVersion.RESP2) {
      impossible(
          "the connection speaks RESP2 (HELLO 3 was refused, or the client was set to RESP2), and invalidations are pushed in RESP3");
      return CompletableFuture.completedFuture(null);
    }
    CompletableFuture<Long> id;
    try {
      id = c.async().clientId().toCompletableFuture();
    } catch (RuntimeException e) {
      id = CompletableFuture.failedFuture(e);
    }
    return id.handle(
        (value, e) -> {
          if (e == null) {
            noticeId = value;
            enable(RETRIES);
          } else if (Failures.unwrap(e) instanceof RedisCommandExecutionException refused) {
            impossible("CLIENT ID was refused (" + refused.getMessage().strip() + ")");
          } else if (retries > 0 && c.isOpen()) {
            timer.schedule(() -> readNoticeId(c, retries - 1), 100, TimeUnit.MILLISECONDS);
          }
          return null;
        });
  }

  /**
   * Turns tracking on for the commands connection, redirected to the notice connection, our own
   * writes excepted. Needs both connections open; runs again whenever either reopens.
   */
  private void enable(int retries) {
    long id = noticeId;
    StatefulRedisConnection<String, String> c = commands;
    if (!wanted || closed || id < 0 || c == null || !c.isOpen()) {
      return;
    }
    CompletableFuture<String> reply;
    try {
      reply = c.async().clientTracking(TrackingArgs.Builder.enabled().redirect(id).noloop()).toCompletableFuture();
    } catch (RuntimeException e) {
      reply = CompletableFuture.failedFuture(e);
    }
    reply.whenComplete(
        (ok, e) -> {
          if (e == null) {
            if (noticeId != id) {
              return; // the notice connection reopened meanwhile: its own setup follows
            }
            on = true;
            settled.complete(null);
            if (unheard) {
              unheard = false;
              listener.invalidated(null);
            }
          } else if (Failures.unwrap(e) instanceof RedisCommandExecutionException refused) {
            impossible("CLIENT TRACKING was refused (" + refused.getMessage().strip() + ")");
          } else if (retries > 0) {
            timer.schedule(() -> enable(retries - 1), 100, TimeUnit.MILLISECONDS);
          }
        });
  }

  /** The protocol the connection's handshake settled on, or {@code null} when not known. */
  private static ProtocolVersion negotiated(StatefulConnection<?, ?> c) {
    if (c instanceof StatefulRedisConnectionImpl<?, ?> impl && impl.getConnectionState() != null) {
      ProtocolVersion v = impl.getConnectionState().getNegotiatedProtocolVersion();
      if (v != null) {
        return v;
      }
    }
    return c.getOptions().getConfiguredProtocolVersion();
  }
}

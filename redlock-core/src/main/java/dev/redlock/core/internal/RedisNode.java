package dev.redlock.core.internal;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionException;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.codec.StringCodec;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One Redis master, spoken to through one Lettuce connection and the lock scripts.
 *
 * <p>Every call is asynchronous and bounded by the timeout it is given: a master that does not
 * answer in time fails the call with a {@link MasterFailureException} of kind {@link
 * Kind#TIMEOUT}, although the command may still run on the server later (callers therefore send
 * their releases to every master, answered or not). Commands on one node are executed by the
 * server in the order they were issued, so a release issued after an acquire always runs after
 * it. The connection is opened lazily and reopened after a failed connect; once open, Lettuce
 * reconnects it, and commands issued while it is disconnected are rejected at once rather than
 * buffered and replayed later (the client must be built with {@link #clientOptions(Duration)}).
 *
 * <p>Internal to the library: not a public API, may change without notice. Thread-safe.
 */
public final class RedisNode implements LockNode {
  /** Channels of release notices are this prefix followed by the lock key. */
  public static final String RELEASE_CHANNEL_PREFIX = "redlock-released:";

  private static final String[] NO_ARGS = new String[0];

  private final RedisClient client;
  private final RedisURI uri;
  private final String name;
  private final Object lock = new Object();
  private CompletableFuture<StatefulRedisConnection<String, String>> connection;
  private boolean closed;

  /**
   * Creates the node; nothing is connected until the first call.
   *
   * @param client the client to connect with (not closed by this node)
   * @param uri the master's URI
   */
  public RedisNode(RedisClient client, RedisURI uri) {
    this.client = client;
    this.uri = uri;
    this.name = uri.getSocket() != null ? uri.getSocket() : uri.getHost() + ":" + uri.getPort();
  }

  /**
   * The Lettuce client options every lock connection needs: reject commands while disconnected
   * (Lettuce's default would buffer them and replay them after a reconnect, setting keys long
   * after the caller gave up), reconnect automatically, and bound connecting.
   *
   * @param connectTimeout how long one connect may take
   * @return the options
   */
  public static io.lettuce.core.ClientOptions clientOptions(Duration connectTimeout) {
    return io.lettuce.core.ClientOptions.builder()
        .disconnectedBehavior(io.lettuce.core.ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
        .autoReconnect(true)
        .socketOptions(
            io.lettuce.core.SocketOptions.builder()
                .connectTimeout(connectTimeout)
                .keepAlive(true)
                .tcpNoDelay(true)
                .build())
        .build();
  }

  /**
   * The master as {@code host:port}, without credentials.
   *
   * @return the name used in messages
   */
  @Override
  public String name() {
    return name;
  }

  /**
   * Opens the connection now (if needed) and loads the scripts, to take the first lock's cost
   * out of its latency.
   *
   * @param timeout the bound on connecting and loading
   * @return a future completing when ready, or failing with {@link MasterFailureException}
   */
  @Override
  public CompletableFuture<Void> warmUp(Duration timeout) {
    CompletableFuture<Void> loaded =
        connection()
            .thenCompose(
                c -> {
                  RedisAsyncCommands<String, String> a = c.async();
                  return CompletableFuture.allOf(
                      a.scriptLoad(Script.ACQUIRE.text()).toCompletableFuture(),
                      a.scriptLoad(Script.EXTEND.text()).toCompletableFuture(),
                      a.scriptLoad(Script.RELEASE.text()).toCompletableFuture());
                });
    return bounded(loaded, timeout);
  }

  /**
   * Runs the acquire script for the keys of one lease.
   *
   * @param keys the lock keys
   * @param token the holder's token
   * @param leaseMillis the lease time
   * @param timeout the bound on the call
   * @return the master's answer, or a failure with {@link MasterFailureException}
   */
  @Override
  public CompletableFuture<AcquireReply> acquire(
      String[] keys, String token, long leaseMillis, Duration timeout) {
    CompletableFuture<List<Object>> reply =
        script(Script.ACQUIRE, ScriptOutputType.MULTI, keys, token, Long.toString(leaseMillis));
    return bounded(
        reply.thenApply(
            r -> {
              boolean granted = ((Long) r.get(0)) == 1L;
              return granted ? AcquireReply.GRANTED : new AcquireReply(false, (Long) r.get(1));
            }),
        timeout);
  }

  /**
   * Runs the extend script for one or several leases in one call.
   *
   * @param keys the keys of all leases, lease after lease
   * @param leaseArgs for each lease its key count and its token, flattened: {@code [count1,
   *     token1, count2, token2, ...]}
   * @param leaseMillis the new lease time, from now
   * @param timeout the bound on the call
   * @return for each lease whether this master still held it (and extended it)
   */
  @Override
  public CompletableFuture<boolean[]> extend(
      String[] keys, String[] leaseArgs, long leaseMillis, Duration timeout) {
    String[] args = new String[leaseArgs.length + 1];
    args[0] = Long.toString(leaseMillis);
    System.arraycopy(leaseArgs, 0, args, 1, leaseArgs.length);
    CompletableFuture<List<Object>> reply = script(Script.EXTEND, ScriptOutputType.MULTI, keys, args);
    return bounded(
        reply.thenApply(
            r -> {
              boolean[] held = new boolean[r.size()];
              for (int i = 0; i < held.length; i++) {
                held[i] = ((Long) r.get(i)) == 1L;
              }
              return held;
            }),
        timeout);
  }

  /**
   * Runs the release script: deletes the keys still holding the token and announces it.
   *
   * @param keys the lock keys
   * @param token the holder's token
   * @param timeout the bound on the call
   * @return how many keys this master deleted
   */
  @Override
  public CompletableFuture<Long> release(String[] keys, String token, Duration timeout) {
    return bounded(
        script(Script.RELEASE, ScriptOutputType.INTEGER, keys, token, RELEASE_CHANNEL_PREFIX),
        timeout);
  }

  private <T> CompletableFuture<T> script(
      Script script, ScriptOutputType type, String[] keys, String... args) {
    String[] values = args.length == 0 ? NO_ARGS : args;
    return connection()
        .thenCompose(
            c -> {
              RedisAsyncCommands<String, String> a = c.async();
              CompletableFuture<T> first =
                  a.<T>evalsha(script.sha(), type, keys, values).toCompletableFuture();
              // After a restart or SCRIPT FLUSH the server no longer knows the script: load it
              // and call it again. The retry is issued from the reply, so it still runs before
              // any command issued after this call's NOSCRIPT answer arrived.
              return first
                  .handle(
                      (r, e) -> {
                        if (e == null) {
                          return CompletableFuture.completedFuture(r);
                        }
                        if (unwrap(e) instanceof RedisNoScriptException) {
                          return a.scriptLoad(script.text())
                              .toCompletableFuture()
                              .thenCompose(
                                  sha -> a.<T>evalsha(sha, type, keys, values).toCompletableFuture());
                        }
                        return CompletableFuture.<T>failedFuture(unwrap(e));
                      })
                  .thenCompose(f -> f);
            });
  }

  private CompletableFuture<StatefulRedisConnection<String, String>> connection() {
    synchronized (lock) {
      if (closed) {
        return CompletableFuture.failedFuture(
            new MasterFailureException(name, Kind.UNREACHABLE, "the lock client is closed", null));
      }
      CompletableFuture<StatefulRedisConnection<String, String>> c = connection;
      if (c == null || c.isCompletedExceptionally()) {
        c = client.connectAsync(StringCodec.UTF8, uri).toCompletableFuture();
        connection = c;
      }
      return c;
    }
  }

  /** Bounds a call by a timeout and turns any failure into a {@link MasterFailureException}. */
  private <T> CompletableFuture<T> bounded(CompletableFuture<T> call, Duration timeout) {
    // A separate future: timing out or cancelling it must not cancel Lettuce's command, whose
    // reply is still expected in order on the connection.
    CompletableFuture<T> result = new CompletableFuture<>();
    call.whenComplete(
        (r, e) -> {
          if (e == null) {
            result.complete(r);
          } else {
            result.completeExceptionally(failure(unwrap(e), timeout));
          }
        });
    result.orTimeout(timeout.toNanos(), TimeUnit.NANOSECONDS);
    return result.handle(
            (r, e) -> {
              if (e == null) {
                return CompletableFuture.completedFuture(r);
              }
              Throwable cause = unwrap(e);
              return CompletableFuture.<T>failedFuture(
                  cause instanceof MasterFailureException ? cause : failure(cause, timeout));
            })
        .thenCompose(f -> f);
  }

  /**
   * Classifies a failure of this master.
   *
   * @param e the failure
   * @param timeout the bound that applied
   * @return the failure as a {@link MasterFailureException}
   */
  MasterFailureException failure(Throwable e, Duration timeout) {
    if (e instanceof MasterFailureException m) {
      return m;
    }
    if (e instanceof TimeoutException
        || e instanceof io.lettuce.core.RedisCommandTimeoutException) {
      return new MasterFailureException(
          name, Kind.TIMEOUT, "no reply within " + Checks.show(timeout), e);
    }
    String all = messages(e);
    String lower = all.toLowerCase(Locale.ROOT);
    if (lower.contains("wrongpass") || lower.contains("noauth")
        || lower.contains("invalid password") || lower.contains("invalid username-password")
        || lower.contains("authentication")) {
      return new MasterFailureException(
          name, Kind.AUTHENTICATION,
          "authentication failed; check the user and password in the master's URI (" + firstLine(all) + ")",
          e);
    }
    if (all.contains("WRONGTYPE")) {
      return new MasterFailureException(name, Kind.WRONG_TYPE, firstLine(all), e);
    }
    if (e instanceof RedisConnectionException
        || e instanceof IOException
        || e instanceof ClosedChannelException
        || lower.contains("not connected")
        || lower.contains("connection")) {
      return new MasterFailureException(
          name, Kind.UNREACHABLE, "unreachable (" + firstLine(all) + ")", e);
    }
    return new MasterFailureException(name, Kind.ERROR, firstLine(all), e);
  }

  private static String messages(Throwable e) {
    StringBuilder b = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t.getMessage() != null) {
        if (b.length() > 0) {
          b.append(": ");
        }
        b.append(t.getMessage());
      }
    }
    return b.length() == 0 ? e.getClass().getSimpleName() : b.toString();
  }

  private static String firstLine(String s) {
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  static Throwable unwrap(Throwable e) {
    while ((e instanceof CompletionException || e instanceof ExecutionException)
        && e.getCause() != null) {
      e = e.getCause();
    }
    return e;
  }

  /** Closes the connection (asynchronously); later calls fail as unreachable. Idempotent. */
  @Override
  public void close() {
    CompletableFuture<StatefulRedisConnection<String, String>> c;
    synchronized (lock) {
      closed = true;
      c = connection;
      connection = null;
    }
    if (c != null) {
      c.thenAccept(StatefulRedisConnection::closeAsync);
    }
  }

  /**
   * Closes the connection and waits until it is closed.
   *
   * @param timeout how long to wait at most
   */
  public void closeAndWait(Duration timeout) {
    CompletableFuture<StatefulRedisConnection<String, String>> c;
    synchronized (lock) {
      closed = true;
      c = connection;
      connection = null;
    }
    if (c == null) {
      return;
    }
    try {
      c.thenCompose(StatefulRedisConnection::closeAsync)
          .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      // The connection never opened, or closing it failed: nothing is left to close.
    }
  }
}

package dev.redlock.core.internal;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionException;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.Supplier;

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

  /**
   * The key of a master's boot marker (for the restart guard): it starts with a NUL character,
   * which no lock key can contain.
   */
  public static final String BOOT_MARKER_KEY = "\u0000redlock-boot";

  private static final String[] NO_ARGS = new String[0];

  private final RedisClient client;
  private final StatefulRedisConnection<String, String> suppliedConnection;
  private final String name;
  private final Object lock = new Object();
  private final ConcurrentHashMap<String, AtomicBoolean> acquiresInFlight =
      new ConcurrentHashMap<>();
  private final Line<StatefulRedisConnection<String, String>> commands;
  /** Null for a node on a user's connection: it has no connection for release notices. */
  private final Line<StatefulRedisPubSubConnection<String, String>> notices;
  private volatile ReleaseListener releaseListener = (key, releaseId) -> { };
  private boolean closed;

  /**
   * Creates the node; nothing is connected until the first call. The node opens its connections
   * with the client and closes them on {@link #close()}; it never shuts the client down.
   *
   * @param client the client to connect with (not closed by this node)
   * @param uri the master's URI: a host, a socket, or a Sentinel-managed primary
   */
  public RedisNode(RedisClient client, RedisURI uri) {
    this.client = client;
    this.suppliedConnection = null;
    this.name = MasterSpec.nameOf(uri);
    this.commands =
        new Line<>(() -> client.connectAsync(StringCodec.UTF8, uri).toCompletableFuture());
    this.notices =
        new Line<>(
            () ->
                client
                    .connectPubSubAsync(StringCodec.UTF8, uri)
                    .toCompletableFuture()
                    .thenApply(
                        c -> {
                          c.addListener(new NoticeListener());
                          return c;
                        }));
  }

  /**
   * Creates a node that sends its commands on a connection the user opened, and never closes
   * it. It has no connection for release notices: {@link #watch} and {@link #unwatch} do nothing,
   * and waiters fall back to the retry delay and the holder's remaining time.
   *
   * @param connection the user's connection
   * @param name the master's name in messages (without credentials)
   */
  public RedisNode(StatefulRedisConnection<String, String> connection, String name) {
    this.client = null;
    this.suppliedConnection = connection;
    this.name = name;
    this.commands = new Line<>(() -> CompletableFuture.completedFuture(connection));
    this.notices = null;
  }

  /** How long opening a connection may take: the socket's connect timeout. */
  private Duration connectTimeout() {
    io.lettuce.core.ClientOptions options =
        client != null ? client.getOptions() : suppliedConnection.getOptions();
    return options.getSocketOptions().getConnectTimeout();
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
    return clientOptions(connectTimeout, null);
  }

  /**
   * The Lettuce client options every lock connection needs, as {@link #clientOptions(Duration)},
   * with TLS options for {@code rediss://} masters.
   *
   * @param connectTimeout how long one connect may take
   * @param ssl the TLS options, or {@code null} for Lettuce's default (the JVM's trust store)
   * @return the options
   */
  public static io.lettuce.core.ClientOptions clientOptions(
      Duration connectTimeout, io.lettuce.core.SslOptions ssl) {
    io.lettuce.core.ClientOptions.Builder b = io.lettuce.core.ClientOptions.builder();
    if (ssl != null) {
      b.sslOptions(ssl);
    }
    return b
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
   * The master as {@code host:port} ({@code <masterId> via <sentinels>} for a Sentinel-managed
   * one), without credentials.
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
    return commands.issue(
        c -> {
          CompletableFuture<?>[] loads = new CompletableFuture<?>[Script.ALL.length];
          for (int i = 0; i < loads.length; i++) {
            loads[i] = c.async().scriptLoad(Script.ALL[i].text()).toCompletableFuture();
          }
          return CompletableFuture.allOf(loads);
        },
        timeout);
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
      String[] keys,
      boolean fencing,
      boolean guard,
      String token,
      long leaseMillis,
      Duration timeout) {
    int lockKeys = fencing ? keys.length / 2 : keys.length;
    if (guard) {
      keys = java.util.Arrays.copyOf(keys, keys.length + 1);
      keys[keys.length - 1] = BOOT_MARKER_KEY;
    }
    AtomicBoolean superseded = new AtomicBoolean();
    acquiresInFlight.put(token, superseded);
    CompletableFuture<List<Object>> reply =
        script(
            Script.ACQUIRE, ScriptOutputType.MULTI, keys, superseded, timeout,
            token, Long.toString(leaseMillis),
            Integer.toString(lockKeys), fencing ? "1" : "0", guard ? "1" : "0");
    reply.whenComplete((r, e) -> acquiresInFlight.remove(token, superseded));
    return reply.thenApply(
        r -> {
          boolean granted = ((Long) r.get(0)) == 1L;
          long fence = (Long) r.get(2);
          long age = (Long) r.get(3);
          if (!granted) {
            return age < 0 ? AcquireReply.refused((Long) r.get(1)) : new AcquireReply(false, (Long) r.get(1), -1, age);
          }
          return fence < 0 && age < 0 ? AcquireReply.GRANTED : new AcquireReply(true, 0, fence, age);
        });
  }

  @Override
  public CompletableFuture<AcquireReply> acquire(
      Script script, String[] keys, boolean guard, String token, String[] args, Duration timeout) {
    if (guard) {
      keys = java.util.Arrays.copyOf(keys, keys.length + 1);
      keys[keys.length - 1] = BOOT_MARKER_KEY;
    }
    String[] all = new String[args.length + 2];
    all[0] = token;
    System.arraycopy(args, 0, all, 1, args.length);
    all[all.length - 1] = guard ? "1" : "0";
    AtomicBoolean superseded = new AtomicBoolean();
    acquiresInFlight.put(token, superseded);
    CompletableFuture<List<Object>> reply =
        script(script, ScriptOutputType.MULTI, keys, superseded, timeout, all);
    reply.whenComplete((r, e) -> acquiresInFlight.remove(token, superseded));
    return reply.thenApply(
        r ->
            new AcquireReply(
                ((Long) r.get(0)) == 1L,
                (Long) r.get(1),
                (Long) r.get(2),
                (Long) r.get(3),
                r.size() > 4 ? (Long) r.get(4) : -1));
  }

  @Override
  public CompletableFuture<boolean[]> extend(
      Script script, String[] keys, String[] leaseArgs, long leaseMillis, Duration timeout) {
    return runExtend(script, keys, leaseArgs, leaseMillis, timeout);
  }

  @Override
  public CompletableFuture<Long> releaseShared(
      String[] keys, String[] modes, String noticeKey, String token, String releaseId,
      Duration timeout) {
    String[] args = new String[modes.length + 4];
    args[0] = token;
    args[1] = RELEASE_CHANNEL_PREFIX;
    args[2] = releaseId;
    args[3] = noticeKey;
    System.arraycopy(modes, 0, args, 4, modes.length);
    synchronized (lock) {
      AtomicBoolean acquire = acquiresInFlight.get(token);
      if (acquire != null) {
        acquire.set(true);
      }
      return script(Script.SHARED_RELEASE, ScriptOutputType.INTEGER, keys, null, timeout, args);
    }
  }

  @Override
  public CompletableFuture<Boolean> confirmFence(
      String[] keys, String token, long fence, Duration timeout) {
    CompletableFuture<Long> reply =
        script(Script.FENCE, ScriptOutputType.INTEGER, keys, null, timeout, token, Long.toString(fence));
    return reply.thenApply(r -> r == 1L);
  }

  @Override
  public CompletableFuture<boolean[]> extend(
      String[] keys, String[] leaseArgs, long leaseMillis, Duration timeout) {
    return runExtend(Script.EXTEND, keys, leaseArgs, leaseMillis, timeout);
  }

  private CompletableFuture<boolean[]> runExtend(
      Script script, String[] keys, String[] leaseArgs, long leaseMillis, Duration timeout) {
    String[] args = new String[leaseArgs.length + 1];
    args[0] = Long.toString(leaseMillis);
    System.arraycopy(leaseArgs, 0, args, 1, leaseArgs.length);
    CompletableFuture<List<Object>> reply =
        script(script, ScriptOutputType.MULTI, keys, null, timeout, args);
    return reply.thenApply(
        r -> {
          boolean[] held = new boolean[r.size()];
          for (int i = 0; i < held.length; i++) {
            held[i] = ((Long) r.get(i)) == 1L;
          }
          return held;
        });
  }

  @Override
  public CompletableFuture<Long> release(
      String[] keys, String token, String releaseId, Duration timeout) {
    // An acquire of this token still waiting for its script to be reloaded must not be sent
    // again after this release: it would set the keys this release is meant to remove.
    synchronized (lock) {
      AtomicBoolean acquire = acquiresInFlight.get(token);
      if (acquire != null) {
        acquire.set(true);
      }
      return script(
          Script.RELEASE, ScriptOutputType.INTEGER, keys, null, timeout,
          token, RELEASE_CHANNEL_PREFIX, releaseId);
    }
  }

  @Override
  public void onRelease(ReleaseListener listener) {
    this.releaseListener = listener;
  }

  @Override
  public CompletableFuture<Void> watch(String key, Duration timeout) {
    if (notices == null) {
      return CompletableFuture.completedFuture(null);
    }
    return notices.issue(
        c -> c.async().subscribe(RELEASE_CHANNEL_PREFIX + key).toCompletableFuture(), timeout);
  }

  @Override
  public CompletableFuture<Void> unwatch(String key, Duration timeout) {
    if (notices == null) {
      return CompletableFuture.completedFuture(null);
    }
    return notices.issue(
        c -> c.async().unsubscribe(RELEASE_CHANNEL_PREFIX + key).toCompletableFuture(), timeout);
  }

  /** Hands the release notices of watched keys to the listener; Lettuce resubscribes after a reconnect. */
  private final class NoticeListener extends RedisPubSubAdapter<String, String> {
    @Override
    public void message(String channel, String message) {
      if (channel.startsWith(RELEASE_CHANNEL_PREFIX)) {
        releaseListener.released(channel.substring(RELEASE_CHANNEL_PREFIX.length()), message);
      }
    }
  }

  private <T> CompletableFuture<T> script(
      Script script,
      ScriptOutputType type,
      String[] keys,
      AtomicBoolean superseded,
      Duration timeout,
      String... args) {
    String[] values = args.length == 0 ? NO_ARGS : args;
    return commands.issue(
        c -> {
          RedisAsyncCommands<String, String> a = c.async();
          CompletableFuture<T> first =
              a.<T>evalsha(script.sha(), type, keys, values).toCompletableFuture();
          // After a restart or SCRIPT FLUSH the server no longer knows the script: load it and
          // call it again, unless the caller has meanwhile sent a release that the retry would
          // now overtake.
          return first
              .handle(
                  (r, e) -> {
                    if (e == null) {
                      return CompletableFuture.completedFuture(r);
                    }
                    Throwable cause = unwrap(e);
                    if (!(cause instanceof RedisNoScriptException)) {
                      return CompletableFuture.<T>failedFuture(cause);
                    }
                    return a.scriptLoad(script.text())
                        .toCompletableFuture()
                        .thenCompose(
                            sha -> {
                              // Checked and sent under the lock under which release() marks
                              // the acquire superseded and sends itself: either the retry goes
                              // out first, or it is not sent at all.
                              synchronized (lock) {
                                if (superseded != null && superseded.get()) {
                                  return CompletableFuture.<T>failedFuture(
                                      new MasterFailureException(
                                          name, Kind.ERROR,
                                          "the " + script.name() + " script had to be reloaded"
                                              + " and the call was abandoned, since a later"
                                              + " release was already sent",
                                          cause));
                                }
                                return a.<T>evalsha(sha, type, keys, values).toCompletableFuture();
                              }
                            });
                  })
              .thenCompose(f -> f);
        },
        timeout);
  }

  /**
   * One connection of this node (commands, or release notices) and the order of the calls on it.
   *
   * <p>The connection is opened on first use and opened anew after a failed connect. Calls are
   * sent in the order they were issued, also those issued while the connection is still opening
   * (they are chained one behind the other: waiting on the connection future alone would send
   * them in reverse order). All state is guarded by the node's lock.
   */
  private final class Line<C extends StatefulConnection<String, String>> {
    private final Supplier<CompletableFuture<C>> opener;
    private CompletableFuture<C> connection;
    private CompletableFuture<Void> tail = CompletableFuture.completedFuture(null);

    Line(Supplier<CompletableFuture<C>> opener) {
      this.opener = opener;
    }

    /**
     * Sends a command on this connection, in issue order, and bounds it by the timeout counted
     * from the moment it is sent (opening the connection is bounded by the connect timeout).
     */
    <T> CompletableFuture<T> issue(Function<C, CompletableFuture<T>> command, Duration timeout) {
      CompletableFuture<T> result = new CompletableFuture<>();
      synchronized (lock) {
        CompletableFuture<C> c = connection();
        CompletableFuture<Void> previous = tail;
        CompletableFuture<Void> sent = new CompletableFuture<>();
        tail = sent;
        Runnable send =
            () -> {
              try {
                if (c.isCompletedExceptionally()) {
                  c.whenComplete((x, e) -> result.completeExceptionally(connectFailure(unwrap(e))));
                  return;
                }
                // A separate future: timing it out must not cancel Lettuce's command, whose reply
                // is still expected in order on the connection.
                command
                    .apply(c.join())
                    .whenComplete(
                        (r, e) -> {
                          if (e == null) {
                            result.complete(r);
                          } else {
                            result.completeExceptionally(failure(unwrap(e), timeout));
                          }
                        });
                result.orTimeout(timeout.toNanos(), TimeUnit.NANOSECONDS);
              } catch (RuntimeException e) {
                result.completeExceptionally(failure(e, timeout));
              } finally {
                sent.complete(null);
              }
            };
        if (previous.isDone() && c.isDone()) {
          send.run();
        } else {
          previous.whenComplete((v, e) -> c.whenComplete((x, ce) -> send.run()));
        }
      }
      return result
          .handle(
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

    /** The connection, opened on first use and opened anew after a failed connect. Call under lock. */
    private CompletableFuture<C> connection() {
      if (closed) {
        return CompletableFuture.failedFuture(
            new MasterFailureException(name, Kind.UNREACHABLE, "the lock client is closed", null));
      }
      CompletableFuture<C> c = connection;
      if (c == null || c.isCompletedExceptionally()) {
        CompletableFuture<C> opening = opener.get();
        // The socket's connect timeout does not cover the handshake (a paused server accepts the
        // TCP connection and never answers HELLO): bound the whole opening, and close a
        // connection that completes after we gave up on it.
        CompletableFuture<C> bounded = new CompletableFuture<>();
        opening.whenComplete(
            (conn, e) -> {
              if (e != null) {
                bounded.completeExceptionally(e);
              } else if (!bounded.complete(conn)) {
                conn.closeAsync();
              }
            });
        Duration limit = connectTimeout();
        bounded.orTimeout(limit.toNanos(), TimeUnit.NANOSECONDS);
        c = bounded;
        connection = c;
      }
      return c;
    }

    /** Takes the connection away, for closing. Call under lock. */
    CompletableFuture<C> detach() {
      CompletableFuture<C> c = connection;
      connection = null;
      return c;
    }
  }

  private MasterFailureException connectFailure(Throwable e) {
    if (e instanceof TimeoutException) {
      Duration limit = connectTimeout();
      return new MasterFailureException(
          name, Kind.TIMEOUT, "could not open a connection within " + Checks.show(limit), e);
    }
    return failure(e, Duration.ZERO);
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
    Throwable tls = tlsFailure(e);
    if (tls != null) {
      if (tls.getClass().getSimpleName().contains("Timeout")) {
        return new MasterFailureException(
            name, Kind.TIMEOUT, "the TLS handshake did not complete (" + firstLine(all) + ")", e);
      }
      return new MasterFailureException(
          name, Kind.TLS,
          "the TLS handshake failed; check that the master's certificate is trusted (RedlockConfig"
              + " trustedCertificates or sslOptions), names the host of its URI, and that the"
              + " master speaks TLS on that port (" + firstLine(all) + ")",
          e);
    }
    if (lower.contains("wrongpass") || lower.contains("noauth")
        || lower.contains("invalid password") || lower.contains("invalid username-password")
        || lower.contains("authentication")) {
      return new MasterFailureException(
          name, Kind.AUTHENTICATION,
          "authentication failed; check the user and password in the master's URI (" + firstLine(all) + ")",
          e);
    }
    if (lower.contains("noperm") || lower.contains("no permissions")
        || lower.contains("can't run this command")) {
      return new MasterFailureException(
          name, Kind.PERMISSION,
          "the master's ACL denies the user a command, key or channel that locking needs (see the"
              + " README for the rules a lock user needs) (" + firstLine(all) + ")",
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

  /** The TLS failure in a cause chain, if there is one. */
  private static Throwable tlsFailure(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof javax.net.ssl.SSLException) {
        return t;
      }
    }
    return null;
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

  /** Marks the node closed and takes the connections it opened away, for closing. */
  private List<CompletableFuture<? extends StatefulConnection<String, String>>> detach() {
    synchronized (lock) {
      closed = true;
      List<CompletableFuture<? extends StatefulConnection<String, String>>> opened =
          new ArrayList<>(2);
      CompletableFuture<StatefulRedisConnection<String, String>> c = commands.detach();
      // The user's connection stays open: only what this node opened is closed.
      if (c != null && suppliedConnection == null) {
        opened.add(c);
      }
      CompletableFuture<StatefulRedisPubSubConnection<String, String>> p =
          notices == null ? null : notices.detach();
      if (p != null) {
        opened.add(p);
      }
      return opened;
    }
  }

  /** Closes the connections (asynchronously); later calls fail as unreachable. Idempotent. */
  @Override
  public void close() {
    for (CompletableFuture<? extends StatefulConnection<String, String>> c : detach()) {
      c.thenAccept(StatefulConnection::closeAsync);
    }
  }

  /**
   * Closes the connections and waits until they are closed.
   *
   * @param timeout how long to wait at most
   */
  public void closeAndWait(Duration timeout) {
    List<CompletableFuture<? extends StatefulConnection<String, String>>> opened = detach();
    if (opened.isEmpty()) {
      return;
    }
    CompletableFuture<?>[] closing = new CompletableFuture<?>[opened.size()];
    for (int i = 0; i < closing.length; i++) {
      closing[i] = opened.get(i).thenCompose(StatefulConnection::closeAsync);
    }
    try {
      CompletableFuture.allOf(closing).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      // A connection never opened, or closing it failed: nothing is left to close.
    }
  }
}

package dev.redlock.core.internal;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.MaintNotificationsConfig;
import io.lettuce.core.RedisChannelHandler;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionStateListener;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.SslOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.api.push.PushListener;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * One Redis master, spoken to through one Lettuce connection for commands and one for release
 * notices, with the lock scripts.
 *
 * <p>Every call is asynchronous and bounded by its timeout counted from the call, on the timer
 * the node is given (never the JDK's shared one): a master that does not answer in time fails the
 * call with a {@link MasterFailureException} of kind {@link Kind#TIMEOUT}, although the command
 * may still run on the server later (callers therefore send their releases to every master,
 * answered or not). Commands on one node reach the server in the order they were issued (see
 * {@link CommandLine}). Lock connections reject commands while disconnected instead of buffering
 * them (the client must be built with {@link #clientOptions}), and keep at most {@link
 * #REQUEST_QUEUE_SIZE} commands awaiting a reply, so a paused master cannot make them pile up.
 *
 * <p>When a connection opens (and reopens), the node reads the server's {@code run_id}: nodes with
 * the same one are the same server, whatever their URIs say ({@link #serverId()}).
 *
 * <p>Internal to the library: not a public API, may change without notice. Thread-safe.
 */
public final class RedisNode implements LockNode {
  /**
   * The most commands one lock connection keeps awaiting a reply (sent, or buffered by the client
   * for a master that does not read them); further commands fail at once: a paused master would
   * otherwise make every timed-out command stay queued, without bound.
   */
  public static final int REQUEST_QUEUE_SIZE = 16_384;

  private static final String[] NO_ARGS = new String[0];

  private final String name;
  private final Failures failures;
  private final ScheduledExecutorService timer;
  private final Supplier<ClientOptions> options;
  private final boolean ownsCommandConnection;
  private final Object lock = new Object();

  /** Per token, the acquire sent with it that a release would supersede; see {@link #release}. */
  private final ConcurrentHashMap<String, AtomicBoolean> acquiresInFlight = new ConcurrentHashMap<>();

  private final CommandLine<StatefulRedisConnection<String, String>> commands;

  /** Null for a node on a user's connection: it has no connection for release notices. */
  private final CommandLine<StatefulRedisPubSubConnection<String, String>> notices;

  private volatile ReleaseListener releaseListener = (key, releaseId) -> { };
  private volatile String serverId;

  /** Replicas that must acknowledge a write before this master's vote counts; 0: none. */
  private volatile int ackReplicas;

  private volatile Duration ackTimeout = Duration.ZERO;

  /** Server-assisted tracking of the keys the scripts read (see {@link Tracking}). */
  private final Tracking tracking;

  /** The commands connection, once open (for its state). */
  private volatile StatefulRedisConnection<String, String> commandConnection;

  /**
   * Creates the node; nothing is connected until the first call. The node opens its connections
   * with the client and closes them on {@link #close()}; it never shuts the client down.
   *
   * @param client the client to connect with (not closed by this node)
   * @param uri the master's URI: a host, a socket, or a Sentinel-managed primary
   * @param timer bounds every call; never shut down by the node
   */
  public RedisNode(RedisClient client, RedisURI uri, ScheduledExecutorService timer) {
    this.name = MasterSpec.nameOf(uri);
    this.failures = new Failures(name);
    this.timer = timer;
    this.options = client::getOptions;
    this.ownsCommandConnection = true;
    this.tracking = new Tracking(timer, this::connectTimeout);
    this.commands =
        new CommandLine<>(
            lock,
            () -> client.connectAsync(StringCodec.UTF8, uri).toCompletableFuture().thenCompose(this::identify),
            this::connectTimeout, timer, failures, REQUEST_QUEUE_SIZE);
    this.notices =
        new CommandLine<>(
            lock,
            () ->
                client
                    .connectPubSubAsync(StringCodec.UTF8, uri)
                    .toCompletableFuture()
                    .thenCompose(this::listen),
            this::connectTimeout, timer, failures, REQUEST_QUEUE_SIZE);
  }

  /**
   * Creates a node that sends its commands on a connection the user opened, and never closes
   * it. It has no connection for release notices: {@link #watch} and {@link #unwatch} do nothing,
   * and waiters fall back to the retry delay and the holder's remaining time.
   *
   * @param connection the user's connection
   * @param name the master's name in messages (without credentials)
   * @param timer bounds every call; never shut down by the node
   */
  public RedisNode(StatefulRedisConnection<String, String> connection, String name, ScheduledExecutorService timer) {
    this.name = name;
    this.failures = new Failures(name);
    this.timer = timer;
    this.options = connection::getOptions;
    this.ownsCommandConnection = false;
    this.tracking = new Tracking(timer, this::connectTimeout);
    this.commands =
        new CommandLine<>(lock, () -> identify(connection), this::connectTimeout, timer, failures, REQUEST_QUEUE_SIZE);
    this.notices = null;
  }

  /** How long opening a connection may take: the socket's connect timeout. */
  private Duration connectTimeout() {
    return options.get().getSocketOptions().getConnectTimeout();
  }

  /**
   * The Lettuce client options every lock connection needs: reject commands while disconnected
   * (Lettuce's default would buffer them and replay them after a reconnect, setting keys long
   * after the caller gave up), reconnect automatically, bound connecting and the commands awaiting
   * a reply, and TLS options for {@code rediss://} masters.
   *
   * @param connectTimeout how long one connect may take
   * @param ssl the TLS options, or {@code null} for Lettuce's default (the JVM's trust store)
   * @return the options
   */
  public static ClientOptions clientOptions(Duration connectTimeout, SslOptions ssl) {
    ClientOptions.Builder b = ClientOptions.builder();
    if (ssl != null) {
      b.sslOptions(ssl);
    }
    // Lettuce 7 would send CLIENT MAINT_NOTIFICATIONS on every connection: a subcommand no server
    // of the matrix knows, refused (and logged in ACL LOG on Redis 6.2) for nothing.
    b.maintNotificationsConfig(MaintNotificationsConfig.disabled());
    return b.disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
        .autoReconnect(true)
        .requestQueueSize(REQUEST_QUEUE_SIZE)
        .socketOptions(
            SocketOptions.builder().connectTimeout(connectTimeout).keepAlive(true).tcpNoDelay(true).build())
        .build();
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public String serverId() {
    return serverId;
  }

  /**
   * Prepares a commands connection that just opened: reads the server's identity, and again
   * whenever it reopens (a restarted server has a new run id; a server whose ACL denies {@code INFO}
   * stays unknown), and sets tracking up before its first command.
   */
  private <C extends StatefulRedisConnection<String, String>> CompletableFuture<C> identify(C connection) {
    commandConnection = connection;
    connection.addListener(
        new RedisConnectionStateListener() {
          @Override
          public void onRedisConnected(RedisChannelHandler<?, ?> c, SocketAddress address) {
            // Fired as the socket opens, before Lettuce accepts commands on it: ask a moment later.
            timer.schedule(
                () -> {
                  readServerId(connection, 5);
                  tracking.commandsReopened();
                },
                50, TimeUnit.MILLISECONDS);
          }

          @Override
          public void onRedisDisconnected(RedisChannelHandler<?, ?> c) {
            tracking.commandsDropped();
          }
        });
    if (notices != null) {
      // Tracking redirects to the notice connection: open it too (a no-op when it is open).
      notices.issue(c -> CompletableFuture.completedFuture(null), connectTimeout(), false);
    }
    return readServerId(connection, 0)
        .handle((id, e) -> null)
        .thenCompose(x -> tracking.commandsOpened(connection))
        .handle((x, e) -> connection);
  }

  /**
   * Prepares a notice connection that just opened: it hears release notices and tracking
   * invalidations (RESP3 pushes redirected to it), and tells its client id, to which the commands
   * connection redirects its tracking. Again after every reconnect (a new id).
   */
  private CompletableFuture<StatefulRedisPubSubConnection<String, String>> listen(
      StatefulRedisPubSubConnection<String, String> c) {
    c.addListener(new NoticeListener());
    c.addListener((PushListener) tracking::pushed);
    c.addListener(
        new RedisConnectionStateListener() {
          @Override
          public void onRedisConnected(RedisChannelHandler<?, ?> ch, SocketAddress address) {
            timer.schedule(() -> tracking.noticesOpened(c), 50, TimeUnit.MILLISECONDS);
          }

          @Override
          public void onRedisDisconnected(RedisChannelHandler<?, ?> ch) {
            tracking.noticesDropped();
          }
        });
    return tracking.noticesOpened(c).handle((x, e) -> c);
  }

  @Override
  public void onTracking(TrackingListener listener) {
    tracking.want(listener);
    if (notices == null) {
      tracking.impossible("its commands go over a connection you opened, and no connection of ours is there to receive pushes");
      return;
    }
    // Connections opened before tracking was wanted: set it up on them now.
    StatefulRedisPubSubConnection<String, String> opened = notices.connectionNow();
    if (opened != null) {
      tracking.noticesOpened(opened);
    }
  }

  @Override
  public boolean tracking() {
    return tracking.on();
  }

  @Override
  public boolean connected() {
    StatefulRedisConnection<String, String> c = commandConnection;
    return c != null && c.isOpen();
  }

  private CompletableFuture<String> readServerId(StatefulRedisConnection<String, String> connection, int retries) {
    CompletableFuture<String> info;
    try {
      info = connection.async().info("server").toCompletableFuture();
    } catch (RuntimeException e) {
      info = CompletableFuture.failedFuture(e);
    }
    return info.handle(
        (text, e) -> {
          if (e == null) {
            String id = ServerInfo.field(text, "run_id");
            if (id != null) {
              serverId = id;
            }
            return id;
          }
          if (retries > 0 && connection.isOpen()) {
            timer.schedule(() -> readServerId(connection, retries - 1), 100, TimeUnit.MILLISECONDS);
          }
          return null;
        });
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
    if (notices != null) {
      // Opened now, not at the first wait: invalidations of held keys arrive on it.
      notices.issue(c -> CompletableFuture.completedFuture(null), timeout, false);
    }
    return commands.issue(
        c -> {
          CompletableFuture<?>[] loads = new CompletableFuture<?>[Script.ALL.length];
          for (int i = 0; i < loads.length; i++) {
            loads[i] = c.async().scriptLoad(Script.ALL[i].text()).toCompletableFuture();
          }
          return CompletableFuture.allOf(loads);
        },
        timeout, false);
  }

  /**
   * Makes this master's votes count only once {@code replicas} of its replicas acknowledged the
   * keys an acquire or a renewal wrote ({@code WAIT} on the same connection after the script).
   *
   * @param replicas the replicas that must acknowledge; 0 turns it off
   * @param timeout how long the master waits for them; capped at half of each call's timeout
   * @return this node
   */
  public RedisNode replicaAcks(int replicas, Duration timeout) {
    this.ackTimeout = timeout;
    this.ackReplicas = replicas;
    return this;
  }

  /**
   * After a script that wrote: waits until the configured replicas acknowledged the connection's
   * writes, and fails the vote with a message that names how many did if they did not in time.
   */
  private <T> CompletableFuture<T> acknowledged(
      StatefulRedisConnection<String, String> c, T reply, boolean wrote, Duration callTimeout) {
    int replicas = ackReplicas;
    if (replicas == 0 || !wrote) {
      return CompletableFuture.completedFuture(reply);
    }
    long bound = Math.max(1, Math.min(ackTimeout.toMillis(), callTimeout.toMillis() / 2));
    return c.async()
        .waitForReplication(replicas, bound)
        .toCompletableFuture()
        .thenCompose(
            acks ->
                acks >= replicas
                    ? CompletableFuture.completedFuture(reply)
                    : CompletableFuture.failedFuture(notReplicated(name, acks, replicas, bound)));
  }

  /** A vote that does not count: {@code WAIT} found fewer replicas than {@code replicaAcks} asks for. */
  static MasterFailureException notReplicated(String name, long acks, int replicas, long boundMillis) {
    return new MasterFailureException(
        name, Kind.NOT_REPLICATED,
        "the lock's keys reached " + acks + " of the " + replicas
            + " replica(s) replicaAcks asks for within " + boundMillis + "ms (WAIT);"
            + " the vote does not count",
        null);
  }

  /** Whether an extend call only checks (lease time "0"): it writes nothing to wait for. */
  private static boolean extendCheckOnly(String[] args) {
    return args.length > 0 && "0".equals(args[0]);
  }

  @Override
  public CompletableFuture<AcquireReply> acquire(Script script, String[] keys, String[] args, Duration timeout) {
    String token = args[0];
    AtomicBoolean superseded = new AtomicBoolean();
    acquiresInFlight.put(token, superseded);
    CompletableFuture<List<Object>> reply =
        commands.issue(
            c -> {
              CompletableFuture<List<Object>> run =
                  this.<List<Object>>callScript(c.async(), script, ScriptOutputType.MULTI, keys, args, superseded)
                      .thenCompose(r -> acknowledged(c, r, ((Long) r.get(0)) == 1L, timeout));
              // Forget the acquire once the server has run it or it was abandoned, not when the
              // caller stops waiting: a release sent meanwhile must still find it and supersede a
              // reload that is still under way.
              run.whenComplete((r, e) -> acquiresInFlight.remove(token, superseded));
              return run;
            },
            timeout, false,
            () -> acquiresInFlight.remove(token, superseded));
    return reply.thenApply(AcquireReply::of);
  }

  @Override
  public CompletableFuture<boolean[]> extend(Script script, String[] keys, String[] args, Duration timeout) {
    CompletableFuture<List<Object>> reply =
        commands.issue(
            c ->
                this.<List<Object>>callScript(c.async(), script, ScriptOutputType.MULTI, keys, args, null)
                    .thenCompose(r -> acknowledged(c, r, r.contains(1L) && !extendCheckOnly(args), timeout)),
            timeout, false);
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
  public CompletableFuture<Long> release(Script script, String[] keys, String[] args, Duration timeout) {
    // Marked under the lock under which a reloaded acquire checks the mark and is sent: either
    // the reloaded acquire goes out before this release, or never.
    synchronized (lock) {
      AtomicBoolean acquire = acquiresInFlight.get(args[0]);
      if (acquire != null) {
        acquire.set(true);
      }
      return commands.issue(c -> callScript(c.async(), script, ScriptOutputType.INTEGER, keys, args, null), timeout, true);
    }
  }

  @Override
  public CompletableFuture<Boolean> confirmFence(String[] keys, String token, long fence, Duration timeout) {
    String[] args = {token, Long.toString(fence)};
    CompletableFuture<Long> reply =
        commands.issue(c -> callScript(c.async(), Script.FENCE, ScriptOutputType.INTEGER, keys, args, null), timeout, false);
    return reply.thenApply(r -> r == 1L);
  }

  @Override
  public CompletableFuture<Long> probe(Duration timeout) {
    String[] keys = {Keys.BOOT_MARKER};
    return commands.issue(c -> callScript(c.async(), Script.PROBE, ScriptOutputType.INTEGER, keys, NO_ARGS, null), timeout, false);
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
    return notices.issue(c -> c.async().subscribe(Keys.releaseChannel(key)).toCompletableFuture(), timeout, false);
  }

  @Override
  public CompletableFuture<Void> unwatch(String key, Duration timeout) {
    if (notices == null) {
      return CompletableFuture.completedFuture(null);
    }
    // Sent even if late: a subscription must not outlive its room.
    return notices.issue(c -> c.async().unsubscribe(Keys.releaseChannel(key)).toCompletableFuture(), timeout, true);
  }

  /** Hands the release notices of watched keys to the listener; Lettuce resubscribes after a reconnect. */
  private final class NoticeListener extends RedisPubSubAdapter<String, String> {
    @Override
    public void message(String channel, String message) {
      if (channel.startsWith(Keys.RELEASE_CHANNEL_PREFIX)) {
        releaseListener.released(channel.substring(Keys.RELEASE_CHANNEL_PREFIX.length()), message);
      }
    }
  }

  /**
   * Calls a script by its SHA. After a restart or {@code SCRIPT FLUSH} the server no longer knows
   * it: it is loaded and called again on the same connection, unless {@code superseded} says that a
   * release of the same token went out meanwhile (the retry would run after that release and set
   * keys nobody holds).
   */
  private <T> CompletableFuture<T> callScript(
      RedisAsyncCommands<String, String> a,
      Script script,
      ScriptOutputType type,
      String[] keys,
      String[] args,
      AtomicBoolean superseded) {
    String[] values = args.length == 0 ? NO_ARGS : args;
    tracking.reading();
    CompletableFuture<T> first = a.<T>evalsha(script.sha(), type, keys, values).toCompletableFuture();
    return ScriptCalls.reloading(
        name, script, lock, superseded, first,
        () -> a.scriptLoad(script.text()),
        sha -> a.<T>evalsha(sha, type, keys, values).toCompletableFuture());
  }

  /** Closes the connections (asynchronously, never blocking); later calls fail as unreachable. Idempotent. */
  @Override
  public void close() {
    Closing.closeAll(detach());
  }

  /**
   * Closes the connections and waits until they are closed. Must not be called on one of the
   * client's I/O threads (it would wait for itself).
   *
   * @param timeout how long to wait at most
   */
  @Override
  public void closeAndWait(Duration timeout) {
    Closing.closeAllAndWait(detach(), timeout);
  }

  /** Marks the node closed and takes the connections it opened away, for closing. */
  private List<CompletableFuture<? extends StatefulConnection<String, String>>> detach() {
    tracking.close();
    List<CompletableFuture<? extends StatefulConnection<String, String>>> opened = new ArrayList<>(2);
    CompletableFuture<StatefulRedisConnection<String, String>> c = commands.close();
    // The user's connection stays open: only what this node opened is closed.
    if (c != null && ownsCommandConnection) {
      opened.add(c);
    }
    if (notices != null) {
      CompletableFuture<StatefulRedisPubSubConnection<String, String>> p = notices.close();
      if (p != null) {
        opened.add(p);
      }
    }
    return opened;
  }
}

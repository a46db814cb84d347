package dev.redlock.core.internal;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.event.ClusterTopologyChangedEvent;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.async.RedisAdvancedClusterAsyncCommands;
import io.lettuce.core.cluster.models.partitions.Partitions;
import io.lettuce.core.cluster.models.partitions.RedisClusterNode;
import io.lettuce.core.cluster.pubsub.RedisClusterPubSubAdapter;
import io.lettuce.core.cluster.pubsub.StatefulRedisClusterPubSubConnection;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.output.CommandOutput;
import io.lettuce.core.output.IntegerOutput;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.AsyncCommand;
import io.lettuce.core.protocol.Command;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import java.util.function.Supplier;
import reactor.core.Disposable;

/**
 * One master that is a whole Redis Cluster, spoken to through one Lettuce cluster connection for
 * commands and one cluster pub/sub connection for release notices.
 *
 * <p>The engine hands it the plain key names ({@link Keys}); it writes them with the resource's
 * lock key as hash tag ({@link Keys#onCluster}), so every key of a lease lives in one slot, and
 * replaces the restart guard's marker by the marker of that slot ({@link
 * Keys#clusterBootMarker}). A script call goes to the primary serving the slot; Lettuce follows
 * {@code MOVED} and {@code ASK} redirections and refreshes its view of the cluster (the client
 * must enable topology refresh). A call whose keys fall in several slots fails (the engine refuses
 * such locks at the call); an extend call carrying leases of several slots is split, one script
 * call per slot.
 *
 * <p>Release notices: on Redis 7.0 and later (and Valkey) the release scripts {@code SPUBLISH} on a
 * channel of the resource's slot and waiters {@code SSUBSCRIBE} at that slot's primary (sharded
 * pub/sub); on Redis 6.2 they {@code PUBLISH}, which a cluster broadcasts to every node, and
 * waiters subscribe on one node of the cluster. A sharded subscription lives on the node that
 * served the slot when it was made: when the server ends it (the slot moved away, or the node
 * turned into a replica) or the cluster's view changes (a failover), it is made again at the
 * slot's primary now. Key tracking is not set up (its invalidations would come from each shard
 * node apart); the listener is told so once.
 *
 * <p>With {@link #replicaAcks}, a script that wrote is followed by {@code WAIT} on the very
 * connection that ran it (WAIT counts one connection's writes): such calls are sent to the slot's
 * primary's connection directly, and this node follows {@code MOVED} and {@code ASK} itself.
 *
 * <p>Like {@link RedisNode}: every call is bounded by its timeout on the given timer; lock
 * connections must reject commands while disconnected; a release supersedes an acquire of the same
 * token that is waiting for its script to be reloaded. Commands to one slot reach its primary in
 * the order they were issued, redirections aside.
 *
 * <p>Internal to the library: not a public API, may change without notice. Thread-safe.
 */
public final class ClusterNode implements LockNode {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(ClusterNode.class);
  private static final String[] NO_ARGS = new String[0];

  /** Put before the release channels' prefix: the release scripts then publish with {@code SPUBLISH}. */
  private static final String SHARDED_MARK = "!";

  private final String name;
  private final Failures failures;
  private final Supplier<ClientOptions> options;
  private final Object lock = new Object();
  private final ConcurrentHashMap<String, AtomicBoolean> acquiresInFlight = new ConcurrentHashMap<>();
  private final CommandLine<StatefulRedisClusterConnection<String, String>> commands;
  private final CommandLine<StatefulRedisClusterPubSubConnection<String, String>> notices;

  /** Per channel subscribed to, the key (as the engine names it) whose releases it announces. */
  private final ConcurrentHashMap<String, String> watched = new ConcurrentHashMap<>();

  /** Per sharded channel subscribed to, the node ({@code host:port}) it was last subscribed at. */
  private final ConcurrentHashMap<String, String> subscribedAt = new ConcurrentHashMap<>();

  private final ScheduledExecutorService timer;

  /** The subscription to the client's topology changes (null until the notices connect). */
  private volatile Disposable topologyEvents;

  /** Replicas that must acknowledge a write before this master's vote counts; 0: none. */
  private volatile int ackReplicas;

  private volatile Duration ackTimeout = Duration.ZERO;

  private volatile ReleaseListener releaseListener = (key, releaseId) -> { };
  private volatile StatefulRedisClusterConnection<String, String> commandConnection;

  /**
   * Whether release notices go over sharded pub/sub ({@code SPUBLISH}/{@code SSUBSCRIBE}, Redis
   * 7.0 and later, Valkey): decided once, from the version of the first node the connection
   * reached, before the first command; classic pub/sub (which a cluster broadcasts to every node)
   * otherwise.
   */
  private volatile boolean sharded;

  /** The first topology refresh, shared by both connections; guarded by {@code lock}. */
  private CompletableFuture<Void> topology;

  /**
   * Creates the node; nothing is connected until the first call. The node opens its connections
   * with the client and closes them on {@link #close()}; it never shuts the client down.
   *
   * @param client the cluster client, with the cluster's seed URIs (not shut down by this node)
   * @param name the master's name in messages, without credentials
   * @param timer bounds every call; never shut down by the node
   */
  public ClusterNode(RedisClusterClient client, String name, ScheduledExecutorService timer) {
    this.name = name;
    this.failures = new Failures(name);
    this.timer = timer;
    this.options = client::getOptions;
    this.commands =
        new CommandLine<>(
            lock,
            () ->
                topology(client)
                    .thenCompose(x -> client.connectAsync(StringCodec.UTF8))
                    .thenCompose(this::connectPrimaries),
            this::connectTimeout, timer, failures, RedisNode.REQUEST_QUEUE_SIZE);
    this.notices =
        new CommandLine<>(
            lock,
            () ->
                topology(client)
                    .thenCompose(x -> client.connectPubSubAsync(StringCodec.UTF8)).thenApply(c -> {
                  c.addListener(new NoticeListener());
                  followTopology(client);
                  return c;
                }),
            this::connectTimeout, timer, failures, RedisNode.REQUEST_QUEUE_SIZE);
  }

  /**
   * Lettuce connects asynchronously only once it knows the topology: one refresh serves both
   * connections, and a failed one is tried again by the next connect.
   */
  private CompletableFuture<Void> topology(RedisClusterClient client) {
    synchronized (lock) {
      CompletableFuture<Void> t = topology;
      if (t == null || t.isCompletedExceptionally()) {
        t = client.refreshPartitionsAsync().toCompletableFuture();
        topology = t;
      }
      return t;
    }
  }

  /**
   * Opens the connection to every primary before the first command: Lettuce opens them on first
   * use, and a lock connection (rejecting commands while not connected) would fail the command that
   * finds one still opening.
   */
  private CompletableFuture<StatefulRedisClusterConnection<String, String>> connectPrimaries(
      StatefulRedisClusterConnection<String, String> c) {
    List<CompletableFuture<?>> opening = new ArrayList<>();
    for (RedisClusterNode n : c.getPartitions()) {
      if (n.is(RedisClusterNode.NodeFlag.UPSTREAM)) {
        opening.add(c.getConnectionAsync(n.getNodeId()));
      }
    }
    opening.add(
        c.async().info("server").toCompletableFuture().thenAccept(text -> {
          String version = ServerInfo.field(text, "redis_version");
          sharded = version != null && majorOf(version) >= 7;
        }));
    return CompletableFuture.allOf(opening.toArray(new CompletableFuture<?>[0]))
        .handle(
            (x, e) -> {
              commandConnection = c;
              return c;
            });
  }

  /**
   * Completes once the connection to the primary of a slot is open (at once when it is): Lettuce
   * opens a node's connection on first use, and a lock connection rejects a command that finds it
   * still opening, as after a failover or a slot migration to a node not used before. Never fails:
   * the command then fails on its own, with the reason.
   */
  private static CompletableFuture<Void> ready(
      Partitions partitions, int slot, java.util.function.Function<String, CompletableFuture<?>> connect) {
    RedisClusterNode owner = partitions.getMasterBySlot(slot);
    if (owner == null || owner.getNodeId() == null) {
      return CompletableFuture.completedFuture(null);
    }
    CompletableFuture<?> opening;
    try {
      opening = connect.apply(owner.getNodeId());
    } catch (RuntimeException e) {
      return CompletableFuture.completedFuture(null);
    }
    return opening.handle((x, e) -> null);
  }

  private static int majorOf(String version) {
    int dot = version.indexOf('.');
    try {
      return Integer.parseInt(dot < 0 ? version : version.substring(0, dot));
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /**
   * How long opening a cluster connection may take: three socket connect timeouts, for its three
   * steps (the topology from the seeds, the connection, one connection to each primary).
   */
  private Duration connectTimeout() {
    return options.get().getSocketOptions().getConnectTimeout().multipliedBy(3);
  }

  @Override
  public String name() {
    return name;
  }

  /**
   * What tells this cluster from another: the smallest node id it knows (node ids survive
   * failovers and restarts with their cluster configuration). {@code null} before connecting.
   */
  @Override
  public String serverId() {
    StatefulRedisClusterConnection<String, String> c = commandConnection;
    if (c == null) {
      return null;
    }
    String least = null;
    for (RedisClusterNode n : c.getPartitions()) {
      if (n.getNodeId() != null && (least == null || n.getNodeId().compareTo(least) < 0)) {
        least = n.getNodeId();
      }
    }
    return least == null ? null : "cluster node " + least;
  }

  @Override
  public boolean cluster() {
    return true;
  }

  @Override
  public CompletableFuture<Void> warmUp(Duration timeout) {
    notices.issue(c -> CompletableFuture.completedFuture(null), timeout, false);
    return commands.issue(
        c -> {
          CompletableFuture<?>[] loads = new CompletableFuture<?>[Script.ALL.length];
          for (int i = 0; i < loads.length; i++) {
            // Lettuce loads it on every node of the cluster.
            loads[i] = c.async().scriptLoad(Script.ALL[i].text()).toCompletableFuture();
          }
          return CompletableFuture.allOf(loads);
        },
        timeout, false);
  }

  /**
   * The keys as written on the cluster, and their one slot; {@link Keys#BOOT_MARKER} becomes that
   * slot's marker.
   */
  private Mapped map(String[] keys, Script script) {
    String[] out = new String[keys.length];
    int slot = -1;
    for (int i = 0; i < keys.length; i++) {
      if (keys[i].equals(Keys.BOOT_MARKER)) {
        continue;
      }
      out[i] = Keys.onCluster(keys[i]);
      int s = Keys.slot(out[i]);
      if (slot < 0) {
        slot = s;
      } else if (s != slot) {
        throw new MasterFailureException(
            name, Kind.ERROR,
            "the " + script.name() + " script's keys hash to several slots (" + slot + " and " + s
                + "); keys of one call must share a slot on a cluster master",
            null);
      }
    }
    for (int i = 0; i < keys.length; i++) {
      if (out[i] == null) {
        out[i] = Keys.clusterBootMarker(slot < 0 ? 0 : slot);
      }
    }
    return new Mapped(out, slot);
  }

  private record Mapped(String[] keys, int slot) {}

  /**
   * The release scripts' arguments on the cluster: the key whose channel they publish on (among
   * the arguments of the shared release) is hash-tagged too, and with sharded pub/sub the channel
   * prefix is marked for {@code SPUBLISH}.
   */
  private String[] mapArgs(Script script, String[] args) {
    if (script != Script.RELEASE && script != Script.SHARED_RELEASE) {
      return args;
    }
    String[] out = args.clone();
    if (script == Script.SHARED_RELEASE && args.length > 3) {
      out[3] = Keys.onCluster(args[3]);
    }
    if (sharded && args.length > 1) {
      out[1] = SHARDED_MARK + args[1];
    }
    return out;
  }

  /**
   * Makes this master's votes count only once {@code replicas} replicas of the slot's primary
   * acknowledged the keys an acquire or a renewal wrote ({@code WAIT} on the connection that ran
   * the script), as {@link RedisNode#replicaAcks} does for a server.
   *
   * @param replicas the replicas that must acknowledge; 0 turns it off
   * @param timeout how long the primary waits for them; capped at half of each call's timeout
   * @return this node
   */
  public ClusterNode replicaAcks(int replicas, Duration timeout) {
    this.ackTimeout = timeout;
    this.ackReplicas = replicas;
    return this;
  }

  /** The most redirections one call with {@code WAIT} follows (a migration's {@code ASK}, then a {@code MOVED}). */
  private static final int MAX_REDIRECTS = 3;

  /**
   * Runs a script on the primary serving its keys' slot and, if {@code wrote} says the reply wrote
   * something, waits on the same connection until {@link #ackReplicas} replicas acknowledged it.
   * Lettuce's cluster connection sends a keyed command to the slot's primary (or where a
   * redirection points) and {@code WAIT} to some node: so both are sent on the node's own
   * connection here, and redirections are followed by this node.
   */
  private <T> CompletableFuture<T> callAcknowledged(
      StatefulRedisClusterConnection<String, String> c,
      Script script,
      ScriptOutputType type,
      String[] keys,
      String[] args,
      AtomicBoolean superseded,
      Predicate<T> wrote,
      Duration callTimeout) {
    int slot = Keys.slot(keys[0]);
    RedisClusterNode owner = c.getPartitions().getMasterBySlot(slot);
    if (owner == null || owner.getUri() == null) {
      return CompletableFuture.failedFuture(
          new MasterFailureException(name, Kind.UNREACHABLE, "no primary of the cluster serves slot " + slot + " now", null));
    }
    RedisURI at = owner.getUri();
    return atNode(c, at.getHost(), at.getPort(), false, 0, script, type, keys, args, superseded, wrote, callTimeout);
  }

  private <T> CompletableFuture<T> atNode(
      StatefulRedisClusterConnection<String, String> c,
      String host,
      int port,
      boolean asking,
      int redirects,
      Script script,
      ScriptOutputType type,
      String[] keys,
      String[] args,
      AtomicBoolean superseded,
      Predicate<T> wrote,
      Duration callTimeout) {
    String[] values = args.length == 0 ? NO_ARGS : args;
    return c.getConnectionAsync(host, port)
        .thenCompose(
            node -> {
              CompletableFuture<T> first;
              // A redirected call goes out later than issued: a release of the token may have gone out meanwhile.
              synchronized (lock) {
                if (redirects > 0 && superseded != null && superseded.get()) {
                  return CompletableFuture.<T>failedFuture(
                      new MasterFailureException(
                          name, Kind.ERROR,
                          "the " + script.name() + " call was redirected and abandoned, since a later release was already sent",
                          null));
                }
                first = evalsha(node, asking, script.sha(), type, keys, values);
              }
              CompletableFuture<T> run =
                  ScriptCalls.reloading(
                      name, script, lock, superseded, first,
                      () -> node.async().scriptLoad(script.text()),
                      sha -> evalsha(node, asking, sha, type, keys, values));
              return run.handle(
                      (r, e) -> {
                        if (e == null) {
                          return wrote.test(r) ? acknowledged(node, r, callTimeout) : CompletableFuture.completedFuture(r);
                        }
                        Throwable cause = Failures.unwrap(e);
                        String text = cause instanceof RedisCommandExecutionException ? cause.getMessage() : null;
                        boolean moved = text != null && text.startsWith("MOVED ");
                        boolean ask = text != null && text.startsWith("ASK ");
                        if ((moved || ask) && redirects < MAX_REDIRECTS) {
                          String target = text.substring(text.lastIndexOf(' ') + 1);
                          int colon = target.lastIndexOf(':');
                          String toHost = colon <= 0 ? host : target.substring(0, colon);
                          int toPort = Integer.parseInt(target.substring(colon + 1));
                          return atNode(c, toHost, toPort, ask, redirects + 1, script, type, keys, args, superseded, wrote, callTimeout);
                        }
                        return CompletableFuture.<T>failedFuture(cause);
                      })
                  .thenCompose(f -> f);
            });
  }

  /**
   * {@code EVALSHA} on one node's connection; after an {@code ASK}, preceded by {@code ASKING} in
   * one write, so that no other command of the connection comes between them.
   */
  @SuppressWarnings("unchecked")
  private static <T> CompletableFuture<T> evalsha(
      StatefulRedisConnection<String, String> node,
      boolean asking,
      String sha,
      ScriptOutputType type,
      String[] keys,
      String[] values) {
    if (!asking) {
      return node.async().<T>evalsha(sha, type, keys, values).toCompletableFuture();
    }
    CommandArgs<String, String> a =
        new CommandArgs<>(StringCodec.UTF8).add(sha).add(keys.length).addKeys(keys).addValues(values);
    CommandOutput<String, String, T> output =
        type == ScriptOutputType.INTEGER
            ? (CommandOutput<String, String, T>) new IntegerOutput<>(StringCodec.UTF8)
            : (CommandOutput<String, String, T>) new NestedMultiOutput<>(StringCodec.UTF8);
    AsyncCommand<String, String, T> eval = new AsyncCommand<>(new Command<>(CommandType.EVALSHA, output, a));
    AsyncCommand<String, String, String> ask =
        new AsyncCommand<>(new Command<>(CommandType.ASKING, new StatusOutput<>(StringCodec.UTF8)));
    node.dispatch(List.of(ask, eval));
    return eval;
  }

  /** After a script that wrote: {@code WAIT} on the connection that ran it; see {@link RedisNode#replicaAcks}. */
  private <T> CompletableFuture<T> acknowledged(StatefulRedisConnection<String, String> node, T reply, Duration callTimeout) {
    int replicas = ackReplicas;
    long bound = Math.max(1, Math.min(ackTimeout.toMillis(), callTimeout.toMillis() / 2));
    return node.async()
        .waitForReplication(replicas, bound)
        .toCompletableFuture()
        .thenCompose(
            acks ->
                acks >= replicas
                    ? CompletableFuture.completedFuture(reply)
                    : CompletableFuture.failedFuture(RedisNode.notReplicated(name, acks, replicas, bound)));
  }

  @Override
  public CompletableFuture<AcquireReply> acquire(Script script, String[] keys, String[] args, Duration timeout) {
    Mapped m;
    try {
      m = map(keys, script);
    } catch (MasterFailureException e) {
      return CompletableFuture.failedFuture(e);
    }
    String token = args[0];
    AtomicBoolean superseded = new AtomicBoolean();
    acquiresInFlight.put(token, superseded);
    CompletableFuture<List<Object>> reply =
        commands.issue(
            c -> {
              CompletableFuture<List<Object>> run =
                  ackReplicas > 0
                      ? callAcknowledged(
                          c, script, ScriptOutputType.MULTI, m.keys(), args, superseded,
                          (List<Object> r) -> ((Long) r.get(0)) == 1L, timeout)
                      : callScript(c, script, ScriptOutputType.MULTI, m.keys(), args, superseded);
              run.whenComplete((r, e) -> acquiresInFlight.remove(token, superseded));
              return run;
            },
            timeout, false,
            () -> acquiresInFlight.remove(token, superseded));
    return reply.thenApply(AcquireReply::of);
  }

  /**
   * Extends the leases, one script call per slot among them (a script runs on one slot's primary):
   * the answers are put back in the leases' order. Fails as a whole if any call fails.
   */
  @Override
  public CompletableFuture<boolean[]> extend(Script script, String[] keys, String[] args, Duration timeout) {
    // Per slot, in order of first appearance: the lease indexes, keys and arguments.
    Map<Integer, Batch> batches = new LinkedHashMap<>();
    int k = 0;
    int lease = 0;
    for (int a = 1; a + 1 < args.length; a += 2, lease++) {
      int count = Integer.parseInt(args[a]);
      String[] mapped = new String[count];
      for (int i = 0; i < count; i++) {
        mapped[i] = Keys.onCluster(keys[k + i]);
      }
      int slot = count == 0 ? 0 : Keys.slot(mapped[0]);
      for (String key : mapped) {
        if (Keys.slot(key) != slot) {
          return CompletableFuture.failedFuture(
              new MasterFailureException(name, Kind.ERROR, "a lease's keys hash to several slots on a cluster master", null));
        }
      }
      Batch b = batches.computeIfAbsent(slot, s -> new Batch(args[0]));
      b.leases.add(lease);
      for (String key : mapped) {
        b.keys.add(key);
      }
      b.args.add(args[a]);
      b.args.add(args[a + 1]);
      k += count;
    }
    int leases = lease;
    List<Batch> list = new ArrayList<>(batches.values());
    List<CompletableFuture<List<Object>>> calls = new ArrayList<>(list.size());
    // A call that only checks (lease time "0") writes nothing to wait for.
    boolean checkOnly = args.length > 0 && "0".equals(args[0]);
    for (Batch b : list) {
      String[] bk = b.keys.toArray(new String[0]);
      String[] ba = b.args.toArray(new String[0]);
      calls.add(
          commands.issue(
              c ->
                  extendCall(c, script, bk, ba, checkOnly, timeout)
                      .exceptionallyCompose(
                          e ->
                              b.leases.size() > 1 && tryAgain(e)
                                  ? oneByOne(c, script, bk, ba, checkOnly, timeout)
                                  : CompletableFuture.failedFuture(Failures.unwrap(e))),
              timeout, false));
    }
    return CompletableFuture.allOf(calls.toArray(new CompletableFuture<?>[0]))
        .thenApply(
            x -> {
              boolean[] held = new boolean[leases];
              for (int i = 0; i < list.size(); i++) {
                List<Object> r = calls.get(i).join();
                List<Integer> idx = list.get(i).leases;
                for (int j = 0; j < idx.size(); j++) {
                  held[idx.get(j)] = ((Long) r.get(j)) == 1L;
                }
              }
              return held;
            });
  }

  private CompletableFuture<List<Object>> extendCall(
      StatefulRedisClusterConnection<String, String> c,
      Script script,
      String[] keys,
      String[] args,
      boolean checkOnly,
      Duration timeout) {
    return ackReplicas > 0 && !checkOnly && keys.length > 0
        ? callAcknowledged(c, script, ScriptOutputType.MULTI, keys, args, null, (List<Object> r) -> r.contains(1L), timeout)
        : callScript(c, script, ScriptOutputType.MULTI, keys, args, null);
  }

  /** Whether a call failed with {@code TRYAGAIN}: its keys are split between two primaries by a slot migration. */
  private static boolean tryAgain(Throwable e) {
    String text = Failures.unwrap(e).getMessage();
    return text != null && text.startsWith("TRYAGAIN");
  }

  /**
   * The leases of one extend call, one call each, their answers in order: while a slot migrates,
   * a call renewing several leases of the slot finds some of their keys moved and others not
   * ({@code TRYAGAIN}), where each lease alone (its keys on one side, reached through {@code ASK}
   * where moved) is renewed.
   */
  private CompletableFuture<List<Object>> oneByOne(
      StatefulRedisClusterConnection<String, String> c,
      Script script,
      String[] keys,
      String[] args,
      boolean checkOnly,
      Duration timeout) {
    List<CompletableFuture<List<Object>>> each = new ArrayList<>();
    int k = 0;
    for (int a = 1; a + 1 < args.length; a += 2) {
      int count = Integer.parseInt(args[a]);
      String[] lk = java.util.Arrays.copyOfRange(keys, k, k + count);
      String[] la = {args[0], args[a], args[a + 1]};
      each.add(extendCall(c, script, lk, la, checkOnly, timeout));
      k += count;
    }
    return CompletableFuture.allOf(each.toArray(new CompletableFuture<?>[0]))
        .thenApply(
            x -> {
              List<Object> answers = new ArrayList<>(each.size());
              for (CompletableFuture<List<Object>> f : each) {
                answers.add(f.join().get(0));
              }
              return answers;
            });
  }

  /** The leases of one slot in an extend call. */
  private static final class Batch {
    final List<Integer> leases = new ArrayList<>();
    final List<String> keys = new ArrayList<>();
    final List<String> args = new ArrayList<>();

    Batch(String leaseMillis) {
      args.add(leaseMillis);
    }
  }

  @Override
  public CompletableFuture<Long> release(Script script, String[] keys, String[] args, Duration timeout) {
    Mapped m;
    try {
      m = map(keys, script);
    } catch (MasterFailureException e) {
      return CompletableFuture.failedFuture(e);
    }
    String[] mappedArgs = mapArgs(script, args);
    synchronized (lock) {
      AtomicBoolean acquire = acquiresInFlight.get(args[0]);
      if (acquire != null) {
        acquire.set(true);
      }
      return commands.issue(
          c -> callScript(c, script, ScriptOutputType.INTEGER, m.keys(), mappedArgs, null), timeout, true);
    }
  }

  @Override
  public CompletableFuture<Boolean> confirmFence(String[] keys, String token, long fence, Duration timeout) {
    Mapped m;
    try {
      m = map(keys, Script.FENCE);
    } catch (MasterFailureException e) {
      return CompletableFuture.failedFuture(e);
    }
    String[] args = {token, Long.toString(fence)};
    CompletableFuture<Long> reply =
        commands.issue(
            c -> callScript(c, Script.FENCE, ScriptOutputType.INTEGER, m.keys(), args, null), timeout, false);
    return reply.thenApply(r -> r == 1L);
  }

  /**
   * The youngest data among the primaries: one probe per primary, on the marker of the lowest slot
   * it serves (each primary's restart or promotion shows there, since a missing marker is dated by
   * the primary's own history).
   */
  @Override
  public CompletableFuture<Long> probe(Duration timeout) {
    return commands.issue(
        c -> {
          List<Integer> slots = new ArrayList<>();
          Partitions partitions = c.getPartitions();
          for (RedisClusterNode n : partitions) {
            if (n.is(RedisClusterNode.NodeFlag.UPSTREAM) && !n.getSlots().isEmpty()) {
              slots.add(java.util.Collections.min(n.getSlots()));
            }
          }
          if (slots.isEmpty()) {
            slots.add(0);
          }
          List<CompletableFuture<Long>> ages = new ArrayList<>();
          for (int slot : slots) {
            String[] keys = {Keys.clusterBootMarker(slot)};
            ages.add(callScript(c, Script.PROBE, ScriptOutputType.INTEGER, keys, NO_ARGS, null));
          }
          return CompletableFuture.allOf(ages.toArray(new CompletableFuture<?>[0]))
              .thenApply(x -> ages.stream().mapToLong(CompletableFuture::join).min().orElse(0L));
        },
        timeout, false);
  }

  @Override
  public void onRelease(ReleaseListener listener) {
    this.releaseListener = listener;
  }

  @Override
  public CompletableFuture<Void> watch(String key, Duration timeout) {
    String channel = Keys.releaseChannel(Keys.onCluster(key));
    watched.put(channel, key);
    return notices.issue(
        c -> sharded ? subscribeAtOwner(c, channel, 0) : c.async().subscribe(channel).toCompletableFuture(),
        timeout, false);
  }

  @Override
  public CompletableFuture<Void> unwatch(String key, Duration timeout) {
    String channel = Keys.releaseChannel(Keys.onCluster(key));
    // Forgotten first: the server's confirmation must not read as a subscription it ended.
    watched.remove(channel, key);
    return notices.issue(
        c -> {
          if (!sharded) {
            return c.async().unsubscribe(channel).toCompletableFuture();
          }
          String at = subscribedAt.remove(channel);
          CompletableFuture<StatefulRedisPubSubConnection<String, String>> node =
              at == null ? atOwner(c, channel) : at(c, at);
          return node.thenCompose(n -> n.async().sunsubscribe(channel).toCompletableFuture());
        },
        timeout, true);
  }

  /**
   * Subscribes to a shard channel at the primary serving its slot now (sharded subscriptions live
   * there; Lettuce hands their messages to this node's listener), following a {@code MOVED} the
   * node answers when the view of the cluster is behind.
   */
  private CompletableFuture<Void> subscribeAtOwner(
      StatefulRedisClusterPubSubConnection<String, String> c, String channel, int redirects) {
    RedisClusterNode owner = c.getPartitions().getMasterBySlot(Keys.slot(channel));
    if (owner == null || owner.getUri() == null) {
      return CompletableFuture.failedFuture(
          new IllegalStateException("no primary serves slot " + Keys.slot(channel) + " of channel " + channel));
    }
    return subscribeAt(c, channel, owner.getUri().getHost() + ":" + owner.getUri().getPort(), redirects);
  }

  private CompletableFuture<Void> subscribeAt(
      StatefulRedisClusterPubSubConnection<String, String> c, String channel, String hostPort, int redirects) {
    return at(c, hostPort)
        .thenCompose(n -> n.async().ssubscribe(channel).toCompletableFuture())
        .handle(
            (x, e) -> {
              if (e == null) {
                subscribedAt.put(channel, hostPort);
                return CompletableFuture.<Void>completedFuture(null);
              }
              Throwable cause = Failures.unwrap(e);
              String text = cause.getMessage();
              if (text != null && text.startsWith("MOVED ") && redirects < MAX_REDIRECTS) {
                String target = text.substring(text.lastIndexOf(' ') + 1);
                if (target.startsWith(":")) {
                  target = hostPort.substring(0, hostPort.lastIndexOf(':')) + target;
                }
                return subscribeAt(c, channel, target, redirects + 1);
              }
              return CompletableFuture.<Void>failedFuture(cause);
            })
        .thenCompose(f -> f);
  }

  /** The pub/sub connection to the node at {@code host:port}. */
  private static CompletableFuture<StatefulRedisPubSubConnection<String, String>> at(
      StatefulRedisClusterPubSubConnection<String, String> c, String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    return c.getConnectionAsync(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
  }

  /** The pub/sub connection to the primary serving a shard channel's slot now. */
  private static CompletableFuture<StatefulRedisPubSubConnection<String, String>> atOwner(
      StatefulRedisClusterPubSubConnection<String, String> c, String channel) {
    RedisClusterNode owner = c.getPartitions().getMasterBySlot(Keys.slot(channel));
    if (owner == null || owner.getUri() == null) {
      return CompletableFuture.failedFuture(
          new IllegalStateException("no primary serves slot " + Keys.slot(channel) + " of channel " + channel));
    }
    return at(c, owner.getUri().getHost() + ":" + owner.getUri().getPort());
  }

  /**
   * Hears the client's topology changes (on its event bus, shared with other clients of the same
   * resources: each change makes every watched channel be checked, which costs nothing where its
   * slot did not move). Once per node.
   */
  private void followTopology(RedisClusterClient client) {
    synchronized (lock) {
      if (topologyEvents != null) {
        return;
      }
      topologyEvents =
          client.getResources().eventBus().get()
              .filter(e -> e instanceof ClusterTopologyChangedEvent)
              .subscribe(e -> resubscribeMoved(), e -> LOG.warn("Redlock cluster master {}: topology events ended: {}", name, e.toString()));
    }
  }

  /** After a topology change: every sharded subscription whose slot is served elsewhere now is made there. */
  private void resubscribeMoved() {
    StatefulRedisClusterPubSubConnection<String, String> c = notices.connectionNow();
    if (c == null || !sharded) {
      return;
    }
    for (String channel : watched.keySet()) {
      RedisClusterNode owner = c.getPartitions().getMasterBySlot(Keys.slot(channel));
      String now = owner == null || owner.getUri() == null ? null : owner.getUri().getHost() + ":" + owner.getUri().getPort();
      if (now != null && !now.equals(subscribedAt.get(channel))) {
        resubscribe(channel, "its slot is served by " + now + " now");
      }
    }
  }

  /**
   * Makes a watched channel's subscription again at its slot's primary now. A failure is logged;
   * the next topology change tries again, and waiters meanwhile fall back to the holder's remaining
   * time and the retry delay.
   */
  private void resubscribe(String channel, String why) {
    if (!watched.containsKey(channel)) {
      return;
    }
    notices
        .issue(c -> subscribeAtOwner(c, channel, 0), connectTimeout(), false)
        .whenComplete(
            (x, e) -> {
              if (e != null && watched.containsKey(channel)) {
                LOG.warn(
                    "Redlock cluster master {}: could not renew the release-notice subscription of slot {} ({}): {};"
                        + " waiters fall back to the holder's remaining time and the retry delay until the next topology change",
                    name, Keys.slot(channel), why, Failures.unwrap(e).toString());
              }
            });
  }

  /** Hands the release notices of watched keys to the listener, under the engine's key names. */
  private final class NoticeListener extends RedisClusterPubSubAdapter<String, String> {
    @Override
    public void message(RedisClusterNode node, String channel, String message) {
      String key = watched.get(channel);
      if (key != null) {
        releaseListener.released(key, message);
      }
    }

    @Override
    public void smessage(RedisClusterNode node, String channel, String message) {
      message(node, channel, message);
    }

    /**
     * The server ended a sharded subscription we still want: its slot moved away from the node, or
     * the node became a replica. Made again at the slot's primary (a notice published meanwhile is
     * missed: the waiter's fallbacks cover it).
     */
    @Override
    public void sunsubscribed(RedisClusterNode node, String channel, long count) {
      if (watched.containsKey(channel)) {
        subscribedAt.remove(channel);
        // Not on the I/O thread that delivered it: subscribing waits on connections of this client.
        timer.execute(() -> resubscribe(channel, "the node serving it ended the subscription"));
      }
    }
  }

  @Override
  public void onTracking(TrackingListener listener) {
    listener.unavailable(
        "it is a Redis Cluster (tracking would have to be set up with each shard node, which is not"
            + " done)");
  }

  @Override
  public boolean tracking() {
    return false;
  }

  /**
   * Whether the cluster connection has opened (with a connection to every primary it knew then)
   * and is not closed. Its connections to single nodes reconnect on their own; one of them being
   * down is not seen here (a Lettuce cluster connection is never "open" as a whole).
   */
  @Override
  public boolean connected() {
    return commandConnection != null && commands.connectionNow() != null;
  }

  /** Calls a script by its SHA; on {@code NOSCRIPT} loads it on every node and calls it again, as {@link RedisNode} does. */
  private <T> CompletableFuture<T> callScript(
      StatefulRedisClusterConnection<String, String> c,
      Script script,
      ScriptOutputType type,
      String[] keys,
      String[] args,
      AtomicBoolean superseded) {
    String[] values = args.length == 0 ? NO_ARGS : args;
    RedisAdvancedClusterAsyncCommands<String, String> a = c.async();
    CompletableFuture<Void> ready =
        keys.length == 0 ? CompletableFuture.completedFuture(null) : ready(c.getPartitions(), Keys.slot(keys[0]), c::getConnectionAsync);
    CompletableFuture<T> first =
        ready.isDone()
            ? a.<T>evalsha(script.sha(), type, keys, values).toCompletableFuture()
            : ready.thenCompose(
                x -> {
                  // Sent later than issued: a release of the same token may have gone out meanwhile.
                  synchronized (lock) {
                    if (superseded != null && superseded.get()) {
                      return CompletableFuture.<T>failedFuture(
                          new MasterFailureException(
                              name, Kind.ERROR,
                              "the " + script.name() + " call waited for a connection to its slot's"
                                  + " primary and was abandoned, since a later release was already sent",
                              null));
                    }
                    return a.<T>evalsha(script.sha(), type, keys, values).toCompletableFuture();
                  }
                });
    return ScriptCalls.reloading(
        name, script, lock, superseded, first,
        () -> a.scriptLoad(script.text()),
        sha -> a.<T>evalsha(sha, type, keys, values).toCompletableFuture());
  }

  @Override
  public void close() {
    Closing.closeAll(detach());
  }

  /**
   * Closes the connections and waits until they are closed. Must not be called on one of the
   * client's I/O threads.
   *
   * @param timeout how long to wait at most
   */
  @Override
  public void closeAndWait(Duration timeout) {
    Closing.closeAllAndWait(detach(), timeout);
  }

  private List<CompletableFuture<? extends StatefulConnection<String, String>>> detach() {
    Disposable events;
    synchronized (lock) {
      events = topologyEvents;
      topologyEvents = () -> { }; // closed: no later subscription
    }
    if (events != null) {
      events.dispose();
    }
    List<CompletableFuture<? extends StatefulConnection<String, String>>> opened = new ArrayList<>(2);
    CompletableFuture<StatefulRedisClusterConnection<String, String>> c = commands.close();
    if (c != null) {
      opened.add(c);
    }
    CompletableFuture<StatefulRedisClusterPubSubConnection<String, String>> p = notices.close();
    if (p != null) {
      opened.add(p);
    }
    return opened;
  }
}

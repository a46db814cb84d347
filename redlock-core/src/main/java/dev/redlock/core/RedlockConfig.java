package dev.redlock.core;

import dev.redlock.core.internal.Checks;
import dev.redlock.core.internal.ConfigInternals;
import dev.redlock.core.internal.MasterChecks;
import dev.redlock.core.internal.MasterSpec;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SslOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.RedisClusterClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The settings of a Redlock: the masters and the timing of leases, waits and retries.
 *
 * <p>Immutable and thread-safe; build one with {@link #builder()}. {@link Builder#build()}
 * validates every setting and throws {@link IllegalArgumentException} naming the setting, the
 * allowed range and the value given, so a bad configuration fails at start-up, not at the
 * first lock.
 *
 * <pre>{@code
 * RedlockConfig config = RedlockConfig.builder()
 *     .masters(List.of("redis://10.0.0.1:6379", "redis://10.0.0.2:6379", "redis://10.0.0.3:6379"))
 *     .leaseTime(Duration.ofSeconds(10))
 *     .build();
 * }</pre>
 *
 * <p>Masters may also be given as a Lettuce {@link RedisClient} with a {@link RedisURI}, or as an
 * open {@link StatefulRedisConnection}; the library never shuts down or closes what it was
 * given. See the README's "Deployments" section for TLS, ACL users, Sentinel and what each
 * topology guarantees.
 */
public final class RedlockConfig {
  static {
    ConfigInternals.install(
        new ConfigInternals.Reader() {
          @Override
          public List<MasterSpec> masters(RedlockConfig c) {
            return c.sources;
          }

          @Override
          public Duration explicitNodeTimeout(RedlockConfig c) {
            return c.nodeTimeout;
          }
        });
  }

  /** Default lease time: 10 seconds. */
  public static final Duration DEFAULT_LEASE_TIME = Duration.ofSeconds(10);

  /** Default wait time for {@code acquire}: 10 seconds. */
  public static final Duration DEFAULT_WAIT_TIME = Duration.ofSeconds(10);

  /** Default base delay between attempts when no better hint is known: 200 milliseconds. */
  public static final Duration DEFAULT_RETRY_DELAY = Duration.ofMillis(200);

  /** Default clock drift factor: 1 % of the lease time. */
  public static final double DEFAULT_DRIFT_FACTOR = 0.01;

  /** Default constant part of the clock drift allowance: 2 milliseconds. */
  public static final Duration DEFAULT_DRIFT_CONSTANT = Duration.ofMillis(2);

  /** Default key prefix: {@code redlock:}. */
  public static final String DEFAULT_KEY_PREFIX = "redlock:";

  private final List<MasterSpec> sources;
  private final List<String> masters;
  private final Path trustedCertificates;
  private final SslOptions sslOptions;
  private final Duration leaseTime;
  private final Duration waitTime;
  private final Duration retryDelay;
  private final double driftFactor;
  private final Duration driftConstant;
  private final Duration nodeTimeout;
  private final String keyPrefix;
  private final Duration maxHoldTime;
  private final boolean fencing;
  private final Duration restartGuard;
  private final boolean keyTracking;
  private final int replicaAcks;
  private final Duration replicaAckTimeout;
  private final RedlockMetrics metrics;

  private RedlockConfig(Builder b) {
    this.sources = List.copyOf(b.masters);
    List<String> shown = new ArrayList<>(sources.size());
    for (int i = 0; i < sources.size(); i++) {
      shown.add(MasterChecks.describe(sources.get(i), i, false));
    }
    this.masters = List.copyOf(shown);
    this.trustedCertificates = b.trustedCertificates;
    this.sslOptions = b.sslOptions;
    this.leaseTime = b.leaseTime;
    this.waitTime = b.waitTime;
    this.retryDelay = b.retryDelay;
    this.driftFactor = b.driftFactor;
    this.driftConstant = b.driftConstant;
    this.nodeTimeout = b.nodeTimeout;
    this.keyPrefix = b.keyPrefix;
    this.maxHoldTime = b.maxHoldTime;
    this.fencing = b.fencing;
    this.restartGuard = b.restartGuard;
    this.keyTracking = b.keyTracking;
    this.replicaAcks = b.replicaAcks;
    this.replicaAckTimeout = b.replicaAckTimeout;
    this.metrics = b.metrics;
  }

  /**
   * How many replicas of a master must have received a lock's keys before that master's vote
   * counts ({@code WAIT} after each acquire and renewal that wrote).
   *
   * @return the number of replicas; 0 (the default) when votes count without waiting
   */
  public int replicaAcks() {
    return replicaAcks;
  }

  /**
   * How long a master waits for {@link #replicaAcks()} replicas to acknowledge a write.
   *
   * @return the explicit bound, or half the {@link #nodeTimeout()} when none was set
   */
  public Duration replicaAckTimeout() {
    return replicaAckTimeout != null ? replicaAckTimeout : nodeTimeout().dividedBy(2);
  }

  /**
   * Whether the masters are asked to push changes of the keys this process holds or waits for
   * (Redis server-assisted client-side caching, {@code CLIENT TRACKING} over RESP3): a held lock
   * whose keys are deleted on a quorum is found lost within a round trip, and waiters look again
   * the moment the key they wait for is gone, whoever removed it. Masters that cannot track
   * (RESP2, {@code CLIENT} renamed or not allowed) work as without it, said once in the log.
   *
   * @return whether tracking is asked for; default {@code true}
   */
  public boolean keyTracking() {
    return keyTracking;
  }

  /**
   * Where measurements go: acquisitions, waiting, holding, renewals, losses, master failures.
   *
   * @return the metrics; default {@link RedlockMetrics#NONE}, which records nothing
   */
  public RedlockMetrics metrics() {
    return metrics;
  }

  /**
   * How long a master's votes are not counted after it started empty or lost its data (the
   * Redlock rule that a crashed master stays out for a lease time, enforced by the client).
   *
   * @return the guard period; zero when the guard is off; default the lease time
   */
  public Duration restartGuard() {
    return restartGuard != null ? restartGuard : leaseTime;
  }

  /**
   * Whether leases carry a fencing token by default (a call may override it). A fencing token
   * costs a second round trip at acquisition; see the README for what it guarantees.
   *
   * @return {@code true} if fencing tokens are drawn unless a call says otherwise; default {@code
   *     false}
   */
  public boolean fencing() {
    return fencing;
  }

  /**
   * The hard cap on how long one lease may be held, renewals included, if one was set: when it
   * is reached, renewal stops, the lease counts as lost ({@link LockLostException.Reason#MAX_HOLD})
   * and the critical section is cancelled.
   *
   * @return the cap, or empty when leases are renewed for as long as they are held (the default)
   */
  public java.util.Optional<Duration> maxHoldTime() {
    return java.util.Optional.ofNullable(maxHoldTime);
  }

  /**
   * Starts a new builder with every setting at its default and no masters.
   *
   * @return a new builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The masters, one entry per master in the order given: the URI as given (with its credentials,
   * if any) for a master given as a URI; {@code client:<uri without credentials>} for one given as
   * a {@link RedisClient} and {@link RedisURI}; {@code connection:masters[i]} for one given as a
   * connection.
   *
   * @return an unmodifiable list with at least one entry
   */
  public List<String> masters() {
    return masters;
  }

  /**
   * The PEM file of certificates trusted for {@code rediss://} masters, if one was set.
   *
   * @return the file, or empty when the JVM's default trust store applies
   */
  public Optional<Path> trustedCertificates() {
    return Optional.ofNullable(trustedCertificates);
  }

  /**
   * The Lettuce TLS options for {@code rediss://} masters, if they were set.
   *
   * @return the options, or empty
   */
  public Optional<SslOptions> sslOptions() {
    return Optional.ofNullable(sslOptions);
  }

  /**
   * How long a lease lasts on the masters before it expires unless renewed.
   *
   * @return the lease time; default {@link #DEFAULT_LEASE_TIME}
   */
  public Duration leaseTime() {
    return leaseTime;
  }

  /**
   * How long {@code acquire} and {@code withRedlock} wait for a lock before giving up.
   *
   * @return the wait time; zero means one attempt; default {@link #DEFAULT_WAIT_TIME}
   */
  public Duration waitTime() {
    return waitTime;
  }

  /**
   * The base delay between two attempts when neither a release notice nor the holder's remaining
   * time gives a better moment; each wait is jittered between half and one and a half times it.
   *
   * @return the retry delay; default {@link #DEFAULT_RETRY_DELAY}
   */
  public Duration retryDelay() {
    return retryDelay;
  }

  /**
   * The share of the lease time subtracted from validity for clock drift between masters.
   *
   * @return the factor; default {@link #DEFAULT_DRIFT_FACTOR}
   */
  public double driftFactor() {
    return driftFactor;
  }

  /**
   * The constant part of the clock drift allowance.
   *
   * @return the constant; default {@link #DEFAULT_DRIFT_CONSTANT}
   */
  public Duration driftConstant() {
    return driftConstant;
  }

  /**
   * The per-master bound on one lock command, for the configured lease time.
   *
   * @return the explicit node timeout, or the default derived from {@link #leaseTime()}: 5 %,
   *     at least 20 ms, at most a third of it
   */
  public Duration nodeTimeout() {
    return nodeTimeout != null ? nodeTimeout : ConfigInternals.derivedNodeTimeout(leaseTime);
  }

  /**
   * The prefix put before every resource name to form its Redis key.
   *
   * @return the prefix; default {@link #DEFAULT_KEY_PREFIX}
   */
  public String keyPrefix() {
    return keyPrefix;
  }

  /**
   * Shows the settings, with every password in the master URIs replaced by {@code ***}.
   *
   * @return a one-line description
   */
  @Override
  public String toString() {
    List<String> shown = new ArrayList<>();
    for (int i = 0; i < sources.size(); i++) {
      shown.add(MasterChecks.describe(sources.get(i), i, true));
    }
    return "RedlockConfig{masters=" + shown
        + (trustedCertificates != null ? ", trustedCertificates=" + trustedCertificates : "")
        + (sslOptions != null ? ", sslOptions=set" : "")
        + ", leaseTime=" + Checks.show(leaseTime)
        + ", waitTime=" + Checks.show(waitTime) + ", retryDelay=" + Checks.show(retryDelay)
        + ", driftFactor=" + driftFactor + ", driftConstant=" + Checks.show(driftConstant)
        + ", nodeTimeout=" + Checks.show(nodeTimeout()) + ", keyPrefix='" + keyPrefix + "'"
        + (maxHoldTime != null ? ", maxHoldTime=" + Checks.show(maxHoldTime) : "")
        + (fencing ? ", fencing=true" : "")
        + ", restartGuard=" + Checks.show(restartGuard())
        + (keyTracking ? "" : ", keyTracking=false")
        + (replicaAcks > 0
            ? ", replicaAcks=" + replicaAcks + ", replicaAckTimeout=" + Checks.show(replicaAckTimeout())
            : "")
        + (metrics != RedlockMetrics.NONE ? ", metrics=" + metrics : "") + "}";
  }

  /**
   * Builds a {@link RedlockConfig}. Not thread-safe; each setter replaces the previous value,
   * except {@link #master(String)}, which adds a master.
   */
  public static final class Builder {
    private final List<MasterSpec> masters = new ArrayList<>();
    private Path trustedCertificates;
    private SslOptions sslOptions;
    private Duration leaseTime = DEFAULT_LEASE_TIME;
    private Duration waitTime = DEFAULT_WAIT_TIME;
    private Duration retryDelay = DEFAULT_RETRY_DELAY;
    private double driftFactor = DEFAULT_DRIFT_FACTOR;
    private Duration driftConstant = DEFAULT_DRIFT_CONSTANT;
    private Duration nodeTimeout;
    private Duration maxHoldTime;
    private boolean fencing;
    private RedlockMetrics metrics = RedlockMetrics.NONE;
    private Duration restartGuard;
    private boolean keyTracking = true;
    private int replicaAcks = 0;
    private Duration replicaAckTimeout;
    private String keyPrefix = DEFAULT_KEY_PREFIX;

    private Builder() {}

    /**
     * Adds one master, as a URI {@code redis://[[user]:password@]host[:port][/database]}, {@code
     * rediss://...} for TLS (see {@link #trustedCertificates(Path)}), or {@code
     * redis-sentinel://[[user]:password@]host[:port][,host2[:port2]...][/database]#masterId} for
     * a primary that Redis Sentinel manages (the credentials are the primary's), or {@code
     * redis-cluster://[[user]:password@]host:port[,host2:port2...]} ({@code rediss-cluster://}
     * for TLS) for a whole Redis Cluster as one master (the hosts are seed nodes; the client
     * finds the rest). Masters must be independent servers or clusters (not replicas of each
     * other); each may be given once. A Sentinel-managed master or a cluster follows its
     * primaries across failovers, but a failover can lose a lock the old primary granted and had
     * not yet replicated: see the README. On a cluster master, the resources of one
     * multi-resource lock must hash to one slot (see the README).
     *
     * @param uri the master's URI
     * @return this builder
     */
    public Builder master(String uri) {
      masters.add(MasterSpec.ofUri(uri));
      return this;
    }

    /**
     * Adds one master reached through the application's own Lettuce client: the library opens
     * its two connections to {@code uri} with {@code client} (one for commands, one for release
     * notices), closes them when the Redlock is closed, and never shuts the client down. {@link
     * #trustedCertificates(Path)} and {@link #sslOptions(SslOptions)} do not apply: the client's
     * own options do.
     *
     * <p>The client's options must reject commands while disconnected and reconnect
     * automatically ({@code ClientOptions.builder().disconnectedBehavior(REJECT_COMMANDS)}, {@code
     * autoReconnect(true)}): a lock command buffered during a disconnect would run after the
     * caller gave up. {@link #build()} checks the options the client has at that moment. A client
     * can share its {@code ClientResources} with another client of other options.
     *
     * @param client the client to connect with
     * @param uri the master's URI, as for {@link #master(String)}
     * @return this builder
     */
    public Builder master(RedisClient client, RedisURI uri) {
      masters.add(MasterSpec.ofClient(client, uri));
      return this;
    }

    /**
     * Adds one master reached through an open connection of the application: lock commands are
     * sent on it, and it is never closed by the library. Without a connection of its own for
     * release notices, a waiter for a lock held on this master alone learns of its release by
     * the retry delay and the holder's remaining time (see {@link #retryDelay(Duration)}), not at
     * once; prefer {@link #master(RedisClient, RedisURI)} when waits matter.
     *
     * <p>The connection's options must reject commands while disconnected and reconnect
     * automatically, as for {@link #master(RedisClient, RedisURI)}; do not use it for
     * transactions ({@code MULTI}) or blocking commands, which would hold lock commands back.
     *
     * @param connection the connection, with a {@code String} codec
     * @return this builder
     */
    public Builder master(StatefulRedisConnection<String, String> connection) {
      masters.add(MasterSpec.ofConnection(connection));
      return this;
    }

    /**
     * Adds one master that is a whole Redis Cluster, reached through the application's own
     * cluster client: the library opens its two cluster connections with {@code client} (one for
     * commands, one for release notices), closes them when the Redlock is closed, and never shuts
     * the client down. {@link #trustedCertificates(Path)} and {@link #sslOptions(SslOptions)} do
     * not apply: the client's own options do.
     *
     * <p>As for {@link #master(RedisClient, RedisURI)}, the client's options must reject commands
     * while disconnected and reconnect automatically; {@link #build()} checks them. Enable
     * Lettuce's topology refresh ({@code ClusterTopologyRefreshOptions}, adaptive triggers and a
     * periodic refresh) so that the client follows failovers and slot migrations soon.
     *
     * @param client the cluster client, with the seed URIs of the cluster
     * @return this builder
     */
    public Builder master(RedisClusterClient client) {
      masters.add(MasterSpec.ofCluster(client));
      return this;
    }

    /**
     * Replaces every master (also those given as a client or connection) by these URIs. Use an
     * odd count (1, 3, 5, ...): an even count tolerates no more failures than the odd count below
     * it.
     *
     * @param uris the masters' URIs, see {@link #master(String)}
     * @return this builder
     */
    public Builder masters(List<String> uris) {
      Objects.requireNonNull(uris, "masters must be a list of Redis URIs, but was null");
      masters.clear();
      for (String uri : uris) {
        masters.add(MasterSpec.ofUri(uri));
      }
      return this;
    }

    /**
     * Trusts the certificates in this PEM file (one or more {@code -----BEGIN CERTIFICATE-----}
     * blocks, typically the CA that signed the masters' certificates) for {@code rediss://}
     * masters, instead of the JVM's default trust store. The peer is verified in full: its
     * certificate must chain to a trusted one and name the host of the URI. Unset by default;
     * {@code null} unsets it. Cannot be combined with {@link #sslOptions(SslOptions)}.
     *
     * @param pemFile the PEM file; read and checked by {@link #build()}
     * @return this builder
     */
    public Builder trustedCertificates(Path pemFile) {
      this.trustedCertificates = pemFile;
      return this;
    }

    /**
     * Sets Lettuce's TLS options for {@code rediss://} masters as they are: for a trust store, a
     * client certificate (mutual TLS), protocols or cipher suites. Unset by default; {@code null}
     * unsets it. Cannot be combined with {@link #trustedCertificates(Path)}.
     *
     * @param sslOptions the options
     * @return this builder
     */
    public Builder sslOptions(SslOptions sslOptions) {
      this.sslOptions = sslOptions;
      return this;
    }

    /**
     * Sets how long a lease lasts on the masters unless renewed. Inside {@code withRedlock} it is
     * renewed every third of this, so it bounds how long a crashed holder blocks others. Default
     * 10 s; allowed 10 ms to 1 day.
     *
     * @param leaseTime the lease time
     * @return this builder
     */
    public Builder leaseTime(Duration leaseTime) {
      this.leaseTime = leaseTime;
      return this;
    }

    /**
     * Sets how long to wait for a lock before giving up with {@link LockNotAcquiredException}.
     * Default 10 s; allowed 0 (one attempt) to 365 days.
     *
     * @param waitTime the wait time
     * @return this builder
     */
    public Builder waitTime(Duration waitTime) {
      this.waitTime = waitTime;
      return this;
    }

    /**
     * Sets the base delay between attempts when no better moment is known. Default 200 ms;
     * allowed 1 ms to 1 minute.
     *
     * @param retryDelay the retry delay
     * @return this builder
     */
    public Builder retryDelay(Duration retryDelay) {
      this.retryDelay = retryDelay;
      return this;
    }

    /**
     * Sets the share of the lease time allowed for clock drift between masters. Default 0.01;
     * allowed 0 to 0.5.
     *
     * @param driftFactor the factor
     * @return this builder
     */
    public Builder driftFactor(double driftFactor) {
      this.driftFactor = driftFactor;
      return this;
    }

    /**
     * Sets the constant part of the clock drift allowance. Default 2 ms; allowed 0 to 1 minute.
     *
     * @param driftConstant the constant
     * @return this builder
     */
    public Builder driftConstant(Duration driftConstant) {
      this.driftConstant = driftConstant;
      return this;
    }

    /**
     * Sets the bound on one lock command on one master, counted from the call (connecting
     * included); a master that does not answer in time counts as not acquired. Default: 5 % of
     * the lease time, at least 20 ms, at most a third of the lease time; allowed 1 ms up to a
     * third of the lease time (a renewal runs every third of the lease and must be over before
     * the next one is due). A per-call lease time must then be at least three times this value.
     *
     * @param nodeTimeout the per-master timeout
     * @return this builder
     */
    public Builder nodeTimeout(Duration nodeTimeout) {
      this.nodeTimeout = nodeTimeout;
      return this;
    }

    /**
     * Sets the prefix of every lock key: resource {@code orders:42} is key {@code
     * <prefix>orders:42}. Default {@code redlock:}; any string of at most 256 characters.
     *
     * @param keyPrefix the prefix
     * @return this builder
     */
    public Builder keyPrefix(String keyPrefix) {
      this.keyPrefix = keyPrefix;
      return this;
    }

    /**
     * Caps how long one lease may be held in all, renewals included: when the cap is reached,
     * renewal stops and the critical section is cancelled with {@link LockLostException} ({@link
     * LockLostException.Reason#MAX_HOLD}). Unset by default (renewed for as long as held); {@code
     * null} unsets it. Allowed: 1 ms to 365 days.
     *
     * @param maxHoldTime the cap, or {@code null} for none
     * @return this builder
     */
    public Builder maxHoldTime(Duration maxHoldTime) {
      this.maxHoldTime = maxHoldTime;
      return this;
    }

    /**
     * Whether leases carry a fencing token unless a call says otherwise: a number that grows with
     * every holder of a resource, across all masters, for the protected resource to refuse writes
     * from an older holder. Costs a second round trip at acquisition. Default {@code false}.
     *
     * @param fencing whether to draw fencing tokens by default
     * @return this builder
     */
    public Builder fencing(boolean fencing) {
      this.fencing = fencing;
      return this;
    }

    /**
     * Where measurements go. For Micrometer: {@code
     * metrics(MicrometerRedlockMetrics.create(registry))} (with {@code micrometer-core} on the
     * class path). Default {@link RedlockMetrics#NONE}: nothing is recorded.
     *
     * @param metrics the receiver of measurements; not null (use {@link RedlockMetrics#NONE})
     * @return this builder
     */
    public Builder metrics(RedlockMetrics metrics) {
      this.metrics = metrics;
      return this;
    }

    /**
     * The restart guard: a master that started empty or lost its data (a crash without
     * persistence, {@code FLUSHALL}) may have forgotten locks it granted, so its "yes" votes are
     * not counted until this long after. The library recognises such a master by a marker key it
     * keeps on each master ({@code "\0redlock-boot"}, created by the first acquisition that finds
     * it missing; a master that has been up longer than the guard and shows no sign of lost data
     * in {@code INFO} counts at once, one up for less counts once it has been up this long). It
     * must cover the longest lease any client of these masters uses: calls with a longer lease
     * time are refused. Default: the lease time; {@link Duration#ZERO} turns the guard off (for
     * masters that persist every write with {@code appendfsync always}). Allowed: 0, or the lease
     * time up to 365 days.
     *
     * @param restartGuard the guard period, or {@code null} for the default
     * @return this builder
     */
    public Builder restartGuard(Duration restartGuard) {
      this.restartGuard = restartGuard;
      return this;
    }

    /**
     * Whether the masters push changes of held and waited-for keys ({@code CLIENT TRACKING ...
     * REDIRECT ... NOLOOP} on each master's connections, over RESP3). With it, keys deleted on a
     * quorum ({@code DEL}, {@code FLUSHALL}, an expiry) cancel the holder's block within a round
     * trip instead of at the next renewal, and a waiter looks again as soon as its key is gone
     * instead of at the holder's expiry or the next retry. It costs one push per change of a
     * tracked key and one read per renewal, nothing per held lock in between. A master that cannot
     * track works as without, said once in the log. Default {@code true}.
     *
     * @param keyTracking whether to ask the masters to push changes of tracked keys
     * @return this builder
     */
    public Builder keyTracking(boolean keyTracking) {
      this.keyTracking = keyTracking;
      return this;
    }

    /**
     * For masters with replicas (a Sentinel-managed primary, a primary with replicas you fail over
     * yourself, a Redis Cluster whose shards have replicas): a master's vote for an acquire or a
     * renewal counts only once this many of its replicas acknowledged the lock's keys ({@code WAIT}
     * after the script, within {@link #replicaAckTimeout(Duration)}; on a cluster master, on the
     * primary serving the lock's slot). A failover to an acknowledging replica then keeps the lock,
     * which asynchronous replication alone does not promise. It narrows the failover window, it
     * does not close it: a replica that acknowledged may still lose the write if it crashes before
     * persisting it, and {@code WAIT} does not make the write durable. A master with fewer
     * connected replicas refuses every vote, named in the failure. Costs a replication round trip
     * per acquire and renewal. Default 0 (off); allowed 0 to 16. The ACL user needs {@code +wait}.
     *
     * @param replicas the replicas that must acknowledge, or 0 to count votes without waiting
     * @return this builder
     */
    public Builder replicaAcks(int replicas) {
      this.replicaAcks = replicas;
      return this;
    }

    /**
     * How long a master waits for {@link #replicaAcks(int)} replicas; part of the master's answer,
     * so it must be shorter than the node timeout. Default: half the node timeout.
     *
     * @param timeout the bound on the wait, or {@code null} for the default
     * @return this builder
     */
    public Builder replicaAckTimeout(Duration timeout) {
      this.replicaAckTimeout = timeout;
      return this;
    }

    /**
     * Validates every setting and builds the configuration.
     *
     * @return the configuration
     * @throws IllegalArgumentException naming the first bad setting, what is allowed and the
     *     value given
     */
    public RedlockConfig build() {
      MasterChecks.masters(masters);
      MasterChecks.tls(masters, trustedCertificates, sslOptions);
      if (metrics == null) {
        throw new IllegalArgumentException(
            "metrics must not be null; use RedlockMetrics.NONE to record nothing");
      }
      Checks.leaseTime("leaseTime", leaseTime);
      Checks.waitTime("waitTime", waitTime);
      Checks.between("retryDelay", retryDelay, Duration.ofMillis(1), Duration.ofMinutes(1));
      if (!(driftFactor >= 0.0 && driftFactor <= 0.5)) {
        throw new IllegalArgumentException(
            "driftFactor must be between 0 and 0.5, but was " + driftFactor);
      }
      Checks.between("driftConstant", driftConstant, Duration.ZERO, Duration.ofMinutes(1));
      if (restartGuard != null) {
        Checks.between("restartGuard", restartGuard, Duration.ZERO, Duration.ofDays(365));
      }
      if (maxHoldTime != null) {
        Checks.between("maxHoldTime", maxHoldTime, Duration.ofMillis(1), Duration.ofDays(365));
      }
      RedlockConfig built = new RedlockConfig(this);
      Duration drift = ConfigInternals.driftFor(built, leaseTime);
      if (drift.compareTo(leaseTime) >= 0) {
        throw new IllegalArgumentException(
            "driftConstant + driftFactor * leaseTime must be less than leaseTime ("
                + Checks.show(leaseTime) + "), but was " + Checks.show(drift));
      }
      if (nodeTimeout != null) {
        Checks.nodeTimeout("nodeTimeout", nodeTimeout, "leaseTime", leaseTime);
      }
      Duration guard = built.restartGuard();
      if (!guard.isZero() && guard.compareTo(leaseTime) < 0) {
        throw new IllegalArgumentException(
            "restartGuard must be 0 (off) or at least leaseTime (" + Checks.show(leaseTime)
                + "): a master that restarted empty must stay out as long as a lock it granted"
                + " could live, but was " + Checks.show(guard));
      }
      if (replicaAcks < 0 || replicaAcks > 16) {
        throw new IllegalArgumentException(
            "replicaAcks must be between 0 (off) and 16 replicas, but was " + replicaAcks);
      }
      if (replicaAckTimeout != null) {
        if (replicaAcks == 0) {
          throw new IllegalArgumentException(
              "replicaAckTimeout was set to " + Checks.show(replicaAckTimeout)
                  + " but replicaAcks is 0 (off): set replicaAcks to the replicas that must"
                  + " acknowledge, or leave the timeout unset");
        }
        Duration nodeBound = built.nodeTimeout();
        if (replicaAckTimeout.compareTo(Duration.ofMillis(1)) < 0
            || replicaAckTimeout.compareTo(nodeBound) >= 0) {
          throw new IllegalArgumentException(
              "replicaAckTimeout must be at least 1ms and less than nodeTimeout ("
                  + Checks.show(nodeBound) + "), since the wait for replicas is part of a master's"
                  + " answer, but was " + Checks.show(replicaAckTimeout));
        }
      }
      if (keyPrefix == null || keyPrefix.length() > 256) {
        throw new IllegalArgumentException(
            "keyPrefix must be a string of at most 256 characters, but was "
                + (keyPrefix == null ? "null" : keyPrefix.length() + " characters long"));
      }
      if (keyPrefix.indexOf('\u0000') >= 0) {
        throw new IllegalArgumentException(
            "keyPrefix must not contain the NUL character (reserved for the library's own keys),"
                + " but did at index " + keyPrefix.indexOf('\u0000'));
      }
      return built;
    }
  }
}

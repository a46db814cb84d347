package dev.redlock.core;

import dev.redlock.core.internal.Checks;
import dev.redlock.core.internal.LockMath;
import io.lettuce.core.RedisURI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

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
 */
public final class RedlockConfig {
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

  private static final Duration MIN_NODE_TIMEOUT = Duration.ofMillis(20);

  private final List<String> masters;
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
  private final RedlockMetrics metrics;

  private RedlockConfig(Builder b) {
    this.masters = List.copyOf(b.masters);
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
    this.metrics = b.metrics;
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
   * The masters' URIs, as given (with their credentials, if any).
   *
   * @return an unmodifiable list with at least one entry
   */
  public List<String> masters() {
    return masters;
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
   * @return the explicit node timeout, or the default derived from {@link #leaseTime()}
   */
  public Duration nodeTimeout() {
    return nodeTimeoutFor(leaseTime);
  }

  /**
   * The per-master bound on one lock command for a given lease time: the explicit {@code
   * nodeTimeout} if one was set, else 5 % of the lease time, at least 20 ms, at most half the
   * lease time.
   *
   * @param lease the lease time of the call
   * @return the node timeout to use
   */
  public Duration nodeTimeoutFor(Duration lease) {
    if (nodeTimeout != null) {
      return nodeTimeout;
    }
    Duration derived = lease.dividedBy(20);
    if (derived.compareTo(MIN_NODE_TIMEOUT) < 0) {
      derived = MIN_NODE_TIMEOUT;
    }
    Duration half = lease.dividedBy(2);
    return derived.compareTo(half) > 0 ? half : derived;
  }

  /**
   * Whether a node timeout was set explicitly.
   *
   * @return {@code true} if {@link Builder#nodeTimeout(Duration)} was called
   */
  public boolean hasExplicitNodeTimeout() {
    return nodeTimeout != null;
  }

  /**
   * The clock drift allowance for a lease time: {@code lease * driftFactor + driftConstant}.
   *
   * @param lease the lease time
   * @return the drift allowance
   */
  public Duration driftFor(Duration lease) {
    return Duration.ofNanos(LockMath.driftNanos(lease.toNanos(), driftFactor, driftConstant.toNanos()));
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
    for (String m : masters) {
      shown.add(redact(m));
    }
    return "RedlockConfig{masters=" + shown + ", leaseTime=" + Checks.show(leaseTime)
        + ", waitTime=" + Checks.show(waitTime) + ", retryDelay=" + Checks.show(retryDelay)
        + ", driftFactor=" + driftFactor + ", driftConstant=" + Checks.show(driftConstant)
        + ", nodeTimeout=" + Checks.show(nodeTimeout()) + ", keyPrefix='" + keyPrefix + "'"
        + (maxHoldTime != null ? ", maxHoldTime=" + Checks.show(maxHoldTime) : "")
        + (fencing ? ", fencing=true" : "")
        + ", restartGuard=" + Checks.show(restartGuard())
        + (metrics != RedlockMetrics.NONE ? ", metrics=" + metrics : "") + "}";
  }

  /**
   * Replaces the password part of a Redis URI by {@code ***}.
   *
   * @param uri a Redis URI
   * @return the URI without its secret
   */
  static String redact(String uri) {
    int scheme = uri.indexOf("://");
    int at = uri.lastIndexOf('@');
    if (scheme < 0 || at < scheme) {
      return uri;
    }
    return uri.substring(0, scheme + 3) + "***" + uri.substring(at);
  }

  /**
   * Why a master URI did not parse, without its password: {@code " (reason)"}, or empty when the
   * reason cannot be shown safely.
   */
  private static String redactedReason(RuntimeException e, String uri) {
    String reason = e.getMessage();
    if (uri == null || uri.isBlank() || reason == null) {
      return "";
    }
    reason = reason.replace(uri, redact(uri));
    int scheme = uri.indexOf("://");
    int at = uri.lastIndexOf('@');
    if (scheme >= 0 && at > scheme + 3 && reason.contains(uri.substring(scheme + 3, at))) {
      return "";
    }
    return " (" + reason + ")";
  }

  /**
   * Builds a {@link RedlockConfig}. Not thread-safe; each setter replaces the previous value,
   * except {@link #master(String)}, which adds a master.
   */
  public static final class Builder {
    private final List<String> masters = new ArrayList<>();
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
    private String keyPrefix = DEFAULT_KEY_PREFIX;

    private Builder() {}

    /**
     * Adds one master, as a URI {@code redis://[[user]:password@]host[:port][/database]} or
     * {@code rediss://...} for TLS. Masters must be independent servers (not replicas of each
     * other); each may be given once.
     *
     * @param uri the master's URI
     * @return this builder
     */
    public Builder master(String uri) {
      masters.add(uri);
      return this;
    }

    /**
     * Replaces the masters by these. Use an odd count (1, 3, 5, ...): an even count tolerates
     * no more failures than the odd count below it.
     *
     * @param uris the masters' URIs, see {@link #master(String)}
     * @return this builder
     */
    public Builder masters(List<String> uris) {
      Objects.requireNonNull(uris, "masters must be a list of Redis URIs, but was null");
      masters.clear();
      masters.addAll(uris);
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
     * Sets the bound on one lock command on one master; a master that does not answer in time
     * counts as not acquired. Default: 5 % of the lease time, at least 20 ms, at most half the
     * lease time; allowed 1 ms up to (not including) the lease time.
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
     * it missing). Set it to at least the longest lease time any client uses. Default: the lease
     * time; {@link Duration#ZERO} turns the guard off (for masters that persist every write with
     * {@code appendfsync always}). Allowed: 0 to 365 days.
     *
     * @param restartGuard the guard period, or {@code null} for the default
     * @return this builder
     */
    public Builder restartGuard(Duration restartGuard) {
      this.restartGuard = restartGuard;
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
      checkMasters();
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
      Duration drift = built.driftFor(leaseTime);
      if (drift.compareTo(leaseTime) >= 0) {
        throw new IllegalArgumentException(
            "driftConstant + driftFactor * leaseTime must be less than leaseTime ("
                + Checks.show(leaseTime) + "), but was " + Checks.show(drift));
      }
      if (nodeTimeout != null
          && (nodeTimeout.compareTo(Duration.ofMillis(1)) < 0
              || nodeTimeout.compareTo(leaseTime) >= 0)) {
        // One message for both ends: "between 1ms and <leaseTime>" would claim leaseTime itself is allowed.
        throw new IllegalArgumentException(
            "nodeTimeout must be at least 1ms and less than leaseTime (" + Checks.show(leaseTime)
                + "), but was " + Checks.show(nodeTimeout));
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

    private void checkMasters() {
      if (masters.isEmpty()) {
        throw new IllegalArgumentException(
            "masters must list at least one Redis URI (redis://host:port), but was empty");
      }
      Map<String, Integer> seen = new HashMap<>();
      for (int i = 0; i < masters.size(); i++) {
        String uri = masters.get(i);
        RedisURI parsed;
        try {
          if (uri == null || uri.isBlank()) {
            throw new IllegalArgumentException("blank");
          }
          parsed = RedisURI.create(uri);
        } catch (RuntimeException e) {
          // Lettuce's exception quotes the URI with its password: keep only a redacted reason,
          // not the exception itself as the cause (a logged stack trace would print it).
          throw new IllegalArgumentException(
              "masters[" + i + "] must be a Redis URI like redis://host:6379 or"
                  + " rediss://:password@host:6380, but was '"
                  + (uri == null ? "null" : redact(uri)) + "'" + redactedReason(e, uri));
        }
        if (parsed.getSentinels() != null && !parsed.getSentinels().isEmpty()) {
          throw new IllegalArgumentException(
              "masters[" + i + "] must be a plain Redis master (redis:// or rediss://); "
                  + "Sentinel URIs are not supported yet, but was '" + redact(uri) + "'");
        }
        if (parsed.getSocket() == null && (parsed.getHost() == null || parsed.getHost().isEmpty())) {
          throw new IllegalArgumentException(
              "masters[" + i + "] must name a host, but was '" + redact(uri) + "'");
        }
        String server =
            parsed.getSocket() != null
                ? parsed.getSocket()
                : parsed.getHost().toLowerCase(Locale.ROOT) + ":" + parsed.getPort();
        Integer earlier = seen.putIfAbsent(server, i);
        if (earlier != null) {
          throw new IllegalArgumentException(
              "masters must be distinct servers, but masters[" + earlier + "] and masters["
                  + i + "] are both " + server
                  + " (one server counted twice would break the majority rule)");
        }
      }
    }
  }
}

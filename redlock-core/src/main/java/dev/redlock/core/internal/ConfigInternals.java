package dev.redlock.core.internal;

import dev.redlock.core.RedlockConfig;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * What the engine reads from a {@link RedlockConfig} that is not public API (how each master is
 * reached, the node timeout as given), and the timing the engine derives from a configuration
 * for one call's lease time. {@code RedlockConfig} installs the reader when its class is
 * initialised.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public final class ConfigInternals {
  /** The smallest node timeout derived from a lease time. */
  public static final Duration MIN_DERIVED_NODE_TIMEOUT = Duration.ofMillis(20);

  private static volatile Reader reader;

  private ConfigInternals() {}

  /** Reads what a configuration does not publish. */
  public interface Reader {
    /**
     * How each master is reached.
     *
     * @param config a built configuration
     * @return one spec per master, in order
     */
    List<MasterSpec> masters(RedlockConfig config);

    /**
     * The node timeout as it was set.
     *
     * @param config a built configuration
     * @return the explicit node timeout, or {@code null} when it is derived from the lease time
     */
    Duration explicitNodeTimeout(RedlockConfig config);
  }

  /**
   * Installs the reader; called once, by {@code RedlockConfig}.
   *
   * @param r reads a configuration's internals
   * @throws IllegalStateException if a reader is installed already
   */
  public static synchronized void install(Reader r) {
    if (reader != null) {
      throw new IllegalStateException("the RedlockConfig reader is installed already");
    }
    reader = Objects.requireNonNull(r, "reader");
  }

  /**
   * How each master of a configuration is reached, in the configuration's order.
   *
   * @param config a built configuration
   * @return one spec per master
   */
  public static List<MasterSpec> masters(RedlockConfig config) {
    // An instance exists, so RedlockConfig's class is initialised and the reader installed.
    return reader.masters(Objects.requireNonNull(config, "config"));
  }

  /**
   * The per-master bound on one lock command for a lease time: the explicit {@code nodeTimeout}
   * if one was set, else 5 % of the lease time, at least 20 ms, at most a third of the lease time.
   *
   * @param config a built configuration
   * @param lease the lease time of the call
   * @return the node timeout to use
   */
  public static Duration nodeTimeoutFor(RedlockConfig config, Duration lease) {
    Duration explicit = reader.explicitNodeTimeout(config);
    return explicit != null ? explicit : derivedNodeTimeout(lease);
  }

  /**
   * The node timeout derived from a lease time: 5 %, at least 20 ms, at most a third.
   *
   * @param lease the lease time
   * @return the derived node timeout
   */
  public static Duration derivedNodeTimeout(Duration lease) {
    Duration derived = lease.dividedBy(20);
    if (derived.compareTo(MIN_DERIVED_NODE_TIMEOUT) < 0) {
      derived = MIN_DERIVED_NODE_TIMEOUT;
    }
    Duration third = lease.dividedBy(3);
    return derived.compareTo(third) > 0 ? third : derived;
  }

  /**
   * Whether the node timeout was set explicitly (then a per-call lease must leave room for it).
   *
   * @param config a built configuration
   * @return {@code true} if {@code nodeTimeout} was set
   */
  public static boolean hasExplicitNodeTimeout(RedlockConfig config) {
    return reader.explicitNodeTimeout(config) != null;
  }

  /**
   * The clock drift allowance for a lease time: {@code lease * driftFactor + driftConstant}.
   *
   * @param config a built configuration
   * @param lease the lease time
   * @return the drift allowance
   */
  public static Duration driftFor(RedlockConfig config, Duration lease) {
    return Duration.ofNanos(
        LockMath.driftNanos(lease.toNanos(), config.driftFactor(), config.driftConstant().toNanos()));
  }
}

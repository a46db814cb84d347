package dev.redlock.spring.boot;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * The {@code redlock.*} properties: one per {@link dev.redlock.core.RedlockConfig} setting, with
 * the same defaults and the same validation (a bad value fails start-up with the library's
 * message, naming the property). What properties cannot express (Lettuce {@code SslOptions}, a
 * {@code RedisClient} of the application's) is set by a {@link RedlockConfigCustomizer} bean.
 */
@ConfigurationProperties("redlock")
public class RedlockProperties {

  /** Whether to create the Redlock beans at all. */
  private boolean enabled = true;

  /**
   * The masters, one Redis URI each: redis://[[user]:password@]host[:port][/database], rediss://
   * for TLS, or redis-sentinel://host:26379[,host2:26379]#masterId for a Sentinel-managed primary.
   * Independent servers, an odd number of them (1, 3, 5). When unset, the application's own
   * spring.data.redis server is the single master.
   */
  private List<String> masters = new ArrayList<>();

  /**
   * How long a lease lives on the masters unless renewed; held locks are renewed every third of
   * it. From 10ms to 1 day.
   */
  private Duration leaseTime = Duration.ofSeconds(10);

  /** How long a call waits for a lock before it fails; 0 makes one attempt. Up to 365 days. */
  private Duration waitTime = Duration.ofSeconds(10);

  /**
   * Base pause between attempts when no release notice arrives (jittered x0.5-1.5). From 1ms to 1
   * minute.
   */
  private Duration retryDelay = Duration.ofMillis(200);

  /** Share of the lease time subtracted from validity for clock drift. From 0 to 0.5. */
  private double driftFactor = 0.01;

  /** Constant part of the clock drift allowance. From 0 to 1 minute. */
  private Duration driftConstant = Duration.ofMillis(2);

  /**
   * Bound on one command on one master. Unset: 5% of the lease time, at least 20ms, at most a
   * third of it.
   */
  private Duration nodeTimeout;

  /** Prefix of every lock key: resource orders:42 is key redlock:orders:42. At most 256 characters. */
  private String keyPrefix = "redlock:";

  /** Whether leases carry a fencing token unless a call says otherwise (a second round trip). */
  private boolean fencing = false;

  /**
   * Whether the masters push changes of held and waited-for lock keys (CLIENT TRACKING over
   * RESP3): a lock deleted on a quorum is found lost at once, waiters wake when a key goes.
   */
  private boolean keyTracking = true;

  /**
   * Replicas of a master that must acknowledge a lock's keys (WAIT) before its vote counts; 0 is
   * off. For Sentinel-managed primaries or primaries with replicas: narrows the failover window.
   */
  private int replicaAcks = 0;

  /** How long a master waits for replica-acks replicas; less than the node timeout. Default: half of it. */
  private Duration replicaAckTimeout;

  /**
   * How long a master that started empty or lost its data does not vote. Unset: the lease time; 0
   * turns the guard off. Must be at least the longest lease any client of these masters uses
   * (ShedLock's lockAtMostFor included).
   */
  private Duration restartGuard;

  /** Hard cap on one hold, renewals included. Unset: no cap. From 1ms to 365 days. */
  private Duration maxHoldTime;

  /** PEM file of the certificates trusted for rediss:// masters. Unset: the JVM's trust store. */
  private Path trustedCertificates;

  /** Settings of the Spring Integration lock registry. */
  private final Integration integration = new Integration();

  /** Settings of the ShedLock lock provider. */
  private final Shedlock shedlock = new Shedlock();

  /**
   * Whether to create the Redlock beans.
   *
   * @return {@code true} unless {@code redlock.enabled=false}
   */
  public boolean isEnabled() {
    return enabled;
  }

  /**
   * Sets whether to create the Redlock beans.
   *
   * @param enabled whether to
   */
  public void setEnabled(boolean enabled) {
    this.enabled = enabled;
  }

  /**
   * The masters' URIs.
   *
   * @return the masters; empty when the spring.data.redis server is used
   */
  public List<String> getMasters() {
    return masters;
  }

  /**
   * Sets the masters' URIs.
   *
   * @param masters the URIs
   */
  public void setMasters(List<String> masters) {
    this.masters = masters;
  }

  /**
   * The lease time.
   *
   * @return the lease time
   */
  public Duration getLeaseTime() {
    return leaseTime;
  }

  /**
   * Sets the lease time.
   *
   * @param leaseTime the lease time
   */
  public void setLeaseTime(Duration leaseTime) {
    this.leaseTime = leaseTime;
  }

  /**
   * The wait time.
   *
   * @return the wait time
   */
  public Duration getWaitTime() {
    return waitTime;
  }

  /**
   * Sets the wait time.
   *
   * @param waitTime the wait time
   */
  public void setWaitTime(Duration waitTime) {
    this.waitTime = waitTime;
  }

  /**
   * The retry delay.
   *
   * @return the retry delay
   */
  public Duration getRetryDelay() {
    return retryDelay;
  }

  /**
   * Sets the retry delay.
   *
   * @param retryDelay the retry delay
   */
  public void setRetryDelay(Duration retryDelay) {
    this.retryDelay = retryDelay;
  }

  /**
   * The drift factor.
   *
   * @return the drift factor
   */
  public double getDriftFactor() {
    return driftFactor;
  }

  /**
   * Sets the drift factor.
   *
   * @param driftFactor the drift factor
   */
  public void setDriftFactor(double driftFactor) {
    this.driftFactor = driftFactor;
  }

  /**
   * The drift constant.
   *
   * @return the drift constant
   */
  public Duration getDriftConstant() {
    return driftConstant;
  }

  /**
   * Sets the drift constant.
   *
   * @param driftConstant the drift constant
   */
  public void setDriftConstant(Duration driftConstant) {
    this.driftConstant = driftConstant;
  }

  /**
   * The node timeout.
   *
   * @return the node timeout, or {@code null} for the default derived from the lease time
   */
  public Duration getNodeTimeout() {
    return nodeTimeout;
  }

  /**
   * Sets the node timeout.
   *
   * @param nodeTimeout the node timeout, or {@code null} for the default
   */
  public void setNodeTimeout(Duration nodeTimeout) {
    this.nodeTimeout = nodeTimeout;
  }

  /**
   * The key prefix.
   *
   * @return the key prefix
   */
  public String getKeyPrefix() {
    return keyPrefix;
  }

  /**
   * Sets the key prefix.
   *
   * @param keyPrefix the key prefix
   */
  public void setKeyPrefix(String keyPrefix) {
    this.keyPrefix = keyPrefix;
  }

  /**
   * Whether leases carry a fencing token by default.
   *
   * @return whether they do
   */
  public boolean isFencing() {
    return fencing;
  }

  /**
   * Sets whether leases carry a fencing token by default.
   *
   * @param fencing whether they do
   */
  public void setFencing(boolean fencing) {
    this.fencing = fencing;
  }

  /**
   * Whether the masters are asked to push changes of the lock keys this process holds or waits for.
   *
   * @return whether they are
   */
  public boolean isKeyTracking() {
    return keyTracking;
  }

  /**
   * Sets whether the masters are asked to push changes of the lock keys this process holds or
   * waits for.
   *
   * @param keyTracking whether they are
   */
  public void setKeyTracking(boolean keyTracking) {
    this.keyTracking = keyTracking;
  }

  /**
   * The replicas that must acknowledge a lock's keys before a master's vote counts.
   *
   * @return the number of replicas; 0 when off
   */
  public int getReplicaAcks() {
    return replicaAcks;
  }

  /**
   * Sets the replicas that must acknowledge a lock's keys before a master's vote counts.
   *
   * @param replicaAcks the number of replicas; 0 turns it off
   */
  public void setReplicaAcks(int replicaAcks) {
    this.replicaAcks = replicaAcks;
  }

  /**
   * How long a master waits for the replicas' acknowledgement.
   *
   * @return the bound, or {@code null} for the default
   */
  public Duration getReplicaAckTimeout() {
    return replicaAckTimeout;
  }

  /**
   * Sets how long a master waits for the replicas' acknowledgement.
   *
   * @param replicaAckTimeout the bound, or {@code null} for the default
   */
  public void setReplicaAckTimeout(Duration replicaAckTimeout) {
    this.replicaAckTimeout = replicaAckTimeout;
  }

  /**
   * The restart guard.
   *
   * @return the guard, or {@code null} for the default (the lease time)
   */
  public Duration getRestartGuard() {
    return restartGuard;
  }

  /**
   * Sets the restart guard.
   *
   * @param restartGuard the guard, or {@code null} for the default
   */
  public void setRestartGuard(Duration restartGuard) {
    this.restartGuard = restartGuard;
  }

  /**
   * The maximum hold time.
   *
   * @return the cap, or {@code null} for none
   */
  public Duration getMaxHoldTime() {
    return maxHoldTime;
  }

  /**
   * Sets the maximum hold time.
   *
   * @param maxHoldTime the cap, or {@code null} for none
   */
  public void setMaxHoldTime(Duration maxHoldTime) {
    this.maxHoldTime = maxHoldTime;
  }

  /**
   * The trusted certificates file.
   *
   * @return the PEM file, or {@code null}
   */
  public Path getTrustedCertificates() {
    return trustedCertificates;
  }

  /**
   * Sets the trusted certificates file.
   *
   * @param trustedCertificates the PEM file, or {@code null}
   */
  public void setTrustedCertificates(Path trustedCertificates) {
    this.trustedCertificates = trustedCertificates;
  }

  /**
   * The Spring Integration settings.
   *
   * @return the settings
   */
  public Integration getIntegration() {
    return integration;
  }

  /**
   * The ShedLock settings.
   *
   * @return the settings
   */
  public Shedlock getShedlock() {
    return shedlock;
  }

  /** The {@code redlock.integration.*} properties. */
  public static class Integration {
    /**
     * Resource prefix of the auto-configured LockRegistry's locks: key k is resource
     * registry-key:k.
     */
    private String registryKey = "lock-registry";

    /** Creates the settings with their defaults. */
    public Integration() {}

    /**
     * The registry key.
     *
     * @return the registry key
     */
    public String getRegistryKey() {
      return registryKey;
    }

    /**
     * Sets the registry key.
     *
     * @param registryKey the registry key
     */
    public void setRegistryKey(String registryKey) {
      this.registryKey = registryKey;
    }
  }

  /** The {@code redlock.shedlock.*} properties. */
  public static class Shedlock {
    /** Resource prefix of ShedLock's locks: the job lock named n is resource prefix + n. */
    private String prefix = "shedlock:";

    /** Creates the settings with their defaults. */
    public Shedlock() {}

    /**
     * The resource prefix.
     *
     * @return the prefix
     */
    public String getPrefix() {
      return prefix;
    }

    /**
     * Sets the resource prefix.
     *
     * @param prefix the prefix
     */
    public void setPrefix(String prefix) {
      this.prefix = prefix;
    }
  }
}

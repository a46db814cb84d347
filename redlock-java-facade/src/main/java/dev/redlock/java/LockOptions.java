package dev.redlock.java;

import dev.redlock.core.RedlockConfig;
import dev.redlock.core.internal.Checks;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Executor;

/**
 * What to lock and how: the resources, and per-call overrides of the lease time, the wait time,
 * automatic renewal and the executor that runs callbacks.
 *
 * <p>Immutable and thread-safe; build one with {@link #builder(String, String...)}, or take the
 * defaults with {@link #of(String, String...)}. {@link Builder#build()} validates every setting
 * and throws {@link IllegalArgumentException} naming the setting, the allowed range and the value
 * given. A setting left unset falls back to the {@link RedlockConfig} (lease and wait time) or the
 * {@link AsyncRedlock} (executor).
 *
 * <pre>{@code
 * LockOptions options = LockOptions.builder("account:1", "account:2")
 *     .leaseTime(Duration.ofSeconds(5))
 *     .waitTime(Duration.ofSeconds(1))
 *     .build();
 * }</pre>
 *
 * <p>A lock on several resources is one lock: it is held when a majority of the masters hold
 * every one of its keys, and it is acquired and released as a whole.
 */
public final class LockOptions {
  private final List<String> resources;
  private final Duration leaseTime;
  private final Duration waitTime;
  private final boolean autoRenew;
  private final Boolean fencing;
  private final boolean writerPriority;
  private final Executor executor;

  private LockOptions(Builder b) {
    this.resources = List.copyOf(b.resources);
    this.leaseTime = b.leaseTime;
    this.waitTime = b.waitTime;
    this.autoRenew = b.autoRenew;
    this.fencing = b.fencing;
    this.writerPriority = b.writerPriority;
    this.executor = b.executor;
  }

  /**
   * For a write lock: whether a writer kept out only by readers stops new readers from entering
   * until it gets in (so that a stream of readers cannot starve it). Ignored by other locks.
   *
   * @return the choice; default {@code true}
   */
  public boolean writerPriority() {
    return writerPriority;
  }

  /**
   * Whether the lease carries a fencing token ({@link LockLease#fencingToken()}), if set for this
   * call.
   *
   * @return the choice, or empty to follow {@code RedlockConfig.fencing()}
   */
  public java.util.Optional<Boolean> fencing() {
    return java.util.Optional.ofNullable(fencing);
  }

  /**
   * Options for a lock on these resources, with every other setting at its default.
   *
   * @param resource the (first) resource to lock
   * @param moreResources further resources, locked together with the first as one lock
   * @return the options
   * @throws IllegalArgumentException if a resource is empty, longer than 1024 characters, or
   *     named twice
   */
  public static LockOptions of(String resource, String... moreResources) {
    return builder(resource, moreResources).build();
  }

  /**
   * Starts a builder for a lock on these resources.
   *
   * @param resource the (first) resource to lock
   * @param moreResources further resources, locked together with the first as one lock
   * @return a new builder; the resources are checked by {@link Builder#build()}
   */
  public static Builder builder(String resource, String... moreResources) {
    List<String> all = new ArrayList<>();
    all.add(resource);
    if (moreResources != null) {
      all.addAll(Arrays.asList(moreResources));
    }
    return new Builder(all);
  }

  /**
   * Starts a builder for a lock on a list of resources.
   *
   * @param resources the resources to lock together as one lock, at least one
   * @return a new builder; the resources are checked by {@link Builder#build()}
   * @throws NullPointerException if {@code resources} is {@code null}
   */
  public static Builder builder(List<String> resources) {
    Objects.requireNonNull(resources, "resources must be a list of resource names, but was null");
    return new Builder(new ArrayList<>(resources));
  }

  /**
   * A builder holding these options, to derive other options from them.
   *
   * @return a new builder with every setting of these options
   */
  public Builder toBuilder() {
    Builder b = new Builder(new ArrayList<>(resources));
    b.leaseTime = leaseTime;
    b.leaseTimeSet = leaseTime != null;
    b.waitTime = waitTime;
    b.waitTimeSet = waitTime != null;
    b.autoRenew = autoRenew;
    b.fencing = fencing;
    b.writerPriority = writerPriority;
    b.executor = executor;
    return b;
  }

  /**
   * The resources to lock, in the order given.
   *
   * @return an unmodifiable list with at least one entry
   */
  public List<String> resources() {
    return resources;
  }

  /**
   * How long the lease lasts on the masters unless renewed.
   *
   * @return the lease time, or empty to use the config's {@link RedlockConfig#leaseTime()}
   */
  public Optional<Duration> leaseTime() {
    return Optional.ofNullable(leaseTime);
  }

  /**
   * How long to wait for the lock before failing with {@link
   * dev.redlock.core.LockNotAcquiredException}. Ignored by {@code tryAcquire}, which makes one
   * attempt.
   *
   * @return the wait time, or empty to use the config's {@link RedlockConfig#waitTime()}
   */
  public Optional<Duration> waitTime() {
    return Optional.ofNullable(waitTime);
  }

  /**
   * Whether the lease is renewed in the background every third of its lease time: for {@code
   * withLock}, while the action's stage is incomplete; for {@code acquire}, until the lease is
   * released or closed.
   *
   * @return {@code true} unless {@link Builder#autoRenew(boolean)} turned it off
   */
  public boolean autoRenew() {
    return autoRenew;
  }

  /**
   * The executor that runs the action of {@code withLock} and completes the futures of this call
   * and of its lease.
   *
   * @return the executor, or empty to use the {@link AsyncRedlock}'s
   */
  public Optional<Executor> executor() {
    return Optional.ofNullable(executor);
  }

  /**
   * Options are equal when all their settings are equal (executors by identity).
   *
   * @param o the other object
   * @return whether {@code o} holds the same settings
   */
  @Override
  public boolean equals(Object o) {
    if (this == o) {
      return true;
    }
    if (!(o instanceof LockOptions)) {
      return false;
    }
    LockOptions other = (LockOptions) o;
    return autoRenew == other.autoRenew
        && writerPriority == other.writerPriority
        && Objects.equals(fencing, other.fencing)
        && resources.equals(other.resources)
        && Objects.equals(leaseTime, other.leaseTime)
        && Objects.equals(waitTime, other.waitTime)
        && executor == other.executor;
  }

  /**
   * A hash code consistent with {@link #equals(Object)}.
   *
   * @return the hash code
   */
  @Override
  public int hashCode() {
    return Objects.hash(
        resources, leaseTime, waitTime, autoRenew, fencing, writerPriority,
        System.identityHashCode(executor));
  }

  /**
   * Shows the settings; unset ones show as {@code default}.
   *
   * @return a one-line description
   */
  @Override
  public String toString() {
    return "LockOptions{resources=" + resources
        + ", leaseTime=" + (leaseTime == null ? "default" : Checks.show(leaseTime))
        + ", waitTime=" + (waitTime == null ? "default" : Checks.show(waitTime))
        + ", autoRenew=" + autoRenew
        + ", fencing=" + (fencing == null ? "default" : fencing)
        + ", writerPriority=" + writerPriority
        + ", executor=" + (executor == null ? "default" : executor) + "}";
  }

  /**
   * Builds {@link LockOptions}. Not thread-safe; each setter replaces the previous value.
   */
  public static final class Builder {
    private List<String> resources;
    private Duration leaseTime;
    private Duration waitTime;
    private boolean autoRenew = true;
    private Boolean fencing;
    private boolean writerPriority = true;
    private Executor executor;
    private boolean leaseTimeSet;
    private boolean waitTimeSet;

    private Builder(List<String> resources) {
      this.resources = resources;
    }

    /**
     * Replaces the resources to lock.
     *
     * @param resources the resources, locked together as one lock; at least one
     * @return this builder
     * @throws NullPointerException if {@code resources} is {@code null}
     */
    public Builder resources(List<String> resources) {
      Objects.requireNonNull(resources, "resources must be a list of resource names, but was null");
      this.resources = new ArrayList<>(resources);
      return this;
    }

    /**
     * Sets how long the lease lasts on the masters unless renewed; renewals happen every third
     * of it. Default: the config's lease time; allowed 10 ms to 1 day, and longer than the
     * config's node timeout.
     *
     * @param leaseTime the lease time
     * @return this builder
     */
    public Builder leaseTime(Duration leaseTime) {
      this.leaseTime = leaseTime;
      this.leaseTimeSet = true;
      return this;
    }

    /**
     * Sets how long {@code withLock} and {@code acquire} wait for the lock. Default: the config's
     * wait time; allowed 0 (one attempt) to 365 days.
     *
     * @param waitTime the wait time
     * @return this builder
     */
    public Builder waitTime(Duration waitTime) {
      this.waitTime = waitTime;
      this.waitTimeSet = true;
      return this;
    }

    /**
     * Sets whether the lease is renewed in the background. Default {@code true}.
     *
     * <p>Without renewal the lease simply runs out after its lease time: a {@code withLock} whose
     * action takes longer fails with {@link dev.redlock.core.LockLostException} (and its action's
     * stage is cancelled), and a lease from {@code acquire} is lost unless {@link
     * LockLease#extend()} is called in time.
     *
     * @param autoRenew whether to renew automatically
     * @return this builder
     */
    public Builder autoRenew(boolean autoRenew) {
      this.autoRenew = autoRenew;
      return this;
    }

    /**
     * Whether the lease carries a fencing token ({@link LockLease#fencingToken()}): a number that
     * grows with every holder of a resource, across all masters. Costs a second round trip at
     * acquisition. Default: {@code RedlockConfig.fencing()}.
     *
     * @param fencing whether to draw a fencing token
     * @return this builder
     */
    public Builder fencing(boolean fencing) {
      this.fencing = fencing;
      return this;
    }

    /**
     * For a write lock: whether a writer kept out only by readers leaves a mark that stops new
     * readers from entering until it gets in, gives up, or the mark expires after its lease time.
     * Default {@code true}; ignored by other locks.
     *
     * @param writerPriority whether a waiting writer keeps new readers out
     * @return this builder
     */
    public Builder writerPriority(boolean writerPriority) {
      this.writerPriority = writerPriority;
      return this;
    }

    /**
     * Sets the executor that runs the action of {@code withLock} and completes the futures of the
     * call and of its lease. Default: the {@link AsyncRedlock}'s executor. Pass {@code
     * Runnable::run} to run callbacks on the library's own threads; they must then be quick and
     * never block.
     *
     * @param executor the executor
     * @return this builder
     * @throws NullPointerException if {@code executor} is {@code null}
     */
    public Builder executor(Executor executor) {
      this.executor =
          Objects.requireNonNull(executor, "executor must be an Executor, but was null");
      return this;
    }

    /**
     * Validates every setting and builds the options.
     *
     * @return the options
     * @throws IllegalArgumentException naming the first bad setting, what is allowed and the
     *     value given
     */
    public LockOptions build() {
      Checks.resources(resources);
      if (leaseTimeSet) {
        Checks.leaseTime("leaseTime", leaseTime);
      }
      if (waitTimeSet) {
        Checks.waitTime("waitTime", waitTime);
      }
      return new LockOptions(this);
    }
  }
}

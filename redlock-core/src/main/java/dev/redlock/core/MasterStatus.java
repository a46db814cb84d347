package dev.redlock.core;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * What a Redlock knows of one of its masters: whether it answers, whether its votes count, and why
 * not. For health checks and dashboards; see {@code Redlock.checkMasters} (Kotlin) and {@code
 * AsyncRedlock.checkMasters} (Java).
 *
 * <p>Immutable.
 */
public final class MasterStatus {
  /** Where a master stands. */
  public enum State {
    /** It answered, and its votes count. */
    UP,
    /** It did not answer (or answered with an error): see {@link #failure()}. */
    DOWN,
    /**
     * It answers, but started empty or lost its data less than the restart guard ago: its votes do
     * not count until {@link #guardedFor()} has passed. On a Redis Cluster master: one of its shard
     * primaries did, and the votes of that primary's hash slots do not count; the other shards'
     * votes do.
     */
    RESTART_GUARDED,
    /** It is the same server as an earlier master of the configuration: its votes count once, there. */
    DUPLICATE
  }

  private final String master;
  private final State state;
  private final Duration guardedFor;
  private final MasterFailureException failure;

  /**
   * Creates a status.
   *
   * @param master the master as {@code host:port} (never with its password)
   * @param state where it stands
   * @param guardedFor how much longer its votes do not count ({@link Duration#ZERO} unless {@link
   *     State#RESTART_GUARDED})
   * @param failure why it is {@link State#DOWN} or {@link State#DUPLICATE}, or {@code null}
   */
  public MasterStatus(String master, State state, Duration guardedFor, MasterFailureException failure) {
    this.master = Objects.requireNonNull(master, "master");
    this.state = Objects.requireNonNull(state, "state");
    this.guardedFor = Objects.requireNonNull(guardedFor, "guardedFor");
    this.failure = failure;
  }

  /**
   * The master as {@code host:port}, or {@code masterId via sentinels}.
   *
   * @return its name, without credentials
   */
  public String master() {
    return master;
  }

  /**
   * Where it stands.
   *
   * @return the state
   */
  public State state() {
    return state;
  }

  /**
   * How much longer the restart guard keeps its votes out.
   *
   * @return zero unless {@link State#RESTART_GUARDED}
   */
  public Duration guardedFor() {
    return guardedFor;
  }

  /**
   * Why it is down (or a duplicate).
   *
   * @return the failure, or empty when it is up
   */
  public Optional<MasterFailureException> failure() {
    return Optional.ofNullable(failure);
  }

  /**
   * Whether its votes count now.
   *
   * @return {@code true} for {@link State#UP}
   */
  public boolean counts() {
    return state == State.UP;
  }

  /**
   * Describes the status for logs: the master, its state, and why.
   *
   * @return a one-line description
   */
  @Override
  public String toString() {
    return master + " " + state
        + (state == State.RESTART_GUARDED ? " for " + dev.redlock.core.internal.Checks.show(guardedFor) : "")
        + (failure != null ? " (" + failure.getMessage() + ")" : "");
  }
}

package dev.redlock.core.internal;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * One master as the lock engine sees it: the three lock scripts, each call bounded by a timeout
 * and failing with {@link dev.redlock.core.MasterFailureException}.
 *
 * <p>{@link RedisNode} is the implementation; the interface is the seam through which the
 * engine's scheduling can also be exercised on virtual time. Implementations must execute calls
 * on one node in the order they were issued.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public interface LockNode extends AutoCloseable {
  /**
   * The master as {@code host:port}, without credentials.
   *
   * @return the name used in messages
   */
  String name();

  /**
   * Connects and loads the scripts ahead of the first lock.
   *
   * @param timeout the bound on the call
   * @return a future completing when ready
   */
  CompletableFuture<Void> warmUp(Duration timeout);

  /**
   * Runs the acquire script for the keys of one lease (all or nothing).
   *
   * @param keys the lock keys, followed (with fencing) by the fencing counter of each resource
   * @param fencing whether to draw a fencing number (then {@code keys} has twice the lock keys)
   * @param guard whether to report the age of the master's boot marker (the restart guard)
   * @param token the holder's token
   * @param leaseMillis the lease time
   * @param timeout the bound on the call
   * @return the master's answer
   */
  CompletableFuture<AcquireReply> acquire(
      String[] keys, boolean fencing, boolean guard, String token, long leaseMillis,
      Duration timeout);

  /**
   * Runs the fence script: confirms a fencing number where the lease is still held.
   *
   * @param keys the lock keys followed by the fencing counter of each resource
   * @param token the holder's token
   * @param fence the fencing number
   * @param timeout the bound on the call
   * @return whether this master still held the lease (and now has counters at least {@code fence})
   */
  CompletableFuture<Boolean> confirmFence(String[] keys, String token, long fence, Duration timeout);

  /**
   * Runs the extend script for one or several leases.
   *
   * @param keys the keys of all leases, lease after lease
   * @param leaseArgs per lease its key count and token, flattened
   * @param leaseMillis the new lease time, from now
   * @param timeout the bound on the call
   * @return per lease whether it was still held (and was extended)
   */
  CompletableFuture<boolean[]> extend(
      String[] keys, String[] leaseArgs, long leaseMillis, Duration timeout);

  /**
   * Runs the release script for one lease: compare-and-delete, and a release notice carrying
   * {@code releaseId} on the channel of each deleted key.
   *
   * @param keys the lock keys
   * @param token the holder's token
   * @param releaseId the notice published for each deleted key (never the token); empty to
   *     announce nothing
   * @param timeout the bound on the call
   * @return how many keys were deleted
   */
  CompletableFuture<Long> release(String[] keys, String token, String releaseId, Duration timeout);

  /**
   * Runs an acquire script of another lock kind (reader-writer lock, semaphore). Its reply has the
   * shape of the mutex's, {@code {granted, pttl, fence, bootAge}}, optionally followed by the
   * permits other holders use when they disagree with ours.
   *
   * @param script the acquire script
   * @param keys its keys (the boot marker is appended when {@code guard})
   * @param guard whether to report the age of the master's boot marker; the script's last argument
   * @param token the holder's token, the script's first argument
   * @param args the script's arguments after the token, before the guard flag
   * @param timeout the bound on the call
   * @return the master's answer
   */
  default CompletableFuture<AcquireReply> acquire(
      Script script, String[] keys, boolean guard, String token, String[] args, Duration timeout) {
    return CompletableFuture.failedFuture(
        new UnsupportedOperationException(name() + " runs only the mutex's scripts"));
  }

  /**
   * Runs an extend script of another lock kind, with the argument layout of {@link #extend}.
   *
   * @param script the extend script
   * @param keys the keys of all leases, lease after lease
   * @param leaseArgs per lease its key count and token, flattened
   * @param leaseMillis the new lease time, from now
   * @param timeout the bound on the call
   * @return per lease whether it was still held (and was extended)
   */
  default CompletableFuture<boolean[]> extend(
      Script script, String[] keys, String[] leaseArgs, long leaseMillis, Duration timeout) {
    return CompletableFuture.failedFuture(
        new UnsupportedOperationException(name() + " runs only the mutex's scripts"));
  }

  /**
   * Runs the release script of another lock kind: like {@link #release}, with the notice published
   * once, on the channel of {@code noticeKey}.
   *
   * @param keys the keys of the lease
   * @param modes per key how it holds the lease (see {@code shared_release.lua})
   * @param noticeKey the key whose channel the waiters of the resource listen to
   * @param token the holder's token
   * @param releaseId the notice (never the token); empty to announce nothing
   * @param timeout the bound on the call
   * @return how many keys or members were removed
   */
  default CompletableFuture<Long> releaseShared(
      String[] keys, String[] modes, String noticeKey, String token, String releaseId,
      Duration timeout) {
    return CompletableFuture.failedFuture(
        new UnsupportedOperationException(name() + " runs only the mutex's scripts"));
  }

  /**
   * Sets the one listener that receives the release notices of the keys this node {@link #watch
   * watches}. Called on the client's I/O threads: it must not block.
   *
   * @param listener receives the lock key and the notice
   */
  void onRelease(ReleaseListener listener);

  /**
   * Subscribes to the release notices of a lock key (on a connection of its own, opened on
   * first use). The caller counts references: one watch per key, until {@link #unwatch}.
   *
   * @param key the lock key
   * @param timeout the bound on the call
   * @return a future completing once the subscription is active
   */
  CompletableFuture<Void> watch(String key, Duration timeout);

  /**
   * Ends the subscription to a key's release notices. Watches and unwatches take effect in the
   * order they were called.
   *
   * @param key the lock key
   * @param timeout the bound on the call
   * @return a future completing once the subscription is gone
   */
  CompletableFuture<Void> unwatch(String key, Duration timeout);

  /** Receives release notices; see {@link #onRelease}. */
  @FunctionalInterface
  interface ReleaseListener {
    /**
     * A lease holding {@code key} released it on this node.
     *
     * @param key the lock key
     * @param releaseId the notice the release script published
     */
    void released(String key, String releaseId);
  }

  /** Closes the node's connection; later calls fail. */
  @Override
  void close();
}

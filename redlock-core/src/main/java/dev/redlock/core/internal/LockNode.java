package dev.redlock.core.internal;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * One master as the lock engine sees it: the lock scripts of every kind of lock, each call bounded
 * by a timeout and failing with {@link dev.redlock.core.MasterFailureException}.
 *
 * <p>The seam is the same for every kind of lock (mutex, reader-writer, semaphore): the engine
 * passes the kind's script, keys and arguments; the node runs them and parses the replies, whose
 * shapes are shared by all kinds (see {@link AcquireReply}). {@link RedisNode} is the
 * implementation; the interface is also the seam through which the engine's scheduling is
 * exercised on virtual time.
 *
 * <p>Rules every implementation keeps: calls on one node are executed in the order they were
 * issued; every call completes within its timeout counted from the call; a release of a token
 * supersedes every earlier acquire of that token on the node (an acquire not yet run, for example
 * one waiting for its script to be reloaded, is then never run after the release).
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
   * The identity of the server behind this node (its {@code run_id}), once a connection has told
   * it; {@code null} while unknown. Two nodes with the same identity are the same server.
   *
   * @return the server's run id, or {@code null}
   */
  String serverId();

  /**
   * Whether this master is a Redis Cluster: its keys are written with hash tags ({@link
   * Keys#onCluster}), the keys of one script call must share a slot, and the engine renews leases
   * of different slots in separate calls.
   *
   * @return {@code true} for a cluster master; {@code false} by default
   */
  default boolean cluster() {
    return false;
  }

  /**
   * Whether {@link #acquire} runs {@link Script#HANDOFF}, which hands a lease's keys from its holder
   * to a waiter of the same process in one call instead of a release and an acquire. The engine
   * offers that script only to masters that all say so.
   *
   * @return {@code true} for the Redis nodes; {@code false} by default (a node that decodes the
   *     engine's script calls and does not know this one is never given it)
   */
  default boolean handsOff() {
    return false;
  }

  /**
   * Closes the node's connections and waits (bounded) until they are closed. Must not be called on
   * one of the client's I/O threads.
   *
   * @param timeout how long to wait at most
   */
  default void closeAndWait(Duration timeout) {
    close();
  }

  /**
   * Connects and loads the scripts ahead of the first lock.
   *
   * @param timeout the bound on the call
   * @return a future completing when ready
   */
  CompletableFuture<Void> warmUp(Duration timeout);

  /**
   * Runs an acquire script: {@code {granted, pttl, fence, bootAge[, otherPermits]}} (see {@link
   * AcquireReply}).
   *
   * @param script the kind's acquire script
   * @param keys its keys
   * @param args its arguments; {@code args[0]} is the holder's token
   * @param timeout the bound on the call
   * @return the master's answer
   */
  CompletableFuture<AcquireReply> acquire(Script script, String[] keys, String[] args, Duration timeout);

  /**
   * Runs an extend script for one or several leases: one answer per lease, whether it was still
   * held (and was extended).
   *
   * @param script the kind's extend script
   * @param keys the keys of all leases, lease after lease
   * @param args the lease time, then per lease its key count and token
   * @param timeout the bound on the call
   * @return per lease whether it was still held
   */
  CompletableFuture<boolean[]> extend(Script script, String[] keys, String[] args, Duration timeout);

  /**
   * Runs a release script: deletes what the token holds and supersedes every earlier acquire of
   * the token on this node. Sent even when its caller stopped waiting for it.
   *
   * @param script the kind's release script
   * @param keys its keys
   * @param args its arguments; {@code args[0]} is the holder's token
   * @param timeout the bound on the call
   * @return how many keys or members were removed
   */
  CompletableFuture<Long> release(Script script, String[] keys, String[] args, Duration timeout);

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
   * Asks the master how old its data is (its boot marker, or the age the next acquire would give
   * it), creating nothing: a health check that also tells whether the restart guard holds its votes.
   *
   * @param timeout the bound on the call
   * @return the age in milliseconds
   */
  CompletableFuture<Long> probe(Duration timeout);

  /**
   * Sets the one listener that receives the release notices of the keys this node {@link #watch
   * watches}. Called on the client's I/O threads: it must not block.
   *
   * @param listener receives the key and the notice
   */
  void onRelease(ReleaseListener listener);

  /**
   * Subscribes to the release notices of a key (on a connection of its own, opened on first use).
   * The caller counts references: one watch per key, until {@link #unwatch}.
   *
   * @param key the key waiters listen to
   * @param timeout the bound on the call
   * @return a future completing once the subscription is active
   */
  CompletableFuture<Void> watch(String key, Duration timeout);

  /**
   * Ends the subscription to a key's release notices. Watches and unwatches take effect in the
   * order they were called.
   *
   * @param key the key
   * @param timeout the bound on the call
   * @return a future completing once the subscription is gone
   */
  CompletableFuture<Void> unwatch(String key, Duration timeout);

  /**
   * Sets the one listener that hears what the master pushes about the keys this node's scripts
   * read (server-assisted client-side caching, {@code CLIENT TRACKING}) and about its connection.
   * Called on the client's I/O threads: it must not block.
   *
   * @param listener receives invalidations and connection changes
   */
  void onTracking(TrackingListener listener);

  /**
   * Whether the master currently pushes invalidations of the keys this node's scripts read.
   *
   * @return {@code false} while tracking is being set up, after the connection dropped, or where
   *     the server, its ACL or the connection's protocol does not allow it
   */
  boolean tracking();

  /**
   * Whether the connection for commands is open now.
   *
   * @return {@code false} before it opened, and while it is reconnecting
   */
  boolean connected();

  /** Hears what the master pushes about tracked keys and about the connection; see {@link #onTracking}. */
  interface TrackingListener {
    /**
     * The server says these keys changed (written by another client, deleted, expired, evicted);
     * {@code null} when it may have lost track of any key this node read (tracking was just set up
     * again, or the server flushed its table): treat every key as changed.
     *
     * @param keys the keys, or {@code null} for all
     */
    void invalidated(java.util.List<String> keys);

    /** The connection for commands dropped; the master may be gone. */
    void disconnected();

    /**
     * Tracking could not be set up on this master (refused, not supported): the reason, once per
     * connection, for a log line.
     *
     * @param reason why
     */
    void unavailable(String reason);
  }

  /** Receives release notices; see {@link #onRelease}. */
  @FunctionalInterface
  interface ReleaseListener {
    /**
     * A lease holding {@code key} released it on this node.
     *
     * @param key the key
     * @param releaseId the notice the release script published
     */
    void released(String key, String releaseId);
  }

  /** Closes the node's connections; later calls fail. Never blocks. */
  @Override
  void close();
}

@file:JvmName("BackendLocks")

package dev.redlock.coroutines.spi

import dev.redlock.core.RedlockConfig
import dev.redlock.core.RedlockMetrics
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.internal.Engine
import dev.redlock.coroutines.internal.EngineLocks
import dev.redlock.coroutines.internal.EngineThreads
import java.time.Duration
import kotlin.random.Random
import kotlin.time.TimeSource

/**
 * The engine settings of a backend's locks, validated when constructed: a bad value throws
 * [IllegalArgumentException] naming the setting, the value and the allowed range (the same rules
 * and messages as `RedlockConfig.Builder.build()`). Backend modules build one in their own public
 * config builder's `build()`.
 *
 * @property leaseTime the default lease time (default 10 s, as Redlock's)
 * @property waitTime the default wait time (default 10 s)
 * @property retryDelay the pause between attempts when no release notice comes, jittered between
 *   half and one and a half times (default 200 ms); it is how fast a waiter notices a release by
 *   another process when the backend delivers no notices across processes
 * @property nodeTimeout the bound on each operation of the node, or null for the default (5 % of
 *   the lease time, at least 20 ms); when set, every lease time must be at least three times it
 * @property fencing whether mutexes and write locks carry a fencing token unless a call says
 *   otherwise (default false)
 * @property keyPrefix put in front of every resource name to make its lock key (default
 *   `redlock:`; at most 256 characters, no NUL)
 * @property metrics where measurements go (default none)
 * @suppress Internal API (backend SPI): hidden from the API documentation.
 */
@InternalRedlockApi
public class BackendSettings(
    public val leaseTime: Duration = RedlockConfig.DEFAULT_LEASE_TIME,
    public val waitTime: Duration = RedlockConfig.DEFAULT_WAIT_TIME,
    public val retryDelay: Duration = RedlockConfig.DEFAULT_RETRY_DELAY,
    public val nodeTimeout: Duration? = null,
    public val fencing: Boolean = false,
    public val keyPrefix: String = RedlockConfig.DEFAULT_KEY_PREFIX,
    public val metrics: RedlockMetrics = RedlockMetrics.NONE,
) {
    /**
     * The engine's configuration: these settings, the restart guard off (a backend has none), key
     * tracking on (it carries the node's [BackendNode.holdsLost] reports), and a placeholder master that is never contacted (the engine runs over
     * the backend's node instead).
     */
    internal val config: RedlockConfig = RedlockConfig.builder()
        .master(PLACEHOLDER_MASTER)
        .leaseTime(leaseTime)
        .waitTime(waitTime)
        .retryDelay(retryDelay)
        .nodeTimeout(nodeTimeout)
        .fencing(fencing)
        .keyPrefix(keyPrefix)
        .metrics(metrics)
        .restartGuard(Duration.ZERO)
        .keyTracking(true)
        .build()

    /** Describes the settings for logs. */
    override fun toString(): String =
        "BackendSettings(leaseTime=$leaseTime, waitTime=$waitTime, retryDelay=$retryDelay, nodeTimeout=${nodeTimeout ?: "derived"}, " +
            "fencing=$fencing, keyPrefix='$keyPrefix')"

    private companion object {
        const val PLACEHOLDER_MASTER = "redis://backend.invalid:6379"
    }
}

/**
 * Creates [DistributedLocks] over one backend [node], running the same engine as a Redlock over
 * one master (quorum 1): acquire attempts and their clean-up, waiting (release notices of this
 * process at once, other processes' by the node's [BackendNode.watchReleases] where it delivers
 * them, else by the jittered retry delay), validity on [timeSource], renewal every third of the
 * lease time, loss cancelling the critical section, release on every exit path, close.
 *
 * The locks own the node: closing them releases what is held, then closes the node. The engine's
 * own threads (a timer and a small work pool) are created here and stopped by `close()`. The node
 * starts opening its store in the background ([BackendNode.openStore]); a backend that wants a
 * bad store refused at once checks it before calling this.
 *
 * @param node the backend's node; owned by the result from now on
 * @param settings the validated engine settings
 * @param timeSource the monotonic clock that measures validity
 * @return the locks
 * @suppress Internal API (backend SPI): hidden from the API documentation.
 */
@InternalRedlockApi
public fun distributedLocks(
    node: BackendNode,
    settings: BackendSettings,
    timeSource: TimeSource.WithComparableMarks = TimeSource.Monotonic,
): DistributedLocks {
    val threads = EngineThreads()
    try {
        val engine = Engine(settings.config, listOf(node), timeSource, Random.Default, null, threads,
            threads.timerDispatcher, threads.workDispatcher, threads.workExecutor)
        return EngineLocks(engine)
    } catch (e: Throwable) {
        threads.close()
        node.close()
        throw e
    }
}

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.MasterStatus
import dev.redlock.core.RedlockClosedException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.LockNode
import dev.redlock.coroutines.internal.Engine
import kotlin.random.Random
import kotlin.time.TimeSource
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.asExecutor

/**
 * A Redlock over the masters of a [RedlockConfig]: the entry point for [withRedlock], [acquire]
 * and [tryAcquire], and for the reader-writer locks and semaphores ([withReadLock],
 * [withWriteLock], [withPermit]).
 *
 * A lock on one or several resources is held when a majority of the masters hold all of its keys
 * with this holder's token; see the README for the guarantees and the assumptions they rest on.
 *
 * One `Redlock` is meant to be shared by the whole application: it owns one Lettuce client, one
 * connection per master (and one for release notices) and two small threads of its own (a timer
 * that enforces every deadline, and a work pool), is thread-safe, and is cheap to use from any
 * number of coroutines. Creating it does not fail when masters are unreachable (a lock only needs a
 * majority); it starts connecting in the background. [close] it when the application stops.
 *
 * Your code is never resumed on the Redis client's I/O threads: a call from a coroutine without a
 * dispatcher of its own (such as `suspend fun main`) continues on the Redlock's work pool.
 */
public class Redlock internal constructor(internal val engine: Engine) : AutoCloseable {

    /**
     * Creates a Redlock over the masters of [config] and starts connecting to them in the background.
     *
     * @param config the masters and timing; validated by [RedlockConfig.Builder.build]
     * @param timeSource the monotonic clock that measures validity; inject a test clock to check
     *   validity arithmetic without waiting
     */
    public constructor(
        config: RedlockConfig,
        timeSource: TimeSource.WithComparableMarks = TimeSource.Monotonic,
    ) : this(Engine.create(config, timeSource))

    /** A Redlock over arbitrary nodes, every clock and thread on [dispatcher]: the seam for scheduling tests on virtual time. */
    internal constructor(
        config: RedlockConfig,
        nodes: List<LockNode>,
        timeSource: TimeSource.WithComparableMarks,
        random: Random,
        dispatcher: CoroutineDispatcher,
    ) : this(Engine(config, nodes, timeSource, random, null, null, dispatcher, dispatcher, dispatcher.asExecutor()))

    /** The configuration this Redlock was created with. */
    public val config: RedlockConfig get() = engine.config

    /**
     * Asks every master how it stands, for health checks: one light probe each, all at once, each
     * bounded by the node timeout. A master is [UP][MasterStatus.State.UP] when it answered and its
     * votes count, [DOWN][MasterStatus.State.DOWN] when it did not answer (with why),
     * [RESTART_GUARDED][MasterStatus.State.RESTART_GUARDED] while the restart guard keeps its votes
     * out (with for how long), [DUPLICATE][MasterStatus.State.DUPLICATE] when it is the same server
     * as an earlier master. Locks are possible while a quorum of masters counts.
     *
     * This suspending function is cancellable.
     *
     * @return one status per master, in the configuration's order
     * @throws RedlockClosedException if the Redlock is closed
     */
    public suspend fun checkMasters(): List<MasterStatus> = engine.onCallerSafeThread { engine.checkMasters() }

    /**
     * Ends everything this Redlock owns, then closes its connections and threads:
     * - every critical section still running is cancelled, and its [withRedlock] (or
     *   [withReadLock], ...) throws [LockLostException] with reason
     *   [CLOSED][LockLostException.Reason.CLOSED]; [Lease.awaitLost] returns the same loss for
     *   leases from [acquire];
     * - every lease still held, also from [acquire], is released on every master;
     * - calls waiting for a lock fail at once with [RedlockClosedException], after removing
     *   what their attempt set; later calls fail the same way.
     *
     * Returns once all that is done, within about four node timeouts. Safe to call from any thread,
     * also from a critical section or one of the Redis client's threads (where it only starts the
     * shutdown, since those threads are needed to finish it). Idempotent.
     */
    override fun close() {
        engine.close()
    }

    /** Describes this Redlock for logs: the number of masters, the quorum and the default lease time. */
    override fun toString(): String = "Redlock(${engine.masters.size} masters, quorum ${engine.quorum}, ${config.leaseTime()} lease)"
}

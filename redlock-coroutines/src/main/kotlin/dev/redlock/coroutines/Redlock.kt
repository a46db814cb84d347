package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterStatus
import dev.redlock.core.RedlockClosedException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.LockNode
import dev.redlock.coroutines.internal.Engine
import dev.redlock.coroutines.internal.EngineLocks
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.TimeSource
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.asExecutor

/**
 * A Redlock over the masters of a [RedlockConfig]: the entry point for [withRedlock], [acquire]
 * and [tryAcquire], and for the reader-writer locks and semaphores ([withReadLock],
 * [withWriteLock], [withPermit]). It is the Redis implementation of [DistributedLocks]: code
 * written against that interface runs unchanged on the other backends.
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
public class Redlock internal constructor(internal val engine: Engine) : DistributedLocks {
    private val locks = EngineLocks(engine)

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
     * Runs [block] while holding the lock on [resources]: the same as [withRedlock] (see there
     * for renewal, loss, cancellation and the pitfalls), under the name every [DistributedLocks]
     * backend shares.
     *
     * This suspending function is cancellable, as [withRedlock] is.
     *
     * @throws LockNotAcquiredException if the lock could not be acquired within the wait time
     * @throws LockLostException if the lease was lost while the block ran
     * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
     * @throws IllegalArgumentException for no resources, empty, blank or duplicate names, durations
     *   out of range, or a lease time longer than the restart guard
     * @throws IllegalStateException if the calling coroutine's critical section holds the lock already
     */
    override suspend fun <T> withLock(
        vararg resources: String,
        leaseTime: Duration?,
        waitTime: Duration?,
        fencing: Boolean?,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T = locks.withLock(*resources, leaseTime = leaseTime, waitTime = waitTime, fencing = fencing, block = block)

    /**
     * Acquires the lock on [resources], waiting up to [waitTime] (null: the config's wait time), and
     * returns the lease. The lease is not renewed: [Lease.extend] it before [Lease.remaining] runs
     * out, and [Lease.release] it when done (prefer [withRedlock], which does both).
     *
     * This suspending function is cancellable: cancelled while waiting, it releases whatever the
     * attempt set on the masters and rethrows the [CancellationException]; cancelled as the lease is
     * granted, it releases the lease too: the lease is either returned or released. Once returned, it
     * is the caller's: a `withTimeout { redlock.acquire(...) }` whose timeout fires between the return
     * and the end of its block drops the lease (kotlinx.coroutines' rule for any resource opened in
     * such a block), which then holds the lock for nobody until its lease time runs out. Bound the
     * wait with [waitTime] instead, or use the lease inside the block.
     *
     * @throws LockNotAcquiredException if the lock could not be acquired within the wait time; it
     *   tells contention (another holder, with its remaining time) from masters failing (each
     *   master's failure attached)
     * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
     * @throws IllegalArgumentException for no resources, empty, blank or duplicate names, durations
     *   out of range, or a lease time longer than the restart guard
     * @throws IllegalStateException if the calling coroutine's critical section holds the lock already
     */
    override suspend fun acquire(vararg resources: String, leaseTime: Duration?, waitTime: Duration?, fencing: Boolean?): Lease =
        locks.acquire(*resources, leaseTime = leaseTime, waitTime = waitTime, fencing = fencing)

    /**
     * Makes one attempt to acquire the lock on [resources], without waiting: returns the lease, or
     * null when another holder has the lock. The lease is not renewed (see [acquire]).
     *
     * This suspending function is cancellable (see [acquire]).
     *
     * @throws LockNotAcquiredException when the attempt failed without contention: too few masters
     *   answered (each master's failure attached), or the quorum answered too late
     * @throws RedlockClosedException if the Redlock is closed
     * @throws IllegalArgumentException for no resources, empty, blank or duplicate names, or a lease
     *   time out of range or longer than the restart guard
     * @throws IllegalStateException if the calling coroutine's critical section holds the lock already
     */
    override suspend fun tryAcquire(vararg resources: String, leaseTime: Duration?, fencing: Boolean?): Lease? =
        locks.tryAcquire(*resources, leaseTime = leaseTime, fencing = fencing)

    /**
     * Runs [block] while holding a read lock on [resource]: any number of readers hold it together,
     * never while a writer holds it. Renewal, loss, release and cancellation work exactly as in
     * [withRedlock] (loss cancels the block and throws [LockLostException]).
     *
     * A reader is admitted on a majority of masters, each of which admits it only while no writer
     * holds the lock and no writer waits for it (see [withWriteLock]'s `writerPriority`). Each reader
     * is kept with its own expiry: a reader that crashes frees its place after its lease time. Read
     * locks have no fencing token (readers do not write). Keys: see the README, "Reader-writer locks
     * and semaphores".
     *
     * ```
     * redlock.withReadLock("catalog") { render(catalog) }
     * ```
     *
     * This suspending function is cancellable, as [withRedlock] is. Not reentrant: taking the read or
     * write lock of a resource inside a section that holds either fails at once (a waiting writer
     * would otherwise make the inner reader wait for itself).
     *
     * @throws LockNotAcquiredException if the read lock could not be acquired within the wait time
     * @throws LockLostException if the lease was lost while the block ran
     * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
     * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     * @sample dev.redlock.examples.readme.sharedLocks
     */
    override suspend fun <T> withReadLock(
        resource: String,
        leaseTime: Duration?,
        waitTime: Duration?,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T = locks.withReadLock(resource, leaseTime, waitTime, block)

    /**
     * Acquires a read lock on [resource] (see [withReadLock]), waiting up to [waitTime], and returns
     * the lease, which is not renewed: [Lease.extend] it, and [Lease.release] it when done.
     *
     * This suspending function is cancellable, as [acquire] is.
     *
     * @throws LockNotAcquiredException if the read lock could not be acquired within the wait time
     * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
     * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    override suspend fun acquireReadLock(resource: String, leaseTime: Duration?, waitTime: Duration?): Lease =
        locks.acquireReadLock(resource, leaseTime, waitTime)

    /**
     * Makes one attempt to acquire a read lock on [resource]: returns the lease (not renewed), or
     * null while a writer holds or waits for the lock.
     *
     * @throws LockNotAcquiredException when the attempt failed without contention (too few masters answered)
     * @throws RedlockClosedException if the Redlock is closed
     * @throws IllegalArgumentException for an empty or invalid resource name, or a lease time out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    override suspend fun tryAcquireReadLock(resource: String, leaseTime: Duration?): Lease? =
        locks.tryAcquireReadLock(resource, leaseTime)

    /**
     * Runs [block] while holding the write lock on [resource]: exclusive against every other writer
     * and every reader of the same reader-writer lock (not against [withRedlock] on the same name,
     * which is a different lock). Renewal, loss, release and cancellation work exactly as in
     * [withRedlock].
     *
     * A writer is admitted on a majority of masters, each of which admits it only when no other
     * writer and no live reader holds the lock. With [writerPriority] (the default), a writer kept
     * out only by readers leaves a mark on the masters that stops new readers from entering until it
     * gets in, gives up, or the mark expires after its lease time: a steady stream of readers cannot
     * starve it. With [fencing] (null: the config's `fencing` setting) the lease carries a fencing
     * token that grows with every writer of the resource, as [withRedlock]'s does.
     *
     * This suspending function is cancellable, as [withRedlock] is.
     *
     * @throws LockNotAcquiredException if the write lock could not be acquired within the wait time
     * @throws LockLostException if the lease was lost while the block ran
     * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
     * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    override suspend fun <T> withWriteLock(
        resource: String,
        leaseTime: Duration?,
        waitTime: Duration?,
        writerPriority: Boolean,
        fencing: Boolean?,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T = locks.withWriteLock(resource, leaseTime, waitTime, writerPriority, fencing, block)

    /**
     * Acquires the write lock on [resource] (see [withWriteLock]), waiting up to [waitTime], and
     * returns the lease, which is not renewed: [Lease.extend] it, and [Lease.release] it when done.
     *
     * This suspending function is cancellable, as [acquire] is.
     *
     * @throws LockNotAcquiredException if the write lock could not be acquired within the wait time
     * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
     * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    override suspend fun acquireWriteLock(
        resource: String,
        leaseTime: Duration?,
        waitTime: Duration?,
        writerPriority: Boolean,
        fencing: Boolean?,
    ): Lease = locks.acquireWriteLock(resource, leaseTime, waitTime, writerPriority, fencing)

    /**
     * Makes one attempt to acquire the write lock on [resource]: returns the lease (not renewed), or
     * null while another writer or a reader holds the lock. A single attempt leaves no writer's mark.
     *
     * @throws LockNotAcquiredException when the attempt failed without contention (too few masters answered)
     * @throws RedlockClosedException if the Redlock is closed
     * @throws IllegalArgumentException for an empty or invalid resource name, or a lease time out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    override suspend fun tryAcquireWriteLock(resource: String, leaseTime: Duration?, fencing: Boolean?): Lease? =
        locks.tryAcquireWriteLock(resource, leaseTime, fencing)

    /**
     * Runs [block] while holding one of the [permits] permits of the semaphore [resource]: at most
     * [permits] holders at a time. Each permit has its own lease, renewed while the block runs and
     * released on every exit path; a holder that crashes gives its permit back after its lease time.
     * Loss cancels the block and throws [LockLostException], as in [withRedlock].
     *
     * With N masters a holder must win `floor(N * permits / (permits + 1)) + 1` of them, not a mere
     * majority: each master admits at most [permits] holders, so [permits] + 1 holders would need more
     * admissions than all masters can give. With one permit that is the majority; with
     * `permits >= N - 1` it is every master, so the semaphore then tolerates no failed master (see
     * the README, "Reader-writer locks and semaphores"). Permits have no fencing token (several
     * holders at once have no order).
     *
     * Every caller of one semaphore must use the same [permits]: a call whose [permits] differs from
     * the one the current holders use fails with [IllegalArgumentException] naming both.
     *
     * This suspending function is cancellable, as [withRedlock] is. Not reentrant: taking a permit of
     * a semaphore inside a section that holds one of its permits fails at once.
     *
     * @throws LockNotAcquiredException if no permit could be acquired within the wait time
     * @throws LockLostException if the permit was lost while the block ran
     * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
     * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
     *   for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds a permit of this semaphore
     */
    override suspend fun <T> withPermit(
        resource: String,
        permits: Int,
        leaseTime: Duration?,
        waitTime: Duration?,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T = locks.withPermit(resource, permits, leaseTime, waitTime, block)

    /**
     * Acquires one of the [permits] permits of the semaphore [resource] (see [withPermit]), waiting up
     * to [waitTime], and returns the lease, which is not renewed: [Lease.extend] it, and
     * [Lease.release] it when done.
     *
     * This suspending function is cancellable, as [acquire] is.
     *
     * @throws LockNotAcquiredException if no permit could be acquired within the wait time
     * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
     * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
     *   for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds a permit of this semaphore
     */
    override suspend fun acquirePermit(resource: String, permits: Int, leaseTime: Duration?, waitTime: Duration?): Lease =
        locks.acquirePermit(resource, permits, leaseTime, waitTime)

    /**
     * Makes one attempt to acquire one of the [permits] permits of the semaphore [resource]: returns
     * the lease (not renewed), or null while all permits are taken.
     *
     * @throws LockNotAcquiredException when the attempt failed without contention (too few masters answered)
     * @throws RedlockClosedException if the Redlock is closed
     * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
     *   for an empty or invalid resource name, or a lease time out of range
     * @throws IllegalStateException if the calling coroutine's section holds a permit of this semaphore
     */
    override suspend fun tryAcquirePermit(resource: String, permits: Int, leaseTime: Duration?): Lease? =
        locks.tryAcquirePermit(resource, permits, leaseTime)

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
    override suspend fun checkMasters(): List<MasterStatus> = locks.checkMasters()

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

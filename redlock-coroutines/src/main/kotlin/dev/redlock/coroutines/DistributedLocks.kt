package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterStatus
import dev.redlock.core.RedlockClosedException
import kotlin.time.Duration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope

/**
 * Locks, reader-writer locks and semaphores with leases, whatever stores them: the one interface
 * application code is written against, so that it runs unchanged on every backend.
 *
 * [Redlock] implements it over Redis masters; the `redlock-file` module implements it over lock
 * files in a directory (between the processes of one machine), the `redlock-postgres` module over
 * PostgreSQL advisory locks. Every backend runs the same engine, so a [Lease] behaves the same on
 * each: it has a validity that runs out unless extended, `with...` calls renew it every third of
 * its lease time and release it on every exit path, and a lost lease cancels its critical section
 * at once ([LockLostException]). What differs is what the holds live in, and so what "lost" means:
 * - Redlock: a quorum of masters answers that the lease is gone, its validity ran out without a
 *   renewal, or the Redlock was closed.
 * - Files: the lock file was deleted or replaced, or its channel closed; or the validity ran out;
 *   or the locks were closed.
 * - PostgreSQL: the database session holding the lock ended (connection dropped, backend
 *   terminated, server restarted); or the validity ran out; or the locks were closed.
 *
 * A hold that is not extended within its lease time is given up by the backend itself (on Redis,
 * the keys expire), so a lease from [acquire] that its holder forgets frees the lock after its
 * lease time on every backend.
 *
 * Implementations are thread-safe and meant to be shared by the whole application; [close] one
 * when the application stops. Locks are not reentrant on any backend.
 */
public interface DistributedLocks : AutoCloseable {
    /**
     * Runs [block] while holding the lock on [resources], renewing it in the background and
     * releasing it on every exit path.
     *
     * Waits up to [waitTime] for the lock (null: the default wait time), holds it with [leaseTime]
     * (null: the default lease time), with a fencing token in [Lease.fencingToken] if [fencing]
     * (null: the default; not every backend gives one, see its documentation), and renews it
     * every third of the lease time while the block runs. If the lease is lost, the block is
     * cancelled at once and this function throws [LockLostException]. The block's result is
     * returned only if the lease was still held when the block finished. Like [coroutineScope][kotlinx.coroutines.coroutineScope],
     * it returns when the block and its children are done.
     *
     * This suspending function is cancellable. Cancelled while waiting, it removes whatever its
     * attempt set and rethrows the [CancellationException]; cancelled while the block runs, the
     * block is cancelled and the lease released before the cancellation propagates.
     *
     * @throws LockNotAcquiredException if the lock could not be acquired within the wait time
     * @throws LockLostException if the lease was lost while the block ran
     * @throws RedlockClosedException if the locks are closed, or were closed while waiting
     * @throws IllegalArgumentException for no resources, empty, blank or duplicate names, or
     *   durations out of range
     * @throws IllegalStateException if the calling coroutine's critical section holds the lock already
     */
    public suspend fun <T> withLock(
        vararg resources: String,
        leaseTime: Duration? = null,
        waitTime: Duration? = null,
        fencing: Boolean? = null,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T

    /**
     * Acquires the lock on [resources], waiting up to [waitTime] (null: the default wait time),
     * and returns the lease. The lease is not renewed: [Lease.extend] it before [Lease.remaining]
     * runs out, and [Lease.release] it when done (prefer [withLock], which does both).
     *
     * This suspending function is cancellable: cancelled while waiting, it removes whatever its
     * attempt set and rethrows the [CancellationException]; the lease is either returned or
     * released.
     *
     * @throws LockNotAcquiredException if the lock could not be acquired within the wait time
     * @throws RedlockClosedException if the locks are closed, or were closed while waiting
     * @throws IllegalArgumentException for no resources, empty, blank or duplicate names, or
     *   durations out of range
     * @throws IllegalStateException if the calling coroutine's critical section holds the lock already
     */
    public suspend fun acquire(
        vararg resources: String,
        leaseTime: Duration? = null,
        waitTime: Duration? = null,
        fencing: Boolean? = null,
    ): Lease

    /**
     * Makes one attempt to acquire the lock on [resources], without waiting: returns the lease
     * (not renewed, see [acquire]), or null when another holder has the lock.
     *
     * This suspending function is cancellable (see [acquire]).
     *
     * @throws LockNotAcquiredException when the attempt failed without contention (the store did
     *   not answer, or answered too late)
     * @throws RedlockClosedException if the locks are closed
     * @throws IllegalArgumentException for no resources, empty, blank or duplicate names, or a
     *   lease time out of range
     */
    public suspend fun tryAcquire(
        vararg resources: String,
        leaseTime: Duration? = null,
        fencing: Boolean? = null,
    ): Lease?

    /**
     * Runs [block] while holding a read lock on [resource]: any number of readers hold it
     * together, never while a writer holds it. Renewal, loss, release and cancellation work as in
     * [withLock]. Read locks have no fencing token.
     *
     * This suspending function is cancellable, as [withLock] is.
     *
     * @throws LockNotAcquiredException if the read lock could not be acquired within the wait time
     * @throws LockLostException if the lease was lost while the block ran
     * @throws RedlockClosedException if the locks are closed, or were closed while waiting
     * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    public suspend fun <T> withReadLock(
        resource: String,
        leaseTime: Duration? = null,
        waitTime: Duration? = null,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T

    /**
     * Acquires a read lock on [resource] (see [withReadLock]), waiting up to [waitTime], and
     * returns the lease, which is not renewed. This suspending function is cancellable, as
     * [acquire] is.
     *
     * @throws LockNotAcquiredException if the read lock could not be acquired within the wait time
     * @throws RedlockClosedException if the locks are closed, or were closed while waiting
     * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    public suspend fun acquireReadLock(
        resource: String,
        leaseTime: Duration? = null,
        waitTime: Duration? = null,
    ): Lease

    /**
     * Makes one attempt to acquire a read lock on [resource]: returns the lease (not renewed), or
     * null while a writer holds the lock (or, where the backend supports writer priority, waits
     * for it).
     *
     * @throws LockNotAcquiredException when the attempt failed without contention
     * @throws RedlockClosedException if the locks are closed
     * @throws IllegalArgumentException for an empty or invalid resource name, or a lease time out of range
     */
    public suspend fun tryAcquireReadLock(
        resource: String,
        leaseTime: Duration? = null,
    ): Lease?

    /**
     * Runs [block] while holding the write lock on [resource]: exclusive against every other
     * writer and every reader of the same reader-writer lock (not against [withLock] on the same
     * name, which is a different lock). Renewal, loss, release and cancellation work as in
     * [withLock].
     *
     * With [writerPriority] (the default), a writer kept out only by readers stops new readers
     * from entering until it gets in or gives up, on the backends that support it (Redlock); the
     * others document that they do not. With [fencing] (null: the default) the lease carries a
     * fencing token where the backend gives one.
     *
     * This suspending function is cancellable, as [withLock] is.
     *
     * @throws LockNotAcquiredException if the write lock could not be acquired within the wait time
     * @throws LockLostException if the lease was lost while the block ran
     * @throws RedlockClosedException if the locks are closed, or were closed while waiting
     * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    public suspend fun <T> withWriteLock(
        resource: String,
        leaseTime: Duration? = null,
        waitTime: Duration? = null,
        writerPriority: Boolean = true,
        fencing: Boolean? = null,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T

    /**
     * Acquires the write lock on [resource] (see [withWriteLock]), waiting up to [waitTime], and
     * returns the lease, which is not renewed. This suspending function is cancellable, as
     * [acquire] is.
     *
     * @throws LockNotAcquiredException if the write lock could not be acquired within the wait time
     * @throws RedlockClosedException if the locks are closed, or were closed while waiting
     * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
     */
    public suspend fun acquireWriteLock(
        resource: String,
        leaseTime: Duration? = null,
        waitTime: Duration? = null,
        writerPriority: Boolean = true,
        fencing: Boolean? = null,
    ): Lease

    /**
     * Makes one attempt to acquire the write lock on [resource]: returns the lease (not renewed),
     * or null while another writer or a reader holds the lock.
     *
     * @throws LockNotAcquiredException when the attempt failed without contention
     * @throws RedlockClosedException if the locks are closed
     * @throws IllegalArgumentException for an empty or invalid resource name, or a lease time out of range
     */
    public suspend fun tryAcquireWriteLock(
        resource: String,
        leaseTime: Duration? = null,
        fencing: Boolean? = null,
    ): Lease?

    /**
     * Runs [block] while holding one of the [permits] permits of the semaphore [resource]: at most
     * [permits] holders at a time. Each permit has its own lease, renewed while the block runs and
     * released on every exit path; loss cancels the block and throws [LockLostException]. Every
     * caller of one semaphore must use the same [permits]. Permits have no fencing token.
     *
     * This suspending function is cancellable, as [withLock] is.
     *
     * @throws LockNotAcquiredException if no permit could be acquired within the wait time
     * @throws LockLostException if the permit was lost while the block ran
     * @throws RedlockClosedException if the locks are closed, or were closed while waiting
     * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
     *   for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds a permit of this semaphore
     */
    public suspend fun <T> withPermit(
        resource: String,
        permits: Int,
        leaseTime: Duration? = null,
        waitTime: Duration? = null,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T

    /**
     * Acquires one of the [permits] permits of the semaphore [resource] (see [withPermit]),
     * waiting up to [waitTime], and returns the lease, which is not renewed. This suspending
     * function is cancellable, as [acquire] is.
     *
     * @throws LockNotAcquiredException if no permit could be acquired within the wait time
     * @throws RedlockClosedException if the locks are closed, or were closed while waiting
     * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
     *   for an empty or invalid resource name, or durations out of range
     * @throws IllegalStateException if the calling coroutine's section holds a permit of this semaphore
     */
    public suspend fun acquirePermit(
        resource: String,
        permits: Int,
        leaseTime: Duration? = null,
        waitTime: Duration? = null,
    ): Lease

    /**
     * Makes one attempt to acquire one of the [permits] permits of the semaphore [resource]:
     * returns the lease (not renewed), or null while all permits are taken.
     *
     * @throws LockNotAcquiredException when the attempt failed without contention
     * @throws RedlockClosedException if the locks are closed
     * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
     *   for an empty or invalid resource name, or a lease time out of range
     */
    public suspend fun tryAcquirePermit(
        resource: String,
        permits: Int,
        leaseTime: Duration? = null,
    ): Lease?

    /**
     * Asks every server or store behind these locks how it stands, for health checks: one light
     * probe each, bounded by the node timeout. A Redlock answers one status per master; a backend
     * over one store (a directory, a database) answers one status for it.
     *
     * This suspending function is cancellable.
     *
     * @throws RedlockClosedException if the locks are closed
     */
    public suspend fun checkMasters(): List<MasterStatus>

    /**
     * Ends everything these locks own: running critical sections are cancelled (their `with...`
     * call throws [LockLostException] with reason [CLOSED][LockLostException.Reason.CLOSED]),
     * held leases are released, waiting calls fail with [RedlockClosedException]. Returns once
     * that is done, within a bound. Safe to call from any thread; idempotent.
     */
    override fun close()
}

@file:JvmName("ReadWriteLocks")

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockClosedException
import dev.redlock.coroutines.internal.LockKind
import dev.redlock.coroutines.internal.acquireFor
import dev.redlock.coroutines.internal.runSection
import kotlin.time.Duration
import kotlinx.coroutines.CoroutineScope

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
public suspend fun <T> Redlock.withReadLock(
    resource: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    block: suspend CoroutineScope.(Lease) -> T,
): T = engine.runSection(LockKind.Read, arrayOf(resource), leaseTime, waitTime, renew = true, fencing = false, "withReadLock", block)

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
public suspend fun Redlock.acquireReadLock(
    resource: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
): Lease = engine.acquireFor(LockKind.Read, arrayOf(resource), leaseTime, waitTime, once = false, fencing = false, "acquireReadLock")!!

/**
 * Makes one attempt to acquire a read lock on [resource]: returns the lease (not renewed), or
 * null while a writer holds or waits for the lock.
 *
 * @throws LockNotAcquiredException when the attempt failed without contention (too few masters answered)
 * @throws RedlockClosedException if the Redlock is closed
 * @throws IllegalArgumentException for an empty or invalid resource name, or a lease time out of range
 * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
 */
public suspend fun Redlock.tryAcquireReadLock(
    resource: String,
    leaseTime: Duration? = null,
): Lease? = engine.acquireFor(LockKind.Read, arrayOf(resource), leaseTime, null, once = true, fencing = false, "tryAcquireReadLock")

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
public suspend fun <T> Redlock.withWriteLock(
    resource: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    writerPriority: Boolean = true,
    fencing: Boolean? = null,
    block: suspend CoroutineScope.(Lease) -> T,
): T = engine.runSection(LockKind.Write.of(writerPriority), arrayOf(resource), leaseTime, waitTime, renew = true, fencing, "withWriteLock", block)

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
public suspend fun Redlock.acquireWriteLock(
    resource: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    writerPriority: Boolean = true,
    fencing: Boolean? = null,
): Lease = engine.acquireFor(LockKind.Write.of(writerPriority), arrayOf(resource), leaseTime, waitTime, once = false, fencing, "acquireWriteLock")!!

/**
 * Makes one attempt to acquire the write lock on [resource]: returns the lease (not renewed), or
 * null while another writer or a reader holds the lock. A single attempt leaves no writer's mark.
 *
 * @throws LockNotAcquiredException when the attempt failed without contention (too few masters answered)
 * @throws RedlockClosedException if the Redlock is closed
 * @throws IllegalArgumentException for an empty or invalid resource name, or a lease time out of range
 * @throws IllegalStateException if the calling coroutine's section holds this reader-writer lock
 */
public suspend fun Redlock.tryAcquireWriteLock(
    resource: String,
    leaseTime: Duration? = null,
    fencing: Boolean? = null,
): Lease? = engine.acquireFor(LockKind.Write.of(false), arrayOf(resource), leaseTime, null, once = true, fencing, "tryAcquireWriteLock")

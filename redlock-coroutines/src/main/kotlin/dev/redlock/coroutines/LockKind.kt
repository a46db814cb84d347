package dev.redlock.coroutines

import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.Checks
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.Script
import java.time.Duration as JavaDuration
import java.util.concurrent.CompletableFuture

/**
 * What differs between the kinds of lock — a mutex, the read and write sides of a reader-writer
 * lock, a permit of a semaphore: which keys and scripts a lease uses on each master, how many
 * masters must agree, and whether waiters queue one behind the other. Everything else (the
 * acquire loop and its cleanup, validity, renewal, loss, release, wake-ups) is the one engine of
 * [Redlock], [RedlockLease] and [Renewals], whatever the kind.
 *
 * Every kind works on the lease's base keys, `<keyPrefix><resource>` (what a mutex locks); the
 * other kinds derive their own keys from them with a NUL separator, which no resource contains,
 * so they never collide with a mutex on the same resource or with each other.
 */
internal sealed class LockKind {
    /** Names the kind in messages: "lock", "read lock", ... */
    abstract val what: String

    /** The kind as a metrics tag value: lock, read, write or permit. */
    abstract val type: String

    /** Whether waiters queue (one is woken per release) or are all woken by a release. */
    abstract val exclusive: Boolean

    /** Whether a lease may hold several resources at once. */
    open val multiResource: Boolean get() = false

    /** Whether a refused attempt may leave a trace that a waiter must remove when it gives up. */
    open val marksWhileWaiting: Boolean get() = false

    /** How many of [masters] masters must grant or confirm a lease of this kind. */
    open fun quorum(masters: Int): Int = LockMath.quorum(masters)

    /** The script that renews leases of this kind: leases share an extend call only with the same script. */
    abstract val extendScript: Script

    /** The keys of one lease that its acquire script is given (the boot marker is added by the node). */
    abstract fun acquireKeys(base: Array<String>, fencing: Boolean): Array<String>

    /** Runs the acquire script with [keys] from [acquireKeys]. */
    abstract fun acquire(node: LockNode, keys: Array<String>, fencing: Boolean, guard: Boolean, token: String, leaseMillis: Long, timeout: JavaDuration): CompletableFuture<AcquireReply>

    /** The keys the extend script checks and renews for one lease; their count goes with the lease's token. */
    abstract fun extendKeys(base: Array<String>): Array<String>

    fun extend(node: LockNode, keys: Array<String>, leaseArgs: Array<String>, leaseMillis: Long, timeout: JavaDuration): CompletableFuture<BooleanArray> =
        if (extendScript === Script.EXTEND) node.extend(keys, leaseArgs, leaseMillis, timeout)
        else node.extend(extendScript, keys, leaseArgs, leaseMillis, timeout)

    /**
     * Releases a lease, or cleans up after an attempt. [final] is false between two attempts of
     * one acquisition (a mark that keeps new readers out must then stay), true otherwise.
     */
    abstract fun release(node: LockNode, base: Array<String>, token: String, releaseId: String, final: Boolean, timeout: JavaDuration): CompletableFuture<Long>

    /** The keys whose release notices wake this kind's waiters; also the keys of their wait rooms. */
    abstract fun noticeKeys(base: Array<String>): Array<String>

    /** The classic Redlock: every key of the lease set to the token on a majority. */
    object Mutex : LockKind() {
        override val what = "lock"
        override val type = "lock"
        override val exclusive = true
        override val multiResource = true
        override val extendScript: Script = Script.EXTEND
        // With fencing, the acquire script also gets each resource's fencing counter.
        override fun acquireKeys(base: Array<String>, fencing: Boolean) = if (fencing) base + base.map(Checks::fenceKey) else base
        override fun acquire(node: LockNode, keys: Array<String>, fencing: Boolean, guard: Boolean, token: String, leaseMillis: Long, timeout: JavaDuration) =
            node.acquire(keys, fencing, guard, token, leaseMillis, timeout)
        override fun extendKeys(base: Array<String>) = base
        override fun release(node: LockNode, base: Array<String>, token: String, releaseId: String, final: Boolean, timeout: JavaDuration) =
            node.release(base, token, releaseId, timeout)
        override fun noticeKeys(base: Array<String>) = base
    }

    /** Both sides of a reader-writer lock: a writer key, the readers' sorted set, a waiting writer's mark. */
    sealed class ReadWrite : LockKind() {
        override fun acquireKeys(base: Array<String>, fencing: Boolean) = arrayOf(writerKey(base[0]), readersKey(base[0]), writerWaitingKey(base[0]))
        override fun noticeKeys(base: Array<String>) = arrayOf(writerKey(base[0]))
    }

    /** A reader: admitted on a majority while no writer holds or waits for the lock. */
    object Read : ReadWrite() {
        override val what = "read lock"
        override val type = "read"
        override val exclusive = false
        override val extendScript: Script = Script.SHARED_EXTEND
        override fun acquire(node: LockNode, keys: Array<String>, fencing: Boolean, guard: Boolean, token: String, leaseMillis: Long, timeout: JavaDuration) =
            node.acquire(Script.RW_ACQUIRE, keys, guard, token, arrayOf(leaseMillis.toString(), "r", "0"), timeout)
        override fun extendKeys(base: Array<String>) = arrayOf(readersKey(base[0]))
        override fun release(node: LockNode, base: Array<String>, token: String, releaseId: String, final: Boolean, timeout: JavaDuration) =
            node.releaseShared(arrayOf(readersKey(base[0])), Z, writerKey(base[0]), token, releaseId, timeout)
    }

    /** A writer: admitted on a majority when no other writer and no live reader holds the lock. */
    class Write(private val priority: Boolean) : ReadWrite() {
        override val what = "write lock"
        override val type = "write"
        override val exclusive = true
        override val marksWhileWaiting: Boolean get() = priority
        override val extendScript: Script = Script.EXTEND
        override fun acquire(node: LockNode, keys: Array<String>, fencing: Boolean, guard: Boolean, token: String, leaseMillis: Long, timeout: JavaDuration) =
            node.acquire(Script.RW_ACQUIRE, keys, guard, token, arrayOf(leaseMillis.toString(), "w", if (priority) "1" else "0"), timeout)
        override fun extendKeys(base: Array<String>) = arrayOf(writerKey(base[0]))
        override fun release(node: LockNode, base: Array<String>, token: String, releaseId: String, final: Boolean, timeout: JavaDuration) =
            if (final) node.releaseShared(arrayOf(writerKey(base[0]), writerWaitingKey(base[0])), SS, writerKey(base[0]), token, releaseId, timeout)
            else node.releaseShared(arrayOf(writerKey(base[0])), S, writerKey(base[0]), token, releaseId, timeout)
    }

    /** One of [permits] permits of a semaphore, on [quorum] masters (more than a majority when permits > 1). */
    class Permit(val permits: Int, private val quorumOverride: Int? = null) : LockKind() {
        override val what = "permit"
        override val type = "permit"
        override val exclusive = false
        override val extendScript: Script = Script.SHARED_EXTEND
        override fun quorum(masters: Int): Int = quorumOverride ?: LockMath.semaphoreQuorum(masters, permits)
        override fun acquireKeys(base: Array<String>, fencing: Boolean) = arrayOf(holdersKey(base[0]), permitsKey(base[0]))
        override fun acquire(node: LockNode, keys: Array<String>, fencing: Boolean, guard: Boolean, token: String, leaseMillis: Long, timeout: JavaDuration) =
            node.acquire(Script.SEMAPHORE_ACQUIRE, keys, guard, token, arrayOf(leaseMillis.toString(), permits.toString()), timeout)
        override fun extendKeys(base: Array<String>) = acquireKeys(base, false)
        override fun release(node: LockNode, base: Array<String>, token: String, releaseId: String, final: Boolean, timeout: JavaDuration) =
            node.releaseShared(acquireKeys(base, false), ZC, holdersKey(base[0]), token, releaseId, timeout)
        override fun noticeKeys(base: Array<String>) = arrayOf(holdersKey(base[0]))
    }

    internal companion object {
        private val Z = arrayOf("z")
        private val S = arrayOf("s")
        private val SS = arrayOf("s", "s")
        private val ZC = arrayOf("z", "c")

        /** The key a writer of the reader-writer lock on a resource holds: `<keyPrefix><resource>\u0000write`. */
        fun writerKey(base: String) = base + "\u0000write"

        /** The sorted set of the readers: `<keyPrefix><resource>\u0000readers`. */
        fun readersKey(base: String) = base + "\u0000readers"

        /** The mark of a waiting writer: `<keyPrefix><resource>\u0000write-waiting`. */
        fun writerWaitingKey(base: String) = base + "\u0000write-waiting"

        /** The sorted set of a semaphore's holders: `<keyPrefix><resource>\u0000permits`. */
        fun holdersKey(base: String) = base + "\u0000permits"

        /** The number of permits a semaphore's holders use: `<keyPrefix><resource>\u0000permit-count`. */
        fun permitsKey(base: String) = base + "\u0000permit-count"
    }
}

/**
 * The kind of lock a call takes, for the Java facade's calls into [runWithLease]. Kotlin callers
 * use [withRedlock], [withReadLock], [withWriteLock] and [withPermit].
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public class LockType private constructor(internal val kind: LockKind) {
    public companion object {
        /** A mutex on one or several resources. */
        public val MUTEX: LockType = LockType(LockKind.Mutex)

        /** The read side of a reader-writer lock. */
        public val READ: LockType = LockType(LockKind.Read)

        private val WRITE = LockType(LockKind.Write(true))
        private val WRITE_UNPRIORITISED = LockType(LockKind.Write(false))

        /** The write side of a reader-writer lock; with [writerPriority], a waiting writer keeps new readers out. */
        public fun write(writerPriority: Boolean): LockType = if (writerPriority) WRITE else WRITE_UNPRIORITISED

        /** One permit of a semaphore with [permits] permits. */
        public fun permit(permits: Int): LockType = LockType(LockKind.Permit(checkPermits(permits)))

        internal fun checkPermits(permits: Int): Int {
            require(permits >= 1) { "permits must be at least 1, but was $permits" }
            return permits
        }
    }
}

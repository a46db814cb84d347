package dev.redlock.coroutines.internal

import dev.redlock.core.internal.Keys
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.Script

/**
 * What differs between the kinds of lock — a mutex, the read and write sides of a reader-writer
 * lock, a permit of a semaphore: which scripts, keys and arguments a lease uses on each master,
 * how many masters must agree, and whether waiters queue one behind the other. Everything else
 * (the acquire loop and its cleanup, validity, renewal, loss, release, wake-ups) is the one engine,
 * whatever the kind: every kind goes through the same [dev.redlock.core.internal.LockNode] calls.
 *
 * A lease's base keys are its resources' lock keys ([Keys.lock]); the other kinds derive their own
 * keys from them ([Keys]), so they never collide with a mutex on the same resource or each other.
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

    /** Whether a lease of this kind has one holder at a time, and so can carry a fencing token. */
    open val fenceable: Boolean get() = false

    /** Whether a refused attempt may leave a trace that a waiter must remove when it gives up. */
    open val marksWhileWaiting: Boolean get() = false

    /** How many of [masters] masters must grant or confirm a lease of this kind. */
    open fun quorum(masters: Int): Int = LockMath.quorum(masters)

    abstract val acquireScript: Script
    abstract val extendScript: Script
    abstract val releaseScript: Script

    /**
     * The acquire script's keys for a lease on [base]: with [fencing], its fencing counters; with
     * [guard], the master's boot marker last.
     */
    abstract fun acquireKeys(base: Array<String>, fencing: Boolean, guard: Boolean): Array<String>

    /** The acquire script's arguments; the token first. */
    abstract fun acquireArgs(base: Array<String>, token: String, leaseMillis: Long, fencing: Boolean, guard: Boolean): Array<String>

    /** The lock keys and fencing counters the fence script confirms (fenceable kinds). */
    open fun fenceKeys(base: Array<String>): Array<String> = throw UnsupportedOperationException("a $what has no fencing token")

    /** The keys the extend script checks and renews for one lease; their count goes with the lease's token. */
    abstract fun extendKeys(base: Array<String>): Array<String>

    /** The keys whose changes a master pushes to a holder of the lease (those that say whether it is held). */
    open fun trackedKeys(base: Array<String>): Array<String> = extendKeys(base)

    /**
     * The release script's keys. [final] is false between two attempts of one acquisition (a mark
     * that keeps new readers out must then stay), true otherwise.
     */
    abstract fun releaseKeys(base: Array<String>, final: Boolean): Array<String>

    /** The release script's arguments; the token first. An empty [releaseId] announces nothing. */
    abstract fun releaseArgs(base: Array<String>, token: String, releaseId: String, final: Boolean): Array<String>

    /** The keys whose release notices wake this kind's waiters; also the keys of their wait rooms. */
    abstract fun noticeKeys(base: Array<String>): Array<String>

    /** The resource family two leases of the same [family] and resource collide in (for nesting checks). */
    abstract val family: String

    /** The classic Redlock: every key of the lease set to the token on a majority. */
    object Mutex : LockKind() {
        override val what = "lock"
        override val type = "lock"
        override val family = "lock"
        override val exclusive = true
        override val multiResource = true
        override val fenceable = true
        override val acquireScript: Script = Script.ACQUIRE
        override val extendScript: Script = Script.EXTEND
        override val releaseScript: Script = Script.RELEASE

        override fun acquireKeys(base: Array<String>, fencing: Boolean, guard: Boolean): Array<String> {
            val n = base.size
            val keys = arrayOfNulls<String>(n * (if (fencing) 2 else 1) + (if (guard) 1 else 0))
            for (i in 0 until n) {
                keys[i] = base[i]
                if (fencing) keys[n + i] = Keys.fence(base[i])
            }
            if (guard) keys[keys.size - 1] = Keys.BOOT_MARKER
            @Suppress("UNCHECKED_CAST")
            return keys as Array<String>
        }

        override fun acquireArgs(base: Array<String>, token: String, leaseMillis: Long, fencing: Boolean, guard: Boolean) =
            arrayOf(token, leaseMillis.toString(), base.size.toString(), flag(fencing), flag(guard))

        override fun fenceKeys(base: Array<String>) = acquireKeys(base, fencing = true, guard = false)
        override fun extendKeys(base: Array<String>) = base
        override fun releaseKeys(base: Array<String>, final: Boolean) = base
        override fun releaseArgs(base: Array<String>, token: String, releaseId: String, final: Boolean) =
            arrayOf(token, Keys.RELEASE_CHANNEL_PREFIX, releaseId)
        override fun noticeKeys(base: Array<String>) = base
    }

    /** Both sides of a reader-writer lock: a writer key, the readers' sorted set, a waiting writer's mark. */
    sealed class ReadWrite : LockKind() {
        override val family = "read-write"
        override val acquireScript: Script = Script.RW_ACQUIRE
        override val releaseScript: Script = Script.SHARED_RELEASE

        override fun acquireKeys(base: Array<String>, fencing: Boolean, guard: Boolean): Array<String> {
            val b = base[0]
            val keys = arrayListOf(Keys.writer(b), Keys.readers(b), Keys.writerWaiting(b))
            if (fencing) keys += Keys.fence(Keys.writer(b))
            if (guard) keys += Keys.BOOT_MARKER
            return keys.toTypedArray()
        }

        override fun noticeKeys(base: Array<String>) = arrayOf(Keys.writer(base[0]))
    }

    /** A reader: admitted on a majority while no writer holds or waits for the lock. */
    object Read : ReadWrite() {
        override val what = "read lock"
        override val type = "read"
        override val exclusive = false
        override val extendScript: Script = Script.SHARED_EXTEND

        override fun acquireArgs(base: Array<String>, token: String, leaseMillis: Long, fencing: Boolean, guard: Boolean) =
            arrayOf(token, leaseMillis.toString(), "r", "0", flag(guard), "0")

        override fun extendKeys(base: Array<String>) = arrayOf(Keys.readers(base[0]))
        override fun releaseKeys(base: Array<String>, final: Boolean) = arrayOf(Keys.readers(base[0]))
        override fun releaseArgs(base: Array<String>, token: String, releaseId: String, final: Boolean) =
            arrayOf(token, Keys.RELEASE_CHANNEL_PREFIX, releaseId, Keys.writer(base[0]), "z")
    }

    /** A writer: admitted on a majority when no other writer and no live reader holds the lock. */
    class Write private constructor(val priority: Boolean) : ReadWrite() {
        companion object {
            private val PRIORITISED = Write(true)
            private val UNPRIORITISED = Write(false)

            /** The writer kind; with [priority], a waiting writer keeps new readers out. */
            fun of(priority: Boolean): Write = if (priority) PRIORITISED else UNPRIORITISED
        }

        override val what = "write lock"
        override val type = "write"
        override val exclusive = true
        override val fenceable = true
        override val marksWhileWaiting: Boolean get() = priority
        override val extendScript: Script = Script.EXTEND

        override fun acquireArgs(base: Array<String>, token: String, leaseMillis: Long, fencing: Boolean, guard: Boolean) =
            arrayOf(token, leaseMillis.toString(), "w", flag(priority), flag(guard), flag(fencing))

        override fun fenceKeys(base: Array<String>) = arrayOf(Keys.writer(base[0]), Keys.fence(Keys.writer(base[0])))
        override fun extendKeys(base: Array<String>) = arrayOf(Keys.writer(base[0]))
        override fun releaseKeys(base: Array<String>, final: Boolean) =
            if (final) arrayOf(Keys.writer(base[0]), Keys.writerWaiting(base[0])) else arrayOf(Keys.writer(base[0]))

        override fun releaseArgs(base: Array<String>, token: String, releaseId: String, final: Boolean) =
            if (final) arrayOf(token, Keys.RELEASE_CHANNEL_PREFIX, releaseId, Keys.writer(base[0]), "s", "s")
            else arrayOf(token, Keys.RELEASE_CHANNEL_PREFIX, releaseId, Keys.writer(base[0]), "s")
    }

    /** One of [permits] permits of a semaphore, on more than a majority of masters when permits > 1. */
    class Permit private constructor(val permits: Int) : LockKind() {
        companion object {
            /** A permit of a semaphore with [permits] permits. */
            fun of(permits: Int): Permit {
                require(permits >= 1) { "permits must be at least 1, but was $permits" }
                return Permit(permits)
            }
        }

        override val what = "permit"
        override val type = "permit"
        override val family = "semaphore"
        override val exclusive = false
        override val acquireScript: Script = Script.SEMAPHORE_ACQUIRE
        override val extendScript: Script = Script.SHARED_EXTEND
        override val releaseScript: Script = Script.SHARED_RELEASE

        override fun quorum(masters: Int): Int = LockMath.semaphoreQuorum(masters, permits)

        override fun acquireKeys(base: Array<String>, fencing: Boolean, guard: Boolean) =
            if (guard) arrayOf(Keys.permitHolders(base[0]), Keys.permitCount(base[0]), Keys.BOOT_MARKER)
            else arrayOf(Keys.permitHolders(base[0]), Keys.permitCount(base[0]))

        override fun acquireArgs(base: Array<String>, token: String, leaseMillis: Long, fencing: Boolean, guard: Boolean) =
            arrayOf(token, leaseMillis.toString(), permits.toString(), flag(guard))

        override fun extendKeys(base: Array<String>) = arrayOf(Keys.permitHolders(base[0]), Keys.permitCount(base[0]))
        override fun trackedKeys(base: Array<String>) = arrayOf(Keys.permitHolders(base[0]))
        override fun releaseKeys(base: Array<String>, final: Boolean) = extendKeys(base)
        override fun releaseArgs(base: Array<String>, token: String, releaseId: String, final: Boolean) =
            arrayOf(token, Keys.RELEASE_CHANNEL_PREFIX, releaseId, Keys.permitHolders(base[0]), "z", "c")

        override fun noticeKeys(base: Array<String>) = arrayOf(Keys.permitHolders(base[0]))
    }

    private companion object {
        fun flag(on: Boolean) = if (on) "1" else "0"
    }
}

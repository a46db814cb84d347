package dev.redlock.coroutines.internal

import dev.redlock.core.internal.Keys
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.Script
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.spi.AcquireRequest
import dev.redlock.coroutines.spi.HeldLease
import dev.redlock.coroutines.spi.LockFamily
import dev.redlock.coroutines.spi.LockMode

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

/**
 * The script calls of [LockKind] read back as typed operations, for nodes that are not Redis (the
 * backend SPI's `BackendNode`): the inverse of the keys and arguments each kind encodes above, kept
 * next to them so that the two change together. A lock key never contains NUL (resource names and
 * key prefixes are refused with one), so the part of a derived key before its first NUL is its lock
 * key, and the suffix says what it is.
 */
@OptIn(InternalRedlockApi::class)
internal object KindDecoding {
    private val WRITER = Keys.writer("")
    private val READERS = Keys.readers("")
    private val PERMITS = Keys.permitHolders("")

    private fun base(key: String): String = key.substringBefore('\u0000')

    /** An acquire script call ([LockKind.acquireKeys], [LockKind.acquireArgs]) as a request. */
    fun acquire(script: Script, keys: Array<String>, args: Array<String>): AcquireRequest {
        val token = args[0]
        val leaseMillis = args[1].toLong()
        return when {
            script === Script.ACQUIRE -> {
                val n = args[2].toInt()
                AcquireRequest(HeldLease(LockMode.MUTEX, keys.copyOfRange(0, n).asList(), token), leaseMillis, args[3] == "1", 0, false)
            }
            script === Script.RW_ACQUIRE && args[2] == "r" ->
                AcquireRequest(HeldLease(LockMode.READ, listOf(base(keys[0])), token), leaseMillis, false, 0, false)
            script === Script.RW_ACQUIRE ->
                AcquireRequest(HeldLease(LockMode.WRITE, listOf(base(keys[0])), token), leaseMillis, args[5] == "1", 0, args[3] == "1")
            script === Script.SEMAPHORE_ACQUIRE ->
                AcquireRequest(HeldLease(LockMode.PERMIT, listOf(base(keys[0])), token), leaseMillis, false, args[2].toInt(), false)
            else -> throw IllegalArgumentException("not an acquire script: ${script.name()}")
        }
    }

    /** An extend script call ([LockKind.extendKeys], batched by the lease timer): the leases and the lease time (0: only check). */
    fun extend(script: Script, keys: Array<String>, args: Array<String>): Pair<List<HeldLease>, Long> {
        val leaseMillis = args[0].toLong()
        val leases = ArrayList<HeldLease>((args.size - 1) / 2)
        var k = 0
        var a = 1
        while (a + 1 < args.size) {
            val count = args[a].toInt()
            val token = args[a + 1]
            val slice = keys.copyOfRange(k, k + count).asList()
            leases += when {
                script === Script.EXTEND && slice.size == 1 && slice[0].endsWith(WRITER) -> HeldLease(LockMode.WRITE, listOf(base(slice[0])), token)
                script === Script.EXTEND -> HeldLease(LockMode.MUTEX, slice, token)
                script === Script.SHARED_EXTEND && slice[0].endsWith(READERS) -> HeldLease(LockMode.READ, listOf(base(slice[0])), token)
                script === Script.SHARED_EXTEND && slice[0].endsWith(PERMITS) -> HeldLease(LockMode.PERMIT, listOf(base(slice[0])), token)
                else -> throw IllegalArgumentException("not an extend script call: ${script.name()} on ${slice.size} key(s)")
            }
            k += count
            a += 2
        }
        return leases to leaseMillis
    }

    /**
     * A release script call ([LockKind.releaseKeys], [LockKind.releaseArgs]): the lease, whether
     * it is final (false between two attempts of one acquisition: a waiting writer's mark stays),
     * and the release notice to publish (null: announce nothing).
     */
    fun release(script: Script, keys: Array<String>, args: Array<String>): Triple<HeldLease, Boolean, String?> {
        val token = args[0]
        val notice = args[2].ifEmpty { null }
        val lease = when {
            script === Script.RELEASE -> HeldLease(LockMode.MUTEX, keys.asList(), token)
            script === Script.SHARED_RELEASE && keys[0].endsWith(READERS) -> HeldLease(LockMode.READ, listOf(base(keys[0])), token)
            script === Script.SHARED_RELEASE && keys[0].endsWith(WRITER) -> HeldLease(LockMode.WRITE, listOf(base(keys[0])), token)
            script === Script.SHARED_RELEASE && keys[0].endsWith(PERMITS) -> HeldLease(LockMode.PERMIT, listOf(base(keys[0])), token)
            else -> throw IllegalArgumentException("not a release script call: ${script.name()}")
        }
        val final = lease.mode != LockMode.WRITE || keys.size > 1
        return Triple(lease, final, notice)
    }

    /** A fence script call ([LockKind.fenceKeys]): the lease whose fencing number is confirmed. */
    fun fence(keys: Array<String>, token: String): HeldLease =
        if (keys[0].endsWith(WRITER)) HeldLease(LockMode.WRITE, listOf(base(keys[0])), token)
        else HeldLease(LockMode.MUTEX, keys.copyOfRange(0, keys.size / 2).asList(), token)

    /** A key waiters watch ([LockKind.noticeKeys]) as the family and lock key it belongs to. */
    fun notice(key: String): Pair<LockFamily, String> = when {
        key.endsWith(WRITER) -> LockFamily.READ_WRITE to base(key)
        key.endsWith(PERMITS) -> LockFamily.SEMAPHORE to base(key)
        else -> LockFamily.MUTEX to key
    }

    /** The keys the engine watches for changes of [lease] ([LockKind.trackedKeys]): where a node's report of a lost hold goes. */
    fun trackedKeys(lease: HeldLease): List<String> = when (lease.mode) {
        LockMode.MUTEX -> lease.keys
        LockMode.READ -> listOf(Keys.readers(lease.keys[0]))
        LockMode.WRITE -> listOf(Keys.writer(lease.keys[0]))
        LockMode.PERMIT -> listOf(Keys.permitHolders(lease.keys[0]))
    }

    /** The key waiters of [family]'s lock [key] watch: the inverse of [notice]. */
    fun noticeKey(family: LockFamily, key: String): String = when (family) {
        LockFamily.MUTEX -> key
        LockFamily.READ_WRITE -> Keys.writer(key)
        LockFamily.SEMAPHORE -> Keys.permitHolders(key)
    }
}

package dev.redlock.java.internal

import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.LockType
import dev.redlock.java.LockLease

/**
 * The locks each thread holds through the facade's blocking forms (a `withLockBlocking` section, a
 * `RedlockLock` it owns, an action while its `apply` runs): a blocking call for a lock its own
 * thread holds would wait for itself until its wait time ran out, so it fails at once instead.
 * Asynchronous calls are not checked: a future for a lock the thread holds simply completes once
 * the lock is released.
 */
@OptIn(InternalRedlockApi::class)
internal object Nesting {
    private val held: ThreadLocal<ArrayList<Frame>> = ThreadLocal.withInitial { ArrayList(2) }

    /** One lock held by the current thread; closing it (on that thread) forgets it. */
    class Frame(val owner: Any, val type: LockType, val resources: List<String>) : AutoCloseable {
        override fun close() {
            held.get().remove(this)
        }
    }

    /** Records that the current thread holds [resources] of [type] through [owner] (an AsyncRedlock). */
    fun enter(owner: Any, type: LockType, resources: List<String>): Frame =
        Frame(owner, type, resources).also { held.get().add(it) }

    /** Records that the current thread holds [lease] through [owner]. */
    fun enter(owner: Any, type: LockType, lease: LockLease): Frame = enter(owner, type, lease.resources())

    /**
     * Throws [IllegalStateException] when the current thread holds one of [resources] of the same
     * lock family through [owner]: [call] would wait for the thread itself.
     */
    fun refuse(owner: Any, type: LockType, resources: List<String>, call: String) {
        for (frame in held.get()) {
            if (frame.owner !== owner || frame.type.family != type.family) continue
            val both = resources.filter { it in frame.resources }
            check(both.isEmpty()) {
                "$call on $both was called on a thread that already holds the ${frame.type} on ${frame.resources} " +
                    "(same AsyncRedlock): it would wait for its own thread until its wait time ran out. Redlock locks " +
                    "are not reentrant: use the lease the thread already holds, or lock another resource"
            }
        }
    }
}

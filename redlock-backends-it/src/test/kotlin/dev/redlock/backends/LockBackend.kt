package dev.redlock.backends

import dev.redlock.coroutines.DistributedLocks

/**
 * One backend under the behaviour suite: a store shared by several "processes" (each
 * [DistributedLocks] from [locks] is one), and what the suite needs to reach behind the library's
 * back. Created once per spec, closed after it.
 *
 * Every backend is driven with the same timing: lease time [LEASE] (renewed every third), wait time
 * [WAIT], retry delay [RETRY], fencing off unless a call asks.
 */
interface LockBackend : AutoCloseable {
    /** Names the backend in test names and messages. */
    val name: String

    /** New locks over the shared store, as another process would have them; the suite closes them. */
    fun locks(): DistributedLocks

    /** Makes every hold of [resource] (of every kind) vanish behind its holders' backs, as an operator or a failure would. */
    fun loseHolds(resource: String)

    /** What the store still holds (lock keys, lock files held, ...): empty once every lease is released. */
    fun held(): List<String>

    companion object {
        val LEASE: java.time.Duration = java.time.Duration.ofSeconds(2)
        val WAIT: java.time.Duration = java.time.Duration.ofSeconds(5)
        val RETRY: java.time.Duration = java.time.Duration.ofMillis(20)
    }
}

// README samples on fencing tokens and lease state, compiled and run by ReadmeSamplesTest.
// README.md shows each region verbatim; change both together.
package dev.redlock.examples.readme

import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import dev.redlock.core.LeaseState
import kotlinx.coroutines.withTimeout

/**
 * A table of account balances in which every row keeps the largest fencing token that wrote it,
 * as `UPDATE accounts SET balance = ?, fence = ? WHERE id = ? AND fence <= ?` does.
 */
class Accounts {
    private val rows = HashMap<Int, Pair<Long, Long>>()

    /** Sets [balance] and [fence] on row [id] if its fence is at most [maxFence]; returns the rows changed. */
    @Synchronized
    fun update(balance: Long, fence: Long, id: Int, maxFence: Long): Int {
        val current = rows[id]
        if (current != null && current.second > maxFence) return 0
        rows[id] = balance to fence
        return 1
    }

    /** The balance of row [id], or null when it was never written. */
    @Synchronized
    fun balance(id: Int): Long? = rows[id]?.first

    /** The fence of row [id], or null when it was never written. */
    @Synchronized
    fun fence(id: Int): Long? = rows[id]?.second
}

/** Writes [balance] to account 7 under a fenced lock; the table refuses writes by older holders. */
suspend fun fencedUpdate(redlock: Redlock, db: Accounts, balance: Long) {
    // region fencing
    redlock.withRedlock("accounts:7", fencing = true) { lease ->
        val token = lease.fencingToken!!
        check(db.update(balance, token, id = 7, maxFence = token) == 1) { "refused: a newer holder wrote" }
    }
    // endregion
}

/** Uploads a report under a lock, never past the lease, and stops early when the lease is at risk. */
suspend fun uploadWithinLease(redlock: Redlock, uploadReport: suspend () -> Unit) {
    // region lease-state
    redlock.withRedlock("reports") { lease ->
        withTimeout(lease.remaining) { uploadReport() }      // never runs past the lease
        if (lease.state.value == LeaseState.AT_RISK) return@withRedlock   // stop taking new work
    }
    // endregion
}

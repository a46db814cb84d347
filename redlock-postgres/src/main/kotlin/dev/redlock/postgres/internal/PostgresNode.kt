@file:OptIn(InternalRedlockApi::class)

package dev.redlock.postgres.internal

import dev.redlock.core.MasterFailureException
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.spi.AcquireRequest
import dev.redlock.coroutines.spi.AcquireResult
import dev.redlock.coroutines.spi.BackendNode
import dev.redlock.coroutines.spi.HeldLease
import dev.redlock.coroutines.spi.LockFamily
import dev.redlock.coroutines.spi.LockMode
import java.time.Duration

/**
 * The engine's one node over a PostgreSQL database: [BackendNode] turns the engine's calls into
 * holds, [AdvisoryStore] keeps them as session advisory locks, [ReleaseNotices] wakes waiters with
 * `LISTEN/NOTIFY`. Store calls run on the node's [concurrency] stripes: calls on different locks
 * at the same time (each on its own session; PostgreSQL arbitrates), one lock's calls (and so one
 * token's) one at a time, in order. [AdvisoryStore] and [ReleaseNotices] are safe for that.
 */
internal class PostgresNode(
    name: String,
    serverId: String,
    private val store: AdvisoryStore,
    private val notices: ReleaseNotices,
    private val fencing: Boolean,
    /** Whether [AdvisoryStore.open] already succeeded (the factory checks ahead). */
    @Volatile private var opened: Boolean,
    concurrency: Int = 1,
) : BackendNode(name, serverId, concurrency) {

    override fun openStore(timeout: Duration) {
        if (opened) return
        store.open(timeout.toMillis(), fencing)
        opened = true
    }

    override fun acquireHold(request: AcquireRequest, timeout: Duration): AcquireResult {
        val mode =
            when (request.mode) {
                LockMode.MUTEX -> HoldMode.MUTEX
                LockMode.READ -> HoldMode.READ
                LockMode.WRITE -> HoldMode.WRITE
                LockMode.PERMIT -> HoldMode.PERMIT
            }
        return when (
            val attempt =
                store.acquire(mode, family(request.mode.family), request.keys, request.token, request.leaseMillis, request.fencing, request.permits, timeout.toMillis())
        ) {
            is Attempt.Granted -> AcquireResult.Granted(attempt.fence)
            is Attempt.PermitsDiffer -> AcquireResult.PermitsDiffer(attempt.holdersPermits)
            Attempt.Refused -> AcquireResult.Refused(null) // PostgreSQL cannot tell how long the holder keeps it
        }
    }

    override fun extendHolds(leases: List<HeldLease>, leaseMillis: Long, timeout: Duration): BooleanArray {
        val deadline = System.nanoTime() + timeout.toNanos()
        return BooleanArray(leases.size) { i ->
            val left = (deadline - System.nanoTime()) / 1_000_000
            if (left <= 0) {
                throw MasterFailureException(name(), MasterFailureException.Kind.TIMEOUT, "extend of ${leases.size} leases ran out of time", null)
            }
            store.extend(leases[i].token, leaseMillis, left)
        }
    }

    /** Every [LOSS_CHECK_PERIOD] while something is held: one statement for all holds' sessions. */
    override val lossCheckPeriod: Duration get() = LOSS_CHECK_PERIOD

    override fun findLostHolds(leases: List<HeldLease>, timeout: Duration): Collection<HeldLease> {
        val gone = store.lostHolds(timeout.toMillis())
        return if (gone.isEmpty()) emptyList() else leases.filter { it.token in gone }
    }

    override fun releaseHold(lease: HeldLease, final: Boolean, notice: String?, timeout: Duration): Boolean =
        store.release(lease.token, family(lease.mode.family), lease.keys, notice, timeout.toMillis())

    override fun confirmFencing(lease: HeldLease, fence: Long, timeout: Duration): Boolean = store.confirmFence(lease.token, timeout.toMillis())

    override fun checkStore(timeout: Duration) {
        store.probe(timeout.toMillis())
    }

    override fun watchReleases(family: LockFamily, key: String, timeout: Duration) {
        notices.watch(family(family), key)
    }

    override fun unwatchReleases(family: LockFamily, key: String, timeout: Duration) {
        notices.unwatch(family(family), key)
    }

    override fun closeStore() {
        try {
            notices.close()
        } finally {
            store.close()
        }
    }

    /** Called by [ReleaseNotices]' thread for a notice of a watched lock. */
    fun heard(family: String, key: String, notice: String) {
        val f =
            when (family) {
                AdvisoryKeys.MUTEX -> LockFamily.MUTEX
                AdvisoryKeys.READ_WRITE -> LockFamily.READ_WRITE
                else -> LockFamily.SEMAPHORE
            }
        releaseNoticed(f, key, notice)
    }

    internal companion object {
        /**
         * How often the sessions of all holds are looked up in `pg_stat_activity`: a terminated or
         * dropped session cancels its block within about this long, instead of at the next renewal.
         * Costs one statement per period per `PostgresLocks` holding anything (on a spare session).
         */
        val LOSS_CHECK_PERIOD: Duration = Duration.ofMillis(250)

        fun family(family: LockFamily): String =
            when (family) {
                LockFamily.MUTEX -> AdvisoryKeys.MUTEX
                LockFamily.READ_WRITE -> AdvisoryKeys.READ_WRITE
                LockFamily.SEMAPHORE -> AdvisoryKeys.SEMAPHORE
            }
    }
}

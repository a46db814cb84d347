package dev.redlock.coroutines.internal

import dev.redlock.core.internal.LockNode
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicIntegerArray
import kotlinx.coroutines.launch

/**
 * What the masters push about the keys this process holds or waits for (server-assisted client-side
 * caching: `CLIENT TRACKING ... NOLOOP`, set up by each node), and what follows from it:
 * - a held key changed (deleted, expired, overwritten by someone else): the lease is checked on the
 *   masters at once (one round trip, changing nothing); when a quorum no longer holds it, it is lost
 *   and its block cancelled, without waiting for the next renewal. An invalidation is a hint, never
 *   proof: a lease the masters still hold stays held (a spurious one costs one check);
 * - a waited-for key changed: its waiters look again at once, whoever removed the key (a holder that
 *   crashed hands the lock on at its key's expiry);
 * - tracking restarted or the server lost track ("everything changed"): every lease on that master
 *   is checked and every waiter woken;
 * - a master's connection dropped: a lease whose quorum the connected masters can no longer make
 *   becomes AT_RISK at once (HELD again after the next successful check or renewal).
 *
 * Where a master does not track (RESP2, `CLIENT` renamed or denied by its ACL, a user's own
 * connection), everything works as without: renewals find losses, release notices and timers wake
 * waiters. That is said once per master in the log.
 */
internal class Invalidations(private val engine: Engine) {
    /** Per key: the local lease(s) holding it; a key is usually held by one lease of this process. */
    private val holders = ConcurrentHashMap<String, Any>()

    /** Per master: 1 once its "no tracking" was logged. */
    private val told = AtomicIntegerArray(engine.masters.size)

    /** Whether tracking was asked for (`RedlockConfig.keyTracking`); when not, nothing is kept. */
    @Volatile private var active = false

    fun start() {
        active = true
        engine.masters.nodes.forEachIndexed { i, node ->
            node.onTracking(object : LockNode.TrackingListener {
                override fun invalidated(keys: List<String>?) {
                    // Waiters at once, on the I/O thread, in order with the release notices; the
                    // checks of held leases on the work pool.
                    engine.rooms.changed(i, keys)
                    offload { changed(keys) }
                }
                override fun disconnected() = offload { masterDropped() }
                override fun unavailable(reason: String) {
                    if (told.compareAndSet(i, 0, 1)) {
                        Observer.LOG.info(
                            "Redlock master {} does not push changes of held keys: {}. Losses are found by renewals, and waiters are woken by release notices and timers",
                            node.name(), reason,
                        )
                    }
                }
            })
        }
    }

    /** Invalidations arrive on I/O threads: the work they start runs on the work pool. */
    private fun offload(work: () -> Unit) {
        if (engine.isClosed) return
        try {
            engine.scope.launch { work() }
        } catch (e: Exception) {
            // Closing: nothing left to check.
        }
    }

    /** [lease] is held in this process: its keys are watched. */
    fun held(lease: RedlockLease) {
        if (!active) return
        for (key in lease.trackedKeys) {
            holders.merge(key, lease) { old, new ->
                when (old) {
                    is MutableSet<*> -> @Suppress("UNCHECKED_CAST") (old as MutableSet<RedlockLease>).apply { add(new as RedlockLease) }
                    else -> ConcurrentHashMap.newKeySet<RedlockLease>().apply { add(old as RedlockLease); add(new as RedlockLease) }
                }
            }
        }
    }

    /** [lease] ended in this process. */
    fun ended(lease: RedlockLease) {
        if (!active) return
        for (key in lease.trackedKeys) {
            holders.computeIfPresent(key) { _, v ->
                when (v) {
                    is MutableSet<*> -> v.apply { remove(lease) }.takeIf { it.isNotEmpty() }
                    else -> v.takeIf { it !== lease }
                }
            }
        }
    }

    private fun leasesOf(key: String): List<RedlockLease> = when (val v = holders[key]) {
        null -> emptyList()
        is RedlockLease -> listOf(v)
        else -> @Suppress("UNCHECKED_CAST") (v as Set<RedlockLease>).toList()
    }

    private fun allLeases(): Set<RedlockLease> = holders.keys.flatMapTo(HashSet()) { leasesOf(it) }

    private fun changed(keys: List<String>?) {
        if (keys == null) {
            allLeases().forEach(::check)
            return
        }
        for (key in keys) leasesOf(key).forEach(::check)
    }

    /**
     * Checks [lease] on the masters now. A change heard while a check of it is under way is not
     * dropped: that check may have read the key on that master before the change, so it runs once
     * more when it ends (changes heard meanwhile share that one more round).
     */
    private fun check(lease: RedlockLease) {
        if (!lease.isHeld) return
        lease.checkDue()
        if (!lease.startChecking()) return
        engine.scope.launch {
            try {
                while (lease.isHeld && lease.takeCheckDue()) engine.timer.checkAll(listOf(lease))
            } finally {
                lease.stopChecking()
            }
            // A change heard after the last round began and before the flag was reset.
            if (lease.checkIsDue) check(lease)
        }
    }

    /** A master's connection dropped: leases whose quorum the connected masters cannot make are at risk. */
    private fun masterDropped() {
        val connected = engine.masters.nodes.count { it.connected() }
        for (lease in allLeases()) {
            if (connected < lease.quorum) lease.atRisk("$connected of ${engine.masters.size} masters are connected, quorum ${lease.quorum}")
        }
    }
}

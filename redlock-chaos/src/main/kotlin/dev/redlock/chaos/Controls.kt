package dev.redlock.chaos

import dev.redlock.coroutines.Redlock
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext

/**
 * Scripted runs that show the checker works: each breaks one Redlock assumption at the moment it
 * matters, so a second holder gets the lock while the first still believes it holds it, and the
 * checker must report the overlap ([mustFire]). The twins with [mustFire] false do the same with
 * the assumption kept, and must report nothing.
 *
 * The controls that make a master forget H's key run with the library's restart guard off, as
 * plain Redlock: the guard is the library's own defence against exactly these faults (a master
 * that comes back empty, or is flushed, does not vote for a lease time), and the guarded twins show
 * it keeping the checker silent.
 *
 * The bare-majority runs use 3 masters: holder H is cut off from master 2 by its proxy (a black
 * hole that lasts the whole run), so it holds the lock on masters 0 and 1 only; then master 1
 * loses H's key and contender C, which reaches every master, takes the lock on masters 1 and 2.
 */
enum class Control(val label: String, val mustFire: Boolean, val fault: FaultKind?, val guard: Boolean = true, val tracking: Boolean = false) {
    RESTART_AT_ONCE_BARE_MAJORITY("master 1 of H's bare majority restarted at once, empty (restart guard off)", true, FaultKind.RESTART_EMPTY_AT_ONCE, guard = false),
    FLUSHALL_BARE_MAJORITY("FLUSHALL on master 1 of H's bare majority (restart guard off)", true, FaultKind.FLUSHALL, guard = false),
    EVICTION_BARE_MAJORITY("H's key evicted (maxmemory, allkeys-lru) on master 1 of its bare majority (restart guard off)", true, FaultKind.EVICTION, guard = false),
    RESTART_AT_ONCE_GUARDED("twin: master 1 of H's bare majority restarted at once, empty, with the restart guard on", false, FaultKind.RESTART_EMPTY_AT_ONCE),
    FLUSHALL_GUARDED("twin: FLUSHALL on master 1 of H's bare majority, with the restart guard on", false, FaultKind.FLUSHALL),
    SLOW_CLOCK("H's clock runs at 0.9x; H uses its lease (no renewal) until its own clock says it ends", true, FaultKind.SLOW_CLOCK),
    RESTART_AFTER_LEASE_BARE_MAJORITY("twin: master 1 of H's bare majority killed, restarted after one lease", false, FaultKind.KILL_RESTART_AFTER_LEASE),
    NORMAL_CLOCK("twin: H's clock runs at real time; H uses its lease until it ends", false, null),

    /**
     * The deletion controls: an administrator deletes H's key on masters 0 and 1 of 3 while H's block
     * runs, and H's block ends on its own 400 ms later, before its next renewal (a third of the 2 s
     * lease after the grant). Without key tracking nothing tells H before then: the checker must
     * report the lease taken and not declared lost. With tracking, the twin, H is told at once.
     */
    ADMIN_DEL_UNTRACKED(
        "DEL of H's key on masters 0 and 1 of 3, key tracking off; H's block ends 400 ms later, before its next renewal",
        true, FaultKind.ADMIN_DEL_MAJORITY,
    ),
    ADMIN_DEL_TRACKED("twin: DEL of H's key on masters 0 and 1 of 3, key tracking on; H's block would end 400 ms later", false, FaultKind.ADMIN_DEL_MAJORITY, tracking = true),
}

/** A control run's result: it passed when the checker fired exactly as [Control.mustFire] says. */
class ControlResult(val control: Control, val report: CheckReport, val origin: Long) {
    /** Whether the checker reported an overlap, or (the deletion controls) a lease taken and not declared lost. */
    val fired: Boolean
        get() = report.violations.isNotEmpty() || report.deletionProblems.isNotEmpty()

    val passed: Boolean
        get() = fired == control.mustFire

    fun summary(): String =
        "control ${control.name} (${control.label}): ${if (fired) "checker FIRED" else "checker silent"}, " +
            "expected ${if (control.mustFire) "to fire" else "silence"} -> ${if (passed) "ok" else "WRONG"}\n  " + report.summary(origin)
}

/** Runs [control] on its own masters and returns what the checker made of it. */
fun runControl(control: Control, lease: Duration = 2.seconds, log: (String) -> Unit = ::println): ControlResult {
    quietLogs()
    val timing = Timing(
        lease = lease, wait = lease * 3, nodeTimeout = 100.milliseconds, retryDelay = 10.milliseconds,
        restartGuard = if (control.guard) null else Duration.ZERO,
        // Without key tracking, which finds several of these losses at once (a FLUSHALL, keys
        // expiring early by H's slow clock): the controls show that the checker fires when the
        // assumptions are broken, so H must not be saved by it. The deletion twin runs with it.
        keyTracking = control.tracking,
    )
    val history = History()
    val result = ChaosCluster(masters = 3).use { cluster ->
        Redlock(timing.config(cluster.uris(0)), clockFor(if (control == Control.SLOW_CLOCK) 0.9 else 1.0)).use { h ->
            Redlock(timing.config(cluster.uris(1)), clockFor(1.0)).use { c ->
                // Both connect before the clock starts: a first connect is no part of the experiment.
                runBlocking { warmUp(h, c) }
                val origin = System.nanoTime()
                runBlocking(Dispatchers.Default) {
                    if (control.fault == FaultKind.SLOW_CLOCK || control == Control.NORMAL_CLOCK) {
                        clockRun(control, h, c, timing, history)
                    } else if (control.fault == FaultKind.ADMIN_DEL_MAJORITY) {
                        deletionRun(control, cluster, h, timing, history)
                    } else {
                        bareMajorityRun(control, cluster, h, c, timing, history)
                    }
                }
                history.closeOpen()
                ControlResult(
                    control,
                    Checker(timing).check(
                        history.sections(), history.faults(), history.clientEvents(), deletions = history.deletions(),
                        untracked = if (control.tracking) emptySet() else setOf("H", "C"),
                    ),
                    origin,
                )
            }
        }
    }
    log(result.summary())
    return result
}

private suspend fun warmUp(vararg redlocks: Redlock) {
    for (r in redlocks) {
        r.acquire("warm-up", leaseTime = 1.seconds).release()
    }
}

private suspend fun bareMajorityRun(control: Control, cluster: ChaosCluster, h: Redlock, c: Redlock, timing: Timing, history: History) {
    val lease = timing.lease
    cluster.proxies[0][2].blackHole()
    try {
        coroutineScope {
            // H holds for up to two leases, renewing, unless it learns of the loss first.
            val holder = async { runSection(h, "H", "H", "x", timing, List(((lease * 2) / 20.milliseconds).toInt()) { 20.milliseconds }, 1.0, history) }
            while (history.openSectionOf("H") == null) {
                check(!holder.isCompleted) { "H did not get the lock on its bare majority: ${history.notAcquiredCounts()}" }
                delay(2.milliseconds)
            }
            val start = System.nanoTime()
            val note = withContext(Dispatchers.IO) {
                when (control.fault) {
                    FaultKind.RESTART_EMPTY_AT_ONCE -> cluster.fleet.restart(1).let { "" }
                    FaultKind.FLUSHALL -> cluster.fleet.command(1, "FLUSHALL").let { "" }
                    FaultKind.EVICTION -> evictLockKeys(cluster, 1, target = "${Timing.KEY_PREFIX}x")
                    FaultKind.KILL_RESTART_AFTER_LEASE -> {
                        cluster.fleet.kill(1)
                        Thread.sleep((lease * 1.2).inWholeMilliseconds)
                        cluster.fleet.restart(1)
                        "down ${(lease * 1.2).inWholeMilliseconds} ms"
                    }
                    else -> error("not a bare-majority control: $control")
                }
            }
            history.record(FaultEvent(control.fault!!, "master 1", start, System.nanoTime(), note))
            // C takes the lock as soon as it can and holds it for a little while.
            runSection(c, "C", "C", "x", timing, List(10) { 30.milliseconds }, 1.0, history)
            holder.await()
        }
    } finally {
        cluster.proxies[0][2].resetConnections()
        cluster.proxies[0][2].heal()
    }
}

/**
 * H holds "x" under `withRedlock`; 50 ms into its block an administrator deletes its key on masters
 * 0 and 1 (over connections opened beforehand, straight to the masters), and the block runs on for
 * 400 ms more in 10 ms steps unless it is cancelled. The next renewal is due a third of the lease
 * after the grant (667 ms with the controls' 2 s lease).
 */
private suspend fun deletionRun(control: Control, cluster: ChaosCluster, h: Redlock, timing: Timing, history: History) {
    AdminConnections(cluster).use { admin ->
        withContext(Dispatchers.IO) { admin.open(0 until cluster.masters) }
        coroutineScope {
            val holder = async { runSection(h, "H", "H", "x", timing, List(45) { 10.milliseconds }, 1.0, history) }
            while (history.openSectionOf("H") == null) {
                check(!holder.isCompleted) { "H did not get the lock: ${history.notAcquiredCounts()}" }
                delay(1.milliseconds)
            }
            // After H's own writes on masters 0 and 1 (the grant may come before the slower one's).
            check(withContext(Dispatchers.IO) { admin.awaitKey(listOf(0, 1), "${Timing.KEY_PREFIX}x", timing.lease.inWholeNanoseconds) }) {
                "H's key did not reach masters 0 and 1 within a lease"
            }
            delay(50.milliseconds)
            var start = 0L
            val replies = withContext(Dispatchers.IO) { admin.sendAll(listOf(0, 1), listOf("DEL", "${Timing.KEY_PREFIX}x")) { start = System.nanoTime() } }
            val end = System.nanoTime()
            val note = "DEL answered $replies; key tracking ${if (control.tracking) "on" else "off"}"
            history.record(Deletion(control.fault!!, listOf(0, 1), cluster.masters, start, start, end, "control", "x", "H", control.tracking, note))
            history.record(FaultEvent(control.fault, "masters [0, 1]", start, end, note))
            holder.await()
        }
    }
}

/**
 * H acquires without renewal and keeps working until its own clock says the lease is over; C
 * waits for the lock meanwhile and takes it when the keys expire on the masters.
 */
private suspend fun clockRun(control: Control, h: Redlock, c: Redlock, timing: Timing, history: History) {
    val rate = if (control == Control.SLOW_CLOCK) 0.9 else 1.0
    if (control == Control.SLOW_CLOCK) {
        val now = System.nanoTime()
        history.record(FaultEvent(FaultKind.SLOW_CLOCK, "H", now, now, "clock rate 0.9"))
    }
    val lease = h.acquire("x", leaseTime = timing.lease)
    val start = System.nanoTime()
    // Not under withRedlock: H watches its own clock, as a caller of acquire() does. Its validity,
    // on its own clock, is converted to real time: that is until when H believes it holds the lock.
    history.beginUnguarded("H", "H", "x", start, leaseFigures(lease, rate).first)
    coroutineScope {
        val contender = async { runSection(c, "C", "C", "x", timing, List(10) { 30.milliseconds }, 1.0, history) }
        while (lease.remaining > Duration.ZERO) delay(5.milliseconds)
        val end = System.nanoTime()
        val (validUntil, declared) = leaseFigures(lease, rate)
        history.ended("H", end, bodyCompleted = true, validUntil = validUntil, lossDeclaredAt = declared)
        lease.release()
        history.outcome("H", Outcome.COMPLETED, null, null)
        contender.await()
    }
}

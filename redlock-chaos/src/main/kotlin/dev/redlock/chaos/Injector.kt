package dev.redlock.chaos

import dev.redlock.core.internal.Script
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import dev.redlock.testing.ProxiedCommand
import java.time.Duration as JavaDuration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.nanoseconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.future.await
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull

/**
 * The child clients of a run: started up front, replaced when a fault kills one.
 *
 * @param replaceKilled whether a killed child is replaced by a fresh one (the soak does; a short
 *   run that kills its child last does not need to)
 */
class ChildPool(
    private val cluster: ChaosCluster,
    private val history: History,
    private val timing: Timing,
    private val resources: List<String>,
    private val seed: Long,
    private val replaceKilled: Boolean,
) : AutoCloseable {
    private val lock = Any()
    private val live = ArrayList<ChildClient>()
    private val all = ArrayList<ChildClient>()
    private var started = 0

    /** Starts [count] children and waits until all are ready. */
    fun start(count: Int) {
        val fresh = (0 until count).map { spawn() }
        fresh.forEach { it.awaitReady() }
    }

    private fun spawn(): ChildClient {
        synchronized(lock) {
            val index = started++
            val settings = WorkerSettings(
                name = "child$index",
                resources = resources,
                seed = seed * 7919 + index,
                timing = timing,
                minSectionMillis = CHILD_MIN_SECTION_MILLIS,
            )
            val child = ChildClient.start(settings, cluster.uris(index), history)
            live += child
            all += child
            return child
        }
    }

    fun live(): List<ChildClient> = synchronized(lock) { live.toList() }

    /** Kills [child] (SIGKILL) and, if so configured, starts a replacement. */
    fun kill(child: ChildClient) {
        synchronized(lock) { live -= child }
        child.kill()
        if (replaceKilled) spawn().awaitReady()
    }

    override fun close() {
        val children = synchronized(lock) { all.toList() }
        var failure: Throwable? = null
        // Stop them all first, then wait: they wind down in parallel.
        for (c in children) {
            try {
                c.close()
            } catch (e: Throwable) {
                failure?.addSuppressed(e) ?: run { failure = e }
            }
        }
        failure?.let { throw it }
    }

    private companion object {
        /** Children hold locks for at least this long, so that a fault aimed at a holder finds it holding. */
        const val CHILD_MIN_SECTION_MILLIS = 150L
    }
}

/**
 * Injects one fault at a time on a [ChaosCluster], records it in [history], and returns it.
 * Targets and durations are drawn from [random], so a run replays from its seed. Masters and
 * proxies busy with another fault are not chosen; a fault with no free target is skipped (null).
 *
 * [locals] are the run's clients in this JVM, for [FaultKind.CLOSE_CLIENT]. The script-reload
 * faults use a probe client of their own (created on first use, closed by [close]).
 */
class Injector(
    private val cluster: ChaosCluster,
    private val history: History,
    private val timing: Timing,
    private val children: ChildPool?,
    private val random: Random,
    private val locals: LocalClients? = null,
) : AutoCloseable {
    private val busy = Mutex()
    private val busyMasters = HashSet<Int>()
    private val busyProxies = HashSet<Pair<Int, Int>>()
    private val busyChildren = HashSet<String>()

    /** Whether a fault is using the probe clients' proxies (they set latencies there). */
    private var busyProbes = false
    private val lease = timing.lease
    private val quorum = cluster.masters / 2 + 1

    /** How many faults of the kinds that name things (probe resources, sections) ran so far. */
    private val serial = AtomicInteger()

    @Volatile private var probe: Redlock? = null

    /** The probe clients of the deletion faults, with key tracking (true) and without (false). */
    private val adminProbes = HashMap<Boolean, Redlock>()

    /** The administrator's connections of the deletion faults, opened on first use. */
    private val admin = AdminConnections(cluster)

    /** How many faults of each deletion kind ran: they take turns with tracking on and off, and through the timings. */
    private val adminTurns = HashMap<FaultKind, Int>()

    private suspend fun <T> io(block: () -> T): T = withContext(Dispatchers.IO) { block() }

    private fun now() = System.nanoTime()

    private fun between(lo: Double, hi: Double): Duration = lease * (lo + random.nextDouble() * (hi - lo))

    suspend fun inject(kind: FaultKind): FaultEvent? {
        val event = when (kind) {
            FaultKind.KILL_RESTART_AFTER_LEASE -> onMaster { m ->
                val start = now()
                io { cluster.fleet.kill(m) }
                val down = between(1.1, 1.6)
                delay(down)
                io { cluster.fleet.restart(m) }
                FaultEvent(kind, "master $m", start, now(), "down ${down.inWholeMilliseconds} ms")
            }
            FaultKind.RESTART_EMPTY_AT_ONCE -> onMaster { m ->
                val start = now()
                io { cluster.fleet.restart(m) }
                FaultEvent(kind, "master $m", start, now())
            }
            FaultKind.PAUSE_MASTER -> onMaster { m ->
                val start = now()
                io { cluster.fleet.pause(m) }
                val paused = between(0.2, 1.5)
                delay(paused)
                io { cluster.fleet.resume(m) }
                FaultEvent(kind, "master $m", start, now(), "paused ${paused.inWholeMilliseconds} ms")
            }
            FaultKind.LATENCY -> onProxies { sides, m ->
                val added = timing.nodeTimeout * (0.3 + random.nextDouble() * 2.7)
                val span = between(0.3, 1.5)
                val start = now()
                sides.forEach { cluster.proxies[it][m].latency = JavaDuration.ofNanos(added.inWholeNanoseconds) }
                delay(span)
                sides.forEach { cluster.proxies[it][m].latency = JavaDuration.ZERO }
                FaultEvent(kind, "sides $sides -> master $m", start, now(), "+${added.inWholeMilliseconds} ms each way for ${span.inWholeMilliseconds} ms")
            }
            FaultKind.BLACK_HOLE -> onProxies { sides, m ->
                val span = between(0.2, 1.5)
                val start = now()
                sides.forEach { cluster.proxies[it][m].blackHole() }
                delay(span)
                // TCP gives up on a long partition; a byte stream with a hole in it would not be TCP.
                sides.forEach {
                    cluster.proxies[it][m].resetConnections()
                    cluster.proxies[it][m].heal()
                }
                FaultEvent(kind, "sides $sides -> master $m", start, now(), "${span.inWholeMilliseconds} ms")
            }
            FaultKind.RESET -> onProxies { sides, m ->
                val start = now()
                sides.forEach { cluster.proxies[it][m].resetConnections() }
                FaultEvent(kind, "sides $sides -> master $m", start, now())
            }
            FaultKind.SCRIPT_FLUSH -> onMaster { m ->
                val start = now()
                io { cluster.fleet.command(m, "SCRIPT", "FLUSH") }
                FaultEvent(kind, "master $m", start, now())
            }
            FaultKind.FLUSHALL -> onMaster { m ->
                val start = now()
                io { cluster.fleet.command(m, "FLUSHALL") }
                FaultEvent(kind, "master $m", start, now())
            }
            FaultKind.EVICTION -> onMaster { m ->
                val start = now()
                val note = io { evictLockKeys(cluster, m, target = null) }
                FaultEvent(kind, "master $m", start, now(), note)
            }
            FaultKind.PAUSED_HOLDER -> onHolder { child, start ->
                val frozenFor = between(1.2, 2.0)
                delay(frozenFor - (now() - start).nanoseconds)
                io { child.thaw() }
                val end = now()
                history.record(ClientEvent(child.name, ClientEvent.Kind.FROZEN, start, end))
                FaultEvent(kind, child.name, start, end, "frozen ${frozenFor.inWholeMilliseconds} ms")
            }
            FaultKind.HOLDER_CRASH -> onHolder { child, _ ->
                // Killed while frozen: it cannot have left its section between the check and the kill.
                io { children!!.kill(child) }
                history.record(ClientEvent(child.name, ClientEvent.Kind.KILLED, child.killedAt, child.killedAt))
                FaultEvent(kind, child.name, child.killedAt, child.killedAt, "pid ${child.pid}")
            }
            FaultKind.RENEWAL_LATENCY, FaultKind.RENEWAL_BLACK_HOLE -> onProxyGroup { sides, masters -> renewalFault(kind, sides, masters) }
            FaultKind.CLOSE_CLIENT -> onLocalClient { client -> closeClient(client) }
            FaultKind.SCRIPT_FLUSH_PAUSED_MASTER, FaultKind.SCRIPT_FLUSH_SLOW_MASTER -> onMasterAndProxies { m -> scriptReloadFault(kind, m) }
            FaultKind.RESTART_GUARDED_LONG_LEASE -> onMasters(quorum) { masters -> restartAfterLongGrant(kind, masters) }
            FaultKind.ADMIN_DEL_MAJORITY, FaultKind.FLUSHALL_MAJORITY -> onMastersAndProbes(quorum) { masters -> adminFault(kind, masters) }
            FaultKind.ADMIN_DEL_ONE -> onMastersAndProbes(1) { masters -> adminFault(kind, masters) }
            // With one master there is no minority: nothing to inject.
            FaultKind.ADMIN_DEL_MINORITY ->
                if (cluster.masters == 1) null else onMastersAndProbes(cluster.masters - quorum) { masters -> adminFault(kind, masters) }
            FaultKind.SLOW_CLOCK -> throw IllegalArgumentException("SLOW_CLOCK is a client setting (Scenario.slowClients), not an injected event")
        }
        event?.let(history::record)
        return event
    }

    /**
     * Latency or a black hole on the proxies of [sides] to [masters], each starting exactly when
     * the next renewal (the extend script's EVALSHA) passes that proxy, and lasting about a lease
     * from the first one: renewals are then in flight, or failing, when validities run out.
     */
    private suspend fun renewalFault(kind: FaultKind, sides: List<Int>, masters: List<Int>): FaultEvent {
        val target = "sides $sides -> masters $masters"
        val extend = Script.EXTEND.sha()
        val added = timing.nodeTimeout * (0.5 + random.nextDouble() * 3.5)
        val span = between(0.7, 1.2)
        val proxies = sides.flatMap { side -> masters.map { cluster.proxies[side][it] } }
        val armedAt = now()
        val armed = proxies.map { p ->
            if (kind == FaultKind.RENEWAL_LATENCY) {
                p.latencyFromNextCommand(JavaDuration.ofNanos(added.inWholeNanoseconds)) { it.isEvalSha(extend) }
            } else {
                p.blackHoleFromNextCommand { it.isEvalSha(extend) }
            }
        }
        // Renewals go out every lease/3 for every section still running; a few leases is plenty.
        val fired = withTimeoutOrNull(lease * 4) { CompletableFuture.anyOf(*armed.map { it.fired }.toTypedArray()).await() } != null
        if (!fired) {
            armed.forEach { it.cancel() }
            return FaultEvent(kind, target, armedAt, now(), "no renewal passed within 4 leases")
        }
        val start = armed.filter { it.isFired }.minOf { it.firedAtNanos }
        delay(span - (now() - start).nanoseconds)
        // A fault cancelled in time never acted; one that fired meanwhile is undone like the others.
        val acted = armed.zip(proxies).filter { (a, _) -> !a.cancel() }.map { it.second }
        for (p in acted) {
            if (kind == FaultKind.RENEWAL_LATENCY) {
                p.latency = JavaDuration.ZERO
            } else {
                p.resetConnections()
                p.heal()
            }
        }
        val what = if (kind == FaultKind.RENEWAL_LATENCY) "+${added.inWholeMilliseconds} ms each way" else "black hole"
        return FaultEvent(kind, target, start, now(), "$what from the next renewal on ${acted.size} of ${proxies.size} proxies, for ${span.inWholeMilliseconds} ms")
    }

    /**
     * Closes [client]'s `Redlock` while it runs a section of its own on a resource nobody else
     * uses (a probe section, two leases long) and two more calls of it wait for that resource,
     * besides whatever its worker is doing. Records what `close()` did in a [CloseRecord]; the
     * client is replaced by a fresh one afterwards.
     */
    private suspend fun closeClient(client: LocalClients.Client): FaultEvent = coroutineScope {
        val index = serial.incrementAndGet()
        val redlock = client.redlock
        val resource = "close-${client.name}-$index"
        val probeId = "${client.name}#close$index"
        val steps = List(((lease * 2) / PROBE_STEP).toInt()) { PROBE_STEP }
        val holder = async { runSection(redlock, probeId, client.name, resource, timing, steps, client.settings.clockRate, history) }
        withTimeoutOrNull(lease * 2) { while (!history.isRunning(probeId) && !holder.isCompleted) delay(1.milliseconds) }
        val waiters = List(2) { async { waitFor(redlock, resource) } }
        // A waiter is waiting once its first attempt was refused: one round trip.
        delay(WAITERS_SETTLE)
        locals!!.retire(client)
        val start = now()
        io { redlock.close() }
        val end = now()
        val key = "${Timing.KEY_PREFIX}$resource"
        val keysLeft = io { (0 until cluster.masters).count { m -> runCatching { cluster.fleet.command(m, "EXISTS", key) == 1L }.getOrDefault(false) } }
        val callAfter = withTimeoutOrNull(lease) {
            try {
                redlock.tryAcquire("after-close-$index")?.release()
                "acquired"
            } catch (e: CancellationException) {
                throw e
            } catch (e: Exception) {
                e.javaClass.simpleName
            }
        } ?: "no answer within a lease"
        val bound = timing.wait + lease * 3
        withTimeoutOrNull(bound) { waiters.joinAll() }
        val waited = waiters.map { w -> if (w.isCompleted) w.await() else "still waiting ${bound.inWholeMilliseconds} ms after close()" to now() }
        waiters.forEach { it.cancel() }
        if (withTimeoutOrNull(bound) { holder.join() } == null) holder.cancel()
        locals.replace(client)
        history.record(CloseRecord(client.name, start, end, waited, callAfter, keysLeft, probeId))
        FaultEvent(FaultKind.CLOSE_CLIENT, client.name, start, end, "close() returned after ${ms(end - start)}")
    }

    /** One call that waits for [resource] on [redlock]: how it ended (simple class name, or `acquired`) and when. */
    private suspend fun waitFor(redlock: Redlock, resource: String): Pair<String, Long> =
        try {
            redlock.withRedlock(resource, leaseTime = lease, waitTime = timing.wait) { }
            "acquired" to now()
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            e.javaClass.simpleName to now()
        }

    /**
     * SCRIPT FLUSH on master [m], and every script but the acquire script loaded again at once (as
     * the other clients' calls would do); then a probe client, on proxies of its own, makes one
     * attempt on a resource nobody else uses, and exactly when its reload of the acquire script
     * passes, the master is stopped (SIGSTOP) or every proxy to it slowed down, for a while. The
     * probe's call to [m] times out meanwhile, and its release goes out (at once if the attempt
     * failed, after two node timeouts if the other masters granted it); a reloaded acquire that
     * runs after that release leaves a key held by nobody, found once all is over: an [OrphanKey]. So that the
     * probe is the first to find the acquire script gone, the other clients reach [m] 50 ms late
     * from just before the flush until the reload passes. The other clients' own reloads meet the
     * stopped or slow master as well.
     */
    private suspend fun scriptReloadFault(kind: FaultKind, m: Int): FaultEvent = coroutineScope {
        val index = serial.incrementAndGet()
        val probe = probe()
        val paused = kind == FaultKind.SCRIPT_FLUSH_PAUSED_MASTER
        val span = if (paused) (timing.nodeTimeout * (2.0 + random.nextDouble() * 4.0)).coerceAtMost(lease * 0.8) else between(0.3, 0.8)
        val added = timing.nodeTimeout * (1.5 + random.nextDouble() * 2.5)
        val sideProxies = (0 until cluster.sides).map { cluster.proxies[it][m] }
        val probeProxy = cluster.probeProxies[m]
        val holdBack = JavaDuration.ofMillis(HOLD_BACK.inWholeMilliseconds)
        val start = now()
        sideProxies.forEach { it.latency = holdBack }
        io {
            cluster.fleet.command(m, "SCRIPT", "FLUSH")
            for (script in RELOADED_AT_ONCE) cluster.fleet.command(m, "SCRIPT", "LOAD", script.text())
        }
        // The reload: the acquire script's text on its way to the master (SCRIPT LOAD, or EVAL should the library send it so).
        val acquireText = Script.ACQUIRE.text()
        val shortest = minOf(acquireText.length, ProxiedCommand.PART_LIMIT)
        val armed = probeProxy.onNextCommand({ c -> c.arguments.any { it.length >= shortest && acquireText.startsWith(it) } }) {
            if (paused) {
                cluster.fleet.pause(m)
            } else {
                (sideProxies + probeProxy).forEach { it.latency = JavaDuration.ofNanos(added.inWholeNanoseconds) }
            }
        }
        val resource = "probe-$index"
        val attempt = async {
            try {
                // Granted by a quorum without [m]: held past [m]'s node timeout, as a short section would be.
                probe.tryAcquire(resource)?.let { lease ->
                    delay(timing.nodeTimeout * 2)
                    lease.release()
                    "acquired"
                } ?: "refused"
            } catch (e: CancellationException) {
                throw e
            } catch (e: Exception) {
                e.javaClass.simpleName
            }
        }
        withTimeoutOrNull(lease) { armed.fired.await() }
        armed.cancel()
        // Stopped: the others' commands wait at the master. Not fired: nothing more to hold back.
        if (paused || !armed.isFired) sideProxies.forEach { it.latency = JavaDuration.ZERO }
        val note: String
        if (armed.isFired) {
            delay(span - (now() - armed.firedAtNanos).nanoseconds)
            if (paused) io { cluster.fleet.resume(m) } else (sideProxies + probeProxy).forEach { it.latency = JavaDuration.ZERO }
            note = (if (paused) "paused" else "+${added.inWholeMilliseconds} ms each way") + " for ${span.inWholeMilliseconds} ms from the probe's reload"
        } else {
            note = "no script reload from the probe reached the master within a lease"
        }
        val end = now()
        val outcome = withTimeoutOrNull(timing.wait + lease) { attempt.await() } ?: "probe still running".also { attempt.cancel() }
        // Whatever the probe's attempt sent has been answered or given up by now; its release too.
        delay(timing.nodeTimeout * 2 + ORPHAN_SETTLE)
        val key = "${Timing.KEY_PREFIX}$resource"
        for (master in 0 until cluster.masters) {
            val pttl = io { runCatching { cluster.fleet.command(master, "PTTL", key) as Long }.getOrDefault(-2L) }
            if (pttl != -2L) history.record(OrphanKey(master, resource, now(), pttl, "after $kind on master $m; the probe's attempt: $outcome"))
        }
        FaultEvent(kind, "master $m", start, end, "$note; probe $outcome")
    }

    /** The probe client of the script-reload faults: proxies of its own, connected and scripts loaded before first use. */
    private suspend fun probe(): Redlock {
        probe?.let { return it }
        val created = io { Redlock(timing.config(cluster.probeUris())) }
        probe = created
        runCatching { created.tryAcquire("probe-warm-up")?.release() }
        return created
    }

    /**
     * An administrator's deletion on [masters]: `DEL` of the lock key of a probe section ([FaultKind.ADMIN_DEL_MAJORITY],
     * [FaultKind.ADMIN_DEL_MINORITY]), or `FLUSHALL` ([FaultKind.FLUSHALL_MAJORITY]), sent over connections opened
     * beforehand, straight to the masters. The probe section runs on a resource nobody else uses, on a
     * client of its own (with key tracking or without, taking turns), through the probe proxies.
     *
     * When, also taking turns (see [Deletion.timing]): `renewal`, armed on the probe's next renewal
     * (the extend script, with a lease time) passing the proxy to the first of [masters]: the deletion
     * runs on all of them before that renewal reaches that master, while its copies to the others are
     * on their way; `split` (two masters deleted on or more, and one left alone): the proxies to the
     * masters left alone are slowed (0.3 node timeouts each way), the first master is deleted on, and
     * the others 2 ms after the next extend call of the probe (with tracking, the check the first
     * deletion caused; without, the next renewal) passed on its way to them: that call has read the
     * keys there before they went, and waits for the slow masters while the next changes come in;
     * `random`, anywhere in the probe's first lease.
     *
     * Then, on a majority, the probe's section must end with the loss; on a minority it must go on
     * and renew: the fault waits (at most two leases) for the end, or for a renewal that began after
     * the deletion, and then lets the section complete.
     */
    private suspend fun adminFault(kind: FaultKind, masters: List<Int>): FaultEvent = coroutineScope {
        val turn = synchronized(adminTurns) { (adminTurns[kind] ?: 0).also { adminTurns[kind] = it + 1 } }
        val tracked = turn % 2 == 0
        val left = (0 until cluster.masters).filter { it !in masters }
        val modes = if (masters.size >= 2 && left.isNotEmpty()) listOf("renewal", "split", "random") else listOf("renewal", "random")
        val mode = modes[(turn / 2) % modes.size]
        val index = serial.incrementAndGet()
        val probe = adminProbe(tracked)
        val client = probeName(tracked)
        val resource = "admin-$index"
        val key = "${Timing.KEY_PREFIX}$resource"
        val id = "$client#$index"
        val command = if (kind == FaultKind.FLUSHALL_MAJORITY) listOf("FLUSHALL") else listOf("DEL", key)
        // Only the masters of this fault: the others may be down (another fault), and are not written to.
        io { synchronized(admin) { admin.open(masters) } }
        val done = AtomicBoolean(false)
        val steps = List(((lease * 4) / PROBE_STEP).toInt()) { PROBE_STEP }
        val section = async { runSection(probe, id, client, resource, timing(tracked), steps, 1.0, history, stopWhen = { done.get() }) }
        var start = -1L
        var at = -1L
        var answered = -1L
        val extend = Script.EXTEND.sha()
        fun leaseArgument(c: ProxiedCommand): String? = c.argument(1)?.toIntOrNull()?.let { c.argument(it + 2) }
        fun isExtendOfProbe(c: ProxiedCommand, renewalOnly: Boolean): Boolean =
            c.isEvalSha(extend) && key in c.arguments && (!renewalOnly || leaseArgument(c).let { it != null && it != "0" })
        fun delete(on: List<Int>, first: Boolean) = synchronized(admin) {
            admin.sendAll(on, command) {
                val now = now()
                if (first) start = now
                at = now
            }
            answered = now()
        }
        val slowed = ArrayList<dev.redlock.testing.TcpProxy>()
        var note: String
        try {
            withTimeoutOrNull(timing.wait + lease) { while (!history.isRunning(id) && !section.isCompleted) delay(1.milliseconds) }
            val began = history.openSectionOf(client)?.second
            // The deletion must come after the probe's own write on those masters, or that write re-creates the key.
            val written = began != null && io { synchronized(admin) { admin.awaitKey(masters, key, lease.inWholeNanoseconds) } }
            if (began == null) {
                note = "the probe did not get its lock"
            } else if (!written) {
                note = "the probe's key was not on every one of masters $masters within a lease: nothing deleted"
            } else {
                note = when (mode) {
                    "renewal" -> {
                        val armed = cluster.probeProxies[masters[0]].onNextCommand({ isExtendOfProbe(it, renewalOnly = true) }) { delete(masters, first = true) }
                        val fired = withTimeoutOrNull(lease * 2) { armed.fired.await() } != null
                        if (!fired && armed.cancel()) "no renewal of the probe passed within 2 leases" else "as the probe's renewal passed on its way to master ${masters[0]}"
                    }
                    "split" -> {
                        val slow = JavaDuration.ofNanos((timing.nodeTimeout * 0.3).inWholeNanoseconds)
                        for (m in left) {
                            cluster.probeProxies[m].latency = slow
                            slowed += cluster.probeProxies[m]
                        }
                        // Armed before the first deletion: with tracking, the check it causes may pass at once.
                        val armed = cluster.probeProxies[masters[1]].onNextCommand({ isExtendOfProbe(it, renewalOnly = false) }) { }
                        io { delete(masters.take(1), first = true) }
                        val fired = withTimeoutOrNull(lease * 2) { armed.fired.await() } != null
                        if (!fired && armed.cancel()) {
                            io { delete(masters.drop(1), first = false) }
                            "master ${masters[0]} first; no extend call of the probe passed within 2 leases, the others then"
                        } else {
                            val passed = armed.firedAtNanos
                            val what = if (leaseArgument(armed.fired.await()) == "0") "check" else "renewal"
                            delay(SPLIT_AFTER - (now() - passed).nanoseconds)
                            io { delete(masters.drop(1), first = false) }
                            "master ${masters[0]} first, the others ${ms(at - passed)} after the probe's next extend call (a $what) " +
                                "passed to master ${masters[1]}, ${ms(at - start)} after the first; masters $left slowed by ${slow.toMillis()} ms each way"
                        }
                    }
                    else -> {
                        delay(lease * random.nextDouble())
                        io { delete(masters, first = true) }
                        "${ms(start - began)} into the probe's section"
                    }
                }
                val deleted = answered
                val majority = masters.size >= quorum
                // On a majority the section ends with the loss; on a minority it renews after the deletion, then completes.
                val seen = withTimeoutOrNull(lease * 2) {
                    while (history.isRunning(id)) {
                        val valid = history.validUntilOf(id)
                        if (!majority && valid != null && validityStart(valid) > deleted) break
                        delay(2.milliseconds)
                    }
                }
                if (seen == null) note += "; the probe neither ended nor renewed within 2 leases after the deletion"
            }
        } finally {
            slowed.forEach { it.latency = JavaDuration.ZERO }
            done.set(true)
        }
        val outcome: Any = withTimeoutOrNull(timing.wait + lease * 2) { section.await() ?: "not acquired" } ?: "still running".also { section.cancel() }
        val end = now()
        if (start >= 0) {
            history.record(Deletion(kind, masters, cluster.masters, start, at, answered, mode, if (kind == FaultKind.FLUSHALL_MAJORITY) null else resource, id, tracked, note))
        }
        FaultEvent(kind, "masters $masters", if (start >= 0) start else end, end,
            "$mode, ${if (tracked) "tracking" else "no tracking"}: $note; probe $outcome")
    }

    /** When the call that set validity [validUntil] began (a lease of the config's lease time). */
    private fun validityStart(validUntil: Long): Long = validUntil - lease.inWholeNanoseconds + timing.driftNanos(lease.inWholeNanoseconds)

    private fun probeName(tracked: Boolean) = if (tracked) "admin-tracked" else "admin-untracked"

    private fun timing(tracked: Boolean) = timing.copy(keyTracking = tracked)

    /** The probe client of the deletion faults with key tracking [tracked]: proxies of its own, connected before first use. */
    private suspend fun adminProbe(tracked: Boolean): Redlock {
        synchronized(adminProbes) { adminProbes[tracked] }?.let { return it }
        val created = io { Redlock(timing(tracked).config(cluster.probeUris())) }
        synchronized(adminProbes) { adminProbes[tracked] = created }
        history.tracking(probeName(tracked), tracked)
        runCatching { created.tryAcquire("admin-warm-up")?.release() }
        return created
    }

    /**
     * Waits (up to a few leases) for a section that asked for a per-call lease longer than the
     * restart guard to begin, and right then restarts [masters] (a majority) at once, empty: the
     * guard keeps their votes out for its own length only, shorter than that lease. Restarts
     * anyway if no such section begins (the library refuses such leases at the call).
     */
    private suspend fun restartAfterLongGrant(kind: FaultKind, masters: List<Int>): FaultEvent {
        val longer = (lease * 2).inWholeNanoseconds
        val before = history.runningWithLease(longer).map { it.first }.toSet()
        val refusedBefore = history.refusals
        var refused = false
        val granted = withTimeoutOrNull(lease * 3) {
            var found: Triple<String, String, Long>? = null
            while (found == null && !refused) {
                found = history.runningWithLease(longer).firstOrNull { it.first !in before }
                // Such leases are refused at the call: restart now, the point is then the others' leases.
                refused = found == null && history.refusals > refusedBefore
                if (found == null && !refused) delay(1.milliseconds)
            }
            found
        }
        val start = now()
        io {
            val failures = java.util.concurrent.ConcurrentLinkedQueue<Throwable>()
            masters.map { m -> kotlin.concurrent.thread(name = "chaos-restart-$m") { runCatching { cluster.fleet.restart(m) }.onFailure { failures += it } } }
                .forEach { it.join() }
            failures.firstOrNull()?.let { throw it }
        }
        val note = granted?.let { (id, client, at) -> "${ms(start - at)} after $id ($client) began under a per-call lease beyond the guard" }
            ?: if (refused) "leases beyond the guard were refused at the call" else "no section under a lease beyond the guard began within 3 leases"
        return FaultEvent(kind, "masters $masters", start, now(), note)
    }

    private suspend fun onMaster(action: suspend (Int) -> FaultEvent): FaultEvent? {
        val m = busy.withLock {
            val free = (0 until cluster.masters).filter { it !in busyMasters }
            if (free.isEmpty()) return null
            free[random.nextInt(free.size)].also { busyMasters += it }
        }
        try {
            return action(m)
        } finally {
            busy.withLock { busyMasters -= m }
        }
    }

    /** [count] free masters at once (all of them busy for the fault), or null if not that many are free. */
    private suspend fun onMasters(count: Int, action: suspend (List<Int>) -> FaultEvent): FaultEvent? {
        val chosen = busy.withLock {
            val free = (0 until cluster.masters).filter { it !in busyMasters }
            if (free.size < count) return null
            free.shuffled(random).take(count).sorted().also { busyMasters += it }
        }
        try {
            return action(chosen)
        } finally {
            busy.withLock { busyMasters -= chosen.toSet() }
        }
    }

    /** [count] free masters (busy for the fault), and the probe clients' proxies; null if not free. */
    private suspend fun onMastersAndProbes(count: Int, action: suspend (List<Int>) -> FaultEvent): FaultEvent? {
        val chosen = busy.withLock {
            val free = (0 until cluster.masters).filter { it !in busyMasters }
            if (free.size < count || busyProbes) return null
            busyProbes = true
            free.shuffled(random).take(count).sorted().also { busyMasters += it }
        }
        try {
            return action(chosen)
        } finally {
            busy.withLock {
                busyMasters -= chosen.toSet()
                busyProbes = false
            }
        }
    }

    /** A free master with every proxy in front of it free as well. */
    private suspend fun onMasterAndProxies(action: suspend (Int) -> FaultEvent): FaultEvent? {
        val m = busy.withLock {
            if (busyProbes) return null
            val free = (0 until cluster.masters).filter { m -> m !in busyMasters && (0 until cluster.sides).none { (it to m) in busyProxies } }
            if (free.isEmpty()) return null
            free[random.nextInt(free.size)].also { m ->
                busyMasters += m
                busyProbes = true
                (0 until cluster.sides).forEach { busyProxies += it to m }
            }
        }
        try {
            return action(m)
        } finally {
            busy.withLock {
                busyMasters -= m
                busyProbes = false
                (0 until cluster.sides).forEach { busyProxies -= it to m }
            }
        }
    }

    /**
     * The proxies of one side, or both, to several masters: a majority more often than not (a
     * fault on a minority leaves a quorum that renews), or the only one.
     */
    private suspend fun onProxyGroup(action: suspend (List<Int>, List<Int>) -> FaultEvent): FaultEvent? {
        val (sides, masters) = busy.withLock {
            val count = if (random.nextDouble() < 0.7) quorum else random.nextInt(1, quorum + 1)
            val masters = (0 until cluster.masters).shuffled(random).take(count).sorted()
            val sides = if (random.nextDouble() < 0.3) (0 until cluster.sides).toList() else listOf(random.nextInt(cluster.sides))
            val pairs = sides.flatMap { s -> masters.map { s to it } }
            if (pairs.any { it in busyProxies }) return null
            busyProxies += pairs
            sides to masters
        }
        try {
            return action(sides, masters)
        } finally {
            busy.withLock { sides.forEach { s -> masters.forEach { busyProxies -= s to it } } }
        }
    }

    /**
     * A client in this JVM for [action], preferably one inside a section (waiting up to a lease
     * for one); null if the run has none.
     */
    private suspend fun onLocalClient(action: suspend (LocalClients.Client) -> FaultEvent): FaultEvent? {
        val pool = locals ?: return null
        val deadline = now() + lease.inWholeNanoseconds
        var client: LocalClients.Client? = null
        while (client == null) {
            val live = busy.withLock { pool.live().filter { it.name !in busyChildren } }
            if (live.isEmpty()) return null
            client = live.firstOrNull { history.openSectionOf(it.name) != null } ?: if (now() > deadline) live[random.nextInt(live.size)] else null
            if (client == null) delay(2.milliseconds)
        }
        busy.withLock { busyChildren += client.name }
        try {
            return action(client)
        } finally {
            busy.withLock { busyChildren -= client.name }
        }
    }

    /** One master's proxies for one side, or for both sides (the master is then cut off from everyone). */
    private suspend fun onProxies(action: suspend (List<Int>, Int) -> FaultEvent): FaultEvent? {
        val (sides, m) = busy.withLock {
            val m = random.nextInt(cluster.masters)
            val sides = if (random.nextDouble() < 0.3) (0 until cluster.sides).toList() else listOf(random.nextInt(cluster.sides))
            if (sides.any { (it to m) in busyProxies }) return null
            sides.forEach { busyProxies += it to m }
            sides to m
        }
        try {
            return action(sides, m)
        } finally {
            busy.withLock { sides.forEach { busyProxies -= it to m } }
        }
    }

    /**
     * Waits (up to a few leases) for a child that holds a lock, freezes it (SIGSTOP), makes sure it
     * still holds it once the lines it wrote before stopping are read, and acts on it, frozen. A
     * child that turns out to have left its section is continued at once (a short freeze, recorded)
     * and the search goes on.
     */
    private suspend fun onHolder(action: suspend (ChildClient, Long) -> FaultEvent): FaultEvent? {
        val pool = children ?: return null
        // Patient: after a frozen or restarted holder, the child clients may need several leases
        // before one of them holds a section again (seen once at N = 5 after five leases).
        val deadline = now() + (lease * 15).inWholeNanoseconds
        while (now() < deadline) {
            val child = busy.withLock {
                pool.live().firstOrNull { it.name !in busyChildren && it.isAlive && history.openSectionOf(it.name) != null }
                    ?.also { busyChildren += it.name }
            }
            if (child == null) {
                delay(2.milliseconds)
                continue
            }
            try {
                val seen = history.openSectionOf(child.name)
                val frozenAt = now()
                io { child.freeze() }
                delay(DRAIN)
                if (seen != null && history.openSectionOf(child.name) == seen) return action(child, frozenAt)
                io { child.thaw() }
                history.record(ClientEvent(child.name, ClientEvent.Kind.FROZEN, frozenAt, now()))
            } finally {
                busy.withLock { busyChildren -= child.name }
            }
        }
        return null
    }

    /** Closes the probe clients and the administrator's connections, those that were made. */
    override fun close() {
        probe?.let { runCatching { it.close() } }
        adminProbes.values.forEach { runCatching { it.close() } }
        runCatching { synchronized(admin) { admin.close() } }
    }

    private companion object {
        /** Time for the parent to read what a child wrote just before it stopped. */
        val DRAIN: Duration = 30.milliseconds

        /** The probe section of a close() fault checks in this often. */
        val PROBE_STEP: Duration = 25.milliseconds

        /** Time for the waiters of a close() fault to reach their wait. */
        val WAITERS_SETTLE: Duration = 40.milliseconds

        /** After the probe's call and its release have been answered: time for anything later to land. */
        val ORPHAN_SETTLE: Duration = 100.milliseconds

        /** In a split deletion: from the probe's extend call passing the proxy to the deletion on the masters it read. */
        val SPLIT_AFTER: Duration = 2.milliseconds

        /** How late the other clients reach a master while a probe's reload is set up. */
        val HOLD_BACK: Duration = 50.milliseconds

        /** The scripts the other clients would have loaded again before the probe's acquire reloads its own. */
        val RELOADED_AT_ONCE: List<Script> = listOf(
            Script.EXTEND, Script.RELEASE, Script.FENCE, Script.RW_ACQUIRE, Script.SEMAPHORE_ACQUIRE, Script.SHARED_EXTEND, Script.SHARED_RELEASE,
        )
    }
}

/**
 * Forces evictions on master [m]: `allkeys-lru` with `maxmemory` just above what it uses, then
 * filler values (never under the lock prefix) until the [target] key is gone, or, without a
 * target, until no lock key is left or enough was written. The limit is lifted and the fillers
 * deleted afterwards. Returns what happened.
 */
fun evictLockKeys(cluster: ChaosCluster, m: Int, target: String?): String {
    val fleet = cluster.fleet
    fun info(section: String, field: String): Long =
        (fleet.command(m, "INFO", section) as String).lineSequence().first { it.startsWith("$field:") }.substringAfter(':').trim().toLong()
    val lockBefore = lockKeys(fleet, m).size
    val evictedBefore = info("stats", "evicted_keys")
    val used = info("memory", "used_memory")
    fleet.command(m, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    fleet.command(m, "CONFIG", "SET", "maxmemory", (used + 256 * 1024).toString())
    val payload = "x".repeat(32 * 1024)
    var written = 0
    try {
        while (written < 4_000) {
            try {
                fleet.command(m, "SET", "filler:$written", payload, "PX", "10000")
            } catch (e: dev.redlock.testing.RedisFleetException) {
                // Nothing evictable left that frees enough (client buffers count too): the
                // master refuses writes, which is as far as this fault can go.
                if (e.message?.contains("OOM") == true) break else throw e
            }
            written++
            if (written % 8 == 0) {
                val gone = if (target != null) fleet.command(m, "EXISTS", target) == 0L else lockKeys(fleet, m).isEmpty()
                if (gone && (target != null || written >= 64)) break
            }
        }
    } finally {
        fleet.command(m, "CONFIG", "SET", "maxmemory", "0")
        for (chunk in (0 until written).chunked(500)) {
            fleet.command(m, "DEL", *chunk.map { "filler:$it" }.toTypedArray())
        }
    }
    val evicted = info("stats", "evicted_keys") - evictedBefore
    return "$evicted key(s) evicted after $written filler write(s); lock keys $lockBefore before"
}

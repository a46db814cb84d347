package dev.redlock.benchmarks

import dev.redlock.coroutines.withRedlock
import dev.redlock.testing.RedisClusterFleet
import dev.redlock.testing.RedisFleet
import java.nio.file.Files
import java.nio.file.Path
import java.util.Locale
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration.Companion.minutes
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Semaphore
import kotlinx.coroutines.withTimeoutOrNull

/** Where scenario 10 ran a phase: scenario 3's N = 1 on one standalone server, or one cluster master of some shards. */
enum class Topology(val shards: Int, val label: String) {
    SERVER(0, "one server"),
    SHARD_1(1, "cluster, 1 shard"),
    SHARDS_3(3, "cluster, 3 shards"),
}

/** One phase of scenario 10: scenario 3's loop for one implementation on one topology. */
data class ClusterPhase(
    val topology: Topology,
    val round: Int,
    val throughput: Throughput,
    /** CPU time (user + system) of every primary over the measured window, per operation, in microseconds. */
    val serverCpuMicrosPerOp: Double,
    /** Each primary's CPU over the measured window, as a share of one core. */
    val primaryCores: List<Double>,
    /** Each primary's share of the commands run in the window (those inside scripts included). */
    val commandShares: List<Double>,
    /** The 1-minute load average as the measured window ended. */
    val loadAtEnd: Double,
    /** The first lock + release of the freshly opened client, alone, before the warm-up, in milliseconds. */
    val firstLockMillis: Double,
)

/** Scenario 10's held part: ours holding many locks in `withRedlock` on one topology, over two renewal rounds. */
data class ClusterHeld(
    val topology: Topology,
    val locks: Int,
    /** Locks taken (each counted when its block started). */
    val held: Int,
    /** Locks lost, or not taken, before every holder had left its block: 0 on a machine that is not overloaded. */
    val failures: Int,
    val seconds: Double,
    /** Extend script calls (`EVALSHA`) per second on each primary. */
    val scriptsPerSecond: List<Double>,
    /** Keys renewed (`PEXPIRE` calls, inside the scripts) per second, all primaries. */
    val keysPerSecond: Double,
    /** This process's CPU over the window, as a share of one core. */
    val clientCores: Double,
    /** Every primary's CPU over the window, as a share of one core. */
    val serverCores: Double,
) {
    val scripts: Double get() = scriptsPerSecond.sum()
    val keysPerScript: Double get() = keysPerSecond / scripts
    val clientMicrosPerKey: Double get() = clientCores * 1e6 / keysPerSecond
    val serverMicrosPerKey: Double get() = serverCores * 1e6 / keysPerSecond
}

/** Scenario 10: every phase, with what is needed to read them. */
data class ClusterScaling(
    val phases: List<ClusterPhase>,
    val held: List<ClusterHeld>,
    val replicasPerShard: Int,
    val serverVersion: String,
    /** `/proc/loadavg`'s three averages before the first phase and after the last. */
    val loadBefore: String,
    val loadAfter: String,
    val seconds: Double,
)

/**
 * Scenario 10: scenario 3 (64 acquirers over 10 000 resources, lock and release at once) on one
 * cluster master of 1 shard and of 3 shards (`RedisClusterFleet`, no replicas), next to scenario
 * 3's N = 1 on one standalone server of [fleet] measured in the same run. Ours is given the
 * cluster as one `redis-cluster://` master; Redisson runs in its cluster mode (`useClusterServers`);
 * the baseline sends `SET NX PX` and its compare-and-delete through one Lettuce cluster connection.
 * Both clusters run for the whole scenario, and each round measures every implementation on the
 * three topologies one after the other, so that a drift of the machine's load falls on all three alike.
 */
class ClusterScenario(
    private val fleet: RedisFleet,
    private val scenarios: Scenarios,
    private val profile: Profile,
    private val log: (String) -> Unit,
) {
    suspend fun run(): ClusterScaling {
        val started = now()
        val loadBefore = loadAverages()
        val phases = ArrayList<ClusterPhase>()
        start(1).use { one ->
            start(3).use { three ->
                // The harness's warm-up ran on standalone masters only: the cluster paths of the
                // three clients are compiled here, so that round 1 does not pay for their JIT.
                log("scenario 10, warming up every implementation on both clusters")
                for (impl in Impl.entries) {
                    for (cluster in listOf(one, three)) {
                        val subject = openClusterSubject(impl, cluster)
                        try {
                            coroutineScope {
                                val stopAt = now() + profile.jitWarmup.inWholeNanoseconds
                                repeat(16) { worker ->
                                    launch {
                                        var i = 0
                                        while (now() < stopAt) subject.locked("warm-$worker-${i++ % 100}", worker + 1L) {}
                                    }
                                }
                            }
                        } finally {
                            subject.close()
                            cluster.flushAll()
                            cluster.markNeverGranted()
                        }
                    }
                }
                for (round in 1..profile.clusterRounds) {
                    for (impl in Impl.entries) {
                        log("scenario 10, round $round, ${impl.label}, one server")
                        phases += measure(Topology.SERVER, round, openSubject(impl, listOf(fleet.uri(0)), LEASE), listOf(0), fleet::command) {
                            fleet.flushAll()
                        }
                        for ((topology, cluster) in listOf(Topology.SHARD_1 to one, Topology.SHARDS_3 to three)) {
                            log("scenario 10, round $round, ${impl.label}, ${topology.label}")
                            val primaries = (0 until cluster.shards).map(cluster::primary)
                            phases += measure(topology, round, openClusterSubject(impl, cluster), primaries, cluster::command) {
                                cluster.flushAll()
                                cluster.markNeverGranted()
                            }
                        }
                    }
                }
                val held = ArrayList<ClusterHeld>()
                log("scenario 10, held locks, one server")
                held += hold(Topology.SERVER, fleet.uri(0), listOf(0), fleet::command) { fleet.flushAll() }
                log("scenario 10, held locks, cluster, 3 shards")
                held += hold(Topology.SHARDS_3, three.masterUri(), (0 until three.shards).map(three::primary), three::command) {
                    three.flushAll()
                    three.markNeverGranted()
                }
                return ClusterScaling(phases, held, REPLICAS, three.serverVersion, loadBefore, loadAverages(), (now() - started) / 1e9)
            }
        }
    }

    private fun start(shards: Int): RedisClusterFleet =
        // (The fleet makes every node announce 127.0.0.1, so Redisson can use a 1-node cluster too.)
        RedisClusterFleet.builder().shards(shards).replicasPerShard(REPLICAS).start().apply {
            // Dates every slot's boot marker back, as RedisFleet does for its masters, so that the
            // restart guard does not hold a fresh cluster's first locks back.
            markNeverGranted()
        }

    /** Runs scenario 3's loop on [subject], reading the [primaries]' CPU and command counters at the window's bounds, then closes it and runs [clean]. */
    private suspend fun measure(
        topology: Topology,
        round: Int,
        subject: LockSubject,
        primaries: List<Int>,
        command: (Int, Array<out String>) -> Any?,
        clean: () -> Unit,
    ): ClusterPhase {
        var before: List<ServerReading> = emptyList()
        var after: List<ServerReading> = emptyList()
        var windowSeconds = 0.0
        var windowStart = 0L
        var load = Double.NaN
        var firstLockMillis = Double.NaN
        val throughput = try {
            // The first lock of a fresh client learns the topology and loads the scripts (seconds on
            // a loaded machine for a cluster): timed on its own, so that the warm-up is a warm-up.
            val first = timed { subject.locked("first", 1) {} }
            firstLockMillis = first / 1e6
            scenarios.throughput(
                subject, 1,
                onStart = {
                    before = primaries.map { ServerReading.of(it, command) }
                    windowStart = now()
                },
                onEnd = {
                    windowSeconds = (now() - windowStart) / 1e9
                    after = primaries.map { ServerReading.of(it, command) }
                    load = Machine.loadAverage()
                },
            )
        } finally {
            subject.close()
            clean()
        }
        val cpu = primaries.indices.map { after[it].cpuSeconds - before[it].cpuSeconds }
        val commands = primaries.indices.map { (after[it].commands - before[it].commands).toDouble() }
        val totalCommands = commands.sum()
        return ClusterPhase(
            topology = topology,
            round = round,
            throughput = throughput,
            serverCpuMicrosPerOp = if (throughput.ops == 0L) Double.NaN else cpu.sum() * 1e6 / throughput.ops,
            primaryCores = cpu.map { it / windowSeconds },
            commandShares = commands.map { if (totalCommands == 0.0) Double.NaN else it / totalCommands },
            loadAtEnd = load,
            firstLockMillis = firstLockMillis,
        )
    }

    /**
     * Ours holding the profile's `costLocks` locks in `withRedlock` with its `costLease` on [uri], and
     * what their renewals cost over two renewal rounds, from halfway between two rounds: script calls
     * and renewed keys on the [primaries], CPU of this process and of the primaries.
     */
    private suspend fun hold(
        topology: Topology,
        uri: String,
        primaries: List<Int>,
        command: (Int, Array<out String>) -> Any?,
        clean: () -> Unit,
    ): ClusterHeld {
        val locks = profile.costLocks
        val cycle = profile.costLease / 3
        val subject = OursSubject(listOf(uri), profile.costLease)
        try {
            repeat(200) { subject.acquire("warm-$it", 0).release() }
            val gate = CompletableDeferred<Unit>()
            val allIn = CompletableDeferred<Unit>()
            val acquired = AtomicInteger()
            val failures = AtomicInteger()
            val firstGrant = CompletableDeferred<Long>()
            val permits = Semaphore(256)
            return coroutineScope {
                val holders = launch {
                    repeat(locks) { i ->
                        permits.acquire()
                        launch {
                            var inside = false
                            try {
                                subject.redlock.withRedlock("held-$i") {
                                    inside = true
                                    firstGrant.complete(now())
                                    permits.release()
                                    if (acquired.incrementAndGet() == locks) allIn.complete(Unit)
                                    gate.await()
                                }
                            } catch (e: CancellationException) {
                                throw e
                            } catch (e: Exception) {
                                if (failures.incrementAndGet() == 1) log("  first failure: $e")
                                if (!inside) permits.release()
                                if (acquired.get() + failures.get() >= locks) allIn.complete(Unit)
                            }
                        }
                    }
                }
                val window = try {
                    withTimeoutOrNull(10.minutes) { allIn.await() }
                    log("  ${acquired.get()} of $locks held; measuring two renewal rounds")
                    delayUntil(firstGrant.await() + (cycle * 1.5).inWholeNanoseconds)
                    val before = primaries.map { ServerReading.of(it, command) }
                    val clientBefore = processCpuNanos()
                    val start = now()
                    delay(cycle * 2)
                    val after = primaries.map { ServerReading.of(it, command) }
                    val client = processCpuNanos() - clientBefore
                    Triple(before, after, client to (now() - start) / 1e9)
                } finally {
                    gate.complete(Unit)
                    holders.join()
                }
                val (before, after, clientAndSeconds) = window
                val (client, seconds) = clientAndSeconds
                // Counted once every holder has left its block: a lock lost while the others release counts too.
                ClusterHeld(
                    topology = topology,
                    locks = locks,
                    held = acquired.get(),
                    failures = failures.get() + (locks - acquired.get() - failures.get()).coerceAtLeast(0),
                    seconds = seconds,
                    scriptsPerSecond = primaries.indices.map { (after[it].scripts - before[it].scripts) / seconds },
                    keysPerSecond = primaries.indices.sumOf { after[it].pexpires - before[it].pexpires } / seconds,
                    clientCores = client / 1e9 / seconds,
                    serverCores = primaries.indices.sumOf { after[it].cpuSeconds - before[it].cpuSeconds } / seconds,
                )
            }
        } finally {
            subject.close()
            clean()
        }
    }

    /** A primary's CPU seconds (`used_cpu_user` + `used_cpu_sys`) and commands run so far. */
    internal class ServerReading(val cpuSeconds: Double, val commands: Long, val scripts: Long, val pexpires: Long) {
        companion object {
            fun of(node: Int, command: (Int, Array<out String>) -> Any?): ServerReading {
                val cpu = (command(node, arrayOf("INFO", "cpu")) as String).lineSequence().map(String::trim)
                    .filter { it.startsWith("used_cpu_user:") || it.startsWith("used_cpu_sys:") }
                    .sumOf { it.substringAfter(':').toDouble() }
                val stats = CommandStats.parse(command(node, arrayOf("INFO", "commandstats")) as String)
                return ServerReading(cpu, stats.total, stats.scripts, stats.calls["pexpire"] ?: 0)
            }
        }
    }

    private companion object {
        /** No replicas: on 2 shared cores a replica per primary would take CPU from the primaries and the client. */
        const val REPLICAS = 0
    }
}

/** The subject of [impl] with [cluster] as its one master. */
fun openClusterSubject(impl: Impl, cluster: RedisClusterFleet, leaseTime: kotlin.time.Duration = LEASE): LockSubject =
    when (impl) {
        Impl.OURS -> OursSubject(listOf(cluster.masterUri()), leaseTime)
        Impl.REDISSON -> RedissonSubject.cluster(cluster.uris(), leaseTime)
        Impl.BASELINE -> BaselineSubject.cluster(cluster.uris(), leaseTime, RetryPolicy.PHYSICAL)
    }

/** The three load averages of `/proc/loadavg` (1, 5 and 15 minutes), or the JVM's 1-minute one where there is no such file. */
fun loadAverages(): String =
    runCatching { Files.readString(Path.of("/proc/loadavg")).trim().split(' ').take(3).joinToString(", ") }
        .getOrElse { String.format(Locale.ROOT, "%.2f", Machine.loadAverage()) }

/** The mean of [f] over the rounds of [impl] on [topology]; not-a-number when it was not measured. */
private fun ClusterScaling.mean(impl: Impl, topology: Topology, f: (ClusterPhase) -> Double): Double {
    val values = phases.filter { it.throughput.impl == impl && it.topology == topology }.map(f)
    return if (values.isEmpty()) Double.NaN else values.average()
}

internal fun scenario10(s: ClusterScaling, r: Results, line: (String) -> Unit) {
    val p = r.profile
    line("")
    line("## 10. Cluster: many resources over a cluster master")
    line("")
    line("What this measures: scenario 3's loop (${p.acquirers} acquirers, a resource picked at random among ${num(p.resources.toDouble())},")
    line("locked and released at once, ${p.warmup} warm-up then ${p.measure} measured) with one master that is a Redis Cluster")
    line("(`RedisClusterFleet`, ${s.replicasPerShard} replicas per shard, ${s.serverVersion}) of 1 shard (one primary with every slot) and of 3")
    line("shards, next to scenario 3's N = 1 on one standalone server in the same run. Ours: the cluster as one")
    line("`redis-cluster://` master (keys hash-tagged per resource; no key tracking on cluster masters, while on the one")
    line("server ours runs with its default, key tracking on). Redisson: its")
    line("cluster mode (`useClusterServers`, one client, 64 connections per primary, 2 Netty and 2 executor threads).")
    line("Baseline: `SET NX PX` and the compare-and-delete script through one Lettuce cluster connection. Each round")
    line("measures every implementation on the three masters one after the other, both clusters running throughout.")
    line("Client CPU is this process's CPU time per operation; server CPU is `used_cpu_user` + `used_cpu_sys` of every")
    line("primary (`INFO cpu`) over the measured window, per operation; load is the 1-minute load average as the")
    line("window ended. Before each phase the freshly opened client takes and releases one lock alone (timed as")
    line("\"first lock\": connecting, learning the topology, loading scripts).")
    line("Load average before the scenario ${s.loadBefore}, after ${s.loadAfter} (1, 5, 15 minutes); it took ${s.seconds.toInt()} s.")
    line("")
    line("**Measured** (this machine: ${r.machine.cores} cores for the client and every server):")
    line("")
    line("| master | round | figure | ours | Redisson | baseline | ours / Redisson | ours / baseline |")
    line("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for (round in s.phases.map { it.round }.distinct()) {
        for (topology in Topology.entries) {
            val byImpl = Impl.entries.map { impl -> s.phases.find { it.round == round && it.topology == topology && it.throughput.impl == impl } }
            if (byImpl.all { it == null }) continue
            fun row(figure: String, f: (ClusterPhase) -> Double) {
                val v = byImpl.map { it?.let(f) ?: Double.NaN }
                line("| ${topology.label} | $round | $figure | ${num(v[0])} | ${num(v[1])} | ${num(v[2])} | ${x(v[0] / v[1])} | ${x(v[0] / v[2])} |")
            }
            fun text(figure: String, f: (ClusterPhase) -> String) =
                line("| ${topology.label} | $round | $figure | ${byImpl.joinToString(" | ") { it?.let(f) ?: "—" }} | | |")
            row("ops/s") { it.throughput.perSecond }
            row("p50 µs") { it.throughput.latency.p50 }
            row("p99 µs") { it.throughput.latency.p99 }
            row("CPU µs/op") { it.throughput.cpuMicrosPerOp }
            row("server CPU µs/op") { it.serverCpuMicrosPerOp }
            row("first lock of a new client, ms") { it.firstLockMillis }
            text("primaries, % of a core") { ph -> ph.primaryCores.joinToString(" / ") { String.format(Locale.ROOT, "%.0f", it * 100) } }
            if (topology.shards > 1) text("commands per primary, %") { ph -> ph.commandShares.joinToString(" / ") { String.format(Locale.ROOT, "%.0f", it * 100) } }
            text("load at the end") { String.format(Locale.ROOT, "%.2f", it.loadAtEnd) }
        }
    }
    val errors = s.phases.filter { it.throughput.errors > 0 }
    if (errors.isNotEmpty()) {
        line("")
        line("Failed lock calls: " + errors.joinToString { "${it.throughput.impl.label}, ${it.topology.label}, round ${it.round}: ${it.throughput.errors}" })
    }
    heldTable(s, r.profile, line)
    scalingEstimate(s, r, line)
}

private fun heldTable(s: ClusterScaling, p: Profile, line: (String) -> Unit) {
    if (s.held.isEmpty()) return
    line("")
    line("**Measured, held locks:** ours holding ${num(p.costLocks.toDouble())} locks in `withRedlock` with a ${p.costLease} lease (renewed every")
    line("${p.costLease / 3}), on the one server and on the 3-shard cluster master, over two renewal rounds from halfway between")
    line("two. Scripts are the `EVALSHA` calls and renewed keys the `PEXPIRE` calls (inside the scripts) of `INFO commandstats`,")
    line("all primaries together; CPU as above.")
    line("")
    line("| master | locks held | keys renewed/s | extend scripts/s | keys per script | scripts/s per primary | client CPU, % of a core | client CPU µs per renewed key | server CPU µs per renewed key | lost or not taken |")
    line("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for (h in s.held) {
        line(
            "| ${h.topology.label} | ${h.held} | ${num(h.keysPerSecond)} | ${num(h.scripts)} | ${num(h.keysPerScript)} | " +
                "${h.scriptsPerSecond.joinToString(" / ") { num(it) }} | ${num(h.clientCores * 100)} | ${num(h.clientMicrosPerKey)} | " +
                "${num(h.serverMicrosPerKey)} | ${h.failures} |",
        )
    }
}

/** The estimate of how throughput grows with shards on hardware with a core per shard, from the measured figures. */
private fun scalingEstimate(s: ClusterScaling, r: Results, line: (String) -> Unit) {
    val impls = Impl.entries
    fun m(topology: Topology, f: (ClusterPhase) -> Double) = impls.map { s.mean(it, topology, f) }
    val b = m(Topology.SHARD_1) { it.throughput.perSecond }
    val b3 = m(Topology.SHARDS_3) { it.throughput.perSecond }
    val server = m(Topology.SERVER) { it.throughput.perSecond }
    val u1 = m(Topology.SHARD_1) { it.throughput.cpuMicrosPerOp }
    val u3 = m(Topology.SHARDS_3) { it.throughput.cpuMicrosPerOp }
    val v1 = m(Topology.SHARD_1) { it.serverCpuMicrosPerOp }
    val v3 = m(Topology.SHARDS_3) { it.serverCpuMicrosPerOp }
    val ceiling = v1.map { 1e6 / it }
    val shares = s.phases.filter { it.topology == Topology.SHARDS_3 }.flatMap { it.commandShares }
    val rounds = s.phases.map { it.round }.distinct().size
    line("")
    line("**Estimated: how throughput grows with shards on real hardware.** Not measured: on ${r.machine.cores} shared cores")
    line("the 3 primaries, the client and the idle masters of the other scenarios take turns on the same CPUs, so the")
    line("3-shard figure above shows what spreading over shards costs (more connections, routing by slot), not")
    line("what it gains. The estimate assumes one core or more per shard and a client with cores of its own.")
    line("Means over the $rounds round(s):")
    line("")
    line("| | figure | ours | Redisson | baseline |")
    line("| --- | --- | ---: | ---: | ---: |")
    fun row(kind: String, figure: String, v: List<Double>) = line("| $kind | $figure | ${v.joinToString(" | ") { num(it) }} |")
    row("measured", "ops/s, one server", server)
    row("measured", "ops/s, cluster of 1 shard = B, the bound per shard", b)
    row("measured", "ops/s, cluster of 3 shards on these 2 cores", b3)
    row("measured", "client CPU µs/op, 1 shard", u1)
    row("measured", "client CPU µs/op, 3 shards", u3)
    row("measured", "server CPU µs/op, 1 shard", v1)
    row("measured", "server CPU µs/op, 3 shards (all primaries)", v3)
    row("estimated", "ops/s one shard could serve at 100 % of its core (10⁶ / server CPU per op)", ceiling)
    for (k in listOf(3, 6, 12)) {
        row("estimated", "ops/s, $k shards (k × B)", b.map { it * k })
        row("estimated", "client cores that $k × B takes (× client CPU per op at 3 shards)", b.indices.map { b[it] * k * u3[it] / 1e6 })
    }
    line("")
    val o = 0
    line("How to read it:")
    line("")
    line("- **B is a floor per shard.** At 1 shard the client used ${num(b[o] * u1[o] / 1e6)} of a core for ours and the primary")
    line("  ${num(b[o] * v1[o] / 1e6)}, on a machine shared with other work: a shard with a core of its own serves at least B. A primary")
    line("  at 100 % of its core would serve about ${num(ceiling[o])} of our operations per second (its CPU per op, measured), so B is")
    line("  cautious by up to ${x(ceiling[o] / b[o])}.")
    line("- **Shards add up** because a resource's keys live in one slot and the slots are independent: with resources")
    line("  spread at random, each of the 3 primaries ran ${if (shares.isEmpty()) "—" else "${pct(shares.min())} to ${pct(shares.max())}"} of the commands. So k shards serve about k × B,")
    line("  as long as the clients keep up and the keys spread. Resources that hash to a few slots (one hot resource, as in")
    line("  scenario 2, or every resource under one `{tag}`) stay on one shard and gain nothing from more.")
    line("- **Client CPU per operation is not expected to shrink with shards** (measured: ${us(u1[o])} at 1 shard, ${us(u3[o])} at 3 for ours,")
    line("  Redisson ${us(u1[1])} / ${us(u3[1])}; ${us(m(Topology.SERVER) { it.throughput.cpuMicrosPerOp }[o])} for ours on one server). One acquire + release costs the client the same whichever shard it goes to, so")
    line("  k × B needs k × B × (CPU per op) of client cores: past the cores of one client process, more shards need more")
    line("  client processes. A closed loop of ${r.profile.acquirers} callers also caps at ${r.profile.acquirers} / (mean latency): on a network")
    line("  the latency per call, not the shards, then decides how many callers keep k shards busy.")
    val heldServer = s.held.find { it.topology == Topology.SERVER }
    val heldCluster = s.held.find { it.topology == Topology.SHARDS_3 }
    line("- **Renewals are batched per slot, not per master.** The loop above releases every lock at once (its lease,")
    line("  $LEASE, is never renewed). A lock held longer is renewed every third of its lease, and leases due together")
    line("  share an extend script; on a cluster a script may touch one slot only, so a cohort of c leases costs about")
    line("  one call per slot it spans, 16384 × (1 − e^(−c/16384)): near one call per lease while c is well below 16384.")
    if (heldServer != null && heldCluster != null) {
        val server = heldServer
        val cluster = heldCluster
        line("  Measured above: ${num(server.keysPerScript)} keys per script on one server, ${num(cluster.keysPerScript)} on the 3-shard cluster;")
        line("  client CPU ${us(server.clientMicrosPerKey)} per renewed key against ${us(cluster.clientMicrosPerKey)} (${x(cluster.clientMicrosPerKey / server.clientMicrosPerKey)}), server CPU")
        line("  ${us(server.serverMicrosPerKey)} against ${us(cluster.serverMicrosPerKey)}. Those calls spread over the shards like the locks, so")
        line("  they scale with shards too, but each held lock costs the client and the servers more than on one server.")
    } else {
        line("  Those calls spread over the shards like the locks, so they scale with shards too, but each held lock costs")
        line("  the client and the servers more than on one server.")
    }
    line("- **Multi-resource locks do not spread.** A lock on several resources must have them in one slot (a common")
    line("  `{tag}`); resources in different slots are refused at the call. All of one lock's work is on one shard, so")
    line("  such locks scale with shards only when their tags spread over the slots.")
}

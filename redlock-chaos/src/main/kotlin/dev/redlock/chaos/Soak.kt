package dev.redlock.chaos

import dev.redlock.testing.RedisFleet
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter
import java.util.Locale
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.minutes
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource

/**
 * The long tier: runs the negative controls, the reset-mid-command check, the reconnect check,
 * then one round per (fault, N) for N = 1, 3 and 5 — each fault alone, a random mix of the faults that keep the
 * Redlock assumptions, and a random mix of all faults — until the time is up, and writes the
 * figures to `RELIABILITY.md` at the repository root.
 *
 * ```
 * mvn -q -pl redlock-chaos -am package -DskipTests -Dsoak -Dexec.args="--minutes 10 --seed 42"
 * ```
 *
 * Options: `--minutes M` (default 10), `--seed S` (default: the clock), `--round K` (run only round
 * K of the plan, to replay it; the file is then not written), `--out FILE`.
 */
object Soak {
    /** One planned round: a scenario, and whether the Redlock assumptions hold in it. */
    class Round(val index: Int, val scenario: Scenario)

    class Options(val minutes: Double, val seed: Long, val round: Int?, val out: Path?)

    /** No round is shorter: the slowest faults (a kill held for more than a lease) need a few seconds. */
    private val MIN_ROUND = 6.seconds

    @JvmStatic
    fun main(args: Array<String>) {
        // A bad argument throws with its reason; exec:java reports it (exiting would end Maven's JVM).
        run(parse(args))
    }

    fun parse(args: Array<String>): Options {
        var minutes = 10.0
        var seed = System.currentTimeMillis() % 1_000_000
        var round: Int? = null
        var out: Path? = null
        var i = 0
        fun value(name: String): String {
            require(i + 1 < args.size) { "$name expects a value" }
            return args[++i]
        }
        while (i < args.size) {
            when (val a = args[i]) {
                "--minutes" -> minutes = value(a).toDoubleOrNull()?.takeIf { it > 0 && it <= 24 * 60 }
                    ?: throw IllegalArgumentException("--minutes expects a number of minutes in (0, 1440]")
                "--seed" -> seed = value(a).toLongOrNull() ?: throw IllegalArgumentException("--seed expects an integer")
                "--round" -> round = value(a).toIntOrNull() ?: throw IllegalArgumentException("--round expects a round number")
                "--out" -> out = Paths.get(value(a))
                else -> throw IllegalArgumentException("unknown argument '$a'; expected --minutes M, --seed S, --round K, --out FILE")
            }
            i++
        }
        return Options(minutes, seed, round, out)
    }

    /** Every round of the plan, in the order they run: each kind across N = 1, 3, 5 before the next kind. */
    fun plan(seed: Long, roundLength: Duration, timing: Timing): List<Round> {
        val kinds: List<Pair<String, List<FaultKind>>> =
            listOf("mixed-safe" to FaultKind.SAFE, "mixed-all" to FaultKind.SCHEDULABLE) +
                FaultKind.SCHEDULABLE.map { it.name.lowercase() to listOf(it) }
        val rounds = ArrayList<Round>()
        for ((name, faults) in kinds) {
            for (n in listOf(1, 3, 5)) {
                val index = rounds.size
                val mixed = faults.size > 1
                val needsChildren = faults.any { it == FaultKind.PAUSED_HOLDER || it == FaultKind.HOLDER_CRASH }
                // The edge faults aim at renewals in flight and at leases beyond the restart guard: give them some.
                val renewing = faults.any { it == FaultKind.RENEWAL_LATENCY || it == FaultKind.RENEWAL_BLACK_HOLE || it == FaultKind.SCRIPT_FLUSH_PAUSED_MASTER }
                val longLeases = FaultKind.RESTART_GUARDED_LONG_LEASE in faults
                // The deletion rounds: half of the clients without key tracking, and faults close together (each waits for its probe).
                val admin = faults.all { it in FaultKind.ADMIN }
                rounds += Round(
                    index,
                    Scenario(
                        name = "soak-$index-$name", masters = n, seed = seed * 1000 + index, faults = faults,
                        clients = 8, childClients = if (needsChildren) 2 else 0, resources = 4,
                        renewingClients = if (renewing) 2 else 0, longLeaseClients = if (longLeases) (if (mixed) 1 else 2) else 0,
                        duration = roundLength,
                        gap = when {
                            admin -> 50.milliseconds..200.milliseconds
                            mixed -> 100.milliseconds..600.milliseconds
                            else -> 200.milliseconds..900.milliseconds
                        },
                        maxConcurrentFaults = if (mixed) 2 else 1, timing = timing, replaceKilledChildren = true, mixTracking = admin,
                    ),
                )
            }
        }
        return rounds
    }

    fun run(options: Options) {
        quietLogs()
        val clock = TimeSource.Monotonic.markNow()
        val budget = (options.minutes * 60_000).toLong().milliseconds
        val timing = Timing()
        println("soak: seed=${options.seed}, ${options.minutes} minute(s); replay with --seed ${options.seed}")
        val probe = plan(options.seed, 10.seconds, timing)
        if (options.round != null) {
            val round = probe.getOrNull(options.round) ?: throw IllegalArgumentException("--round expects 0..${probe.size - 1}")
            println(runScenario(round.scenario.copy(duration = (budget).coerceAtLeast(5.seconds))).summary())
            return
        }
        val started = Instant.now()
        val controls = Control.entries.map { runControl(it) }
        val replay = runReplayCheck(options.seed)
        val reconnects = runReconnectCheck()
        // Every round runs; their length adapts so that the whole plan fits the time. A round also
        // spends time starting and stopping masters, proxies and children: measured as it goes.
        var overhead = 5.seconds
        val rounds = plan(options.seed, MIN_ROUND, timing)
        val results = ArrayList<Pair<Round, Result<ScenarioResult>>>()
        for (round in rounds) {
            val left = budget - clock.elapsedNow()
            val length = (left / (rounds.size - results.size) - overhead).coerceAtLeast(MIN_ROUND)
            val roundStart = TimeSource.Monotonic.markNow()
            val result = runCatching { runScenario(round.scenario.copy(duration = length)) }
            overhead = (overhead + (roundStart.elapsedNow() - length).coerceAtLeast(Duration.ZERO)) / 2
            result.onSuccess { println(it.summary()) }.onFailure { println("round ${round.index} failed: $it") }
            results += round to result
        }
        val text = SoakReport(options, started, clock.elapsedNow(), rounds.size, results, controls, replay, reconnects).render()
        val out = options.out ?: repositoryRoot().resolve("RELIABILITY.md")
        Files.writeString(out, text)
        println("soak: wrote $out")
    }

    /** The repository root: from the build (`redlock.chaos.root`), else the nearest parent holding the root pom. */
    fun repositoryRoot(): Path {
        System.getProperty("redlock.chaos.root")?.takeIf { it.isNotBlank() }?.let { return Paths.get(it) }
        var dir: Path? = Paths.get("").toAbsolutePath()
        while (dir != null) {
            val pom = dir.resolve("pom.xml")
            if (Files.exists(pom) && Files.readString(pom).contains("<module>redlock-chaos</module>")) return dir
            dir = dir.parent
        }
        return Paths.get("").toAbsolutePath()
    }
}

/** Renders the soak's figures as `RELIABILITY.md`. */
class SoakReport(
    private val options: Soak.Options,
    private val started: Instant,
    private val elapsed: Duration,
    private val planned: Int,
    private val results: List<Pair<Soak.Round, Result<ScenarioResult>>>,
    private val controls: List<ControlResult>,
    private val replay: ReplayReport,
    private val reconnects: List<Reconnect>,
) {
    private val ok = results.mapNotNull { (round, r) -> r.getOrNull()?.let { round to it } }
    private val safe = ok.filter { it.first.scenario.assumptionsHold }.map { it.second }
    private val broken = ok.filter { !it.first.scenario.assumptionsHold }.map { it.second }
    private val all = ok.map { it.second }

    fun render(): String = buildString {
        val command = "mvn -q -pl redlock-chaos -am package -DskipTests -Dsoak -Dexec.args=\"--minutes ${fmt(options.minutes)} --seed ${options.seed}\""
        line("# Reliability")
        line()
        line("Generated by the chaos soak (`redlock-chaos`, `dev.redlock.chaos.Soak`); do not edit by hand. Produced with:")
        line()
        line("```")
        line(command)
        line("```")
        line()
        line("Started ${DateTimeFormatter.ISO_INSTANT.format(started.atOffset(ZoneOffset.UTC))}, ran ${elapsed.inWholeSeconds} s on " +
            "${Runtime.getRuntime().availableProcessors()} cores, Java ${System.getProperty("java.version")}, " +
            "redis-server ${redisVersion()}. Seed ${options.seed}: a round is replayed with `--seed ${options.seed} --round K`.")
        line()
        summary()
        safety()
        losses()
        edges()
        deletions()
        liveness()
        brokenAssumptions()
        controlsAndReplay()
        rounds()
        method()
    }

    private fun StringBuilder.summary() {
        val sections = all.flatMap { it.report.sections }
        val faults = all.flatMap { it.report.faults }
        line("## Summary")
        line()
        line("| figure | value |")
        line("| --- | --- |")
        line("| rounds run (of $planned planned) | ${results.size}${failedNote()} |")
        line("| critical sections run | ${sections.size} (${sections.groupingBy { it.outcome }.eachCount().toSortedMap().entries.joinToString { "${it.key.name.lowercase()} ${it.value}" }}) |")
        line("| sections by number of masters | ${all.groupBy { it.scenario.masters }.toSortedMap().entries.joinToString { (n, rs) -> "N=$n: ${rs.sumOf { it.report.sections.size }}" }} |")
        line("| faults injected | ${faults.size} |")
        line("| **violations where the assumptions hold** | **${safe.sumOf { it.report.violations.size }}** (expected 0) in ${safe.size} rounds, ${safe.sumOf { it.report.sections.size }} sections |")
        line("| violations where the assumptions were deliberately broken | ${broken.sumOf { it.report.violations.size }} in ${broken.size} rounds, ${broken.sumOf { it.report.sections.size }} sections |")
        line("| missed losses (a guarded block ran past its validity before it stopped or was told, by any margin) | ${all.sumOf { it.report.missedLosses.size }} (expected 0) |")
        line("| overrun past validity (min(block stopped, loss declared) - validity end), sections that reached the end of their validity, p50 / p99 / max | ${distribution(all.flatMap { it.report.overruns })} |")
        line("| cancellation latency (loss declared -> block stopped), p50 / p99 / max | ${distribution(all.flatMap { it.report.cancelLatencies })} |")
        line("| an administrator's deletions (DEL of a held key, FLUSHALL), problems found (a lease taken on a majority not declared lost, a lease lost to a minority, a renewal after the keys were gone, a grant before the restart guard allowed) | ${all.sumOf { it.report.deletions.size }}, ${all.sumOf { it.report.deletionProblems.size }} (expected 0) |")
        line("| `close()` of a client mid-section: closes, problems found | ${all.sumOf { it.report.closes.size }}, ${all.sumOf { it.report.closeProblems.size }} (expected 0) |")
        line("| lock keys held by nobody after a script reload met a stopped or slow master (orphans) | ${all.sumOf { it.report.orphans.size }} (expected 0) |")
        line("| calls refused at the call (a per-call lease beyond the restart guard) | ${all.sumOf { it.refusals }} |")
        line("| fencing inversions (a later holder with a token not larger than an earlier one's), over ${all.sumOf { r -> r.report.sections.count { it.fence != null } }} fenced sections | ${safe.sumOf { it.report.fenceInversions.size }} where the assumptions hold (expected 0), ${broken.sumOf { it.report.fenceInversions.size }} where they were broken |")
        line("| losses detected (`LockLostException`) | ${sections.count { it.outcome == Outcome.LOST }} |")
        line("| time to reacquire after the holder died, p50 / max | ${dist(reacquireDelays(), p99 = false)} |")
        line("| longest recovery after a fault ended | ${longestRecovery()} |")
        line("| lock keys left one lease after the clients stopped | ${all.sumOf { r -> r.keysLeftAfterLease.values.sumOf { it.size } }} (expected 0) |")
        line("| negative controls that behaved as expected | ${controls.count { it.passed }} of ${controls.size} |")
        line("| stale commands replayed after a reset mid-command | ${replay.staleReplays} in ${replay.rounds.size} rounds (expected 0) |")
        line()
        line("Faults injected, by kind:")
        line()
        line("| fault | count | keeps the assumptions |")
        line("| --- | --- | --- |")
        val byKind = faults.groupingBy { it.kind }.eachCount()
        for (kind in FaultKind.entries) {
            val count = if (kind == FaultKind.SLOW_CLOCK) controls.count { it.control.fault == kind } else byKind[kind] ?: 0
            line("| ${kind.label} | $count | ${if (kind.breaksAssumptions) "no" else "yes"} |")
        }
        line()
    }

    private fun StringBuilder.safety() {
        line("## Safety")
        line()
        line("A violation is two critical sections on one resource that overlapped while both holders held the lock as far " +
            "as they could tell (until the block stopped, the validity ended or the library declared the loss, whichever came " +
            "first). A missed loss is a guarded section (under `withRedlock`, holder not frozen) whose block was still running, " +
            "not told, after the exact end of its validity: `min(block stopped, loss declared) - validity end > 0`, by any margin.")
        line()
        val v = safe.flatMap { r -> r.report.violations.map { r to it } }
        val m = all.flatMap { r -> r.report.missedLosses.map { r to it } }
        line("- Where the assumptions hold (${safe.size} rounds): **${v.size} violation(s)**, ${m.count { it.first in safe }} missed loss(es).")
        for ((r, violation) in v.take(10)) line("  - ${r.scenario.replayHint()}: ${violation.describe(r.origin)}")
        line("- Missed losses in all rounds: ${m.size}; overrun ${distribution(m.map { it.second.overrunNanos })}.")
        for ((r, miss) in m.sortedByDescending { it.second.overrunNanos }.take(10)) {
            val s = miss.section
            line("  - ${r.scenario.replayHint()}: ${s.id} on '${s.resource}' (${s.outcome}${s.lossReason?.let { " $it" } ?: ""}) ran ${ms(miss.overrunNanos)} " +
                "past its validity (loss declared ${s.lossDeclaredAt?.let { "${ms(it - s.validUntil)} after it" } ?: "never"})")
        }
        line()
        line("Overrun and cancellation latency by kind of round (all N), for the sections that reached the end of their validity:")
        line()
        line("| round faults | sections | overrun p50 / p99 / max | missed | cancellation latency p50 / p99 / max |")
        line("| --- | --- | --- | --- | --- |")
        for ((kind, rounds) in ok.groupBy { it.second.scenario.name.substringAfter('-').substringAfter('-') }) {
            val reports = rounds.map { it.second.report }
            line("| $kind | ${reports.sumOf { it.sections.size }} | ${distribution(reports.flatMap { it.overruns })} | " +
                "${reports.sumOf { it.missedLosses.size }} | ${distribution(reports.flatMap { it.cancelLatencies })} |")
        }
        line()
    }

    private fun StringBuilder.losses() {
        val lost = all.flatMap { it.report.sections }.filter { it.outcome == Outcome.LOST }
        line("## Losses")
        line()
        line("| figure | value |")
        line("| --- | --- |")
        line("| losses declared: validity ran out before a renewal got through (EXPIRED) | ${lost.count { it.lossReason == "EXPIRED" }} |")
        line("| losses declared: a quorum no longer holds the keys (NOT_HELD) | ${lost.count { it.lossReason == "NOT_HELD" }} |")
        line("| cancellation latency: loss declared to block stopped (never counted as overrun), p50 / p99 / max | ${distribution(all.flatMap { it.report.cancelLatencies })} |")
        line("| losses declared because the Redlock was closed (CLOSED) | ${lost.count { it.lossReason == "CLOSED" }} |")
        line("| key-destroying fault to declared NOT_HELD loss, p50 / p99 / max | ${dist(all.flatMap { it.report.detectionDelays })} |")
        val paused = all.flatMap { it.report.pausedOverruns }
        line("| holders frozen across the end of their validity (SIGSTOP of a client JVM) | ${paused.size} |")
        line("| frozen holders: block's run after SIGCONT until it stopped, p50 / max | ${dist(paused.map { it.afterResumeNanos }, p99 = false)} |")
        line("| frozen holders whose block finished its remaining steps after SIGCONT instead of being cancelled | ${paused.count { it.bodyCompleted }} |")
        line()
        val slow = all.flatMap { r -> r.report.slowestCancels.take(3).map { r to it } }.sortedByDescending { it.second.second }.take(5)
        if (slow.isNotEmpty()) {
            line("Slowest cancellations after the loss was declared (a client named `child...` runs in its own JVM, the others in the soak's):")
            line()
            for ((r, pair) in slow) {
                val (sec, nanos) = pair
                line("- ${ms(nanos)}: ${sec.id} on '${sec.resource}', ${sec.lossReason}, ${r.scenario.replayHint()}")
            }
            line()
        }
        line("A frozen holder is cancelled once it runs again, but the block and the library's guard both wake up " +
            "overdue; when the block's timer runs first, it takes one more step before the cancellation reaches it " +
            "(`withRedlock` still throws `LockLostException`). This is the pause the library cannot see " +
            "(the GC-pause pitfall in `withRedlock`'s documentation): a protected resource must check the lease, or " +
            "better a fencing token, before acting.")
        line()
    }

    private fun StringBuilder.edges() {
        line("## Faults aimed at the edges")
        line()
        line("Each starts at the moment that matters: the proxy acts on the next renewal (the extend script's EVALSHA) or on a " +
            "probe's reload of the acquire script (`TcpProxy.onNextCommand`); `close()` comes while its client runs a section " +
            "and has waiters; masters restart right after a lease beyond the restart guard was granted.")
        line()
        val byKind = all.flatMap { it.report.faults }.filter { it.kind in FaultKind.EDGES }.groupBy { it.kind }
        line("| fault | injected | acted at the edge |")
        line("| --- | --- | --- |")
        for (kind in FaultKind.EDGES) {
            val events = byKind[kind].orEmpty()
            val acted = events.count { e -> listOf("no renewal passed", "no script reload", "no section under a lease").none { e.note.contains(it) } }
            line("| ${kind.label} | ${events.size} | $acted |")
        }
        line()
        val closes = all.flatMap { it.report.closes }
        line("- `close()`: ${closes.size} closes; running sections ${closes.sumOf { it.running.size }}, ended " +
            closes.flatMap { c -> c.running }.groupingBy { "${it.outcome}${it.lossReason?.let { r -> " $r" } ?: ""}" }.eachCount().toSortedMap() +
            "; block stopped after `close()` was called ${distribution(closes.flatMap { it.sectionStops }, p99 = false)}; " +
            "waiters ${closes.flatMap { it.record.waiters }.groupingBy { it.first }.eachCount().toSortedMap()}, ended after " +
            "${distribution(closes.flatMap { it.waiterEnds }, p99 = false)}; calls after `close()` ${closes.groupingBy { it.record.callAfter }.eachCount().toSortedMap()}; " +
            "keys left when `close()` returned ${closes.sumOf { it.record.keysLeft }}.")
        val problems = all.flatMap { r -> r.report.closeProblems.map { r to it } }
        line("- `close()` problems: ${problems.size} (expected 0).")
        for ((r, p) in problems.take(8)) line("  - ${r.scenario.replayHint()}: $p")
        val orphans = all.flatMap { r -> r.report.orphans.map { r to it } }
        line("- Keys held by nobody after a reload met a stopped or slow master: ${orphans.size} (expected 0).")
        for ((r, o) in orphans.take(5)) line("  - ${r.scenario.replayHint()}: master ${o.master}, '${o.resource}', ${o.pttlMillis} ms left (${o.note})")
        val longRounds = all.filter { it.scenario.longLeaseClients > 0 }
        line("- Per-call leases beyond the restart guard: ${longRounds.sumOf { it.refusals }} calls refused at the call, " +
            "${longRounds.sumOf { r -> r.report.sections.count { it.requestedLease > 0 } }} sections ran under such a lease, " +
            "${longRounds.sumOf { it.report.violations.size }} violation(s) in those ${longRounds.size} rounds.")
        line()
    }

    private fun StringBuilder.deletions() {
        val judged = all.flatMap { r -> r.report.deletions.map { r to it } }
        line("## An administrator's deletions")
        line()
        line("An administrator deletes a held lock's key (`DEL`) on one master, on the largest minority or on a bare majority, or " +
            "runs `FLUSHALL` on a bare majority, while a probe section holds it (a resource nobody else uses, on a client of its " +
            "own, with key tracking on and off in turn); `FLUSHALL` takes the other clients' leases as well. The commands go " +
            "straight to the masters over connections opened beforehand; the timing takes turns: as the probe's renewal passes " +
            "on its way to the first master (`renewal`), one master first and the others just after the next extend call (with " +
            "tracking, the check the first deletion caused) has read the key there while the masters left alone answer slowly " +
            "(`split`), or anywhere in the probe's first lease (`random`). On a majority the probe's lease must be declared " +
            "lost as NOT_HELD and its block cancelled; no lease may be renewed by a call begun after its keys were gone; after " +
            "`FLUSHALL` no lease may be granted before the restart guard allows; on a minority the probe's lease must not be lost " +
            "and must renew after the deletion. No grace period anywhere.")
        line()
        line("The detection delay runs from the answer to the deletion's last command (as the administrator's `redis-cli` " +
            "would print it) to the moment the holder declared the loss (`Lease.times()`); it is negative when the holder was " +
            "told before the administrator had read the answer. Without key tracking a loss is found by the next renewal, a " +
            "third of the lease (${all.firstOrNull()?.scenario?.timing?.lease?.inWholeMilliseconds?.div(3) ?: "-"} ms) after " +
            "the last; with it, the masters push the change and the lease is checked at once (after `split`, once the check " +
            "under way, which waits for the slow masters, has ended and run again).")
        line()
        line("| fault | key tracking | deletions (not judged: another fault overlapped) | leases taken | declared lost (NOT_HELD) | blocks that ended before they were told | detection delay, every timing, p50 / p99 / max | at `random` timing only, p50 / p99 / max |")
        line("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for (kind in FaultKind.ADMIN) {
            for (tracked in listOf(true, false)) {
                val ds = judged.filter { it.second.record.kind == kind && it.second.record.probeTracked == tracked }.map { it.second }
                val victims = judged.filter { it.second.record.kind == kind && it.second.judged }.flatMap { it.second.victims }.filter { it.tracked == tracked }
                val delays = victims.mapNotNull { it.detectedAfter }
                val random = victims.filter { it.deletion.timing == "random" }.mapNotNull { it.detectedAfter }
                line("| ${kind.label} | ${if (tracked) "on" else "off"} | ${ds.size} (${ds.count { !it.judged }}) | ${victims.size} | " +
                    "${victims.count { it.detectedAfter != null }} | ${victims.count { it.endedUninformed }} | ${dist(delays)} | ${dist(random)} |")
            }
        }
        line()
        line("A deletion's rows go by its probe's tracking; \"leases taken\" counts every lease held across a deletion on a majority " +
            "(the probe's, and after `FLUSHALL` the other clients' too), in the row of its own client's tracking. A lease whose " +
            "block ended on its own before it was told is no fault of the library (it cannot tell a block that has ended); the " +
            "probe's block runs four leases, so it is always told.")
        val problems = judged.flatMap { (r, d) -> d.problems.map { r to "${d.record.kind} on masters ${d.record.masters} (${d.record.timing}): $it" } }
        line()
        line("- Problems found: ${problems.size} (expected 0).")
        for ((r, p) in problems.take(10)) line("  - ${r.scenario.replayHint()}: $p")
        line()
    }

    private fun StringBuilder.liveness() {
        val reacquires = all.flatMap { it.report.reacquires }
        line("## Liveness")
        line()
        line("| figure | value |")
        line("| --- | --- |")
        for (kind in ClientEvent.Kind.entries) {
            val of = reacquires.filter { it.event.kind == kind }
            val what = if (kind == ClientEvent.Kind.KILLED) "killed (kill -9)" else "frozen past its lease (SIGSTOP)"
            line("| holder $what: resource reacquired by another client after, p50 / max | ${dist(of.mapNotNull { it.delayNanos }, p99 = false)} (${of.size} events, ${of.count { it.delayNanos == null }} not reacquired before the round ended) |")
            line("| ... of which beyond what the lease had left, p50 / max | ${dist(of.mapNotNull { r -> r.delayNanos?.let { it - r.leaseLeftNanos } }, p99 = false)} |")
        }
        line("| longest recovery after a fault ended (until the next section started anywhere) | ${longestRecovery()} |")
        val stall = all.maxByOrNull { it.report.longestStallNanos }
        line("| longest stall (no section started anywhere) | ${stall?.let { "${ms(it.report.longestStallNanos)} (${it.scenario.replayHint()})" } ?: "-"} |")
        line("| acquisitions that gave up (wait time ${all.firstOrNull()?.scenario?.timing?.wait ?: "-"}) | ${all.flatMap { it.notAcquired.entries }.groupBy({ it.key }, { it.value }).mapValues { it.value.sum() }.toSortedMap()} |")
        line()
    }

    private fun StringBuilder.brokenAssumptions() {
        line("## Under the faults that break the assumptions")
        line()
        line("Restarting a master at once with its data gone, FLUSHALL and eviction destroy lock keys on a master. " +
            "A holder that holds exactly a bare majority (because another master was down, partitioned or slow when it " +
            "acquired) then holds a minority, and another client can take the lock while the first still believes it holds " +
            "it, until its next renewal finds the keys gone. Redlock forbids these faults; the suite injects them to show what happens.")
        line()
        val v = broken.flatMap { r -> r.report.violations.map { r to it } }
        line("- ${v.size} violation(s) in ${broken.size} rounds with such faults; by the key loss that preceded them: " +
            v.groupingBy { it.second.keyLossBefore?.kind?.name ?: "none found within 1 s" }.eachCount().toSortedMap())
        line("- by number of masters: " + v.groupingBy { "N=${it.first.scenario.masters}" }.eachCount().toSortedMap())
        line("- overlap, p50 / max: ${dist(v.map { it.second.overlapNanos }, p99 = false)}")
        for ((r, violation) in v.take(8)) line("  - ${r.scenario.replayHint()}: ${violation.describe(r.origin)}")
        line()
    }

    private fun StringBuilder.controlsAndReplay() {
        line("## Negative controls and the reset-mid-command check")
        line()
        line("| control | expected | checker |")
        line("| --- | --- | --- |")
        for (c in controls) {
            val overlap = c.report.violations.firstOrNull()?.let { " (overlap ${ms(it.overlapNanos)})" }
                ?: c.report.deletionProblems.firstOrNull()?.let { " (${it.substringAfter("): ").replace('|', '/')})" }
                ?: c.report.deletions.firstOrNull()?.victims?.firstOrNull()?.detectedAfter?.let { " (told ${ms(it)} after the last DEL was answered)" }
                ?: ""
            line("| ${c.control.label} | ${if (c.control.mustFire) "fires" else "silent"} | ${if (c.fired) "fired$overlap" else "silent"}${if (c.passed) "" else " **WRONG**"} |")
        }
        line()
        line("After its only master was down, a client could lock again this long after the master answered again " +
            "(Lettuce's reconnect backoff; see `KnownIssuesTest`): " +
            reconnects.joinToString("; ") { "${it.outage} outage: ${it.usableAfter.inWholeMilliseconds} ms" } + ".")
        line()
        line("Lettuce under a connection closed mid-command (${replay.rounds.size} rounds, RST and FIN, before the request " +
            "reached the master and while its reply was on the way): ${replay.staleReplays} round(s) with a command run on the " +
            "master after the caller was done (a replay), ${replay.keysOutlivingLease} with a lock key alive one lease " +
            "(${replay.lease.inWholeMilliseconds} ms) after the caller was done.")
        line()
    }

    private fun StringBuilder.rounds() {
        line("## Rounds")
        line()
        line("| # | N | faults | sections | faults injected | violations | missed | max overrun | lost | keys left |")
        line("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for ((round, result) in results) {
            val s = round.scenario
            val faults = if (s.faults.size > 2) (if (s.assumptionsHold) "mix of safe faults" else "mix of all faults") else s.faults.joinToString { it.name }
            result.onSuccess { r ->
                line("| ${round.index} | ${s.masters} | $faults | ${r.report.sections.size} | ${r.report.faults.size} | " +
                    "${r.report.violations.size} | ${r.report.missedLosses.size} | ${r.report.overruns.maxOrNull()?.let { ms(it) } ?: "-"} | " +
                    "${r.report.outcomes[Outcome.LOST] ?: 0} | ${r.keysLeftAfterLease.values.sumOf { it.size }} |")
            }.onFailure { e -> line("| ${round.index} | ${s.masters} | $faults | failed: ${e.toString().replace('|', '/')} | | | | | | |") }
        }
        line()
    }

    private fun StringBuilder.method() {
        val t = all.firstOrNull()?.scenario?.timing ?: Timing()
        line("## Method")
        line()
        line("- Each round starts N real `redis-server` masters (`RedisFleet`) and, per master, two `TcpProxy`s in the " +
            "test process: half of the clients reach the masters through one set, half through the other, so a network " +
            "fault can cut some clients off a master and not others. 8 clients run in the soak's JVM, each with its own " +
            "`Redlock`; rounds with holder faults add 2 clients in child JVMs. They take locks on 4 resources with " +
            "`withRedlock` (lease ${t.lease.inWholeMilliseconds} ms, node timeout ${t.nodeTimeout.inWholeMilliseconds} ms, " +
            "wait ${t.wait.inWholeMilliseconds} ms); a section lasts 2-40 ms mostly, up to 300 ms often, and up to 1.5 leases " +
            "now and then (renewed meanwhile).")
        line("- Every section records, on one monotonic clock (`System.nanoTime`, CLOCK_MONOTONIC, shared by the child " +
            "JVMs), when its block started and when it stopped (the first thing its `finally` does), and the library's own " +
            "exact figures for the lease (`Lease.times()`, read right after): the end of its validity and the moment the loss " +
            "was declared. No sampling, so no margin: overrun = `min(block stopped, loss declared) - validity end`, and any " +
            "positive overrun of a guarded section whose holder was not frozen is a missed loss. The time from the declared " +
            "loss to the block's stop is the cancellation latency, reported apart. The checker compares the spans " +
            "`[start, min(stopped, validity end, loss declared)]` of every pair of sections on a resource.")
        line("- Edge faults: `TcpProxy.onNextCommand` arms an action that runs exactly when the next matching client command " +
            "passes the proxy, before the command can reach the master (the bytes before it are handed on first): latency or " +
            "a black hole from the next renewal on (on a majority of masters, mostly), SIGSTOP or latency from a probe's reload " +
            "of the acquire script right after SCRIPT FLUSH (a key left on the probe's resource afterwards is held by nobody). " +
            "`close()` is called while its client runs a probe section and two more calls wait for it; the section must end " +
            "with `LockLostException(CLOSED)` declared before `close()` returns, waiters and later calls with " +
            "`RedlockClosedException`, and no key may be left. Masters restart at once right after a client was granted a " +
            "per-call lease of ${all.firstOrNull { it.scenario.longLeaseClients > 0 }?.scenario?.longLeaseFactor ?: Scenario("x", 1, 0, emptyList()).longLeaseFactor} leases (beyond the restart guard, which defaults to one lease): the library must refuse " +
            "such a lease at the call, or cover it.")
        line("- The paused holder is a client in its own JVM stopped with SIGSTOP for 1.2-2 leases while it holds a " +
            "lock, then continued with SIGCONT: the whole process stops, its renewals and timers with it, as in a long GC " +
            "pause or a suspended VM; a pause inside one JVM (a blocked thread) would leave the library's own threads " +
            "running and test something else. The fault is aimed only once the child has reported that it is inside a " +
            "section and is confirmed after it stopped. A crashed holder is such a child killed with SIGKILL instead.")
        line("- A partition (black hole) ends with a reset of the proxied connections before traffic flows again: TCP " +
            "gives up on a long partition, and a byte stream with a hole in it is not something TCP delivers. Latency " +
            "faults model the other ending, where the stream is delayed but intact.")
        line("- The slow clock is a client whose `Redlock` gets a `TimeSource` running at 0.9x; its believed validity " +
            "is converted to real time. Under `withRedlock` renewals hide a slow clock, so the control uses `acquire` " +
            "and a holder that works until its own clock says the lease is over.")
        line("- Violations are counted apart for rounds whose faults keep the assumptions (kill and restart after " +
            "more than one lease, SIGSTOP of a master, latency, black holes, resets, SCRIPT FLUSH, paused and crashed " +
            "holders, and the edge faults; a majority restarted at once counts as keeping them there, because the restart " +
            "guard stands in for the assumption and the library promises that no lease outlasts it; so do the administrator's " +
            "deletions as the suite aims them: a DEL on a resource nobody else uses, a FLUSHALL on a majority whose masters " +
            "the restart guard keeps from voting for a lease time) and rounds that also " +
            "restart masters at once without that promise, FLUSHALL or evict keys.")
        line()
    }

    private fun reacquireDelays(): List<Long> =
        all.flatMap { it.report.reacquires }.filter { it.event.kind == ClientEvent.Kind.KILLED }.mapNotNull { it.delayNanos }

    private fun longestRecovery(): String {
        val best = all.flatMap { r -> r.report.recoveries.map { r to it } }.maxByOrNull { it.second.nanos } ?: return "-"
        return "${ms(best.second.nanos)} (after ${best.second.fault.kind} on ${best.second.fault.target}, ${best.first.scenario.replayHint()})"
    }

    private fun failedNote(): String {
        val failed = results.count { it.second.isFailure }
        return if (failed == 0) "" else ", **$failed failed**"
    }

    private fun dist(values: List<Long>, p99: Boolean = true): String = distribution(values, p99)

    private fun fmt(minutes: Double): String = if (minutes == Math.floor(minutes)) minutes.toLong().toString() else String.format(Locale.ROOT, "%.2f", minutes)

    private fun redisVersion(): String = runCatching { RedisFleet.start(1).use { it.serverVersion } }.getOrDefault("?")

    private fun StringBuilder.line(text: String = "") {
        append(text).append('\n')
    }
}

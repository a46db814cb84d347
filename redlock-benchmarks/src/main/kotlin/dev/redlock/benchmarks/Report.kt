package dev.redlock.benchmarks

import dev.redlock.core.RedlockConfig
import java.util.Locale
import kotlin.math.abs

/** Everything one run measured, with what is needed to tell where and how. */
class Results(
    val machine: Machine,
    val profile: Profile,
    val command: String,
    val uncontended: List<Uncontended>?,
    val hotResource: List<HandOff>?,
    val manyResources: List<Throughput>?,
    val heldLocks: List<Footprint>?,
    val slowMaster: List<SlowMaster>?,
    val adminFaults: List<LossDetection>? = null,
    val crashHandOff: List<CrashHandOff>? = null,
    val trackingCost: TrackingCosts? = null,
    val replicaAcks: List<ReplicaAckWindow>? = null,
    /** Scenario 2 with the contenders in several JVMs. */
    val crossProcess: List<CrossHandOff>? = null,
    val clusterScaling: ClusterScaling? = null,
    val backends: List<BackendFigures>? = null,
    /** The masters' `hz` (how often a second Redis runs its active expiry), for scenario 7. */
    val serverHz: String = "?",
    val runSeconds: Double,
    val loadAtEnd: Double,
)

/** One target of issue 4 (scenarios 1 to 5) or issue 15 (6 to 8), checked against this run. */
data class Target(
    val scenario: Int,
    val text: String,
    val measured: String,
    /** null when the run did not measure what the target needs. */
    val met: Boolean?,
    val shortfall: String?,
    val why: String?,
)

/** The targets, computed from the figures (never written by hand). */
fun targets(r: Results): List<Target> {
    val out = ArrayList<Target>()
    r.uncontended?.forEach { u ->
        val ratio = u.ours.p50 / u.baseline.p50
        out += atMost(
            1, "N = ${u.n}: our median acquire + release within 1.2x of the raw baseline's",
            ratio, 1.2, "${us(u.ours.p50)} / ${us(u.baseline.p50)} = ${x(ratio)}",
        ) {
            "ours spends ${us(u.ours.p50 - u.baseline.p50)} more per acquire + release at the median. The baseline sends " +
                "SET NX PX and a one-line compare-and-delete and returns at the majority; ours runs a script each way: the " +
                "acquire reads the restart guard's boot marker and the key, sets it and reads it again (so that key " +
                "tracking reports its next change), the release deletes the key and publishes the notice that wakes " +
                "other processes' waiters; the caller is resumed on its own dispatcher, not on Lettuce's thread, and the " +
                "lease is put on the renewal timer and taken off it" +
                if (u.n > 1) ", on each of the ${u.n} masters." else "."
        }
    }
    r.hotResource?.let { all ->
        for ((n, contenders) in all.map { it.n to it.contenders }.distinct()) {
            val ours = all.find(Impl.OURS, n, contenders) ?: continue
            val redisson = all.find(Impl.REDISSON, n, contenders)
            val polling = all.find(Impl.BASELINE, n, contenders)
            val limit = if (n == 1) 0.5 else 0.25
            if (redisson != null) {
                val gapRatio = ours.gap.p50 / redisson.gap.p50
                out += atMost(
                    2, "N = $n, $contenders contenders: hand-off gap p50 at most ${if (n == 1) "half" else "a quarter"} of Redisson's",
                    gapRatio, limit, "${us(ours.gap.p50)} / ${us(redisson.gap.p50)} = ${x(gapRatio)}",
                ) { handOffWhy(ours, redisson) }
                val rate = ours.perSecond / redisson.perSecond
                out += atLeast(
                    2, "N = $n, $contenders contenders: critical sections per second at least 2x Redisson's",
                    rate, 2.0, "${num(ours.perSecond)} / ${num(redisson.perSecond)} = ${x(rate)}",
                ) { handOffWhy(ours, redisson) }
            }
            if (redisson != null) {
                val cpu = ours.cpuMicrosPerSection / redisson.cpuMicrosPerSection
                out += lessCpu(
                    "N = $n, $contenders contenders", ours.cpuMicrosPerSection, redisson.cpuMicrosPerSection,
                    polling?.cpuMicrosPerSection ?: Double.NaN,
                ) {
                    "ours used ${us(ours.cpuMicrosPerSection)} of client CPU per section, Redisson ${us(redisson.cpuMicrosPerSection)} " +
                        "(${x(cpu)}). ${pct(ours.changedHands)} of our sections changed hands against ${pct(redisson.changedHands)} of " +
                        "Redisson's: a section that changes hands costs a wake-up and a dispatch of another coroutine on top of the " +
                        "script call, one whose holder takes the lock straight back does not."
                }
            }
        }
    }
    r.crossProcess?.let { all ->
        for ((n, contenders) in all.map { it.n to it.contenders }.distinct()) {
            val ours = all.find { it.impl == Impl.OURS && it.n == n && it.contenders == contenders } ?: continue
            val redisson = all.find { it.impl == Impl.REDISSON && it.n == n && it.contenders == contenders } ?: continue
            val rate = ours.perSecond / redisson.perSecond
            out += atLeast(
                2, "across $JVMS JVMs, N = $n, $contenders contenders: critical sections per second at least 1.5x Redisson's",
                rate, 1.5, "${num(ours.perSecond)} / ${num(redisson.perSecond)} = ${x(rate)}",
            ) {
                val oursCores = ours.cpuMicrosPerSection * ours.perSecond / 1e6
                val redissonCores = redisson.cpuMicrosPerSection * redisson.perSecond / 1e6
                "the $JVMS JVMs kept ${num(oursCores)} of the machine's ${r.machine.cores} cores busy with ours and " +
                    "${num(redissonCores)} with Redisson (CPU per section times sections per second), the masters sharing the " +
                    "rest: on this machine the variant is bound by the CPU of $JVMS JVMs, and sections per second follow CPU " +
                    "per section. The lock changed JVM in ${pct(ours.crossJvm.toDouble() / ours.sections)} of our sections (gap " +
                    "p50 ${us(ours.crossGap.p50)} then) and in ${pct(redisson.crossJvm.toDouble() / redisson.sections)} of " +
                    "Redisson's (${us(redisson.crossGap.p50)}): ours hands the lock to a waiter of the same JVM in one round " +
                    "trip while it has one, and between JVMs every hand-off is a release with its notice, the waiter's wake-up " +
                    "and its acquire, for both libraries (see \"Why the hand-off stays in one process\")."
            }
            out += lessCpu(
                "across $JVMS JVMs, N = $n, $contenders contenders", ours.cpuMicrosPerSection, redisson.cpuMicrosPerSection,
                all.find { it.impl == Impl.BASELINE && it.n == n && it.contenders == contenders }?.cpuMicrosPerSection ?: Double.NaN,
            ) {
                "ours used ${us(ours.cpuMicrosPerSection)} of CPU per section over all $JVMS JVMs, Redisson " +
                    "${us(redisson.cpuMicrosPerSection)}, with ${num(ours.perSecond)} and ${num(redisson.perSecond)} sections/s: " +
                    "JVMs that mostly wait spread their fixed costs (timers, connection upkeep) over fewer sections."
            }
        }
    }
    r.manyResources?.let { all ->
        for (n in all.map { it.n }.distinct()) {
            val ours = all.find { it.impl == Impl.OURS && it.n == n } ?: continue
            val baseline = all.find { it.impl == Impl.BASELINE && it.n == n } ?: continue
            val ratio = ours.perSecond / baseline.perSecond
            out += atLeast(
                3, "N = $n: at least 70 % of the baseline's operations per second",
                ratio, 0.7, "${num(ours.perSecond)} / ${num(baseline.perSecond)} = ${pct(ratio)}",
            ) {
                "ours used ${us(ours.cpuMicrosPerOp)} of client CPU per operation against the baseline's " +
                    "${us(baseline.cpuMicrosPerOp)}, and the masters ${us(ours.serverCpuMicrosPerOp)} against " +
                    "${us(baseline.serverCpuMicrosPerOp)} (${num(ours.commandsPerOp)} commands per operation against " +
                    "${num(baseline.commandsPerOp)}: the acquire script also reads the restart guard's boot marker and reads " +
                    "the key again so that tracking reports its next change, the release script publishes the release " +
                    "notice); client and masters share the machine's ${r.machine.cores} cores, " +
                    "so together they used ${us(ours.cpuMicrosPerOp + ours.serverCpuMicrosPerOp)} against " +
                    "${us(baseline.cpuMicrosPerOp + baseline.serverCpuMicrosPerOp)} per operation. The median operation took " +
                    "${us(ours.latency.p50)} against ${us(baseline.latency.p50)}."
            }
        }
    }
    r.heldLocks?.let { all ->
        for (n in all.map { it.n }.distinct()) {
            val ours = all.find { it.impl == Impl.OURS && it.n == n } ?: continue
            out += atMost(
                4, "N = $n: at most 1 KiB of heap per held lock, its coroutine included (${num(ours.locks.toDouble())} locks)",
                ours.heapPerLock, 1024.0, "${num(ours.heapPerLock)} B",
            ) {
                "each lock held in withRedlock keeps alive the caller's coroutine with its frames and the block's " +
                    "scope (which loss cancels), the lease (token, key, resources, validity, state) and its one entry " +
                    "on the shared renewal timer; no coroutine or job per lease is started by the library. The " +
                    "caller's own coroutine, suspended in the block, is counted as the target asks. Measured by class " +
                    "(${num(ours.heapByClassTotal)} B per lock): ${ours.heapByClass.split(", ").take(10).joinToString(", ")}."
            }
            val redisson = all.find { it.impl == Impl.REDISSON && it.n == n } ?: continue
            val ratio = ours.scriptsPerSecond / redisson.scriptsPerSecond
            out += atMost(
                4, "N = $n: renewal scripts per second at most a tenth of Redisson's (same locks, same lease time)",
                ratio, 0.1, "${num(ours.scriptsPerSecond)} / ${num(redisson.scriptsPerSecond)} = ${x(ratio)}",
            ) {
                val rounds = ours.holdSeconds / (r.profile.holdLease.inWholeMilliseconds / 3000.0)
                val oursPerScript = ours.locks * n * rounds / (ours.scriptsPerSecond * ours.holdSeconds)
                val redissonPerScript = redisson.locks * n * rounds / (redisson.scriptsPerSecond * redisson.holdSeconds)
                "with a renewal every third of the ${r.profile.holdLease} lease, ours renewed about ${num(oursPerScript)} " +
                    "lock(s) per script call and Redisson about ${num(redissonPerScript)}" +
                    if (oursPerScript < 1.5) ": our renewals are not coalesced, each lease sends its own extend script to every master." else "."
            }
        }
    }
    r.slowMaster?.find { it.impl == Impl.OURS }?.let { ours ->
        val limit = maxOf(ours.reference.p50 * 1.2, ours.reference.p50 + 1000.0)
        out += atMost(
            5, "our acquire p50 unaffected by one master ${r.profile.slowBy} slower (at most max(1.2x, +1 ms) of the p50 with all masters fast)",
            ours.slow.p50 / limit, 1.0, "${us(ours.slow.p50)} vs ${us(ours.reference.p50)}",
        ) {
            if (ours.slow.p50 >= r.profile.slowBy.inWholeMicroseconds / 2.0)
                "acquire waited for the slow master's answer instead of returning when the four fast ones made a majority."
            else "the slow master's connection still delays the fast ones (its replies share the client's threads)."
        }
    }
    out += lossTargets(r)
    return out
}

private fun handOffWhy(ours: HandOff, redisson: HandOff): String =
    "the median gap between two sections was ${us(ours.gap.p50)}, against ${us(redisson.gap.p50)} for Redisson. " +
        "${pct(ours.changedHands)} of our sections changed hands (waiters of one process are served in order), against " +
        "${pct(redisson.changedHands)} for Redisson, whose releasing holder often takes the lock straight back without a " +
        "round trip of waiting. Each of our hand-offs is one script call per master (the release moves the key to the " +
        "waiter's token) followed by the waiter's resumption on its dispatcher; the gap is that round trip plus a " +
        "thread hop, where Redisson's retaking holder pays one round trip and no hop. A contender waited " +
        "${us(ours.wait.p50)} at the median (${us(ours.wait.p99)} at p99, Redisson ${us(redisson.wait.p99)})."

/** "Less client CPU per section than Redisson" ([polling]: the polling baseline's, shown for comparison). */
private fun lessCpu(where: String, ours: Double, redisson: Double, polling: Double, why: () -> String): Target {
    val cpu = ours / redisson
    val met = if (cpu.isNaN()) null else cpu < 1.0
    return Target(
        2, "$where: less client CPU per section than Redisson",
        "${us(ours)} vs ${us(redisson)} = ${x(cpu)}" + if (polling.isNaN()) "" else " (polling baseline ${us(polling)})",
        met, if (met == false) "over by ${pct(cpu - 1.0)}" else null, if (met == false) why() else null,
    )
}

private fun List<HandOff>.find(impl: Impl, n: Int, contenders: Int): HandOff? =
    find { it.impl == impl && it.n == n && it.contenders == contenders }

internal fun atMost(scenario: Int, text: String, value: Double, limit: Double, measured: String, why: () -> String): Target {
    if (value.isNaN()) return Target(scenario, text, measured, null, null, null)
    val met = value <= limit
    val over = value / limit
    val shortfall = if (over >= 2) "${x(over)} the limit" else "over by ${pct(over - 1)}"
    return Target(scenario, text, measured, met, if (met) null else shortfall, if (met) null else why())
}

internal fun atLeast(scenario: Int, text: String, value: Double, limit: Double, measured: String, why: () -> String): Target {
    if (value.isNaN()) return Target(scenario, text, measured, null, null, null)
    val met = value >= limit
    return Target(scenario, text, measured, met, if (met) null else "short by ${pct(1 - value / limit)}", if (met) null else why())
}

/** The whole of BENCHMARKS.md. */
fun render(r: Results): String {
    val targets = targets(r)
    val m = r.machine
    val s = StringBuilder()
    fun line(text: String = "") = s.append(text).append('\n')
    line("# Benchmarks")
    line()
    line("Generated by `redlock-benchmarks` on ${m.date}; do not edit by hand, run the command again.")
    line()
    line("```")
    line(r.command)
    line("```")
    line()
    line("| | |")
    line("| --- | --- |")
    line("| run | ${r.profile.name}: warm-up ${r.profile.warmup}, measured ${r.profile.measure} per phase; took ${if (r.runSeconds < 120) "${r.runSeconds.toInt()} s" else "${num(r.runSeconds / 60)} min"} |")
    line("| machine | ${m.cores} cores (${m.cpu}), ${m.memory}, ${m.os} |")
    line("| JDK | ${m.jdk} |")
    line("| load average | ${"%.2f".format(Locale.ROOT, m.loadAtStart)} at the start, ${"%.2f".format(Locale.ROOT, r.loadAtEnd)} at the end |")
    line("| redis-server | ${m.redisVersion}, 5 local masters on loopback (`RedisFleet`), no persistence |")
    line("| ours | this repository at commit ${m.commit} |")
    line("| Redisson | ${m.redissonVersion} |")
    line("| Lettuce | ${m.lettuceVersion} (ours and the baseline) |")
    line()
    line("**Setup.** Every implementation runs in the same JVM against the same masters, one after another, with")
    line("the keys flushed in between; N = 1 uses the first master, N = 5 all five. Ours runs with its default")
    line("configuration (retry delay ${RedlockConfig.DEFAULT_RETRY_DELAY.toMillis()} ms, key tracking on) and a $LEASE lease unless a scenario says otherwise. Redisson: one client per master")
    line("(`useSingleServer`), `RLock` for N = 1 and `getRedLock` over the five clients for N = 5, 2 Netty and 2")
    line("executor threads per client, `lockWatchdogTimeout` = the lease time (Redisson ${m.redissonVersion} marks `getRedLock`")
    line("deprecated; it is still its lock over independent masters). Baseline: raw Lettuce, `SET NX PX` on")
    line("every master at once (granted at a majority) and a compare-and-delete script. Latencies are in")
    line("microseconds (HdrHistogram, 3 significant digits); ratios are ours / theirs.")
    line()
    line("## Targets")
    line()
    if (targets.isEmpty()) {
        line("No target was measured in this run.")
    } else {
        line("| scenario | target | measured | met |")
        line("| --- | --- | --- | --- |")
        for (t in targets) {
            val met = when (t.met) {
                true -> "yes"
                false -> "**no**, ${t.shortfall}"
                null -> "not measured"
            }
            line("| ${t.scenario} | ${t.text} | ${t.measured} | $met |")
        }
        val missed = targets.filter { it.met == false }
        line()
        line("${targets.count { it.met == true }} of ${targets.size} targets met.")
        if (missed.isNotEmpty()) {
            line()
            line("Why the missed targets are missed:")
            line()
            for (t in missed) line("- scenario ${t.scenario}, ${t.text}: ${t.why}")
        }
    }
    r.uncontended?.let { scenario1(it, ::line) }
    r.hotResource?.let { scenario2(it, ::line) }
    r.crossProcess?.let { scenario2CrossProcess(it, ::line) }
    r.manyResources?.let { scenario3(it, r.profile, ::line) }
    r.heldLocks?.let { scenario4(it, r.profile, ::line) }
    r.slowMaster?.let { scenario5(it, r.profile, ::line) }
    r.adminFaults?.let { scenario6(it, r.profile, ::line) }
    r.crashHandOff?.let { scenario7(it, r, ::line) }
    r.trackingCost?.let { scenario8(it, r.profile, ::line) }
    r.replicaAcks?.let { scenario9(it, r.profile, ::line) }
    r.clusterScaling?.let { scenario10(it, r, ::line) }
    r.backends?.let { scenario11(it, r.profile, ::line) }
    return s.toString()
}

private fun scenario1(results: List<Uncontended>, line: (String) -> Unit) {
    line("")
    line("## 1. Uncontended acquire + release")
    line("")
    line("What this measures: the latency of one acquire followed by its release, one caller, one resource, nobody")
    line("else contending: the cost of the lock's protocol. \"ours, withRedlock\" is the same through")
    line("`withRedlock { }`, which also starts and stops the renewal job.")
    line("")
    line("| N | figure | ours | ours, withRedlock | Redisson | baseline | ours / Redisson | ours / baseline |")
    line("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (u in results) {
        fun row(figure: String, f: (Latency) -> Double) =
            line("| ${u.n} | $figure | ${num(f(u.ours))} | ${num(f(u.oursBlock))} | ${num(f(u.redisson))} | ${num(f(u.baseline))} | ${x(f(u.ours) / f(u.redisson))} | ${x(f(u.ours) / f(u.baseline))} |")
        row("p50 µs") { it.p50 }
        row("p99 µs") { it.p99 }
        row("p99.9 µs") { it.p999 }
        line("| ${u.n} | samples | ${u.ours.count} | ${u.oursBlock.count} | ${u.redisson.count} | ${u.baseline.count} | | |")
    }
}

private fun scenario2(results: List<HandOff>, line: (String) -> Unit) {
    line("")
    line("## 2. One hot resource")
    line("")
    line("What this measures: contenders that all want the same resource, each asking for it again as soon as it")
    line("has released it, with an empty critical section: how many sections per second the lock allows, and the")
    line("hand-off gap from the end of one section (its holder starts releasing) to the start of the next. A holder")
    line("may take the lock straight back: \"changed hands\" is the share of sections whose holder differs from the")
    line("previous one's, and \"wait\" is how long a contender waited from asking to its section (what an unfair")
    line("lock's losers pay). The baseline here is a polling lock: ${RetryPolicy.POLLING.description}. Client CPU")
    line("is the process's CPU time over the measured phase divided by the sections.")
    line("")
    line("| N | contenders | figure | ours | Redisson | polling baseline | ours / Redisson | ours / baseline |")
    line("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for ((n, contenders) in results.map { it.n to it.contenders }.distinct()) {
        val ours = results.find(Impl.OURS, n, contenders)
        val redisson = results.find(Impl.REDISSON, n, contenders)
        val base = results.find(Impl.BASELINE, n, contenders)
        fun row(figure: String, f: (HandOff) -> Double) {
            val o = ours?.let(f) ?: Double.NaN
            val rr = redisson?.let(f) ?: Double.NaN
            val b = base?.let(f) ?: Double.NaN
            line("| $n | $contenders | $figure | ${num(o)} | ${num(rr)} | ${num(b)} | ${x(o / rr)} | ${x(o / b)} |")
        }
        row("sections/s") { it.perSecond }
        row("hand-off gap p50 µs") { it.gap.p50 }
        row("hand-off gap p99 µs") { it.gap.p99 }
        row("changed hands, %") { it.changedHands * 100 }
        row("wait p50 µs") { it.wait.p50 }
        row("wait p99 µs") { it.wait.p99 }
        row("CPU µs/section") { it.cpuMicrosPerSection }
    }
    val overlaps = results.filter { it.overlaps > 0 }
    val errors = results.filter { it.errors > 0 }
    line("")
    line(
        if (overlaps.isEmpty()) "Overlapping sections seen: none (${results.sumOf { it.recorded }} sections checked, warm-up included)."
        else "**Overlapping sections seen:** " + overlaps.joinToString { "${it.impl.label} N = ${it.n}, ${it.contenders} contenders: ${it.overlaps}" },
    )
    if (errors.isNotEmpty()) line("Failed lock calls: " + errors.joinToString { "${it.impl.label} N = ${it.n}, ${it.contenders} contenders: ${it.errors}" })
}

private fun scenario3(results: List<Throughput>, profile: Profile, line: (String) -> Unit) {
    line("")
    line("## 3. Many resources")
    line("")
    line("What this measures: ${profile.acquirers} concurrent acquirers, each locking a resource picked at random among")
    line("${num(profile.resources.toDouble())} and releasing it at once (in `withRedlock` for ours, with the watchdog for Redisson), in a closed loop:")
    line("operations per second, and each operation's latency. The baseline retries a taken resource after 0-2 ms.")
    line("Client CPU is this process's CPU time per operation; server CPU is `used_cpu_user` + `used_cpu_sys` of the N")
    line("masters (`INFO cpu`) over the measured window per operation, and commands are every call `INFO commandstats`")
    line("counts there (the commands a script runs included) per operation. Client and masters share the machine's cores.")
    line("")
    line("| N | figure | ours | Redisson | baseline | ours / Redisson | ours / baseline |")
    line("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (n in results.map { it.n }.distinct()) {
        val byImpl = Impl.entries.associateWith { impl -> results.find { it.impl == impl && it.n == n } }
        fun row(figure: String, f: (Throughput) -> Double) {
            val v = Impl.entries.map { byImpl[it]?.let(f) ?: Double.NaN }
            line("| $n | $figure | ${num(v[0])} | ${num(v[1])} | ${num(v[2])} | ${x(v[0] / v[1])} | ${x(v[0] / v[2])} |")
        }
        row("ops/s") { it.perSecond }
        row("p50 µs") { it.latency.p50 }
        row("p99 µs") { it.latency.p99 }
        row("CPU µs/op") { it.cpuMicrosPerOp }
        row("server CPU µs/op, all masters") { it.serverCpuMicrosPerOp }
        row("server commands/op, all masters") { it.commandsPerOp }
    }
    val errors = results.filter { it.errors > 0 }
    if (errors.isNotEmpty()) {
        line("")
        line("Failed lock calls: " + errors.joinToString { "${it.impl.label} N = ${it.n}: ${it.errors}" })
    }
}

private fun scenario4(results: List<Footprint>, profile: Profile, line: (String) -> Unit) {
    line("")
    line("## 4. Many locks held at once")
    line("")
    line("What this measures: locks taken one after the other (${256} acquisitions in flight) and then all held for")
    line("${profile.hold} with a ${profile.holdLease} lease, renewed in the background (ours: each in its own coroutine")
    line("suspended inside `withRedlock`; Redisson: `lockAsync` with its watchdog, the `RLock` objects kept). Heap is the")
    line("heap in use after full collections while the locks are held (the lowest of three readings over the hold)")
    line("minus before they were taken, per lock; scripts")
    line("per second are the `cmdstat_eval` + `cmdstat_evalsha` calls of `INFO commandstats` over the hold, summed over")
    line("the masters (no lock is taken or released meanwhile, so they are renewals). Commands per second are every")
    line("call `INFO commandstats` counts over the hold, and it counts the commands a script runs as well as the script")
    line("call itself: ours renews a lease with one `PEXPIRE` per key and reads the keys of a call (up to 2 048) with one")
    line("`MGET` per 1 000 before and after; Redisson runs `HEXISTS` and `PEXPIRE` per lock. The mix by command of")
    line("each run follows the table.")
    line("")
    line("| N | figure | ours | Redisson | ours / Redisson |")
    line("| --- | --- | ---: | ---: | ---: |")
    for (n in results.map { it.n }.distinct()) {
        val ours = results.find { it.impl == Impl.OURS && it.n == n }
        val redisson = results.find { it.impl == Impl.REDISSON && it.n == n }
        fun row(figure: String, f: (Footprint) -> Double) {
            val o = ours?.let(f) ?: Double.NaN
            val rr = redisson?.let(f) ?: Double.NaN
            line("| $n | $figure | ${num(o)} | ${num(rr)} | ${x(o / rr)} |")
        }
        fun count(figure: String, f: (Footprint) -> Int) =
            line("| $n | $figure | ${ours?.let { f(it).toString() } ?: "—"} | ${redisson?.let { f(it).toString() } ?: "—"} | |")
        count("locks held") { it.acquired }
        row("seconds to take them") { it.acquireSeconds }
        row("heap per lock, bytes") { it.heapPerLock }
        row("heap per lock, highest reading") { it.heapPerLockHighest }
        count("live threads while held") { it.threadsDuring }
        count("live threads before") { it.threadsBefore }
        row("renewal scripts/s, all masters") { it.scriptsPerSecond }
        row("commands/s, all masters") { it.commandsPerSecond }
        for (master in 0 until n) row("scripts/s on master $master") { it.perMaster.getOrNull(master)?.scriptsPerSecond ?: Double.NaN }
        count("locks lost or not taken") { it.failures }
    }
    line("")
    line("Commands per second over the hold, all masters, by command:")
    line("")
    for (f in results) if (f.commandMix.isNotEmpty()) line("- N = ${f.n}, ${f.impl.label}: ${f.commandMix}")
    line("")
    line("Live objects per lock by class (class histograms after full collections, at the end of the hold against")
    line("before the locks were taken; classes with at least 8 B per lock, largest first; the caller's coroutine is")
    line("part of them: its `launch` and block lambdas, `StandaloneCoroutine`, continuations):")
    line("")
    for (f in results) if (f.heapByClass.isNotEmpty()) line("- N = ${f.n}, ${f.impl.label} (${num(f.heapByClassTotal)} B per lock in all): ${f.heapByClass}")
}

private fun scenario5(results: List<SlowMaster>, profile: Profile, line: (String) -> Unit) {
    line("")
    line("## 5. One slow master")
    line("")
    line("What this measures: acquire latency alone over N = 5 masters, the fifth reached through a TCP proxy")
    line("(`TcpProxy`), first adding nothing, then ${profile.slowBy} to each round trip (half each way). Each acquisition")
    line("takes a fresh resource; releases run in the background.")
    line("")
    line("| figure | ours | Redisson | baseline | ours / Redisson | ours / baseline |")
    line("| --- | ---: | ---: | ---: | ---: | ---: |")
    val byImpl = Impl.entries.associateWith { impl -> results.find { it.impl == impl } }
    fun row(figure: String, f: (SlowMaster) -> Double) {
        val v = Impl.entries.map { byImpl[it]?.let(f) ?: Double.NaN }
        line("| $figure | ${num(v[0])} | ${num(v[1])} | ${num(v[2])} | ${x(v[0] / v[1])} | ${x(v[0] / v[2])} |")
    }
    row("p50 µs, all fast") { it.reference.p50 }
    row("p50 µs, one slow") { it.slow.p50 }
    row("p99 µs, all fast") { it.reference.p99 }
    row("p99 µs, one slow") { it.slow.p99 }
    line("| samples, all fast / one slow | ${Impl.entries.joinToString(" | ") { i -> byImpl[i]?.let { "${it.reference.count} / ${it.slow.count}" } ?: "—" }} | | |")
    val errors = results.filter { it.errors > 0 }
    if (errors.isNotEmpty()) {
        line("")
        line("Failed acquisitions: " + errors.joinToString { "${it.impl.label}: ${it.errors}" })
    }
}

/** A figure for a table: grouped by thousands, fewer decimals as it grows; a dash when not measured. */
fun num(v: Double): String = when {
    v.isNaN() || v.isInfinite() -> "—"
    abs(v) >= 100 -> String.format(Locale.ROOT, "%,.0f", v).replace(',', ' ')
    abs(v) >= 10 -> String.format(Locale.ROOT, "%.1f", v)
    else -> String.format(Locale.ROOT, "%.2f", v)
}

/** Microseconds, switching to milliseconds past 10 000. */
fun us(v: Double): String = when {
    v.isNaN() -> "—"
    abs(v) >= 10_000 -> num(v / 1000) + " ms"
    else -> num(v) + " µs"
}

fun x(v: Double): String = if (v.isNaN() || v.isInfinite()) "—" else String.format(Locale.ROOT, "%.2fx", v)

fun pct(v: Double): String = if (v.isNaN()) "—" else String.format(Locale.ROOT, "%.0f %%", v * 100)

package dev.redlock.benchmarks

import java.util.Locale

/** Issue 15's targets for scenarios 6 to 8, computed from the figures. */
fun lossTargets(r: Results): List<Target> {
    val out = ArrayList<Target>()
    r.adminFaults?.let { all ->
        for ((n, fault) in all.map { it.n to it.fault }.distinct()) {
            val ours = all.find { it.variant == Variant.TRACKING && it.n == n && it.fault == fault } ?: continue
            val without = all.find { it.variant == Variant.UNTRACKED && it.n == n && it.fault == fault }
            out += atMost(
                6, "N = $n, $fault on ${majorityText(n)}: with tracking, the block cancelled within 5 ms at p99 (loopback)",
                ours.cancelled.p99 / 5000.0, 1.0,
                "p99 ${us(ours.cancelled.p99)} (p50 ${us(ours.cancelled.p50)}, max ${us(ours.cancelled.max)}); without tracking p99 ${without?.let { us(it.cancelled.p99) } ?: "—"}",
            ) { lossWhy(ours, r) }
        }
    }
    r.crashHandOff?.let { all ->
        for (n in all.map { it.n }.distinct()) {
            val ours = all.find { it.variant == Variant.TRACKING && it.n == n } ?: continue
            out += atMost(
                7, "N = $n: with tracking, the next holder's section starts within 20 ms of the crashed holder's key expiring, at p99",
                ours.afterExpiry.p99 / 20_000.0, 1.0,
                "p99 ${us(ours.afterExpiry.p99)} (p50 ${us(ours.afterExpiry.p50)}, ${ours.samples} holders killed)",
            ) {
                "the waiter looks again at the refusing holder's remaining time (spread by at most 5 ms) or when the " +
                    "master pushes the key's deletion; the master deletes an expired key that nobody reads only in its " +
                    "active expiry cycle, ${r.serverHz} times a second, so a push can come up to ${num(1000.0 / (r.serverHz.toDoubleOrNull() ?: 10.0))} ms " +
                    "after the expiry; the load average was ${"%.2f".format(Locale.ROOT, r.machine.loadAtStart)} at the start of the run."
            }
        }
    }
    r.trackingCost?.let { costs ->
        for (n in costs.ops.map { it.n }.distinct()) {
            val with = costs.ops.filter { it.n == n && it.tracking && it.form == "acquire + release" }
            val without = costs.ops.filter { it.n == n && !it.tracking && it.form == "acquire + release" }
            if (with.isEmpty() || without.isEmpty()) continue
            val p50With = with.map { it.latency.p50 }.average()
            val p50Without = without.map { it.latency.p50 }.average()
            out += atMost(
                8, "N = $n, uncontended acquire + release: p50 with tracking at most 5 % above without",
                p50With / p50Without, 1.05,
                "${us(p50With)} vs ${us(p50Without)} (${signedPct(p50With / p50Without - 1)}); commands per operation " +
                    "${"%.2f".format(Locale.ROOT, with.map { it.commandsPerOp }.average())} vs ${"%.2f".format(Locale.ROOT, without.map { it.commandsPerOp }.average())}",
            ) {
                "the scripts and their commands are the same with and without tracking; the windows of one kind ranged " +
                    "${us(with.minOf { it.latency.p50 })} to ${us(with.maxOf { it.latency.p50 })} with tracking and " +
                    "${us(without.minOf { it.latency.p50 })} to ${us(without.maxOf { it.latency.p50 })} without, on a machine " +
                    "whose load average was ${"%.2f".format(Locale.ROOT, r.machine.loadAtStart)} at the start of the run."
            }
        }
        val all = costs.held
        val with = all.filter { it.tracking }
        val without = all.filter { !it.tracking }
        if (with.isNotEmpty() && without.isNotEmpty()) {
            val c = costSummary(all)
            out += atMost(
                8, "${num(with[0].locks.toDouble())} locks held: at most 5 % more client CPU per renewed key with tracking than without",
                c.clientRatio, 1.05,
                "${us(c.clientPerRenewalWith)} vs ${us(c.clientPerRenewalWithout)} = ${signedPct(c.clientRatio - 1)}",
            ) {
                "the renewal script is the same with and without tracking (its read after renewing, which keeps a " +
                    "tracking client told of the keys' next change, runs either way: " +
                    "${String.format(Locale.ROOT, "%.2f", c.commandsPerRenewalWith)} commands per renewed key with tracking, " +
                    "${String.format(Locale.ROOT, "%.2f", c.commandsPerRenewalWithout)} without); what tracking adds is the master's tracking " +
                    "table and its pushes, so the client's difference is within what two windows on this shared machine differ by: the " +
                    "windows without tracking ranged ${us(without.minOf { it.clientCpuPerRenewal })} to ${us(without.maxOf { it.clientCpuPerRenewal })} " +
                    "per renewed key, those with ${us(with.minOf { it.clientCpuPerRenewal })} to ${us(with.maxOf { it.clientCpuPerRenewal })}."
            }
        }
    }
    return out
}

private fun majorityText(n: Int): String = if (n == 1) "the master" else "${n / 2 + 1} of $n masters"

private fun lossWhy(ours: LossDetection, r: Results): String {
    val late = ours.cancelled.p99 - ours.declared.p99
    return "the library declared the loss at p99 ${us(ours.declared.p99)} after the fault and the block saw its " +
        "cancellation at p99 ${us(ours.cancelled.p99)}" +
        (if (late > 1000) " (${us(late)} later: the cancelled coroutine waits for a thread of the work pool)" else "") +
        "; the load average was ${"%.2f".format(Locale.ROOT, r.machine.loadAtStart)} at the start of the run and " +
        "${"%.2f".format(Locale.ROOT, r.loadAtEnd)} at its end, on ${r.machine.cores} cores shared with the masters."
}

/** Scenario 8's windows summed up: means over the windows of each kind. */
class CostSummary(
    val clientWith: Double,
    val clientWithout: Double,
    val serverWith: Double,
    val serverWithout: Double,
    val commandsWith: Double,
    val commandsWithout: Double,
    val memoryWith: Double,
    val memoryWithout: Double,
    /** Per renewed key: client CPU (µs), commands. */
    val clientPerRenewalWith: Double,
    val clientPerRenewalWithout: Double,
    val commandsPerRenewalWith: Double,
    val commandsPerRenewalWithout: Double,
) {
    val clientRatio: Double get() = clientPerRenewalWith / clientPerRenewalWithout
    val commandsRatio: Double get() = commandsPerRenewalWith / commandsPerRenewalWithout
}

fun costSummary(all: List<TrackingCost>): CostSummary {
    val with = all.filter { it.tracking }
    val without = all.filter { !it.tracking }
    fun List<TrackingCost>.mean(f: (TrackingCost) -> Double) = if (isEmpty()) Double.NaN else sumOf(f) / size
    return CostSummary(
        with.mean { it.clientCpu }, without.mean { it.clientCpu },
        with.mean { it.serverCpu }, without.mean { it.serverCpu },
        with.mean { it.commandsPerSecond }, without.mean { it.commandsPerSecond },
        with.mean { it.usedMemory.toDouble() }, without.mean { it.usedMemory.toDouble() },
        with.mean { it.clientCpuPerRenewal }, without.mean { it.clientCpuPerRenewal },
        with.mean { it.commandsPerRenewal }, without.mean { it.commandsPerRenewal },
    )
}

private fun cpu(secondsPerSecond: Double): String = if (secondsPerSecond.isNaN()) "—" else String.format(Locale.ROOT, "%.2f %%", secondsPerSecond * 100)

private fun signedPct(v: Double): String = if (v.isNaN()) "—" else String.format(Locale.ROOT, "%+.1f %%", v * 100)

private fun mib(bytes: Double): String = if (bytes.isNaN()) "—" else String.format(Locale.ROOT, "%.1f MiB", bytes / (1 shl 20))

internal fun scenario6(results: List<LossDetection>, profile: Profile, line: (String) -> Unit) {
    val cycle = profile.lossLease / 3
    line("")
    line("## 6. Loss after an administrator's DEL or FLUSHALL")
    line("")
    line("What this measures: how long a holder keeps running after an administrator removed its lock on a majority")
    line("of the masters (master 0 for N = 1, masters 0 to 2 for N = 5), the commands sent to those masters at once.")
    line("Locks have a ${profile.lossLease} lease, renewed every $cycle, and the fault comes at a random moment of the renewal")
    line("cycle: for `DEL`, ${profile.lossHolders} locks are held at once per round and each lock's key is deleted at its own moment")
    line("(one per ${profile.lossHolders}th of a cycle, at least ${cycle.inWholeMilliseconds / profile.lossHolders / 5} ms apart); for `FLUSHALL`, one lock per round. Ours: from just")
    line("before the commands are sent to the moment the block, suspended in `withRedlock`, sees its cancellation")
    line("(`withRedlock` then throws `LockLostException`), and to the moment the library declared the lease lost")
    line("(`Lease.times().lossDeclaredAt`). Without tracking, the next renewal finds the loss: expect up to $cycle.")
    line("")
    line("**Redisson has no loss signal**: a block holding an `RLock` is never told. What it does is shown as observed: its")
    line("watchdog's next renewal on a faulted master (its script calls read from `INFO commandstats` every 2 ms, so up to")
    line("about 2 ms late), whether it renews there again afterwards, whether the key comes back, and what `unlock` does.")
    line("")
    line("| N | fault | figure | ours, tracking | ours, keyTracking(false) | Redisson |")
    line("| --- | --- | --- | ---: | ---: | ---: |")
    for ((n, fault) in results.map { it.n to it.fault }.distinct()) {
        val by = Variant.entries.associateWith { v -> results.find { it.variant == v && it.n == n && it.fault == fault } }
        val t = by[Variant.TRACKING]
        val u = by[Variant.UNTRACKED]
        val rr = by[Variant.REDISSON]
        fun row(figure: String, f: (LossDetection) -> Double, redisson: String) =
            line("| $n | $fault | $figure | ${us(t?.let(f) ?: Double.NaN)} | ${us(u?.let(f) ?: Double.NaN)} | $redisson |")
        row("block cancelled, p50", { it.cancelled.p50 }, "no signal")
        row("block cancelled, p99", { it.cancelled.p99 }, "no signal")
        row("block cancelled, max", { it.cancelled.max }, "no signal")
        row("loss declared, p50", { it.declared.p50 }, "—")
        row("loss declared, p99", { it.declared.p99 }, "—")
        row("the fault's own round trip, p50", { it.faultRoundTrip.p50 }, us(rr?.faultRoundTrip?.p50 ?: Double.NaN))
        line("| $n | $fault | watchdog's next renewal after the fault, p50 / max | | | ${rr?.let { "${us(it.renewalAfter.p50)} / ${us(it.renewalAfter.max)}" } ?: "—"} |")
        line("| $n | $fault | samples | ${t?.samples ?: "—"} | ${u?.samples ?: "—"} | ${rr?.samples ?: "—"} |")
        val unseen = listOfNotNull(t, u, rr).filter { it.unseen > 0 || it.errors > 0 }
        for (x in unseen) line("| $n | $fault | not seen within the bound / errors (${x.variant.label}) | | | ${x.unseen} / ${x.errors} |")
    }
    line("")
    line("What Redisson did, per N and fault (every sample's lock, after its watchdog's first renewal since the fault):")
    line("")
    for (rr in results.filter { it.variant == Variant.REDISSON }) {
        val spared = rr.renewalsSpared?.let { "; on a master the fault spared, ${it} renewal script call(s) in the same time (the minority's keys kept alive)" } ?: ""
        line(
            "- N = ${rr.n}, ${rr.fault}: the holder was not told (no API for it); renewal script calls on a faulted master " +
                "in the ${num(rr.watchSeconds)} s watched afterwards: ${rr.renewalsAfter}$spared; lock keys back on the faulted masters: " +
                "${rr.recreated}; `unlock` at the end: ${rr.unlock.entries.joinToString { "${it.key} (${it.value})" }}.",
        )
    }
    val lost = results.filter { it.variant != Variant.REDISSON }
    if (lost.any { it.lockLost != it.samples - it.unseen }) {
        line("")
        line("`LockLostException` thrown: " + lost.joinToString { "${it.variant.label} N = ${it.n} ${it.fault}: ${it.lockLost} of ${it.samples}" })
    }
}

internal fun scenario7(results: List<CrashHandOff>, r: Results, line: (String) -> Unit) {
    val profile = r.profile
    line("")
    line("## 7. Hand-off after a holder's crash")
    line("")
    line("What this measures: a holder in a JVM of its own (started with this class path, `CrashHolder`) takes a lock")
    line("with a ${profile.crashLease} lease (renewed every ${(profile.crashLease / 3).inWholeMilliseconds} ms: ours in `withRedlock`, Redisson by its watchdog); this")
    line("process then waits for the same lock with the same library; at a random moment of the holder's renewal")
    line("cycle the holder is killed (SIGKILL, `destroyForcibly`), its keys left to expire. The `PTTL` of its key on every")
    line("master, read right after the kill, tells when a quorum's keys expire (to the millisecond); \"after expiry\" runs")
    line("from then to the next holder's section starting, \"total\" from just before the kill. The masters run with")
    line("`hz` ${r.serverHz}: a key nobody reads is deleted by the active expiry cycle up to ${num(1000.0 / (r.serverHz.toDoubleOrNull() ?: 10.0))} ms after it expired,")
    line("while a read finds it expired at once. Waiters: ours at the refusing holder's remaining time (plus at most 5 ms),")
    line("or at the master's push (with tracking), or at the jittered retry delay; Redisson at the TTL its attempt returned.")
    line("")
    line("| N | figure | ours, tracking | ours, keyTracking(false) | Redisson |")
    line("| --- | --- | ---: | ---: | ---: |")
    for (n in results.map { it.n }.distinct()) {
        val by = Variant.entries.map { v -> results.find { it.variant == v && it.n == n } }
        fun row(figure: String, f: (CrashHandOff) -> Double) =
            line("| $n | $figure | ${by.joinToString(" | ") { us(it?.let(f) ?: Double.NaN) }} |")
        row("after expiry, p50") { it.afterExpiry.p50 }
        row("after expiry, p99") { it.afterExpiry.p99 }
        row("after expiry, max") { it.afterExpiry.max }
        row("total from the kill, p50") { it.total.p50 }
        row("total from the kill, max") { it.total.max }
        row("key's remaining time at the kill, p50") { it.remaining.p50 }
        line("| $n | holders killed | ${by.joinToString(" | ") { it?.samples?.toString() ?: "—" }} |")
        line("| $n | sections before the computed expiry (counted as 0) | ${by.joinToString(" | ") { it?.early?.toString() ?: "—" }} |")
        row("holder JVM start to holding, p50") { it.holderStart.p50 }
        val bad = by.filterNotNull().filter { it.missed > 0 || it.errors > 0 }
        for (x in bad) line("| $n | no section within the lease + 10 s / errors (${x.variant.label}) | ${x.missed} / ${x.errors} | | |")
    }
    for (x in results.filter { it.releaseFailures.isNotEmpty() }) {
        line("")
        line(
            "${x.variant.label}, N = ${x.n}: the release after the section threw ${x.releaseFailures.entries.joinToString { "${it.key} (${it.value} of ${x.samples})" }}" +
                if (x.variant == Variant.REDISSON) ": its RedLock took a majority while the dead holder's keys still lived on other masters, and unlocking those fails." else ".",
        )
    }
}

internal fun scenario8(costs: TrackingCosts, profile: Profile, line: (String) -> Unit) {
    line("")
    line("## 8. What key tracking costs")
    line("")
    if (costs.ops.isNotEmpty()) {
        line("Uncontended: scenario 1's loop (one caller, one resource, one operation after the other, ${profile.warmup} warm-up then")
        line("${profile.costMeasure} measured) with tracking and with `keyTracking(false)`, in alternating windows. Commands per operation")
        line("are every call the N masters ran, those inside scripts included (`INFO commandstats`), divided by the operations;")
        line("client CPU is this process's CPU time per operation.")
        line("")
        line("| N | form | window | tracking | p50 | p99 | max | operations | commands/op | scripts/op | other commands/op | client CPU/op |")
        line("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
        for (o in costs.ops) {
            val other = o.perCommand.filterKeys { it != "evalsha" && it != "eval" }.entries.joinToString(", ") { "${it.key} ${String.format(Locale.ROOT, "%.2f", it.value)}" }
            line(
                "| ${o.n} | ${o.form} | ${o.window} | ${if (o.tracking) "on" else "off"} | ${us(o.latency.p50)} | ${us(o.latency.p99)} | ${us(o.latency.max)} | " +
                    "${o.latency.count} | ${String.format(Locale.ROOT, "%.2f", o.commandsPerOp)} | ${String.format(Locale.ROOT, "%.2f", o.scriptsPerOp)} | $other | ${us(o.clientCpuPerOp)} |",
            )
        }
        line("")
    }
    val results = costs.held
    if (results.isEmpty()) return
    val c = costSummary(results)
    line("Held locks: ${num(results.first().locks.toDouble())} locks held at N = 1 in `withRedlock` with a ${profile.costLease} lease (renewed every")
    line("${profile.costLease / 3}, coalesced), once with tracking and once with `keyTracking(false)`, in alternating windows of three")
    line("renewal rounds, each starting halfway between two rounds, after one window not shown (warm-up). A window can catch")
    line("part of a fourth round when the locks' rounds spread out, so the figures are also given per renewed key (the")
    line("master's `PEXPIRE` calls). Commands are every call the master ran, those inside")
    line("scripts included (`INFO commandstats`); server CPU is the master's `used_cpu_user` + `used_cpu_sys`; client CPU is")
    line("this process's CPU time (all threads); tracked keys and memory are `tracking_total_keys` (`INFO stats`) and")
    line("`used_memory` (`INFO memory`) at the end of the window, with every lock held. Rates are per second; CPU is the")
    line("share of one core.")
    line("")
    line("| window | tracking | locks held | keys renewed/s | commands/s | per renewed key | scripts/s | reads in scripts (MGET + EXISTS)/s | server CPU | per renewed key | client CPU | per renewed key | tracked keys | used memory |")
    line("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (w in results) {
        line(
            "| ${w.window} | ${if (w.tracking) "on" else "off"} | ${w.held} | ${num(w.renewalsPerSecond)} | ${num(w.commandsPerSecond)} | " +
                "${String.format(Locale.ROOT, "%.3f", w.commandsPerRenewal)} | ${num(w.scriptsPerSecond)} | " +
                "${num((w.perCommand["mget"] ?: 0.0) + (w.perCommand["exists"] ?: 0.0))} | ${cpu(w.serverCpu)} | ${us(w.serverCpuPerRenewal)} | " +
                "${cpu(w.clientCpu)} | ${us(w.clientCpuPerRenewal)} | ${w.trackedKeys} | ${mib(w.usedMemory.toDouble())} |",
        )
    }
    line("")
    val perLock = (c.memoryWith - c.memoryWithout) / results.first().locks
    line(
        "Tracking, on average over the windows: client CPU ${us(c.clientPerRenewalWith)} per renewed key against " +
            "${us(c.clientPerRenewalWithout)} (${signedPct(c.clientRatio - 1)}; ${cpu(c.clientWith)} of a core against ${cpu(c.clientWithout)}); " +
            "the master ran ${String.format(Locale.ROOT, "%.3f", c.commandsPerRenewalWith)} commands per renewed key against " +
            "${String.format(Locale.ROOT, "%.3f", c.commandsPerRenewalWithout)} and used ${cpu(c.serverWith)} of a core against ${cpu(c.serverWithout)}; its tracking " +
            "table took ${mib(c.memoryWith - c.memoryWithout)} (${num(perLock)} bytes per tracked key).",
    )
    val failures = results.filter { it.failures > 0 }
    if (failures.isNotEmpty()) line("Locks lost or not taken: " + failures.joinToString { "window ${it.window}, tracking ${it.tracking}: ${it.failures}" })
}

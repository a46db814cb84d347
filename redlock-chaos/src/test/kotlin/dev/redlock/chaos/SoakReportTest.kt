package dev.redlock.chaos

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.string.shouldContain
import java.time.Instant
import kotlin.time.Duration.Companion.seconds

private fun ms(value: Long): Long = value * 1_000_000

/**
 * The soak's report, rendered from a synthetic round: the figures of the checker without grace
 * (overrun and cancellation latency, apart) and what the edge faults found reach RELIABILITY.md.
 */
class SoakReportTest :
    FunSpec({
        test("the soak's report shows overrun and cancellation latency apart, and what the edge faults found") {
            val sections = listOf(
                // Declared 2 ms late: a missed loss of 2 ms; its block then took 3 ms to stop.
                Section("c0#1", "c0", "r0", ms(0), ms(1005), ms(1000), false, Outcome.LOST, "EXPIRED", ms(1002)),
                // Declared 1 ms ahead: overrun -1 ms; stopped 40 ms after the declaration.
                Section("c1#1", "c1", "r1", ms(0), ms(1039), ms(1000), false, Outcome.LOST, "EXPIRED", ms(999)),
                Section("c2#close1", "c2", "close-c2-1", ms(100), ms(2100), ms(1200), true, Outcome.COMPLETED),
            )
            val close = CloseRecord("c2", ms(500), ms(505), listOf("LockNotAcquiredException" to ms(3500)), "IllegalStateException", 1, "c2#close1")
            val orphan = OrphanKey(0, "probe-1", ms(1500), 700, "after SCRIPT_FLUSH_PAUSED_MASTER on master 0")
            val faults = listOf(
                FaultEvent(FaultKind.RENEWAL_LATENCY, "sides [0] -> masters [0]", ms(900), ms(1900), "+200 ms each way from the next renewal on 1 of 1 proxies"),
                FaultEvent(FaultKind.RENEWAL_BLACK_HOLE, "sides [1] -> masters [0]", ms(2000), ms(2000), "no renewal passed within 4 leases"),
            )
            val report = Checker().check(sections, faults, closes = listOf(close), orphans = listOf(orphan))
            val scenario = Scenario("soak-0-renewal_latency", masters = 1, seed = 1, faults = listOf(FaultKind.RENEWAL_LATENCY))
            val result = ScenarioResult(scenario, report, 0, 5.seconds, mapOf("refused" to 3L), emptyMap())
            val text = SoakReport(
                Soak.Options(10.0, 42, null, null), Instant.EPOCH, 600.seconds, 1,
                listOf(Soak.Round(0, scenario) to Result.success(result)), emptyList(), ReplayReport(emptyList(), 1.seconds), emptyList(),
            ).render()

            text shouldContain "| missed losses (a guarded block ran past its validity before it stopped or was told, by any margin) | 2 (expected 0) |"
            // Overruns of the sections that reached the end of their validity: -1, 2 and 900 ms (nearest rank).
            text shouldContain "p50 / p99 / max | 2.0 ms / 900.0 ms / 900.0 ms (n=3) |"
            text shouldContain "| cancellation latency (loss declared -> block stopped), p50 / p99 / max | 3.0 ms / 40.0 ms / 40.0 ms (n=2) |"
            text shouldContain "| `close()` of a client mid-section: closes, problems found | 1, 4 (expected 0) |"
            text shouldContain "| lock keys held by nobody after a script reload met a stopped or slow master (orphans) | 1 (expected 0) |"
            text shouldContain "| calls refused at the call (a per-call lease beyond the restart guard) | 3 |"
            text shouldContain "## Faults aimed at the edges"
            text shouldContain "| ${FaultKind.RENEWAL_LATENCY.label} | 1 | 1 |"
            text shouldContain "| ${FaultKind.RENEWAL_BLACK_HOLE.label} | 1 | 0 |"
            text shouldContain "c0#1 on 'r0' (LOST EXPIRED) ran 2.0 ms past its validity (loss declared 2.0 ms after it)"
            text shouldContain "| renewal_latency | 3 | 2.0 ms / 900.0 ms / 900.0 ms (n=3) | 2 | 3.0 ms / 40.0 ms / 40.0 ms (n=2) |"
        }

        test("the soak's report shows each deletion fault's detection delay by key tracking, and its problems") {
            val timing = Timing()
            fun begunAt(t: Long): Long = ms(t) + ms(1000) - timing.driftNanos(ms(1000))
            val sections = listOf(
                Section("admin-tracked#1", "admin-tracked", "admin-1", ms(100), ms(510), begunAt(90), false, Outcome.LOST, "NOT_HELD", ms(505)),
                Section("admin-untracked#2", "admin-untracked", "admin-2", ms(1100), ms(1900), begunAt(1090), true, Outcome.COMPLETED),
            )
            val deletions = listOf(
                Deletion(FaultKind.ADMIN_DEL_MAJORITY, listOf(0, 1), 3, ms(500), ms(500), ms(502), "random", "admin-1", "admin-tracked#1", true),
                Deletion(FaultKind.ADMIN_DEL_MAJORITY, listOf(0, 1), 3, ms(1500), ms(1500), ms(1502), "split", "admin-2", "admin-untracked#2", false),
            )
            val report = Checker(timing).check(sections, deletions = deletions, untracked = setOf("admin-untracked"))
            val scenario = Scenario("soak-0-admin_del_majority", masters = 3, seed = 1, faults = listOf(FaultKind.ADMIN_DEL_MAJORITY))
            val text = SoakReport(
                Soak.Options(10.0, 42, null, null), Instant.EPOCH, 600.seconds, 1,
                listOf(Soak.Round(0, scenario) to Result.success(ScenarioResult(scenario, report, 0, 5.seconds, emptyMap(), emptyMap()))),
                emptyList(), ReplayReport(emptyList(), 1.seconds), emptyList(),
            ).render()

            text shouldContain "## An administrator's deletions"
            text shouldContain "| ${FaultKind.ADMIN_DEL_MAJORITY.label} | on | 1 (0) | 1 | 1 | 0 | 3.0 ms / 3.0 ms / 3.0 ms (n=1) | 3.0 ms / 3.0 ms / 3.0 ms (n=1) |"
            text shouldContain "| ${FaultKind.ADMIN_DEL_MAJORITY.label} | off | 1 (0) | 1 | 0 | 1 | - (none) | - (none) |"
            text shouldContain "problems found (a lease taken on a majority not declared lost"
            text shouldContain "| 2, 1 (expected 0) |"
            text shouldContain "- Problems found: 1 (expected 0)."
        }
    })

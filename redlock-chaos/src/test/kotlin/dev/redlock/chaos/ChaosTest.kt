package dev.redlock.chaos

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainAll
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.maps.shouldBeEmpty
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldNotContain
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** One family of edge faults for the short tier: its faults in order, and the clients they aim at. */
private data class EdgeFamily(
    val name: String,
    val label: String,
    val faults: List<FaultKind>,
    val renewingClients: Int = 0,
    val longLeaseClients: Int = 0,
)

/**
 * The short tier: for N = 1, 3 and 5 masters, 8 clients in this JVM and one in its own take locks
 * on 3 resources while every fault is injected in turn (seeded, so a failure replays from the seed
 * it prints). Where the Redlock assumptions hold, the checker must find no overlap and no missed
 * loss; the faults that destroy keys run apart, and only the absence of missed losses is required
 * there (the negative controls show that they do break mutual exclusion). The faults aimed at the
 * edges run a family at a time (`edge ...`), with the promises of `close()`, the script reload and
 * the restart guard checked besides. An administrator's deletions run apart (`admin ...`): `DEL` of
 * a probe section's key on one master, the largest minority or a majority, and `FLUSHALL` on a
 * majority, with the probe's key tracking on and off in turn; on a majority the lease must be
 * declared lost (NOT_HELD) and its block cancelled, on a minority it must renew and go on, and the
 * detection delay is reported by kind and tracking. The checker allows no margin anywhere.
 */
class ChaosTest :
    FunSpec({
        // The faults a child holder suffers come last but one and last: the crash ends that child.
        val safeInOrder = listOf(
            FaultKind.KILL_RESTART_AFTER_LEASE,
            FaultKind.PAUSE_MASTER,
            FaultKind.LATENCY,
            FaultKind.BLACK_HOLE,
            FaultKind.RESET,
            FaultKind.SCRIPT_FLUSH,
            FaultKind.PAUSED_HOLDER,
            FaultKind.HOLDER_CRASH,
        )
        val keyLossInOrder = listOf(FaultKind.RESTART_EMPTY_AT_ONCE, FaultKind.FLUSHALL, FaultKind.EVICTION)

        // Faults aimed at the edges, a family per run: each fault starts at the moment that matters.
        val families = listOf(
            EdgeFamily(
                "renewal", "latency or a black hole that starts exactly when a renewal is sent",
                listOf(FaultKind.RENEWAL_LATENCY, FaultKind.RENEWAL_BLACK_HOLE, FaultKind.RENEWAL_LATENCY, FaultKind.RENEWAL_BLACK_HOLE),
                renewingClients = 3,
            ),
            EdgeFamily("close", "close() of a client's Redlock in the middle of its sections and waits", listOf(FaultKind.CLOSE_CLIENT, FaultKind.CLOSE_CLIENT)),
            EdgeFamily(
                "reload", "SCRIPT FLUSH, then the master stopped or slowed exactly at the script reload",
                listOf(FaultKind.SCRIPT_FLUSH_PAUSED_MASTER, FaultKind.SCRIPT_FLUSH_SLOW_MASTER), renewingClients = 2,
            ),
            EdgeFamily(
                "long-lease", "per-call leases longer than the restart guard, a majority of masters restarted at once",
                listOf(FaultKind.RESTART_GUARDED_LONG_LEASE, FaultKind.RESTART_GUARDED_LONG_LEASE), longLeaseClients = 2,
            ),
        )

        // An administrator's deletions, each kind in turn with the probe tracking and not, through the timings (see
        // Injector.adminFault). One master is a majority where N = 1; there is no minority there.
        fun adminInOrder(n: Int): List<FaultKind> =
            List(2) { FaultKind.ADMIN_DEL_ONE } +
                List(if (n >= 5) 2 else 0) { FaultKind.ADMIN_DEL_MINORITY } +
                List(if (n == 1) 4 else 6) { FaultKind.ADMIN_DEL_MAJORITY } +
                List(if (n == 1) 4 else 6) { FaultKind.FLUSHALL_MAJORITY }

        test("the short tier covers every fault the suite can inject") {
            (safeInOrder + keyLossInOrder + families.flatMap { it.faults } + adminInOrder(5)).toSet() shouldBe FaultKind.SCHEDULABLE.toSet()
        }

        for (n in listOf(1, 3, 5)) {
            test("N=$n: every fault that keeps the assumptions, in turn: no overlap, no missed loss, nothing left behind") {
                val result = runScenario(
                    Scenario(
                        name = "short-safe", masters = n, seed = 1000L + n, faults = safeInOrder, inOrder = true,
                        childClients = 1, replaceKilledChildren = false, duration = 60.seconds,
                    )
                )
                println(result.summary())
                val report = result.report
                withClue(result.summary()) {
                    report.violations.shouldBeEmpty()
                    report.missedLosses.shouldBeEmpty()
                    report.fenceInversions.shouldBeEmpty()
                    report.sections.count { it.fence != null } shouldBeGreaterThan 50
                    result.keysLeftAfterLease.shouldBeEmpty()
                    report.faults.map { it.kind }.toSet() shouldContainAll safeInOrder
                    report.sections.size shouldBeGreaterThan 50
                    report.outcomes[Outcome.UNFINISHED] shouldBe null
                    // The holder faults caught a holder: the frozen one overran, the killed one died.
                    report.pausedOverruns.size shouldBe 1
                    report.outcomes[Outcome.DIED] shouldBe 1
                    report.reacquires.size shouldBe 2
                }
            }

            test("N=$n: faults that destroy keys, in turn: every loss the library could see is reported, none missed") {
                val result = runScenario(
                    Scenario(
                        name = "short-keyloss", masters = n, seed = 2000L + n, faults = keyLossInOrder, inOrder = true,
                        childClients = 0, duration = 30.seconds,
                    )
                )
                println(result.summary())
                withClue(result.summary()) {
                    result.report.missedLosses.shouldBeEmpty()
                    result.report.fenceInversions.shouldBeEmpty()
                    result.keysLeftAfterLease.shouldBeEmpty()
                    result.report.faults.map { it.kind } shouldBe keyLossInOrder
                    result.report.outcomes[Outcome.UNFINISHED] shouldBe null
                }
            }

            // Named so that it can be picked: -Dkotest.filter.tests='*admin N=3*'.
            test("admin N=$n: DEL on a majority and FLUSHALL on a majority are detected, tracking on and off; DEL on a minority loses nothing") {
                val faults = adminInOrder(n)
                val result = runScenario(
                    Scenario(
                        name = "admin", masters = n, seed = 4000L + n, faults = faults, inOrder = true,
                        clients = 4, childClients = 0, renewingClients = 1, resources = 2, mixTracking = true,
                        gap = 50.milliseconds..150.milliseconds, duration = 30.seconds,
                    )
                )
                println(result.summary())
                val report = result.report
                withClue(result.summary()) {
                    report.violations.shouldBeEmpty()
                    report.missedLosses.shouldBeEmpty()
                    report.fenceInversions.shouldBeEmpty()
                    report.outcomes[Outcome.UNFINISHED] shouldBe null
                    report.faults.map { it.kind } shouldBe faults
                    report.deletions shouldHaveSize faults.size
                    // Each probe lease taken on a majority was declared lost (NOT_HELD) and its block cancelled; each on a
                    // minority renewed and completed; no lease renewed once its keys were gone; no grant before the guard allowed.
                    report.deletionProblems.shouldBeEmpty()
                    for (d in report.deletions.filter { it.record.majority }) {
                        val probe = d.victims.single { it.probe }
                        probe.section.lossReason shouldBe "NOT_HELD"
                        probe.stoppedAfter shouldNotBe null
                    }
                    // Both kinds of probe, both kinds of client: the figures compare tracking on and off.
                    report.deletions.map { it.record.probeTracked }.toSet() shouldBe setOf(true, false)
                    // Every deletion on a majority had its lease taken and timed, tracking on and off.
                    val majorities = report.deletions.filter { it.record.majority }.map { it.record.kind }.toSet()
                    report.detectionByKind.keys shouldBe majorities.flatMap { listOf(it to true, it to false) }.toSet()
                    result.keysLeftAfterLease.shouldBeEmpty()
                }
            }

            for ((index, family) in families.withIndex()) {
                // Named so that a family, an N or both can be picked: -Dkotest.filter.tests='*edge close*', '*edge*N=3*'.
                test("edge ${family.name} N=$n: ${family.label}: no overlap, no section past its validity uninformed, by any margin") {
                    val result = runScenario(
                        Scenario(
                            name = "edge-${family.name}", masters = n, seed = 3000L + 10 * index + n, faults = family.faults, inOrder = true,
                            childClients = 0, renewingClients = family.renewingClients, longLeaseClients = family.longLeaseClients,
                            gap = 100.milliseconds..300.milliseconds, duration = 40.seconds,
                        )
                    )
                    println(result.summary())
                    val report = result.report
                    withClue(result.summary()) {
                        report.violations.shouldBeEmpty()
                        report.missedLosses.shouldBeEmpty()
                        report.fenceInversions.shouldBeEmpty()
                        report.outcomes[Outcome.UNFINISHED] shouldBe null
                        report.faults.map { it.kind } shouldBe family.faults
                        when (family.name) {
                            "renewal" -> {
                                // Each fault met a renewal: it tested what it claims.
                                report.faults.forEach { it.note shouldNotContain "no renewal passed" }
                            }
                            "close" -> {
                                report.closes shouldHaveSize family.faults.size
                                report.closeProblems.shouldBeEmpty()
                                // The other clients carried on after each close.
                                for (c in report.closes) {
                                    report.sections.count { it.client != c.record.client && it.start > c.record.end } shouldBeGreaterThan 0
                                }
                            }
                            "reload" -> {
                                report.faults.forEach { it.note shouldNotContain "no script reload" }
                                report.orphans.shouldBeEmpty()
                            }
                            "long-lease" -> {
                                // Refused at the call (the guard must cover every lease granted): none ran, each was counted.
                                report.sections.filter { it.requestedLease > 0 }.map { it.id }.shouldBeEmpty()
                                result.refusals shouldBeGreaterThan 0L
                            }
                        }
                        result.keysLeftAfterLease.shouldBeEmpty()
                    }
                }
            }
        }
    })

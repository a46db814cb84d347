package dev.redlock.chaos

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainAll
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.maps.shouldBeEmpty
import io.kotest.matchers.shouldBe
import kotlin.time.Duration.Companion.seconds

/**
 * The short tier: for N = 1, 3 and 5 masters, 8 clients in this JVM and one in its own take locks
 * on 3 resources while every fault is injected in turn (seeded, so a failure replays from the seed
 * it prints). Where the Redlock assumptions hold, the checker must find no overlap and no missed
 * loss; the faults that destroy keys run apart, and only the absence of missed losses is required
 * there (the negative controls show that they do break mutual exclusion).
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

        test("the short tier covers every fault the suite can inject") {
            (safeInOrder + keyLossInOrder).toSet() shouldBe FaultKind.SCHEDULABLE.toSet()
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
        }
    })

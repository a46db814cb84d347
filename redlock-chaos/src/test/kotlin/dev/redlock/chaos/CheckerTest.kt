package dev.redlock.chaos

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe

/** Milliseconds as the checker's nanoseconds, for readable synthetic histories. */
private fun ms(value: Long): Long = value * 1_000_000

private fun section(
    id: String,
    resource: String = "r",
    start: Long,
    end: Long,
    validUntil: Long,
    bodyCompleted: Boolean = true,
    outcome: Outcome = Outcome.COMPLETED,
    client: String = id,
    lossReason: String? = null,
    lossDeclaredAt: Long? = null,
    guarded: Boolean = true,
    fence: Long? = null,
) = Section(id, client, resource, ms(start), ms(end), ms(validUntil), bodyCompleted, outcome, lossReason,
    lossDeclaredAt?.let(::ms), guarded, fence)

class CheckerTest :
    FunSpec({
        val checker = Checker(cancelGraceNanos = ms(25))

        test("fencing: tokens that grow from holder to holder pass; a later holder with a smaller or equal token is reported") {
            val growing = listOf(
                section("a", start = 0, end = 100, validUntil = 1000, fence = 10),
                section("b", start = 200, end = 300, validUntil = 1200, fence = 11),
                section("x", resource = "other", start = 250, end = 300, validUntil = 1200, fence = 3),
                section("c", start = 400, end = 500, validUntil = 1400, fence = 1_700_000_000_000_000),
            )
            checker.check(growing).fenceInversions shouldBe emptyList()
            val inverted = growing + section("d", start = 600, end = 700, validUntil = 1600, fence = 11)
            val found = checker.check(inverted).fenceInversions
            found.map { it.first.id to it.second.id } shouldBe listOf("c" to "d")
        }

        test("sections that follow each other on a resource are not a violation") {
            val report = checker.check(
                listOf(
                    section("a", start = 0, end = 100, validUntil = 900),
                    section("b", start = 100, end = 250, validUntil = 1000),
                    section("c", start = 260, end = 300, validUntil = 1200),
                )
            )
            report.violations.shouldBeEmpty()
            report.missedLosses.shouldBeEmpty()
        }

        test("two sections that overlap while both believe their leases valid are a violation, with the overlap measured") {
            val report = checker.check(
                listOf(
                    section("a", start = 0, end = 500, validUntil = 900),
                    section("b", start = 300, end = 700, validUntil = 1300),
                )
            )
            report.violations shouldHaveSize 1
            val v = report.violations.single()
            v.first.id shouldBe "a"
            v.second.id shouldBe "b"
            v.overlapStart shouldBe ms(300)
            v.overlapNanos shouldBe ms(200)
        }

        test("every overlapping pair is reported, also a third section inside two others") {
            val report = checker.check(
                listOf(
                    section("a", start = 0, end = 1000, validUntil = 1000),
                    section("b", start = 100, end = 900, validUntil = 900),
                    section("c", start = 200, end = 300, validUntil = 2000),
                )
            )
            report.violations.map { it.first.id to it.second.id }.toSet() shouldBe setOf("a" to "b", "a" to "c", "b" to "c")
        }

        test("overlaps on different resources are not a violation") {
            val report = checker.check(
                listOf(
                    section("a", resource = "r1", start = 0, end = 500, validUntil = 900),
                    section("b", resource = "r2", start = 100, end = 400, validUntil = 900),
                )
            )
            report.violations.shouldBeEmpty()
        }

        test("a holder running past its believed validity does not overlap a successor that starts after that validity") {
            val report = checker.check(
                listOf(
                    // a believed its lease valid until 400 but ran until 600: the belief counts, not the run.
                    section("a", start = 0, end = 600, validUntil = 400, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED"),
                    section("b", start = 450, end = 800, validUntil = 1400),
                )
            )
            report.violations.shouldBeEmpty()
        }

        test("a successor that starts before the holder's believed validity ends is a violation even if the holder was lost") {
            val report = checker.check(
                listOf(
                    section("a", start = 0, end = 600, validUntil = 500, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "NOT_HELD", lossDeclaredAt = 590),
                    section("b", start = 450, end = 800, validUntil = 1400),
                )
            )
            report.violations shouldHaveSize 1
            report.violations.single().overlapNanos shouldBe ms(50)
        }

        test("a block that ran all its steps past its validity is a missed loss; within the grace it is not") {
            val report = checker.check(
                listOf(
                    section("late", start = 0, end = 700, validUntil = 500),
                    section("close", resource = "s", start = 0, end = 520, validUntil = 500),
                    section("cancelled", resource = "t", start = 0, end = 700, validUntil = 500, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED"),
                    section("unguarded", resource = "u", start = 0, end = 700, validUntil = 500, guarded = false),
                )
            )
            report.missedLosses.map { it.section.id } shouldContainExactly listOf("late")
            report.missedLosses.single().overrunNanos shouldBe ms(200)
        }

        test("cancel latency runs from the earlier of believed validity and declared loss to the block's end") {
            val report = checker.check(
                listOf(
                    section("expired", start = 0, end = 530, validUntil = 500, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 501),
                    section("notHeld", resource = "s", start = 0, end = 310, validUntil = 900, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "NOT_HELD", lossDeclaredAt = 300),
                )
            )
            report.cancelLatencies.sorted() shouldBe listOf(ms(10), ms(30))
        }

        test("a loss declared as not held is timed from the key-destroying fault before it") {
            val flush = FaultEvent(FaultKind.FLUSHALL, "master 0", ms(200), ms(200))
            val report = checker.check(
                listOf(section("a", start = 0, end = 350, validUntil = 900, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "NOT_HELD", lossDeclaredAt = 340)),
                faults = listOf(flush),
            )
            report.detectionDelays shouldBe listOf(ms(140))
        }

        test("a violation names the key loss that preceded it") {
            val restart = FaultEvent(FaultKind.RESTART_EMPTY_AT_ONCE, "master 1", ms(100), ms(150))
            val latency = FaultEvent(FaultKind.LATENCY, "side 0", ms(120), ms(500))
            val report = checker.check(
                listOf(
                    section("a", start = 0, end = 800, validUntil = 900),
                    section("b", start = 200, end = 300, validUntil = 1200),
                ),
                faults = listOf(restart, latency),
            )
            report.violations.single().keyLossBefore shouldBe restart
        }

        test("a holder frozen across the end of its validity is a paused overrun, not a missed loss, and its resource is reacquired") {
            val freeze = ClientEvent("child0", ClientEvent.Kind.FROZEN, ms(100), ms(1600))
            val report = checker.check(
                listOf(
                    section("p", client = "child0", start = 50, end = 1605, validUntil = 1000, bodyCompleted = true, outcome = Outcome.LOST, lossReason = "EXPIRED"),
                    section("q", client = "c1", start = 1010, end = 1100, validUntil = 2000),
                ),
                clientEvents = listOf(freeze),
            )
            report.missedLosses.shouldBeEmpty()
            report.violations.shouldBeEmpty()
            report.pausedOverruns shouldHaveSize 1
            report.pausedOverruns.single().afterResumeNanos shouldBe ms(5)
            report.cancelLatencies.shouldBeEmpty()
            val reacquire = report.reacquires.single()
            reacquire.delayNanos shouldBe ms(910)
            reacquire.leaseLeftNanos shouldBe ms(900)
        }

        test("a short freeze early in a section that is lost later is no paused overrun: the loss is timed as usual") {
            val report = checker.check(
                listOf(section("p", client = "child0", start = 50, end = 1450, validUntil = 1000, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 1001)),
                clientEvents = listOf(ClientEvent("child0", ClientEvent.Kind.FROZEN, ms(100), ms(130))),
            )
            report.pausedOverruns.shouldBeEmpty()
            report.cancelLatencies shouldBe listOf(ms(450))
        }

        test("a freeze shorter than what the lease had left counts for no reacquisition") {
            val report = checker.check(
                listOf(section("p", client = "child0", start = 50, end = 300, validUntil = 1000)),
                clientEvents = listOf(ClientEvent("child0", ClientEvent.Kind.FROZEN, ms(100), ms(150))),
            )
            report.reacquires.shouldBeEmpty()
            report.pausedOverruns.shouldBeEmpty()
        }

        test("a killed holder's resource is reacquired after its lease; a resource nobody took reports no delay") {
            val kill = ClientEvent("child0", ClientEvent.Kind.KILLED, ms(300), ms(300))
            val report = checker.check(
                listOf(
                    section("k", client = "child0", start = 100, end = 300, validUntil = 1100, bodyCompleted = false, outcome = Outcome.DIED),
                    section("n", client = "c1", start = 1120, end = 1200, validUntil = 2000),
                ),
                clientEvents = listOf(kill, ClientEvent("child1", ClientEvent.Kind.KILLED, ms(50), ms(50))),
            )
            report.reacquires shouldHaveSize 1
            report.reacquires.single().delayNanos shouldBe ms(820)
            report.violations.shouldBeEmpty()
        }

        test("recovery is timed from a fault's end to the next section start, and the longest stall between starts") {
            val kill = FaultEvent(FaultKind.KILL_RESTART_AFTER_LEASE, "master 0", ms(100), ms(1300))
            val report = checker.check(
                listOf(
                    section("a", start = 0, end = 50, validUntil = 900),
                    section("b", start = 1400, end = 1450, validUntil = 2000),
                    section("c", start = 1500, end = 1550, validUntil = 2100),
                ),
                faults = listOf(kill),
            )
            report.recoveries.single().nanos shouldBe ms(100)
            report.longestStallNanos shouldBe ms(1400)
        }

        test("an empty history reports nothing") {
            val report = checker.check(emptyList())
            report.violations.shouldBeEmpty()
            report.longestStallNanos shouldBe 0
            report.reacquires.shouldBeEmpty()
        }

        test("percentile by nearest rank") {
            percentile(emptyList(), 50.0).shouldBeNull()
            percentile(listOf(5), 99.0) shouldBe 5
            percentile((1L..100L).toList(), 50.0) shouldBe 50
            percentile((1L..100L).toList(), 99.0) shouldBe 99
            percentile((1L..100L).toList(), 100.0) shouldBe 100
        }

        test("the history turns reported events into sections; a killed client's open section ends when it died") {
            val history = History()
            history.begin("a", "c0", "r", ms(0), ms(1000))
            history.valid("a", ms(1200))
            history.valid("a", ms(1100)) // an older belief never shortens a newer one
            history.ended("a", ms(400), bodyCompleted = true)
            history.outcome("a", Outcome.COMPLETED, null, null)
            history.begin("b", "child", "r", ms(500), ms(1500))
            history.openSectionOf("child") shouldBe ("r" to ms(500))
            history.clientDied("child", ms(600))
            history.begin("c", "c1", "r", ms(700), ms(1700))
            history.closeOpen()
            history.begun shouldBe 3
            history.sections().map { Triple(it.id, it.outcome, it.end) } shouldContainExactly listOf(
                Triple("a", Outcome.COMPLETED, ms(400)),
                Triple("b", Outcome.DIED, ms(600)),
                Triple("c", Outcome.UNFINISHED, history.sections()[2].end),
            )
            history.sections()[0].validUntil shouldBe ms(1200)
        }
    })

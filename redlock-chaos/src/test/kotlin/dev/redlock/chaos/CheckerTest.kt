package dev.redlock.chaos

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.longs.shouldBeGreaterThanOrEqual
import io.kotest.matchers.longs.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.TimeSource

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
        val checker = Checker()

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

        test("a guarded block that ran past its validity, uninformed, is a missed loss by however little; one told at or before it is not") {
            val report = checker.check(
                listOf(
                    section("late", start = 0, end = 700, validUntil = 500),
                    section("oneMs", resource = "s", start = 0, end = 501, validUntil = 500),
                    // A microsecond: the figures are the library's own, so no margin is needed, or allowed.
                    Section("oneMicro", "oneMicro", "s2", 0, ms(500) + 1_000, ms(500), true, Outcome.COMPLETED),
                    section("declaredLate", resource = "t", start = 0, end = 700, validUntil = 500, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 501),
                    section("declaredOnTime", resource = "v", start = 0, end = 700, validUntil = 500, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 500),
                    section("declaredAhead", resource = "w", start = 0, end = 503, validUntil = 500, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 497),
                    section("endedInTime", resource = "x", start = 0, end = 499, validUntil = 500),
                    // Stopped before its validity ended; the loss was declared later still: nothing ran uninformed.
                    section("endedBeforeLateNews", resource = "y", start = 0, end = 450, validUntil = 500, outcome = Outcome.LOST, lossReason = "NOT_HELD", lossDeclaredAt = 600),
                    section("unguarded", resource = "u", start = 0, end = 700, validUntil = 500, guarded = false),
                )
            )
            report.missedLosses.map { it.section.id to it.overrunNanos } shouldContainExactly listOf(
                "late" to ms(200), "oneMs" to ms(1), "oneMicro" to 1_000L, "declaredLate" to ms(1),
            )
            // The overrun distribution covers every section that reached the end of its validity.
            report.overruns.sorted() shouldBe listOf(ms(-3), 0L, 1_000L, ms(1), ms(1), ms(200))
        }

        test("cancellation latency runs from the declared loss to the block's end and is never counted as overrun") {
            val report = checker.check(
                listOf(
                    section("expired", start = 0, end = 530, validUntil = 500, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 499),
                    section("notHeld", resource = "s", start = 0, end = 310, validUntil = 900, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "NOT_HELD", lossDeclaredAt = 300),
                    // Told in time, but the block took 400 ms to stop: slow, not a missed loss.
                    section("slowToStop", resource = "t", start = 0, end = 900, validUntil = 500, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 500),
                )
            )
            report.cancelLatencies.sorted() shouldBe listOf(ms(10), ms(31), ms(400))
            report.missedLosses.shouldBeEmpty()
            report.overruns.sorted() shouldBe listOf(ms(-1), 0L)
            report.slowestCancels.first().first.id shouldBe "slowToStop"
        }

        test("a holder's span ends where the library declared its loss: a successor after the declaration is no violation, one before it is") {
            val holder = section("a", start = 0, end = 310, validUntil = 900, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "NOT_HELD", lossDeclaredAt = 300)
            checker.check(listOf(holder, section("b", start = 305, end = 400, validUntil = 1300))).violations.shouldBeEmpty()
            val v = checker.check(listOf(holder, section("c", start = 299, end = 400, validUntil = 1300))).violations.single()
            v.overlapNanos shouldBe ms(1)
        }

        test("a loss declared as not held is timed from the key-destroying fault before it") {
            val flush = FaultEvent(FaultKind.FLUSHALL, "master 0", ms(200), ms(200))
            val report = checker.check(
                listOf(section("a", start = 0, end = 350, validUntil = 900, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "NOT_HELD", lossDeclaredAt = 340)),
                faults = listOf(flush),
            )
            report.detectionDelays shouldBe listOf(ms(140))
        }

        // The deletion faults: validities of a 1 s lease (the default Timing) whose call began at a given moment.
        val timing = Timing()
        val judge = Checker(timing)
        fun begunAt(t: Long): Long = ms(t) + ms(1000) - timing.driftNanos(ms(1000))
        val probe = Section("p#1", "p", "admin-1", ms(100), ms(510), begunAt(90), false, Outcome.LOST, "NOT_HELD", ms(505))

        test("a deletion on a majority: the probe told NOT_HELD and cancelled passes, timed from the last answer; told as EXPIRED, or never, is reported") {
            val d = Deletion(FaultKind.ADMIN_DEL_MAJORITY, listOf(0, 1), 3, ms(500), ms(500), ms(502), "random", "admin-1", "p#1", probeTracked = true)
            val ok = judge.check(listOf(probe), deletions = listOf(d))
            ok.deletionProblems.shouldBeEmpty()
            ok.deletions.single().victims.single().detectedAfter shouldBe ms(3)
            ok.detectionByKind shouldBe mapOf((FaultKind.ADMIN_DEL_MAJORITY to true) to listOf(ms(3)))
            // The same lease on an untracked client goes to the other row.
            judge.check(listOf(probe), deletions = listOf(d), untracked = setOf("p")).detectionByKind.keys shouldBe setOf(FaultKind.ADMIN_DEL_MAJORITY to false)
            judge.check(listOf(probe.copy(lossReason = "EXPIRED")), deletions = listOf(d)).deletionProblems.single() shouldContain "declared lost as EXPIRED"
            val untold = probe.copy(end = ms(800), bodyCompleted = true, outcome = Outcome.COMPLETED, lossReason = null, lossDeclaredAt = null)
            val report = judge.check(listOf(untold), deletions = listOf(d))
            report.deletionProblems.single() shouldContain "not declared lost"
            report.deletions.single().victims.single().endedUninformed shouldBe true
            report.detectionByKind shouldBe emptyMap()
            // A probe that did not hold the lock through the deletion tested nothing.
            judge.check(listOf(probe.copy(start = ms(501))), deletions = listOf(d)).deletionProblems.single() shouldContain "tested nothing"
        }

        test("FLUSHALL on a majority: a lease renewed by a call begun after it, and a grant before the restart guard allowed one, are reported") {
            val d = Deletion(FaultKind.FLUSHALL_MAJORITY, listOf(0, 1), 3, ms(500), ms(500), ms(502), "random", null, "p#1", probeTracked = true)
            // Granted on an attempt begun at 390, renewed by a call begun at 600, after the keys were gone.
            val renewed = Section("c#1", "c", "r", ms(400), ms(900), begunAt(600), true, Outcome.COMPLETED, grantValidUntil = begunAt(390))
            // Attempts begun after the flush: at 790 (the guard, one lease from 500, allows none before 1499) and at 1590.
            val early = Section("g#1", "g", "r2", ms(800), ms(850), begunAt(790), true, Outcome.COMPLETED)
            val late = Section("g#2", "g", "r2", ms(1600), ms(1650), begunAt(1590), true, Outcome.COMPLETED)
            val report = judge.check(listOf(probe, renewed, early, late), deletions = listOf(d))
            report.deletions.single().victims.map { it.section.id } shouldContainExactly listOf("p#1", "c#1")
            report.deletionProblems shouldHaveSize 2
            report.deletionProblems[0] shouldContain "c#1 (c) was renewed by a call that began 98.0 ms after its keys were gone"
            report.deletionProblems[1] shouldContain "g#1 (g) on 'r2' was granted 300.0 ms after the first FLUSHALL"
            judge.check(listOf(probe, late), deletions = listOf(d)).deletionProblems.shouldBeEmpty()
        }

        test("a deletion on a minority: the probe must not be lost and must renew after it; another fault over the probe leaves it unjudged") {
            val d = Deletion(FaultKind.ADMIN_DEL_MINORITY, listOf(0), 3, ms(500), ms(500), ms(502), "random", "admin-2", "p#2", probeTracked = false)
            val kept = Section("p#2", "p", "admin-2", ms(100), ms(1200), begunAt(800), true, Outcome.COMPLETED, grantValidUntil = begunAt(90))
            judge.check(listOf(kept), deletions = listOf(d)).deletionProblems.shouldBeEmpty()
            judge.check(listOf(kept.copy(validUntil = begunAt(400))), deletions = listOf(d)).deletionProblems.single() shouldContain "not renewed after the deletion"
            val lost = kept.copy(end = ms(520), bodyCompleted = false, outcome = Outcome.LOST, lossReason = "NOT_HELD", lossDeclaredAt = ms(515))
            judge.check(listOf(lost), deletions = listOf(d)).deletionProblems.single() shouldContain "though a quorum still held it"
            val paused = FaultEvent(FaultKind.PAUSE_MASTER, "master 1", ms(450), ms(700))
            val unjudged = judge.check(listOf(lost), faults = listOf(paused), deletions = listOf(d))
            unjudged.deletionProblems.shouldBeEmpty()
            unjudged.deletions.single().judged shouldBe false
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

        test("a short freeze early in a section that is lost later is no paused overrun: the loss is judged as usual") {
            val onTime = checker.check(
                listOf(section("p", client = "child0", start = 50, end = 1450, validUntil = 1000, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 1000)),
                clientEvents = listOf(ClientEvent("child0", ClientEvent.Kind.FROZEN, ms(100), ms(130))),
            )
            onTime.pausedOverruns.shouldBeEmpty()
            onTime.missedLosses.shouldBeEmpty()
            onTime.cancelLatencies shouldBe listOf(ms(450))
            val late = checker.check(
                listOf(section("p", client = "child0", start = 50, end = 1450, validUntil = 1000, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "EXPIRED", lossDeclaredAt = 1002)),
                clientEvents = listOf(ClientEvent("child0", ClientEvent.Kind.FROZEN, ms(100), ms(130))),
            )
            late.pausedOverruns.shouldBeEmpty()
            late.missedLosses.single().overrunNanos shouldBe ms(2)
        }

        test("close(): sections told CLOSED before it returned, waiters and later calls failed with RedlockClosedException, no key left: no problem") {
            val close = CloseRecord("c1", ms(500), ms(505), listOf("RedlockClosedException" to ms(502), "RedlockClosedException" to ms(503)), "RedlockClosedException", 0, "c1#close1")
            val report = checker.check(
                listOf(
                    section("c1#close1", client = "c1", start = 100, end = 506, validUntil = 1200, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "CLOSED", lossDeclaredAt = 504),
                    section("c1#7", client = "c1", resource = "s", start = 450, end = 503, validUntil = 1450, bodyCompleted = false, outcome = Outcome.LOST, lossReason = "CLOSED", lossDeclaredAt = 502),
                    // Finished before the close: not the close's business.
                    section("c1#6", client = "c1", resource = "s", start = 300, end = 440, validUntil = 1300),
                    section("c2#3", client = "c2", resource = "t", start = 400, end = 900, validUntil = 1400),
                ),
                closes = listOf(close),
            )
            val judged = report.closes.single()
            judged.problems.shouldBeEmpty()
            judged.running.map { it.id } shouldContainExactly listOf("c1#close1", "c1#7")
            judged.sectionStops shouldBe listOf(ms(6), ms(3))
            judged.waiterEnds shouldBe listOf(ms(2), ms(3))
            report.missedLosses.shouldBeEmpty()
        }

        test("close() that leaves a section running uninformed, lets a waiter wait out its time, fails a later call otherwise and leaves a key is reported on each count") {
            // What close() did before the fixes of issue 12: the renewal timer stopped, nothing else.
            val close = CloseRecord("c1", ms(500), ms(505), listOf("LockNotAcquiredException" to ms(3500)), "IllegalStateException", 1, "c1#close1")
            val report = checker.check(
                listOf(
                    section("c1#close1", client = "c1", start = 100, end = 2100, validUntil = 1200, outcome = Outcome.FAILED, lossReason = "IllegalStateException"),
                    section("c1#8", client = "c1", resource = "s", start = 480, end = 520, validUntil = 1480, lossDeclaredAt = null),
                ),
                closes = listOf(close),
            )
            val problems = report.closes.single().problems
            problems shouldHaveSize 6
            problems.count { it.contains("after close() returned, not told") } shouldBe 2
            problems.count { it.contains("instead of LockLostException(CLOSED)") } shouldBe 1
            problems.count { it.contains("a waiter ended with LockNotAcquiredException") } shouldBe 1
            problems.count { it.contains("ended with IllegalStateException, not RedlockClosedException") } shouldBe 1
            problems.count { it.contains("1 lock key(s)") } shouldBe 1
            // The section that ran on is a missed loss as well, once past its validity.
            report.missedLosses.single().overrunNanos shouldBe ms(900)
            report.closeProblems.first() shouldContain "close of c1: "
        }

        test("a close() whose probe section was not running when it was called tested nothing, and says so") {
            val close = CloseRecord("c1", ms(500), ms(505), emptyList(), "RedlockClosedException", 0, "c1#close1")
            val report = checker.check(
                listOf(section("c1#close1", client = "c1", start = 100, end = 400, validUntil = 1100)),
                closes = listOf(close),
            )
            report.closes.single().problems.single() shouldContain "tested nothing"
        }

        test("a lease's marks become real times, also from a clock that runs slow") {
            val clock = ScaledTimeSource(0.9)
            val before = System.nanoTime()
            // 900 ms on a clock at 0.9x are 1000 ms of real time.
            val mark = clock.markNow() + 900.milliseconds
            val real = realNanos(mark, 0.9)
            val after = System.nanoTime()
            (real - before) shouldBeGreaterThanOrEqual ms(1000) - 1_000
            (real - after) shouldBeLessThanOrEqual ms(1000) + 1_000
            val monotonic = TimeSource.Monotonic.markNow() + 250.milliseconds
            val exact = realNanos(monotonic, 1.0)
            (exact - after) shouldBeGreaterThanOrEqual ms(250) - 1_000
            (exact - System.nanoTime()) shouldBeLessThanOrEqual ms(250)
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
            // The exact figure read when the block stopped is the one that counts.
            history.ended("a", ms(400), bodyCompleted = true, validUntil = ms(1150), lossDeclaredAt = null)
            history.valid("a", ms(1300))
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
            history.sections()[0].validUntil shouldBe ms(1150)
            // A loss declared after the block's end is taken from the outcome.
            history.begin("d", "c2", "q", ms(0), ms(1000))
            history.ended("d", ms(200), bodyCompleted = true, validUntil = ms(1000), lossDeclaredAt = null)
            history.outcome("d", Outcome.LOST, "NOT_HELD", ms(250))
            history.sections().single { it.id == "d" }.lossDeclaredAt shouldBe ms(250)
        }
    })

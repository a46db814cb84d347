package dev.redlock.benchmarks

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.doubles.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.deleteIfExists
import kotlin.io.path.readText

/**
 * Runs the whole harness in its tiny mode against real masters (about two minutes) and checks its own
 * invariants: every implementation was measured, mutual exclusion held in every hot-resource
 * phase, every held lock stayed held and was renewed, and the report carries every table.
 * Timing figures are not asserted: they depend on the machine.
 */
class HarnessSmokeTest : FunSpec({
    val dir = Files.createTempDirectory("redlock-benchmarks")
    val report: Path = dir.resolve("BENCHMARKS.md")
    lateinit var results: Results

    beforeSpec {
        quietLogs()
        results = runBenchmarks(Options(profile = Profile.TINY, out = report), listOf("--tiny")) { println("[smoke] $it") }
        writeReport(results, report)
    }

    afterSpec {
        report.deleteIfExists()
        dir.deleteIfExists()
    }

    test("scenario 1 measured every implementation at N = 1 and N = 5") {
        val s1 = results.uncontended.shouldNotBeNull()
        s1.map { it.n } shouldBe listOf(1, 5)
        for (u in s1) {
            for (latency in listOf(u.ours, u.oursBlock, u.redisson, u.baseline)) {
                latency.count shouldBeGreaterThan 0L
                latency.p50 shouldBeGreaterThan 0.0
            }
        }
    }

    test("scenario 2 saw no overlapping critical sections, and every lock call succeeded") {
        val s2 = results.hotResource.shouldNotBeNull()
        s2 shouldHaveSize 2 * Impl.entries.size * Profile.TINY.contenders.size
        for (h in s2) {
            withClue("${h.impl.label}, N = ${h.n}, ${h.contenders} contenders") {
                h.overlaps shouldBe 0
                h.errors shouldBe 0
                h.sections shouldBeGreaterThan 0L
                h.perSecond shouldBeGreaterThan 0.0
                h.cpuMicrosPerSection shouldBeGreaterThan 0.0
            }
        }
    }

    test("scenario 2 across JVMs: every implementation's worker JVMs took turns without overlapping sections or failed calls") {
        val s2x = results.crossProcess.shouldNotBeNull()
        s2x shouldHaveSize 2 * Impl.entries.size * Profile.TINY.crossContenders.size
        for (h in s2x) {
            withClue("${h.impl.label}, N = ${h.n}, ${h.contenders} contenders") {
                h.overlaps shouldBe 0
                h.errors shouldBe 0
                h.sections shouldBeGreaterThan 0L
                h.cpuMicrosPerSection shouldBeGreaterThan 0.0
            }
        }
    }

    test("scenario 3 completed operations for every implementation without failures") {
        val s3 = results.manyResources.shouldNotBeNull()
        s3 shouldHaveSize 2 * Impl.entries.size
        for (t in s3) {
            withClue("${t.impl.label}, N = ${t.n}") {
                t.ops shouldBeGreaterThan 0L
                t.errors shouldBe 0
            }
        }
    }

    test("scenario 4 held every lock until the end, and both libraries renewed while holding") {
        val s4 = results.heldLocks.shouldNotBeNull()
        s4.map { it.impl } shouldBe listOf(Impl.OURS, Impl.REDISSON)
        for (f in s4) {
            withClue(f.impl.label) {
                f.acquired shouldBe Profile.TINY.heldLocks
                f.failures shouldBe 0
                f.scriptsPerSecond shouldBeGreaterThan 0.0
                f.heapPerLock.isNaN() shouldBe false
                // The class histograms name what a lock keeps alive: the library's lease is among them for ours.
                f.heapByClassTotal shouldBeGreaterThan 0.0
                if (f.impl == Impl.OURS) f.heapByClass shouldContain "RedlockLease"
                f.commandMix shouldContain "pexpire" // both renew with PEXPIRE inside their scripts
            }
        }
    }

    test("scenario 5 measured every implementation with and without the slow master") {
        val s5 = results.slowMaster.shouldNotBeNull()
        s5.map { it.impl } shouldBe Impl.entries
        for (s in s5) {
            withClue(s.impl.label) {
                s.reference.count shouldBeGreaterThan 0L
                s.slow.count shouldBeGreaterThan 0L
                s.errors shouldBe 0
            }
        }
    }

    test("scenario 6: ours saw every loss, in the block and as LockLostException, with and without tracking; Redisson's rounds ran") {
        val s6 = results.adminFaults.shouldNotBeNull()
        s6 shouldHaveSize 2 * Variant.entries.size * Fault.entries.size
        for (r in s6) {
            withClue("${r.variant.label}, N = ${r.n}, ${r.fault}") {
                r.errors shouldBe 0
                (r.samples > 0) shouldBe true
                if (r.variant != Variant.REDISSON) {
                    r.unseen shouldBe 0
                    r.lockLost shouldBe r.samples
                    r.cancelled.count shouldBe r.samples.toLong()
                }
            }
        }
    }

    test("scenario 7: after every killed holder, the waiter of every subject took the lock") {
        val s7 = results.crashHandOff.shouldNotBeNull()
        s7 shouldHaveSize 2 * Variant.entries.size
        for (r in s7) {
            withClue("${r.variant.label}, N = ${r.n}") {
                r.samples shouldBe Profile.TINY.crashSamples
                r.missed shouldBe 0
                r.errors shouldBe 0
                r.afterExpiry.count shouldBe r.samples.toLong()
            }
        }
    }

    test("scenario 8: both forms measured with and without tracking at N = 1 and 5, and every held lock stayed held") {
        val s8 = results.trackingCost.shouldNotBeNull()
        s8.ops shouldHaveSize 2 * Profile.TINY.costWindows * 2 * 2
        for (o in s8.ops) {
            withClue("N = ${o.n}, ${o.form}, tracking ${o.tracking}") {
                o.latency.count shouldBeGreaterThan 0L
                // At least an acquire and a release script on each of a majority of the masters.
                o.scriptsPerOp shouldBeGreaterThan (o.n / 2 + 1) * 2 - 0.01
            }
        }
        s8.held shouldHaveSize Profile.TINY.costWindows * 2
        for (w in s8.held) {
            withClue("held, tracking ${w.tracking}") {
                w.failures shouldBe 0
                w.held shouldBe Profile.TINY.costLocks
                w.scriptsPerSecond shouldBeGreaterThan 0.0
                // Tracking on: the master tracks every held key between renewals; off: none.
                if (w.tracking) (w.trackedKeys >= Profile.TINY.costLocks) shouldBe true else w.trackedKeys shouldBe 0L
            }
        }
    }

    test("scenario 9: acquire + release measured with and without replicaAcks in every window") {
        val s9 = results.replicaAcks.shouldNotBeNull()
        s9 shouldHaveSize 3 * 2
        for (w in s9) withClue("window ${w.window}, replicaAcks ${w.replicaAcks}") { w.latency.count shouldBeGreaterThan 0L }
    }

    test("scenario 10: every implementation completed operations on one server and on cluster masters of 1 and 3 shards, without failures; held locks were renewed on every primary") {
        val s10 = results.clusterScaling.shouldNotBeNull()
        s10.phases shouldHaveSize Profile.TINY.clusterRounds * Impl.entries.size * Topology.entries.size
        for (p in s10.phases) {
            withClue("${p.throughput.impl.label}, ${p.topology.label}, round ${p.round}") {
                p.throughput.ops shouldBeGreaterThan 0L
                p.throughput.errors shouldBe 0
                p.primaryCores shouldHaveSize maxOf(1, p.topology.shards)
                // Every primary of the 3-shard cluster ran some of the commands: the keys spread over the shards.
                for (share in p.commandShares) share shouldBeGreaterThan 0.0
                p.serverCpuMicrosPerOp.isNaN() shouldBe false
            }
        }
        s10.held.map { it.topology } shouldBe listOf(Topology.SERVER, Topology.SHARDS_3)
        for (h in s10.held) {
            withClue("held locks, ${h.topology.label}") {
                h.failures shouldBe 0
                h.held shouldBe Profile.TINY.costLocks
                // Renewed on every primary: the held locks spread over the shards, and so do their renewals.
                for (rate in h.scriptsPerSecond) rate shouldBeGreaterThan 0.0
                h.keysPerSecond shouldBeGreaterThan 0.0
            }
        }
    }

    test("scenario 11 measured every backend, and its hot lock and many resources saw no overlapping sections and no failed call") {
        val s11 = results.backends.shouldNotBeNull()
        s11.map { it.backend } shouldBe listOf("Redlock, N = 1", "PostgreSQL", "files")
        for (f in s11) {
            withClue(f.backend) {
                f.latency.count shouldBeGreaterThan 0L
                f.sectionsPerSecond shouldBeGreaterThan 0.0
                f.spreadPerSecond shouldBeGreaterThan 0.0
                f.overlaps shouldBe 0
                f.errors shouldBe 0
            }
        }
    }

    test("the report has the command, the machine, a table per scenario and a computed verdict for every target") {
        val text = report.readText()
        text shouldContain "-Dexec.args=\"--tiny\""
        text shouldContain "redis-server | ${results.machine.redisVersion}"
        for (heading in listOf("## Targets", "## 1. ", "## 2. ", "## 3. ", "## 4. ", "## 5. ", "## 6. ", "## 7. ", "## 8. ", "## 9. ", "## 10. ", "## 11. ")) text shouldContain heading
        val targets = targets(results)
        // 2 in scenario 1, 3 per (N, contenders) in scenario 2 and 2 per (N, contenders) across JVMs, 2 in
        // scenario 3, 2 in scenario 4, 1 in scenario 5, 1 per (N, fault) in scenario 6, 1 per N in scenario 7,
        // 1 per N and 1 for the held locks in scenario 8.
        targets shouldHaveSize 2 + 3 * 2 * Profile.TINY.contenders.size + 2 * 2 * Profile.TINY.crossContenders.size + 2 + 2 + 1 + 2 * 2 + 2 + 2 + 1
        for (t in targets) {
            withClue(t.text) { t.met.shouldNotBeNull() }
            text shouldContain t.text
        }
        text shouldNotContain "NaN"
    }
})

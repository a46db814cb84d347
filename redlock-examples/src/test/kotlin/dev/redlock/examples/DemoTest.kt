package dev.redlock.examples

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.ints.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.io.ByteArrayOutputStream
import java.io.PrintStream
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.time.Duration

class DemoTest : FunSpec({
    // Killing masters makes the library warn on every retry; the assertions below say what matters.
    beforeSpec { quietLibraryLogs() }

    test("a short run over 5 local masters sees no overlap, and losing the quorum loses locks and refuses acquisitions") {
        val phases = CopyOnWriteArrayList<String>()
        val listener = object : DemoListener {
            override fun phase(text: String) {
                phases += text
            }
        }
        val summary = runDemo(DemoOptions(workers = 8, resources = 3, sections = 60), listener)

        summary.overlaps shouldBe 0
        summary.ok shouldBe true
        summary.sections shouldBeGreaterThanOrEqual 60
        summary.killedMasters shouldBe 3
        (summary.locksLost + summary.refusedMastersDown) shouldBeGreaterThan 0
        summary.refusedMastersDown shouldBeGreaterThan 0
        summary.sampleRefusal!! shouldContain "failed"
        summary.keysLeft shouldBe 0
        phases.count { it.startsWith("Phase") } shouldBeGreaterThanOrEqual 3
    }

    test("--backend postgres runs the same workers on a local PostgreSQL: no overlap, and killing the server loses locks and refuses acquisitions") {
        val phases = CopyOnWriteArrayList<String>()
        val listener = object : DemoListener {
            override fun phase(text: String) {
                phases += text
            }
        }
        val summary = runDemo(DemoOptions(workers = 8, resources = 3, sections = 60, backend = DemoBackend.POSTGRES), listener)

        summary.backend shouldBe "PostgreSQL"
        summary.overlaps shouldBe 0
        summary.sections shouldBeGreaterThanOrEqual 60
        summary.killedMasters shouldBe 1
        summary.locksLost shouldBeGreaterThan 0
        summary.refusedMastersDown shouldBeGreaterThan 0
        phases.any { it.startsWith("Phase 3: killed the PostgreSQL server") } shouldBe true
        val out = ByteArrayOutputStream()
        printSummary(summary, PrintStream(out, true, Charsets.UTF_8))
        out.toString(Charsets.UTF_8) shouldContain "database killed"
    }

    test("the summary says VIOLATION when an overlap was seen") {
        val summary = DemoSummary(
            masters = 5, localMasters = true, killedMasters = 0, sectionsByMastersUp = mapOf(5 to 10),
            holderOverlaps = 1, writerOverlaps = 0, lostUpdates = 1, latencyByMastersUp = emptyMap(), latency = null,
            locksLost = 0, refusedContention = 0, refusedMastersDown = 0, sampleLoss = null, sampleRefusal = null,
            keysLeft = null, elapsed = Duration.ZERO,
        )
        summary.ok shouldBe false
        val out = ByteArrayOutputStream()
        printSummary(summary, PrintStream(out, true, Charsets.UTF_8))
        out.toString(Charsets.UTF_8) shouldContain "overlaps seen               2  VIOLATION"
    }

    test("the command line accepts the documented options and rejects bad ones with a clear message") {
        parseArgs(arrayOf("--help")) shouldBe Command.Help
        parseArgs(arrayOf("--workers", "4", "--resources=2", "--sections", "10")) shouldBe
            Command.Run(DemoOptions(workers = 4, resources = 2, sections = 10), verbose = false)
        val remote = parseArgs(arrayOf("--masters", "redis://a:6379,redis://b:6379", "--chaos")) as Command.Run
        remote.options.masters shouldBe listOf("redis://a:6379", "redis://b:6379")
        remote.options.killsMasters shouldBe true

        shouldThrow<UsageException> { parseArgs(arrayOf("--workers")) }.message shouldBe "--workers needs a value"
        shouldThrow<UsageException> { parseArgs(arrayOf("--workers", "many")) }.message shouldContain "'many'"
        shouldThrow<UsageException> { parseArgs(arrayOf("--workers", "0")) }.message shouldContain "between 1 and"
        shouldThrow<UsageException> { parseArgs(arrayOf("--masters", "localhost:6379")) }.message shouldContain "redis://"
        shouldThrow<UsageException> { parseArgs(arrayOf("--chaos")) }.message shouldContain "--masters"
        shouldThrow<UsageException> { parseArgs(arrayOf("--bogus")) }.message shouldContain "unknown option '--bogus'"
        (parseArgs(arrayOf("--backend", "postgres")) as Command.Run).options.backend shouldBe DemoBackend.POSTGRES
        shouldThrow<UsageException> { parseArgs(arrayOf("--backend", "mysql")) }.message shouldContain "redis or postgres"
        shouldThrow<UsageException> { parseArgs(arrayOf("--backend", "postgres", "--masters", "redis://a:6379")) }.message shouldContain
            "--backend redis only"
    }
})

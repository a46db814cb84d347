package dev.redlock.examples

import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import dev.redlock.examples.readme.Accounts
import dev.redlock.examples.readme.Catalog
import dev.redlock.examples.readme.JavaSharedLocks
import dev.redlock.examples.readme.Shop
import dev.redlock.examples.readme.Stock
import dev.redlock.examples.readme.fencedUpdate
import dev.redlock.examples.readme.fileLocks
import dev.redlock.examples.readme.postgresLocks
import dev.redlock.examples.readme.redisLocks
import dev.redlock.examples.readme.sharedLocks
import dev.redlock.examples.readme.uploadWithinLease
import dev.redlock.java.AsyncRedlock
import dev.redlock.testing.PostgresServer
import dev.redlock.testing.RedisFleet
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import java.nio.file.Files
import java.nio.file.Path
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll

/**
 * The README's Kotlin and Java examples are compiled sources: each ```kotlin / ```java block in
 * README.md is preceded by `<!-- sample: PATH#REGION -->` (or `<!-- sample: PATH -->` for a whole
 * file), and must equal that region of that file, dedented. So an example that stops compiling
 * fails the build here, and one that drifts from its compiled source fails this test.
 */
class ReadmeSamplesTest : FunSpec({
    val root: Path = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().parent
    val readme = Files.readString(root.resolve("README.md"))
    // The samples also run, against local masters.
    val fleet = RedisFleet.start(3)
    afterSpec { fleet.close() }

    test("every Kotlin and Java block of the README is a compiled sample, shown verbatim") {
        // Every Kotlin and Java block; and every other block that names a sample (the quick starts' pom.xml).
        val blocks = codeBlocks(readme).filter { it.language == "kotlin" || it.language == "java" || it.marker != null }
        blocks.size shouldNotBe 0
        val problems = blocks.mapNotNull { block ->
            val marker = block.marker
                ?: return@mapNotNull "README.md line ${block.line}: a ```${block.language} block without a " +
                    "<!-- sample: PATH#REGION --> line before it (keep the code in a compiled source, " +
                    "for example under redlock-examples/src/main/*/dev/redlock/examples/readme, and point to it)"
            val expected = try {
                sample(root, marker)
            } catch (e: IllegalArgumentException) {
                return@mapNotNull "README.md line ${block.line}: ${e.message}"
            }
            if (expected == block.text) null
            else "README.md line ${block.line}: the block differs from $marker\n" + firstDifference(expected, block.text)
        }
        withClue(problems.joinToString("\n\n")) { problems.shouldBeEmpty() }
    }

    test("the checker finds blocks, their markers, and regions; and reports a missing region") {
        val text = "intro\n\n<!-- sample: a.kt#one -->\n```kotlin\nval x = 1\n```\n\n```java\nint y;\n```\n"
        val found = codeBlocks(text)
        found.map { it.marker } shouldContainExactly listOf("a.kt#one", null)
        found.map { it.text } shouldContainExactly listOf("val x = 1\n", "int y;\n")
        region("fun f() {\n    // region one\n    val x = 1\n      // two\n    // endregion\n}\n", "one") shouldBe
            "val x = 1\n  // two\n"
        val e = runCatching { region("// region one\n// endregion\n", "two") }.exceptionOrNull()
        e!!.message!! shouldContain "no region 'two'"
    }

    fun config() = RedlockConfig.builder().masters(fleet.uris()).leaseTime(java.time.Duration.ofSeconds(5)).build()

    test("sample fencing: the fenced write lands, and an older token is refused") {
        Redlock(config()).use { redlock ->
            val db = Accounts()
            fencedUpdate(redlock, db, balance = 100)
            db.balance(7) shouldBe 100
            val token = db.fence(7)!!
            db.update(50, token - 1, id = 7, maxFence = token - 1) shouldBe 0
            fencedUpdate(redlock, db, balance = 120)
            db.balance(7) shouldBe 120
        }
        // Released; only the fencing counters (no expiry, by design) stay.
        (0 until fleet.size).flatMap { fleet.keys(it, "redlock:accounts:7") }.shouldBeEmpty()
        fleet.flushAll()
    }

    test("sample lease-state: the upload runs under the lock") {
        var uploads = 0
        Redlock(config()).use { redlock -> uploadWithinLease(redlock) { uploads++ } }
        uploads shouldBe 1
        fleet.keyCount() shouldBe 0
    }

    test("sample backends, Kotlin: the same shop code reserves exactly the stock there is, on Redis and on files") {
        val directory = Files.createTempDirectory("redlock-readme-backends")
        try {
            for (locks in listOf(redisLocks(fleet.uris()), fileLocks(directory))) {
                locks.use {
                    // A stock whose take is not atomic: only the lock keeps two reservations apart.
                    var units = 10
                    val stock = object : Stock {
                        override suspend fun take(sku: String, count: Int): Boolean {
                            val left = units
                            kotlinx.coroutines.delay(2)
                            if (left < count) return false
                            units = left - count
                            return true
                        }
                    }
                    val shops = listOf(Shop(locks, stock), Shop(locks, stock))
                    val reserved = kotlinx.coroutines.coroutineScope {
                        (1..16).map { i -> async(kotlinx.coroutines.Dispatchers.Default) { shops[i % 2].reserve("apples", 1) } }.awaitAll()
                    }
                    reserved.count { it } shouldBe 10
                    units shouldBe 0
                }
            }
            fleet.keyCount() shouldBe 0
        } finally {
            directory.toFile().deleteRecursively()
        }
    }

    test("sample backends, Java: the same call on Redis and on files") {
        val directory = Files.createTempDirectory("redlock-readme-backends-java")
        try {
            val stock = java.util.concurrent.atomic.AtomicInteger(2)
            dev.redlock.examples.readme.JavaBackends.reserveOnBoth(fleet.uris(), directory, "pears", stock)
            stock.get() shouldBe 0
            fleet.keyCount() shouldBe 0
        } finally {
            directory.toFile().deleteRecursively()
        }
    }

    test("sample backends-postgres, Kotlin and Java: two processes' shops reserve exactly the stock there is, on PostgreSQL") {
        PostgresServer.start().use { pg ->
            // A stock whose take is not atomic: only the lock keeps two reservations apart.
            var units = 10
            val stock = object : Stock {
                override suspend fun take(sku: String, count: Int): Boolean {
                    val left = units
                    kotlinx.coroutines.delay(2)
                    if (left < count) return false
                    units = left - count
                    return true
                }
            }
            postgresLocks(pg.dataSource()).use { one ->
                postgresLocks(pg.dataSource()).use { other ->
                    val shops = listOf(Shop(one, stock), Shop(other, stock))
                    val reserved = kotlinx.coroutines.coroutineScope {
                        (1..16).map { i -> async(kotlinx.coroutines.Dispatchers.Default) { shops[i % 2].reserve("apples", 1) } }.awaitAll()
                    }
                    reserved.count { it } shouldBe 10
                    units shouldBe 0
                }
            }
            val pears = java.util.concurrent.atomic.AtomicInteger(2)
            dev.redlock.examples.readme.JavaPostgres.reserve(pg.dataSource(), "pears", pears)
            pears.get() shouldBe 1
            pg.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").single().single() shouldBe 0L
        }
    }

    test("sample shared-locks, Kotlin: a read lock, the write lock and a permit, in turn") {
        val done = mutableListOf<String>()
        val catalog = object : Catalog {
            override suspend fun render() { done += "render" }
            override suspend fun rebuild() { done += "rebuild" }
            override suspend fun renderPdf() { done += "pdf" }
        }
        Redlock(config()).use { redlock -> catalog.sharedLocks(redlock) }
        done shouldContainExactly listOf("render", "rebuild", "pdf")
        fleet.keyCount() shouldBe 0
    }

    test("sample shared-locks, Java: a read lock, the write lock and a permit") {
        val sample = JavaSharedLocks()
        AsyncRedlock.create(config()).use { redlock ->
            sample.sharedLocks(redlock)
            eventually(10.seconds) {
                listOf(sample.renders.get(), sample.rebuilds.get(), sample.pdfs.get()) shouldBe listOf(1, 1, 1)
                fleet.keyCount() shouldBe 0
            }
        }
    }

    test("sample metrics: a withRedlock is recorded in the registry") {
        val registry = io.micrometer.core.instrument.simple.SimpleMeterRegistry()
        dev.redlock.examples.readme.meteredRedlock(fleet.uris(), registry).use { redlock ->
            redlock.withRedlock("orders:42") { }
        }
        registry.find("redlock.acquire").tags("outcome", "acquired").timer()!!.count() shouldBe 1L
        registry.find("redlock.hold").tags("end", "released").timer()!!.count() shouldBe 1L
    }

    test("sample lock, Java: the work runs under the lock, and not while another holder keeps it") {
        AsyncRedlock.create(config()).use { redlock ->
            var ran = 0
            dev.redlock.examples.readme.JavaLock.withOrderLock(redlock) { ran++ } shouldBe true
            ran shouldBe 1
            val held = redlock.acquire("orders:42").get()
            val other = AsyncRedlock.create(RedlockConfig.builder().masters(fleet.uris()).waitTime(java.time.Duration.ofMillis(100)).build())
            other.use { o ->
                // The sample waits up to 5 s; the holder keeps the lock for longer than that.
                dev.redlock.examples.readme.JavaLock.withOrderLock(o) { ran++ } shouldBe false
            }
            held.close()
            ran shouldBe 1
        }
    }
})

/** A fenced code block of a Markdown text: its language, body, 1-based line, and the sample marker before it. */
private data class CodeBlock(val language: String, val text: String, val line: Int, val marker: String?)

private val MARKER = Regex("""^<!--\s*sample:\s*(\S+)\s*-->$""")

private fun codeBlocks(markdown: String): List<CodeBlock> {
    val lines = markdown.lines()
    val blocks = mutableListOf<CodeBlock>()
    var i = 0
    while (i < lines.size) {
        val open = lines[i]
        if (!open.startsWith("```")) {
            i++
            continue
        }
        val end = (i + 1 until lines.size).firstOrNull { lines[it].trimEnd() == "```" }
            ?: error("README.md line ${i + 1}: a code block that is never closed")
        val previous = (i - 1 downTo 0).firstOrNull { lines[it].isNotBlank() }?.let { lines[it].trim() }
        val marker = previous?.let { MARKER.matchEntire(it)?.groupValues?.get(1) }
        val body = lines.subList(i + 1, end).joinToString("") { it + "\n" }
        blocks += CodeBlock(open.removePrefix("```").trim(), body, i + 1, marker)
        i = end + 1
    }
    return blocks
}

/** The text a marker `PATH#REGION` (or `PATH`) names, relative to the repository root. */
private fun sample(root: Path, marker: String): String {
    val path = marker.substringBefore('#')
    val file = root.resolve(path)
    require(Files.isRegularFile(file)) { "the sample file $path does not exist" }
    val text = Files.readString(file)
    return if ('#' in marker) region(text, marker.substringAfter('#')) else text
}

/** The lines between `// region NAME` and the next `// endregion`, less their common indentation. */
private fun region(source: String, name: String): String {
    val lines = source.lines()
    val start = lines.indexOfFirst { it.trim() == "// region $name" }
    require(start >= 0) { "no region '$name' (a line '// region $name') in the sample file" }
    val end = (start + 1 until lines.size).firstOrNull { lines[it].trim() == "// endregion" }
    require(end != null) { "region '$name' has no '// endregion' line" }
    val body = lines.subList(start + 1, end)
    val indent = body.filter { it.isNotBlank() }.minOfOrNull { line -> line.takeWhile { it == ' ' }.length } ?: 0
    return body.joinToString("") { (if (it.isBlank()) "" else it.substring(indent)) + "\n" }
}

private fun firstDifference(expected: String, actual: String): String {
    val e = expected.lines()
    val a = actual.lines()
    val i = (0 until maxOf(e.size, a.size)).first { e.getOrNull(it) != a.getOrNull(it) }
    return "  first difference at line ${i + 1} of the block:\n" +
        "  sample: ${e.getOrNull(i) ?: "(end)"}\n  README: ${a.getOrNull(i) ?: "(end)"}"
}

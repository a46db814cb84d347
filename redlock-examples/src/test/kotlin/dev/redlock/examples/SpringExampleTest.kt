package dev.redlock.examples

import dev.redlock.testing.RedisFleet
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeStrictlyIncreasing
import io.kotest.matchers.collections.shouldNotContainDuplicates
import io.kotest.matchers.ints.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import java.nio.file.Path
import java.util.Collections
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread

/**
 * The README's Spring example run as it shows: three instances of the application, each a JVM of
 * its own, against the same local masters. Each run of the scheduled job happens in one instance
 * only, and its fencing tokens grow across all three.
 */
class SpringExampleTest : FunSpec({
    test("three instances of the Spring example: each job run happens once, tokens grow across instances") {
        RedisFleet.start(3).use { fleet ->
            val classpath = System.getProperty("surefire.test.class.path") ?: System.getProperty("java.class.path")
            val java = Path.of(System.getProperty("java.home"), "bin", "java").toString()
            val runs = Collections.synchronizedList(mutableListOf<String>())
            val instances = listOf("a", "b", "c").map { name ->
                ProcessBuilder(
                    java, "-Xmx256m", "-cp", classpath, "dev.redlock.examples.spring.SpringExample",
                    "--redlock.masters=" + fleet.uris().joinToString(","),
                    "--example.instance=$name",
                    // A run every 2 s, the lock kept 1.5 s at least: the README's 5 s and 4 s, faster.
                    "--example.cron=*/2 * * * * *",
                    "--example.lock-at-least-for=PT1.5S",
                    "--spring.main.banner-mode=off",
                ).redirectError(ProcessBuilder.Redirect.DISCARD).start()
            }
            try {
                val readers = instances.map { process ->
                    thread(isDaemon = true) {
                        process.inputStream.bufferedReader().lineSequence().filter { it.startsWith("run ") }.forEach { runs += it }
                    }
                }
                val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120) // a hang guard only
                while (runs.size < 5 && System.nanoTime() < deadline && instances.all { it.isAlive }) Thread.sleep(50)
                withClue("instances alive: ${instances.map { it.isAlive }}; runs: $runs") { runs.size shouldBeGreaterThanOrEqual 5 }
                instances.forEach { it.destroy() } // SIGTERM: each closes its context, and its Redlock
                instances.forEach { it.waitFor(60, TimeUnit.SECONDS) shouldBe true }
                readers.forEach { it.join(10_000) }

                // "run 12:00:04 by instance b, fencing token 17"
                val parsed = runs.toList().map { line ->
                    val (slot, token) = Regex("""run (\S+) by instance \w+, fencing token (\d+)""").find(line)!!.destructured
                    slot to token.toLong()
                }
                withClue("runs: $runs") {
                    parsed.map { it.first }.shouldNotContainDuplicates()
                    parsed.sortedBy { it.first }.map { it.second }.shouldBeStrictlyIncreasing()
                }
            } finally {
                instances.forEach { it.destroyForcibly() }
            }
        }
    }
})

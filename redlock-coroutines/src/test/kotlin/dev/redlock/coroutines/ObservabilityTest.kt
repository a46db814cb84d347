package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.micrometer.MicrometerRedlockMetrics
import dev.redlock.testing.RedisFleet
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.doubles.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.micrometer.core.instrument.Tag
import io.micrometer.core.instrument.simple.SimpleMeterRegistry
import java.time.Duration as JavaDuration
import java.util.Collections
import java.util.logging.Handler
import java.util.logging.Level
import java.util.logging.LogRecord
import java.util.logging.Logger
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch

/** Metrics (Micrometer) and logs (SLF4J), on real masters. */
class ObservabilityTest : FunSpec({
    val fleet = sharedFleet(3)

    fun SimpleMeterRegistry.timerCount(name: String, vararg tags: String) =
        find(name).tags(*tags).timer()?.count() ?: 0L

    fun SimpleMeterRegistry.counted(name: String, vararg tags: String) =
        find(name).tags(*tags).counters().sumOf { it.count() }

    fun RedisFleet.metered(registry: SimpleMeterRegistry, configure: dev.redlock.core.RedlockConfig.Builder.() -> Unit = {}) =
        redlock { metrics(MicrometerRedlockMetrics.create(registry, listOf(Tag.of("app", "test")))); configure() }

    test("acquisitions are timed by outcome, holds by how they ended, with Micrometer's names and tags") {
        val registry = SimpleMeterRegistry()
        fleet.metered(registry).use { redlock ->
            redlock.withRedlock("metered") { }
            registry.timerCount("redlock.acquire", "outcome", "acquired", "type", "lock", "app", "test") shouldBe 1L
            registry.timerCount("redlock.hold", "end", "released", "type", "lock") shouldBe 1L
            // Nothing waited: no wait time recorded.
            registry.timerCount("redlock.acquire.wait") shouldBe 0L

            fleet.redlock().use { other ->
                val held = other.acquire("metered")
                redlock.tryAcquire("metered") shouldBe null
                registry.timerCount("redlock.acquire", "outcome", "contended") shouldBe 1L
                coroutineScope {
                    val waiter = async { redlock.acquire("metered") }
                    eventually(what = "the waiter waits") { redlock.engine.rooms.size == 1 }
                    held.release()
                    waiter.await().release()
                }
                registry.timerCount("redlock.acquire", "outcome", "acquired") shouldBe 2L
                val wait = registry.find("redlock.acquire.wait").tags("outcome", "acquired").timer()!!
                wait.count() shouldBe 1L
                wait.totalTime(java.util.concurrent.TimeUnit.NANOSECONDS) shouldBeGreaterThan 0.0
            }
            registry.find("redlock.acquire").tags("type", "read").timer() shouldBe null
            redlock.withReadLock("metered-rw") { }
            registry.timerCount("redlock.acquire", "outcome", "acquired", "type", "read") shouldBe 1L
        }
    }

    test("a cancelled acquisition, and a failed one with the failing master counted") {
        val registry = SimpleMeterRegistry()
        fleet.metered(registry).use { redlock ->
            fleet.redlock().use { other ->
                val held = other.acquire("cancelled")
                coroutineScope {
                    val waiter = launch { redlock.acquire("cancelled") }
                    eventually(what = "the waiter waits") { redlock.engine.rooms.size == 1 }
                    waiter.cancel()
                }
                held.release()
            }
            registry.timerCount("redlock.acquire", "outcome", "cancelled") shouldBe 1L

            // A key of the wrong type on every master: a permanent refusal.
            for (i in 0 until 3) fleet.command(i, "HSET", "redlock:wrong", "a", "b")
            shouldThrow<LockNotAcquiredException> { redlock.acquire("wrong") }
            registry.timerCount("redlock.acquire", "outcome", "failed") shouldBe 1L
            val master = "127.0.0.1:${fleet.port(0)}"
            // Seen on the I/O thread, so handed to the work pool: counted a moment later.
            eventually(what = "the master's failure counted") { registry.counted("redlock.master.failures", "master", master, "operation", "acquire") >= 1.0 }
            registry.counted("redlock.master.failures", "master", master, "operation", "acquire") shouldBe 1.0
            fleet.command(0, "DEL", "redlock:wrong"); fleet.command(1, "DEL", "redlock:wrong"); fleet.command(2, "DEL", "redlock:wrong")
        }
    }

    test("renewals and losses are counted, and a lost lease's hold ends as lost") {
        val registry = SimpleMeterRegistry()
        fleet.metered(registry) { leaseTime(JavaDuration.ofMillis(600)) }.use { redlock ->
            shouldThrow<LockLostException> {
                redlock.withRedlock("renewed") {
                    eventually(what = "two renewals") { registry.counted("redlock.renewals", "result", "extended") >= 2.0 }
                    for (i in 0 until 3) fleet.command(i, "DEL", "redlock:renewed")
                    awaitCancellation()
                }
            }
            // Recorded on the work pool (never on the thread that found the loss): a moment later.
            eventually(what = "the loss and the hold's end counted") {
                registry.counted("redlock.losses", "reason", "not_held", "type", "lock") >= 1.0 &&
                    registry.timerCount("redlock.hold", "end", "lost") >= 1L
            }
            registry.counted("redlock.losses", "reason", "not_held", "type", "lock") shouldBe 1.0
            registry.timerCount("redlock.hold", "end", "lost") shouldBe 1L
            registry.timerCount("redlock.hold", "end", "released") shouldBe 0L
        }
    }

    test("a master that restarted empty is counted as a restart") {
        val registry = SimpleMeterRegistry()
        RedisFleet.start(3).use { own ->
            own.metered(registry).use { redlock ->
                redlock.withRedlock("before") { }
                own.restart(1)
                eventually(what = "the restart noticed") {
                    kotlinx.coroutines.runBlocking { redlock.tryAcquire("after-${System.nanoTime()}")?.release() }
                    registry.counted("redlock.master.restarts", "master", "127.0.0.1:${own.port(1)}") == 1.0
                }
            }
        }
    }

    test("logs: WARN for a loss, a failing master and a restarted one, DEBUG per attempt; never a token or the password") {
        val password = "pw-${System.nanoTime()}"
        val records = Collections.synchronizedList(ArrayList<LogRecord>())
        val handler = object : Handler() {
            override fun publish(record: LogRecord) { records += record }
            override fun flush() {}
            override fun close() {}
        }
        val logger = Logger.getLogger("dev.redlock")
        val level = logger.level
        logger.level = Level.ALL
        logger.addHandler(handler)
        val tokens = HashSet<String>()
        try {
            RedisFleet.builder().masters(3).password(password).start().use { secured ->
                // The holder's token, from a master that has the key: an acquire returns once a
                // quorum granted it, so a given master may set it a moment later.
                suspend fun token(key: String): String {
                    var found: String? = null
                    eventually(what = "$key set on some master") {
                        found = (0 until 3).filter { secured.isRunning(it) }.firstNotNullOfOrNull { secured.command(it, "GET", key) as String? }
                        found != null
                    }
                    return found!!
                }
                secured.redlock { leaseTime(JavaDuration.ofMillis(900)) }.use { redlock ->
                    redlock.withRedlock("logged") {
                        tokens += token("redlock:logged")
                    }
                    secured.redlock().use { other ->
                        val held = other.acquire("logged")
                        tokens += token("redlock:logged")
                        redlock.tryAcquire("logged") shouldBe null
                        held.release()
                    }
                    secured.kill(2)
                    redlock.withRedlock("one-down") { tokens += token("redlock:one-down") }
                    secured.restart(2)
                    eventually(what = "the restarted master noticed") {
                        kotlinx.coroutines.runBlocking { redlock.tryAcquire("probe-${System.nanoTime()}")?.release() }
                        records.any { it.level == Level.WARNING && "started empty" in it.message }
                    }
                    shouldThrow<LockLostException> {
                        redlock.withRedlock("lost") {
                            tokens += token("redlock:lost")
                            for (i in 0 until 3) secured.command(i, "DEL", "redlock:lost")
                            awaitCancellation()
                        }
                    }
                }
            }
        } finally {
            logger.removeHandler(handler)
            logger.level = level
        }
        val all = synchronized(records) { records.toList() }
        fun text(r: LogRecord) = buildString {
            append(r.message)
            r.parameters?.forEach { append(' ').append(it) }
            var t = r.thrown
            while (t != null) { append(' ').append(t.message); t = t.cause }
        }
        val warnings = all.filter { it.level == Level.WARNING }.map(::text)
        warnings.any { "lost the lock on [lost]" in it } shouldBe true
        warnings.any { "master 127.0.0.1:" in it && "failed" in it } shouldBe true
        warnings.any { "started empty" in it } shouldBe true
        val debug = all.filter { it.level.intValue() <= Level.FINE.intValue() }.map(::text)
        debug.any { "attempt for the lock on [redlock:logged]" in it } shouldBe true
        (tokens.size >= 4) shouldBe true
        all.map(::text).filter { line -> password in line || tokens.any { it in line } }.shouldBeEmpty()
    }
})

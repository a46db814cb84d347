package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockConfig
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.time.Duration as JavaDuration
import java.util.logging.Level
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch

/**
 * What a newcomer runs into first: the same server listed twice, configuration that passes but
 * cannot work, a nested lock on the same resource, and the first lock on servers just started.
 */
class NewcomerTest : FunSpec({
    val fleet = sharedFleet(3)

    test("the same server under two spellings counts once: with the third master down, no lock on one real server") {
        val same = fleet.uri(0).replace("127.0.0.1", "localhost")
        val config = RedlockConfig.builder().masters(listOf(fleet.uri(0), same, fleet.uri(1)))
            .waitTime(JavaDuration.ZERO).build()
        Redlock(config).use { redlock ->
            // Both spellings have told their server's run id once they answered.
            redlock.withRedlock("twice") { }
            fleet.pause(1)
            try {
                val e = shouldThrow<LockNotAcquiredException> { redlock.tryAcquire("twice") }
                e.masterFailures().map { it.kind() } shouldContain MasterFailureException.Kind.DUPLICATE
                e.message shouldContain "the same server as masters[0] (127.0.0.1:${fleet.port(0)})"
            } finally {
                fleet.resume(1)
            }
        }
    }

    test("a port that is not a number, a blank resource and an even number of masters are told at once") {
        shouldThrow<IllegalArgumentException> { RedlockConfig.builder().master("redis://127.0.0.1:abc").build() }
            .message shouldBe "masters[0] must have a port number from 1 to 65535 after the host, but was 'redis://127.0.0.1:abc'"
        fleet.redlock(1).use { redlock ->
            shouldThrow<IllegalArgumentException> { redlock.tryAcquire("   ") }
                .message shouldBe "resource must contain a character other than whitespace, but was \"   \""
        }
        val warnings = captureLogs().use { logs ->
            fleet.redlock(2).close()
            logs.lines(Level.WARNING)
        }
        warnings.single { it.contains("even number") } shouldContain "2 masters"
    }

    test("a nested lock on the same resource fails at once instead of waiting for itself, also from a child coroutine") {
        fleet.redlock(3) { waitTime(JavaDuration.ofMinutes(5)) }.use { redlock ->
            redlock.withRedlock("nested") {
                val e = shouldThrow<IllegalStateException> { redlock.withRedlock("nested") { } }
                e.message shouldContain "withRedlock on [nested] was called inside a critical section that already holds"
                e.message shouldContain "not reentrant"
                launch { shouldThrow<IllegalStateException> { redlock.acquire("nested") } }.join()
                // Another resource, or a single attempt, is fine: neither waits for itself.
                redlock.withRedlock("other") { "fine" } shouldBe "fine"
                redlock.tryAcquire("nested") shouldBe null
            }
            redlock.withWriteLock("rw") {
                shouldThrow<IllegalStateException> { redlock.withReadLock("rw") { } }
            }
            redlock.withPermit("sem", permits = 2) {
                shouldThrow<IllegalStateException> { redlock.acquirePermit("sem", permits = 2) }
            }
        }
    }

    test("a lease longer than the restart guard is refused at the call, naming both and how to raise the guard") {
        fleet.redlock(3) { leaseTime(JavaDuration.ofSeconds(2)) }.use { redlock ->
            val e = shouldThrow<IllegalArgumentException> { redlock.withRedlock("long", leaseTime = 30.seconds) { } }
            e.message shouldContain "leaseTime must be at most the restartGuard (2s), but was 30s"
            e.message shouldContain "raise RedlockConfig.restartGuard"
        }
        shouldThrow<IllegalArgumentException> {
            RedlockConfig.builder().master(fleet.uri(0)).leaseTime(JavaDuration.ofSeconds(10)).restartGuard(JavaDuration.ofSeconds(2)).build()
        }.message shouldContain "restartGuard must be 0 (off) or at least leaseTime (10s)"
        // A guard that covers the longest lease lets it through.
        fleet.redlock(3) { leaseTime(JavaDuration.ofSeconds(2)).restartGuard(JavaDuration.ofSeconds(30)) }.use { redlock ->
            redlock.withRedlock("long", leaseTime = 30.seconds) { "held" } shouldBe "held"
        }
    }

    test("a master up longer than the guard that lost no data counts at once, though it has no boot marker yet") {
        fleet.restart(0) // a fresh process: no marker, as a server started by hand
        val redlock = fleet.redlock(1) { leaseTime(JavaDuration.ofSeconds(2)) }
        try {
            delay(4_100.milliseconds) // up for more than the 2 s guard, counting the uptime's rounding
            redlock.tryAcquire("uptime").shouldNotBeNull().release()
        } finally {
            redlock.close()
        }
    }

    test("a master that restarted a moment ago is guarded until it has been up for the guard, counted from its start") {
        fleet.restart(0)
        delay(2_200.milliseconds)
        fleet.redlock(1) { leaseTime(JavaDuration.ofSeconds(3)) }.use { redlock ->
            val e = shouldThrow<LockNotAcquiredException> { redlock.tryAcquire("young") }
            // Counted from the server's start (its uptime, in whole seconds), not from this first lock.
            val (amount, unit) = Regex("not counted for ([0-9.]+)(ms|s) more").find(e.message!!)!!.destructured
            val leftMillis = if (unit == "ms") amount.toDouble() else amount.toDouble() * 1000
            // Up more than two seconds already (read as at least one whole second of uptime, less
            // the second of rounding): less than the full 3 s remain, which counting from now would give.
            (leftMillis < 3_000.0) shouldBe true
            redlock.acquire("young", waitTime = 5.seconds).release()
        }
    }

    test("a caller cancelled while a new Redlock's connections open leaves the other callers waiting for them") {
        // Paused: the connection cannot open, so both callers wait for it.
        fleet.pause(0)
        try {
            fleet.redlock(1).use { redlock ->
                coroutineScope {
                    val cancelled = launch(start = CoroutineStart.UNDISPATCHED) { redlock.acquire("newcomer") }
                    val other = async(start = CoroutineStart.UNDISPATCHED) { redlock.acquire("newcomer") }
                    cancelled.cancelAndJoin()
                    delay(100.milliseconds)
                    // Still waiting: the first one's cancellation must not reach it (it once cancelled
                    // the Redlock's own warm-up future, and with it every call waiting for it, each
                    // failing with a CancellationException it never asked for).
                    other.isActive shouldBe true
                    fleet.resume(0)
                    awaitOrDump(other).release()
                }
            }
        } finally {
            fleet.resume(0)
        }
    }

    test("with the defaults, the first lock on a master started by hand a moment ago succeeds") {
        fleet.restart(0)
        delay(2_500.milliseconds)
        // Default lease, wait and guard (10 s each): the master counts once up for 10 s, within the wait.
        Redlock(RedlockConfig.builder().master(fleet.uri(0)).build()).use { redlock ->
            redlock.withRedlock("first") { "locked" } shouldBe "locked"
        }
    }
})

package dev.redlock.coroutines

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout

class ReleaseTest : FunSpec({
    val fleet = sharedFleet(3)

    test("an exception from the block propagates unchanged and the lock is released") {
        fleet.redlock().use { redlock ->
            val e = shouldThrow<IllegalStateException> {
                redlock.withRedlock("boom") { throw IllegalStateException("payment declined") }
            }
            e.message shouldBe "payment declined"
            fleet.keyCount() shouldBe 0
            redlock.tryAcquire("boom")!!.release()
        }
    }

    test("cancelling the caller releases the lock") {
        fleet.redlock().use { redlock ->
            val inside = CompletableDeferred<Unit>()
            coroutineScope {
                val job = launch { redlock.withRedlock("cancelled") { inside.complete(Unit); awaitCancellation() } }
                inside.await()
                (fleet.keyCount() >= 2) shouldBe true // a quorum; the third may still be answering
                job.cancelAndJoin()
            }
            fleet.keyCount() shouldBe 0
        }
    }

    test("release is bounded in time when every master hangs, and the hung masters still drop the keys") {
        fleet.redlock { nodeTimeout(Duration.ofMillis(100)) }.use { redlock ->
            withTimeout(10.seconds) { // a hang guard, not a speed assertion
                shouldThrow<IllegalArgumentException> {
                    redlock.withRedlock("hung") {
                        (0 until 3).forEach(fleet::pause)
                        throw IllegalArgumentException("failed while masters hang")
                    }
                }
            }
            (0 until 3).forEach(fleet::resume)
            // The release commands were queued behind the pause and run when the masters resume.
            eventually(what = "keys released by the queued release") { fleet.keyCount() == 0 }
        }
    }

    test("a failed attempt removes what it set, also on a master that timed out") {
        // Another holder has the key on masters 0 and 1; master 2 is free but paused.
        listOf(0, 1).forEach { fleet.command(it, "SET", "redlock:split", "someone-else", "PX", "60000") }
        fleet.pause(2)
        fleet.redlock { nodeTimeout(Duration.ofMillis(100)).restartGuard(Duration.ofMinutes(1)) }.use { redlock ->
            redlock.tryAcquire("split", leaseTime = 60.seconds) shouldBe null
            fleet.resume(2)
            // Master 2 runs the attempt's acquire and then its cleanup: no key of ours survives,
            // although it would live for 60 s otherwise.
            eventually(what = "master 2 has no key") { fleet.keys(2).isEmpty() }
            listOf(0, 1).forEach { fleet.command(it, "GET", "redlock:split") shouldBe "someone-else" }
        }
        listOf(0, 1).forEach { fleet.command(it, "DEL", "redlock:split") }
    }

    test("a cancelled waiter leaves no keys behind") {
        listOf(0, 1).forEach { fleet.command(it, "SET", "redlock:queue", "someone-else", "PX", "60000") }
        fleet.redlock { waitTime(Duration.ofSeconds(60)).restartGuard(Duration.ofMinutes(1)) }.use { redlock ->
            coroutineScope {
                val waiter = async { redlock.acquire("queue", leaseTime = 60.seconds) }
                delay(150.milliseconds) // several attempts, each granted on master 2 and cleaned up
                waiter.cancelAndJoin()
            }
            fleet.keys(2) shouldBe emptyList()
        }
        listOf(0, 1).forEach { fleet.command(it, "DEL", "redlock:queue") }
    }

    test("multi-resource locks are all or nothing") {
        fleet.redlock { waitTime(Duration.ZERO) }.use { redlock ->
            val b = redlock.acquire("b")
            redlock.tryAcquire("a", "b") shouldBe null
            (0 until 3).forEach { fleet.keys(it) shouldBe listOf("redlock:b") }
            b.release()
            redlock.withRedlock("a", "b") { lease ->
                lease.resources shouldBe listOf("a", "b")
                redlock.tryAcquire("a") shouldBe null
                redlock.tryAcquire("b") shouldBe null
                redlock.tryAcquire("c")!!.release()
            }
        }
    }
})

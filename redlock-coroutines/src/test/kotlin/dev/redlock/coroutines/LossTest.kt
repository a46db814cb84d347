package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.longs.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.supervisorScope
import kotlinx.coroutines.delay

class LossTest : FunSpec({
    val fleet = sharedFleet(5)

    test("a holder keeps the lock across several renewals") {
        fleet.redlock().use { redlock ->
            val before = fleet.commandCalls(0, "evalsha")
            val result = redlock.withRedlock("renewed", leaseTime = 300.milliseconds) { lease ->
                repeat(12) {
                    delay(100.milliseconds) // 1.2 s in all: four lease times
                    lease.isValid shouldBe true
                }
                "done"
            }
            result shouldBe "done"
            // acquire + release + at least three renewals reached master 0
            (fleet.commandCalls(0, "evalsha") - before) shouldBeGreaterThanOrEqual 5
        }
    }

    test("keys deleted on a majority cancel the block with LockLostException before the lease runs out") {
        fleet.redlock().use { redlock ->
            val inside = CompletableDeferred<Unit>()
            val cancelled = AtomicBoolean(false)
            supervisorScope {
                val holder = async {
                    redlock.withRedlock("doomed", leaseTime = 3.seconds) {
                        inside.complete(Unit)
                        try {
                            awaitCancellation()
                        } catch (e: CancellationException) {
                            cancelled.set(true)
                            throw e
                        }
                    }
                }
                awaitStart(inside, holder)
                // The lease was granted as soon as a majority answered; wait for the late masters
                // too, or a late acquire would set the key again after we delete it.
                eventually(what = "every master holds the key") { (0 until 5).all { fleet.keys(it).isNotEmpty() } }
                listOf(0, 1, 2).forEach { fleet.command(it, "DEL", "redlock:doomed") }
                val e = shouldThrow<LockLostException> { awaitOrDump(holder) }
                // NOT_HELD is only ever decided from the masters' answers to a renewal, which
                // comes after a third of the lease: the loss was found long before expiry.
                e.reason() shouldBe LockLostException.Reason.NOT_HELD
                e.resources() shouldBe listOf("doomed")
            }
            cancelled.get() shouldBe true
        }
    }

    test("killing 3 of 5 masters cancels the block when validity runs out, and the block never sees an invalid lease uninformed") {
        fleet.redlock().use { redlock ->
            val inside = CompletableDeferred<Unit>()
            val uninformed = AtomicBoolean(false)
            supervisorScope {
                val holder = async {
                    redlock.withRedlock("fragile", leaseTime = 600.milliseconds) { lease ->
                        inside.complete(Unit)
                        while (true) {
                            delay(2.milliseconds)
                            if (!lease.isValid && (lease as dev.redlock.coroutines.internal.RedlockLease).loss == null) uninformed.set(true)
                        }
                    }
                }
                awaitStart(inside, holder)
                listOf(0, 2, 4).forEach(fleet::kill)
                val e = shouldThrow<LockLostException> { awaitOrDump(holder) }
                e.reason() shouldBe LockLostException.Reason.EXPIRED
            }
            uninformed.get() shouldBe false
        }
    }

    test("a block that outlives its lease without being cancelled does not have its result reported as held") {
        fleet.redlock(3).use { redlock ->
            shouldThrow<LockLostException> {
                // Without renewal, and blocking its thread so that it cannot be cancelled in time.
                @OptIn(InternalRedlockApi::class)
                redlock.runWithLease(LockType.MUTEX, arrayOf("overrun"), 200.milliseconds, null, renew = false, fencing = null, "withRedlock") {
                    @Suppress("BlockingMethodInNonBlockingContext")
                    Thread.sleep(400)
                    "too late"
                }
            }.reason() shouldBe LockLostException.Reason.EXPIRED
        }
    }

    test("no renewal command is sent for a lease after its release") {
        fleet.redlock(1).use { redlock ->
            redlock.withRedlock("quiet", leaseTime = 300.milliseconds) { delay(400.milliseconds) }
            val after = fleet.commandCalls(0, "evalsha")
            delay(800.milliseconds) // several renewal intervals
            fleet.commandCalls(0, "evalsha") shouldBe after
        }
    }

    test("awaitLost returns the loss and extend then throws it") {
        fleet.redlock(3).use { redlock ->
            val lease = redlock.acquire("watched", leaseTime = 2.seconds)
            eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it).isNotEmpty() } }
            (0 until 3).forEach { fleet.command(it, "DEL", "redlock:watched") }
            val e = shouldThrow<LockLostException> { lease.extend() }
            e.reason() shouldBe LockLostException.Reason.NOT_HELD
            lease.awaitLost() shouldBe e
            lease.isValid shouldBe false
            lease.release() // a no-op for the caller: nothing to release, nothing thrown
        }
    }

    test("renewal keeps the lease alive while the block blocks its caller's thread") {
        fleet.redlock(3).use { redlock ->
            val result = redlock.withRedlock("busy-thread", leaseTime = 300.milliseconds) { lease ->
                @Suppress("BlockingMethodInNonBlockingContext")
                Thread.sleep(700) // more than two lease times, on the caller's own thread
                lease.isValid
            }
            result shouldBe true
        }
    }
})

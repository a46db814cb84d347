package dev.redlock.coroutines

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.time.Duration as JavaDuration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.supervisorScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.withTimeout

/** The three-state lease and the maximum hold, against real masters. */
class LeaseStateTest : FunSpec({
    val fleet = sharedFleet(3)

    test("renewals failing on a paused majority make the lease AT_RISK, and HELD again once they get through") {
        fleet.redlock { nodeTimeout(JavaDuration.ofMillis(100)) }.use { redlock ->
            redlock.withRedlock("risky", leaseTime = 3.seconds) { lease ->
                lease.state.value shouldBe LeaseState.HELD
                eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it).isNotEmpty() } }
                fleet.pause(1)
                fleet.pause(2)
                try {
                    withTimeout(10.seconds) { lease.state.first { it == LeaseState.AT_RISK } }
                    lease.isValid shouldBe true
                } finally {
                    fleet.resume(1)
                    fleet.resume(2)
                }
                withTimeout(10.seconds) { lease.state.first { it == LeaseState.HELD } }
            }
        }
    }

    test("a lease whose majority is killed ends LOST; a released one ends RELEASED") {
        fleet.redlock { nodeTimeout(JavaDuration.ofMillis(100)) }.use { redlock ->
            val released = redlock.acquire("ends")
            released.release()
            released.state.value shouldBe LeaseState.RELEASED

            val inside = CompletableDeferred<Lease>()
            supervisorScope {
                val holder = async {
                    redlock.withRedlock("ends", leaseTime = 1.seconds) { lease ->
                        inside.complete(lease)
                        awaitCancellation()
                    }
                }
                val lease = inside.await()
                fleet.kill(1)
                fleet.kill(2)
                shouldThrow<LockLostException> { holder.await() }
                lease.state.value shouldBe LeaseState.LOST
            }
        }
    }

    test("maxHoldTime stops renewal and cancels the block with MAX_HOLD, and the lock is released") {
        fleet.redlock { maxHoldTime(JavaDuration.ofMillis(1_500)) }.use { redlock ->
            var cancelled = false
            val loss = shouldThrow<LockLostException> {
                redlock.withRedlock("capped", leaseTime = 600.milliseconds) { lease ->
                    try {
                        awaitCancellation() // renewed every 200 ms until the cap
                    } finally {
                        cancelled = true
                        lease.state.value shouldBe LeaseState.LOST
                    }
                }
            }
            loss.reason() shouldBe LockLostException.Reason.MAX_HOLD
            cancelled shouldBe true
            fleet.keyCount() shouldBe 0
        }
    }
})

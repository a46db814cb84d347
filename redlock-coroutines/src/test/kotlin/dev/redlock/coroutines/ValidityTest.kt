package dev.redlock.coroutines

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TestTimeSource
import kotlinx.coroutines.async
import kotlinx.coroutines.supervisorScope
import kotlinx.coroutines.delay

/** Validity arithmetic on a virtual clock, against real masters. */
class ValidityTest : FunSpec({
    val fleet = sharedFleet(3)

    test("validity is the lease time minus drift from before the first request, and extend renews it from its own start") {
        val clock = TestTimeSource()
        fleet.redlock(timeSource = clock) { restartGuard(Duration.ofSeconds(10)) }.use { redlock ->
            val lease = redlock.acquire("v", leaseTime = 10.seconds)
            // drift = 1 % of 10 s + 2 ms
            lease.remaining shouldBe 10.seconds - 102.milliseconds
            clock += 4.seconds
            lease.remaining shouldBe 6.seconds - 102.milliseconds
            lease.isValid shouldBe true
            lease.extend()
            lease.remaining shouldBe 10.seconds - 102.milliseconds
            clock += 10.seconds - 102.milliseconds
            lease.isValid shouldBe false
            val e = shouldThrow<LockLostException> { lease.extend() }
            e.reason() shouldBe LockLostException.Reason.EXPIRED
            lease.release() // still cleans the real keys up
        }
    }

    test("keys found gone after the validity ran out: the loss is EXPIRED, its first cause, not NOT_HELD") {
        // A lease from acquire() that nobody extends: its keys expire on the masters after its
        // validity ended here, and the pushes of their removal start a check that finds them gone.
        // Whichever notices first (that check, or a read of the lease), the reason is the same.
        val clock = TestTimeSource()
        fleet.redlock(timeSource = clock).use { redlock ->
            val lease = redlock.acquire("gone-late", leaseTime = 4.seconds)
            eventually(what = "every master tracks the key") { redlock.engine.masters.nodes.all { it.tracking() } }
            clock += 4.seconds
            (0 until 3).forEach { fleet.command(it, "DEL", "redlock:gone-late") }
            eventually(what = "the check the pushes started declared the loss") { lease.state.value == LeaseState.LOST }
            lease.awaitLost().reason() shouldBe LockLostException.Reason.EXPIRED
        }
    }

    test("an attempt whose quorum answers after leaseTime minus drift is not granted") {
        val clock = TestTimeSource()
        fleet.redlock(timeSource = clock) { leaseTime(Duration.ofSeconds(10)).nodeTimeout(Duration.ofSeconds(3)) }.use { redlock ->
            redlock.checkMasters() // connected: the attempt below does not wait for the first connections
            (0 until 3).forEach(fleet::pause)
            supervisorScope {
                val attempt = async { redlock.tryAcquire("late", leaseTime = 10.seconds) }
                delay(200.milliseconds)
                clock += 10.seconds // the masters are "slow": their answers arrive a lease later
                (0 until 3).forEach(fleet::resume)
                val e = shouldThrow<LockNotAcquiredException> { attempt.await() }
                e.message shouldContain "answered after the lease's validity"
                e.isContended shouldBe false
            }
            eventually(what = "the late keys are cleaned up") { fleet.keyCount() == 0 }
        }
    }
})

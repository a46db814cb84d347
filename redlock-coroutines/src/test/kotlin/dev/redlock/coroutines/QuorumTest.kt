package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterFailureException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlin.time.Duration.Companion.milliseconds

class QuorumTest : FunSpec({
    val fleet = sharedFleet(5)

    test("with 2 of 5 masters killed, locks are still granted and exclusive") {
        fleet.redlock().use { redlock ->
            fleet.kill(0)
            fleet.kill(3)
            redlock.withRedlock("orders:42") { lease ->
                lease.isValid shouldBe true
                redlock.tryAcquire("orders:42") shouldBe null
            }
            // Only the three live masters could hold the key; it is gone after release.
            listOf(1, 2, 4).forEach { fleet.keys(it) shouldBe emptyList() }
        }
    }

    test("with 3 of 5 masters killed, acquire fails naming each master's failure") {
        fleet.redlock { waitTime(java.time.Duration.ofMillis(200)) }.use { redlock ->
            listOf(0, 2, 4).forEach(fleet::kill)
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("orders:42") }
            e.isContended shouldBe false
            e.masterFailures() shouldHaveSize 3
            e.masterFailures().map { it.master() }.toSet() shouldBe listOf(0, 2, 4).map { "127.0.0.1:${fleet.port(it)}" }.toSet()
            e.masterFailures().forEach { it.kind() shouldBe MasterFailureException.Kind.UNREACHABLE }
            for (i in listOf(0, 2, 4)) e.message shouldContain "127.0.0.1:${fleet.port(i)}"
            e.message shouldContain "2 granted"
            (e.cause is MasterFailureException) shouldBe true
            e.suppressed shouldHaveSize 2
            // The two masters that granted were cleaned up.
            listOf(1, 3).forEach { fleet.keys(it) shouldBe emptyList() }
        }
    }

    test("a master that comes back is used again") {
        fleet.redlock(3) { waitTime(java.time.Duration.ofMillis(100)) }.use { redlock ->
            fleet.kill(0)
            fleet.kill(1)
            shouldThrow<LockNotAcquiredException> { redlock.acquire("x") }
            fleet.restart(0)
            eventually(what = "master 0 serves locks again") {
                kotlinx.coroutines.runBlocking { redlock.tryAcquireOrFailure("x") }
            }
        }
    }

    test("a master that does not answer within the node timeout counts as not acquired, and the lock still works") {
        fleet.redlock { nodeTimeout(java.time.Duration.ofMillis(100)) }.use { redlock ->
            fleet.pause(1)
            fleet.pause(2)
            val lease = redlock.acquire("slow", leaseTime = 2000.milliseconds)
            lease.isValid shouldBe true
            lease.release()
            fleet.resume(1)
            fleet.resume(2)
            // The paused masters run the queued acquire and then the release, in that order.
            eventually(what = "paused masters end up without our keys") { fleet.keys(1).isEmpty() && fleet.keys(2).isEmpty() }
        }
    }
})

/** True when one attempt acquired (and released) the lock; false when it failed for any reason. */
private suspend fun Redlock.tryAcquireOrFailure(resource: String): Boolean =
    try {
        tryAcquire(resource)?.let { it.release(); true } ?: false
    } catch (e: LockNotAcquiredException) {
        false
    }

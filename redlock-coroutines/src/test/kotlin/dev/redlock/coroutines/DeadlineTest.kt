package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.internal.LockMath
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.comparables.shouldBeLessThanOrEqualTo
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import java.time.Duration as JavaDuration
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlinx.coroutines.supervisorScope

/**
 * Deadlines are enforced by the clock, never by I/O: a lease whose renewal hangs on paused masters
 * is declared lost by the end of its validity, not when the hanging call gives up. The node
 * timeout is the longest the config allows (a third of the lease), so a renewal and its retry
 * each hang as long as they can.
 */
@OptIn(InternalRedlockApi::class)
class DeadlineTest : FunSpec({
    val fleet = sharedFleet(3)

    for (n in listOf(1, 3)) {
        test("N=$n: a renewal in flight to paused masters does not delay the loss: it is declared by the end of validity") {
            fleet.redlock(n) { leaseTime(JavaDuration.ofSeconds(1)).nodeTimeout(JavaDuration.ofMillis(333)) }.use { redlock ->
                val paused = (0 until LockMath.quorum(n)).toList()
                val inside = CompletableDeferred<Lease>()
                supervisorScope {
                    val holder = async {
                        redlock.withRedlock("deadline") { lease ->
                            inside.complete(lease)
                            awaitCancellation()
                        }
                    }
                    val lease = inside.await()
                    // Paused a moment into the block: the first renewal (due a third into the lease)
                    // hangs for a whole node timeout, and so does its retry, past the validity.
                    delay(150.milliseconds)
                    paused.forEach(fleet::pause)
                    try {
                        val loss = shouldThrow<LockLostException> { awaitOrDump(holder) }
                        loss.reason() shouldBe LockLostException.Reason.EXPIRED
                        val times = lease.times()
                        val declared = times.lossDeclaredAt.shouldNotBeNull()
                        // No grace: the holder was told no later than its validity ended.
                        withClue("declared ${declared - times.validUntil} after the validity ended") {
                            declared shouldBeLessThanOrEqualTo times.validUntil
                        }
                    } finally {
                        paused.forEach(fleet::resume)
                    }
                }
            }
        }
    }
})

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactlyInAnyOrder
import io.kotest.matchers.longs.shouldBeGreaterThanOrEqual
import io.kotest.matchers.longs.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay

/** Renewals of many leases are coalesced into one extend script per master, and each lease's own answer decides for it. */
class RenewalTest : FunSpec({
    val fleet = sharedFleet(3)

    test("leases held together are renewed by a few extend calls carrying many keys, not one call per lease") {
        fleet.redlock().use { redlock ->
            val count = 200
            val held = AtomicInteger()
            val window = CompletableDeferred<Unit>()
            coroutineScope {
                val blocks = (1..count).map { i ->
                    async {
                        redlock.withRedlock("batch-$i", leaseTime = 1_500.milliseconds) { lease ->
                            held.incrementAndGet()
                            window.await()
                            lease.isValid shouldBe true
                        }
                    }
                }
                eventually(what = "every block holds its lock") { held.get() == count }
                // From here until the window closes, the only scripts the masters run are renewals.
                val calls = fleet.commandCalls(0, "evalsha")
                val keysExtended = fleet.commandCalls(0, "pexpire")
                delay(3_200.milliseconds) // more than two lease times: every lease must be renewed to survive
                val renewalCalls = fleet.commandCalls(0, "evalsha") - calls
                val renewedKeys = fleet.commandCalls(0, "pexpire") - keysExtended
                window.complete(Unit)
                blocks.awaitAll()
                renewedKeys shouldBeGreaterThanOrEqual count * 2L
                // Uncoalesced, each renewal would be a call of its own (renewalCalls == renewedKeys).
                renewalCalls shouldBeLessThanOrEqual renewedKeys / 20
            }
        }
    }

    test("a coalesced renewal that finds one lease gone loses only that lease") {
        fleet.redlock().use { redlock ->
            val count = 10
            val held = AtomicInteger()
            val finish = CompletableDeferred<Unit>()
            coroutineScope {
                val blocks = (1..count).map { i ->
                    async {
                        runCatching {
                            redlock.withRedlock("cohort-$i", leaseTime = 900.milliseconds) {
                                held.incrementAndGet()
                                finish.await()
                                "finished"
                            }
                        }
                    }
                }
                eventually(what = "every block holds its lock") { held.get() == count }
                // Every master must hold every key before one is deleted (late masters set keys too).
                eventually(what = "all keys on all masters") { (0 until 3).all { fleet.keys(it).size == count } }
                for (m in 0 until 3) fleet.command(m, "DEL", "redlock:cohort-3")
                val lost = blocks[2].await().exceptionOrNull()
                (lost as LockLostException).reason() shouldBe LockLostException.Reason.NOT_HELD
                // The others go on through further renewals, then finish normally.
                delay(1_200.milliseconds)
                finish.complete(Unit)
                val others = blocks.filterIndexed { i, _ -> i != 2 }.map { it.await().getOrThrow() }
                others shouldContainExactlyInAnyOrder List(count - 1) { "finished" }
            }
        }
    }

    test("an explicit extend of a lease that is also renewed in the background keeps one validity, the later one") {
        // A node timeout well above the default 5 % of this short lease: on a loaded machine a
        // master's reply may take longer than 45 ms, which is not what this test is about.
        fleet.redlock { nodeTimeout(java.time.Duration.ofMillis(300)) }.use { redlock ->
            redlock.withRedlock("explicit", leaseTime = 900.milliseconds) { lease ->
                repeat(5) {
                    delay(250.milliseconds)
                    lease.extend()
                    lease.isValid shouldBe true
                }
            }
            shouldThrow<IllegalStateException> {
                val lease = redlock.acquire("explicit")
                lease.release()
                lease.extend()
            }
        }
    }
})

package dev.redlock.coroutines

import dev.redlock.core.internal.RedisNode
import dev.redlock.testing.RedisFleet
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.shouldBe
import java.time.Duration as JavaDuration
import java.util.Collections
import kotlin.time.Duration.Companion.minutes
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope

/**
 * Waiters are woken by releases, not by polling: every test sets the holder's lease to minutes and
 * the retry delay to one minute (jittered, at least 30 s), while each wait is guarded by a 20 s
 * hang limit, so a waiter that acquires in time can only have been woken by a release notice (or,
 * in this process, handed the lock by the releasing lease).
 */
class WakeUpTest : FunSpec({
    val fleet = sharedFleet(3)

    /** No fallback fires within the test: only a wake-up gets a waiter the lock. */
    fun RedisFleet.slowFallbacks(n: Int = size) = redlock(n) {
        leaseTime(JavaDuration.ofMinutes(10))
        waitTime(JavaDuration.ofMinutes(10))
        retryDelay(JavaDuration.ofMinutes(1)) // the longest allowed: jittered, at least 30 s
    }

    fun subscribers(master: Int, key: String): Long {
        @Suppress("UNCHECKED_CAST")
        val reply = fleet.command(master, "PUBSUB", "NUMSUB", RedisNode.RELEASE_CHANNEL_PREFIX + key) as List<Any>
        return reply[1] as Long
    }

    for (n in listOf(1, 3)) {
        test("a waiter in another process is woken by the release notice, with $n master(s)") {
            fleet.slowFallbacks(n).use { holderSide ->
                fleet.slowFallbacks(n).use { waiterSide ->
                    val base = fleet.commandCalls(0, "evalsha")
                    val holder = holderSide.acquire("wake")
                    coroutineScope {
                        val waiter = async { waiterSide.acquire("wake") }
                        eventually(what = "the waiter subscribed on every master") {
                            (0 until n).all { subscribers(it, "redlock:wake") == 1L }
                        }
                        // Its first attempt, and the second once subscribed: both refused.
                        eventually(what = "the waiter's attempts are done") { fleet.commandCalls(0, "evalsha") == base + 3 }
                        holder.release()
                        val lease = awaitOrDump(waiter)
                        lease.isValid shouldBe true
                        lease.release()
                    }
                    // The last waiter gone, its subscriptions are removed.
                    eventually(what = "subscriptions removed") { (0 until n).all { subscribers(it, "redlock:wake") == 0L } }
                    waiterSide.rooms.size shouldBe 0
                }
            }
        }
    }

    test("waiters of one process are served one at a time, in arrival order, one attempt per release") {
        fleet.slowFallbacks().use { redlock ->
            val base = fleet.commandCalls(0, "evalsha")
            val holder = redlock.acquire("queue")
            val order = Collections.synchronizedList(ArrayList<Int>())
            coroutineScope {
                val first = async { redlock.acquire("queue").also { order += 1 } }
                eventually(what = "the first waiter subscribed") { (0 until 3).all { subscribers(it, "redlock:queue") == 1L } }
                // Its first attempt, then one more once the subscription is in (a release might
                // have slipped by before): both refused.
                eventually(what = "the first waiter's attempts are done") { fleet.commandCalls(0, "evalsha") >= base + 3 }
                val waiters = listOf(first) + (2..5).map { i ->
                    async { redlock.acquire("queue").also { order += i } }.also {
                        eventually(what = "waiter $i queued") { redlock.rooms.queued("redlock:queue") == i }
                    }
                }
                // One subscription per master, however many wait.
                (0 until 3).all { subscribers(it, "redlock:queue") == 1L } shouldBe true
                var calls = fleet.commandCalls(0, "evalsha") - base
                calls shouldBe 3L // the holder's acquire and the first waiter's two attempts: the queued ones sent nothing

                var releasing = holder
                for ((i, waiter) in waiters.withIndex()) {
                    releasing.release()
                    val lease = awaitOrDump(waiter)
                    order.toList() shouldBe (1..i + 1).toList()
                    // The release and one attempt, by the head of the queue only: no herd.
                    fleet.commandCalls(0, "evalsha") - base shouldBe calls + 2
                    calls += 2
                    releasing = lease
                }
                releasing.release()
            }
            order shouldContainExactly listOf(1, 2, 3, 4, 5)
            eventually(what = "subscriptions removed") { subscribers(0, "redlock:queue") == 0L }
        }
    }

    test("a release in the same process hands the lock over without Redis's notice") {
        // SUBSCRIBE is disabled on these masters: no notice can reach the waiter.
        RedisFleet.builder().masters(3).serverArgs("--rename-command", "SUBSCRIBE", "").start().use { deaf ->
            deaf.slowFallbacks().use { redlock ->
                val base = deaf.commandCalls(0, "evalsha")
                val holder = redlock.acquire("handover")
                coroutineScope {
                    val waiter = async { redlock.acquire("handover") }
                    eventually(what = "the waiter queued") { redlock.rooms.queued("redlock:handover") == 1 }
                    // Its first attempt, and the second once its (failed) subscriptions were settled.
                    eventually(what = "the waiter's attempts are done") { deaf.commandCalls(0, "evalsha") == base + 3 }
                    @Suppress("UNCHECKED_CAST")
                    val numsub = deaf.command(0, "PUBSUB", "NUMSUB", RedisNode.RELEASE_CHANNEL_PREFIX + "redlock:handover") as List<Any>
                    numsub[1] shouldBe 0L
                    holder.release()
                    val lease = awaitOrDump(waiter)
                    lease.isValid shouldBe true
                    lease.release()
                }
            }
            deaf.keyCount() shouldBe 0
        }
    }

    test("a waiter for several resources is woken by the release of any of them") {
        fleet.slowFallbacks().use { holderSide ->
            fleet.slowFallbacks().use { waiterSide ->
                val a = holderSide.acquire("multi-a")
                val b = holderSide.acquire("multi-b")
                coroutineScope {
                    val waiter = async { waiterSide.acquire("multi-a", "multi-b") }
                    eventually(what = "the waiter subscribed to both keys") {
                        subscribers(0, "redlock:multi-a") == 1L && subscribers(0, "redlock:multi-b") == 1L
                    }
                    a.release()
                    b.release()
                    val lease = awaitOrDump(waiter)
                    lease.resources shouldBe listOf("multi-a", "multi-b")
                    lease.release()
                }
            }
        }
    }
})

package dev.redlock.coroutines

import dev.redlock.core.internal.Keys
import dev.redlock.testing.RedisFleet
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldNotBeSameInstanceAs
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
@Tags("compat")
class WakeUpTest : FunSpec({
    val fleet = sharedFleet(3)

    /** No fallback fires within the test: only a wake-up gets a waiter the lock. */
    fun RedisFleet.slowFallbacks(n: Int = size) = redlock(n) {
        leaseTime(JavaDuration.ofMinutes(10))
        waitTime(JavaDuration.ofMinutes(10))
        retryDelay(JavaDuration.ofMinutes(1)) // the longest allowed: jittered, at least 30 s
    }

    /**
     * Refused attempts seen by [master]: the acquire script calls PTTL on the key that refuses it,
     * and nothing else does. (EVALSHA counts would also include the clean-up a refused attempt
     * sends to a master that had not answered when the outcome was decided.)
     */
    fun RedisFleet.refusals(master: Int) = commandCalls(master, "pttl")

    /** Granted attempts seen by [master]: the acquire script's SET. */
    fun RedisFleet.grants(master: Int) = commandCalls(master, "set")

    fun subscribers(master: Int, key: String): Long {
        @Suppress("UNCHECKED_CAST")
        val reply = fleet.command(master, "PUBSUB", "NUMSUB", Keys.RELEASE_CHANNEL_PREFIX + key) as List<Any>
        return reply[1] as Long
    }

    /** Waits until the first [n] masters hold [key]: an acquire returns once a quorum granted it. */
    suspend fun RedisFleet.holdsEverywhere(n: Int, key: String) =
        eventually(what = "$key set on all $n masters") { (0 until n).all { command(it, "EXISTS", key) == 1L } }

    for (n in listOf(1, 3)) {
        test("a waiter in another process is woken by the release notice, with $n master(s)") {
            fleet.slowFallbacks(n).use { holderSide ->
                fleet.slowFallbacks(n).use { waiterSide ->
                    val base = (0 until n).map { fleet.refusals(it) }
                    val holder = holderSide.acquire("wake")
                    // Granted by a quorum; the other masters' answers may still be on their way.
                    fleet.holdsEverywhere(n, "redlock:wake")
                    coroutineScope {
                        val waiter = async { waiterSide.acquire("wake") }
                        eventually(what = "the waiter subscribed on every master") {
                            (0 until n).all { subscribers(it, "redlock:wake") == 1L }
                        }
                        // Its first attempt, and the second once subscribed: both refused.
                        eventually(what = "the waiter's attempts are done") { (0 until n).all { fleet.refusals(it) == base[it] + 2 } }
                        holder.release()
                        val lease = awaitOrDump(waiter)
                        lease.isValid shouldBe true
                        lease.release()
                    }
                    // The last waiter gone, its subscriptions are removed.
                    eventually(what = "subscriptions removed") { (0 until n).all { subscribers(it, "redlock:wake") == 0L } }
                    waiterSide.engine.rooms.size shouldBe 0
                }
            }
        }
    }

    test("waiters of one process are served one at a time, in arrival order, one attempt per release") {
        fleet.slowFallbacks().use { redlock ->
            val refusedBefore = fleet.refusals(0)
            val holder = redlock.acquire("queue")
            val order = Collections.synchronizedList(ArrayList<Int>())
            coroutineScope {
                val first = async { redlock.acquire("queue").also { order += 1 } }
                eventually(what = "the first waiter subscribed") { (0 until 3).all { subscribers(it, "redlock:queue") == 1L } }
                // Its first attempt, then one more once the subscription is in (a release might
                // have slipped by before): both refused.
                eventually(what = "the first waiter's attempts are done") { fleet.refusals(0) == refusedBefore + 2 }
                val waiters = listOf(first) + (2..5).map { i ->
                    async { redlock.acquire("queue").also { order += i } }.also {
                        eventually(what = "waiter $i queued") { redlock.engine.rooms.queued("redlock:queue") == i }
                    }
                }
                // One subscription per master, however many wait.
                (0 until 3).all { subscribers(it, "redlock:queue") == 1L } shouldBe true
                // The queued waiters sent nothing.
                fleet.refusals(0) shouldBe refusedBefore + 2

                var releasing = holder
                for ((i, waiter) in waiters.withIndex()) {
                    val granted = fleet.grants(0)
                    releasing.release()
                    val lease = awaitOrDump(waiter)
                    order.toList() shouldBe (1..i + 1).toList()
                    // One attempt, by the head of the queue only, and it won: no herd.
                    fleet.grants(0) shouldBe granted + 1
                    fleet.refusals(0) shouldBe refusedBefore + 2
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
                val base = deaf.refusals(0)
                val holder = redlock.acquire("handover")
                coroutineScope {
                    val waiter = async { redlock.acquire("handover") }
                    eventually(what = "the waiter queued") { redlock.engine.rooms.queued("redlock:handover") == 1 }
                    // Its first attempt, and the second once its (failed) subscriptions were settled.
                    eventually(what = "the waiter's attempts are done") { deaf.refusals(0) == base + 2 }
                    @Suppress("UNCHECKED_CAST")
                    val numsub = deaf.command(0, "PUBSUB", "NUMSUB", Keys.RELEASE_CHANNEL_PREFIX + "redlock:handover") as List<Any>
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

    test("a failed attempt's clean-up announces nothing: contenders do not storm a holder that lacks one master") {
        fleet.slowFallbacks().use { holderSide ->
            fleet.slowFallbacks().use { sideA ->
                fleet.slowFallbacks().use { sideB ->
                    val holder = holderSide.acquire("storm")
                    fleet.holdsEverywhere(3, "redlock:storm")
                    // The holder keeps masters 0 and 1, a quorum; master 2 forgot it.
                    fleet.command(2, "DEL", "redlock:storm")
                    val attemptsBefore = fleet.refusals(0)
                    val noticesBefore = fleet.commandCalls(2, "publish")
                    coroutineScope {
                        val a = async { sideA.acquire("storm") }
                        val b = async { sideB.acquire("storm") }
                        eventually(what = "both waiters subscribed") { (0 until 3).all { subscribers(it, "redlock:storm") == 2L } }
                        // Each: its first attempt and one more once subscribed, each refused by the
                        // holder's masters 0 and 1 (one PTTL there per attempt), granted or refused on
                        // master 2 and cleaned up there. A clean-up that announced itself would wake
                        // the other waiter into the same failed attempt, and so on, endlessly.
                        eventually(what = "the waiters' attempts are done") { fleet.refusals(0) == attemptsBefore + 4 }
                        kotlinx.coroutines.delay(500)
                        fleet.refusals(0) shouldBe attemptsBefore + 4
                        fleet.commandCalls(2, "publish") shouldBe noticesBefore
                        holder.release()
                        // The other contender is named by which one won, not by isCompleted: it may
                        // already hold the lock once the first released it, and a lease left to
                        // close() would go unnoticed (close releases it) or, before close released
                        // leases, stay on all three masters held by nobody.
                        val (first, other) = kotlinx.coroutines.selects.select { a.onAwait { it to b }; b.onAwait { it to a } }
                        first.isValid shouldBe true
                        first.release()
                        val second = awaitOrDump(other)
                        second shouldNotBeSameInstanceAs first
                        second.release()
                    }
                    // Each lease was released by its holder, and a release returns once every master
                    // answered it: nothing is left for close() to clean up.
                    (0 until 3).forEach { fleet.keys(it) shouldBe emptyList() }
                }
            }
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

package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.Script
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThanOrEqual
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.supervisorScope

@Tags("compat")
class SemaphoreTest : FunSpec({
    val fleet = sharedFleet(5)

    test("the quorum of a permit is floor(N*K/(K+1)) + 1: the smallest that keeps K + 1 holders out") {
        LockMath.semaphoreQuorum(5, 2) shouldBe 4
        LockMath.semaphoreQuorum(3, 2) shouldBe 3
        LockMath.semaphoreQuorum(1, 7) shouldBe 1
        for (n in 1..9) {
            LockMath.semaphoreQuorum(n, 1) shouldBe LockMath.quorum(n)
            for (k in 1..12) {
                val q = LockMath.semaphoreQuorum(n, k)
                q shouldBeLessThanOrEqual n
                // K + 1 holders with q masters each need more admissions than N masters give (K each) ...
                ((k + 1) * q > n * k) shouldBe true
                // ... and q is the smallest such number.
                ((k + 1) * (q - 1) > n * k) shouldBe false
            }
        }
        shouldThrow<IllegalArgumentException> { LockMath.semaphoreQuorum(5, 0) }.message shouldBe "permits must be at least 1, but was 0"
    }

    for ((n, permits) in listOf(1 to 2, 3 to 2, 5 to 2, 5 to 3)) {
        test("never more than $permits holders under contention, with $n master(s)") {
            val clients = List(3) { fleet.redlock(n) }
            try {
                val inside = AtomicInteger()
                val most = AtomicInteger()
                val sections = AtomicInteger()
                coroutineScope {
                    for (client in clients) {
                        repeat(4) {
                            launch(Dispatchers.Default) {
                                repeat(6) {
                                    client.withPermit("pool", permits = permits) {
                                        val now = inside.incrementAndGet()
                                        most.accumulateAndGet(now, ::maxOf)
                                        delay(5.milliseconds)
                                        inside.decrementAndGet()
                                        sections.incrementAndGet()
                                    }
                                }
                            }
                        }
                    }
                }
                most.get() shouldBeLessThanOrEqual permits
                most.get() shouldBeGreaterThanOrEqual 2 // a semaphore, not a mutex
                sections.get() shouldBe 3 * 4 * 6
            } finally {
                clients.forEach { it.close() }
            }
        }
    }

    test("a crashed holder's permit comes back after its lease, and never sooner") {
        fleet.redlock(3).use { redlock ->
            // Two holders that "crash": acquired, then neither renewed nor released.
            val crashed = List(2) {
                redlock.tryAcquirePermit("crash", permits = 2, leaseTime = 800.milliseconds)
            }
            crashed.forEach { it shouldNotBe null }
            val inside = AtomicInteger()
            val most = AtomicInteger()
            coroutineScope {
                repeat(4) {
                    launch(Dispatchers.Default) {
                        redlock.withPermit("crash", permits = 2, waitTime = 10.seconds) {
                            // No live lease of the crashed holders may be counted alongside us.
                            val live = crashed.count { it!!.isValid }
                            most.accumulateAndGet(inside.incrementAndGet() + live, ::maxOf)
                            delay(20.milliseconds)
                            inside.decrementAndGet()
                        }
                    }
                }
            }
            most.get() shouldBeLessThanOrEqual 2
        }
    }

    test("a majority-only semaphore would admit K + 1 holders with N = 5, K = 2; the real quorum refuses") {
        val n = 5
        fleet.redlock(n) { restartGuard(java.time.Duration.ofSeconds(30)) }.use { redlock ->
            val resource = "unsafe"
            val holders = "redlock:$resource\u0000permits"
            val until = (System.currentTimeMillis() + 60_000).toString()
            fun fill(masters: List<Int>, member: String) = masters.forEach { fleet.command(it, "ZADD", holders, until, member) }
            fun unfill(masters: List<Int>, member: String) = masters.forEach { fleet.command(it, "ZREM", holders, member) }
            // A client that settles for a majority: the semaphore script on every master, taken
            // when a majority admits it. Run by hand here, since the library never does that.
            fun takeOnMajority(token: String): Boolean {
                val admitted = (0 until n).count { i ->
                    val reply = fleet.command(
                        i, "EVAL", Script.SEMAPHORE_ACQUIRE.text(), "2", holders, "redlock:$resource\u0000permit-count",
                        token, "30000", "2", "0",
                    ) as List<*>
                    reply[0] == 1L
                }
                return admitted >= LockMath.quorum(n)
            }

            // Masters 3 and 4 are full (two other holders each): only 0, 1, 2 can admit.
            fill(listOf(3, 4), "other-1")
            fill(listOf(3, 4), "other-2")
            redlock.tryAcquirePermit(resource, permits = 2, leaseTime = 30.seconds) shouldBe null // 3 masters < quorum 4
            takeOnMajority("a") shouldBe true // 3 masters = a majority
            unfill(listOf(3, 4), "other-1")
            unfill(listOf(3, 4), "other-2")
            // Masters 0 and 1 are full (a and one other): b wins 2, 3, 4.
            fill(listOf(0, 1), "other-3")
            takeOnMajority("b") shouldBe true
            unfill(listOf(0, 1), "other-3")
            // Now 0: a, 1: a, 2: a b, 3: b, 4: b; c wins 0, 1, 3, 4.
            takeOnMajority("c") shouldBe true
            // Three holders of a 2-permit semaphore, each on a majority, all at once; yet no master
            // ever admitted more than K: the majority rule alone is what failed.
            for (i in 0 until n) (fleet.command(i, "ZCARD", holders) as Long).toInt() shouldBeLessThanOrEqual 2
            for (i in 0 until n) fleet.command(i, "DEL", holders)
            // With the real quorum the first step is refused, whatever follows.
            fill(listOf(3, 4), "other-1")
            fill(listOf(3, 4), "other-2")
            redlock.tryAcquirePermit(resource, permits = 2, leaseTime = 30.seconds) shouldBe null
            unfill(listOf(3, 4), "other-1")
            unfill(listOf(3, 4), "other-2")
            for (i in 0 until n) fleet.command(i, "DEL", "redlock:$resource\u0000permit-count")
        }
    }

    test("a caller with another number of permits gets a clear error naming both, not a mix") {
        fleet.redlock(3).use { redlock ->
            supervisorScope {
                val inside = CompletableDeferred<Unit>()
                val done = CompletableDeferred<Unit>()
                val holder = async { redlock.withPermit("k", permits = 2) { inside.complete(Unit); done.await() } }
                awaitStart(inside, holder)
                val e = shouldThrow<IllegalArgumentException> { redlock.withPermit("k", permits = 3, waitTime = 1.seconds) { } }
                e.message shouldBe "permits must be the same for every caller of the semaphore k: its current holders use 2, but this call asked for 3"
                // The same K is fine meanwhile.
                redlock.withPermit("k", permits = 2, waitTime = Duration.ZERO) { "second" } shouldBe "second"
                done.complete(Unit)
                holder.await()
            }
            // Once no holder is left, a new K may be chosen.
            redlock.withPermit("k", permits = 3, waitTime = Duration.ZERO) { "new K" } shouldBe "new K"
            shouldThrow<IllegalArgumentException> { redlock.withPermit("k", permits = 0) { } }.message shouldBe "permits must be at least 1, but was 0"
        }
    }

    test("a full semaphore refuses with contention, and a released permit wakes a waiter") {
        fleet.redlock(3) { restartGuard(java.time.Duration.ofSeconds(10)) }.use { redlock ->
            supervisorScope {
                val inside = CompletableDeferred<Unit>()
                val done = CompletableDeferred<Unit>()
                val holder = async { redlock.withPermit("one", permits = 1, leaseTime = 10.seconds) { inside.complete(Unit); done.await() } }
                awaitStart(inside, holder)
                val e = shouldThrow<LockNotAcquiredException> { redlock.withPermit("one", permits = 1, waitTime = Duration.ZERO) { } }
                e.isContended() shouldBe true
                e.message!! shouldContain "a permit on [one]"
                val waiter = async { redlock.withPermit("one", permits = 1, waitTime = 10.seconds) { "next" } }
                delay(50.milliseconds)
                done.complete(Unit)
                holder.await()
                // Woken by the release (the holder's lease would have lasted 10 s).
                awaitOrDump(waiter, 5.seconds) shouldBe "next"
            }
        }
    }
})

package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.testing.RedisFleet
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.time.Duration as JavaDuration
import java.util.concurrent.atomic.AtomicInteger
import kotlin.random.Random
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.cancelChildren
import kotlinx.coroutines.withTimeout

/**
 * Many contenders on one resource, in several Redlocks (as several processes would be), with every
 * way a call can end: granted and released, refused at once, out of wait time, cancelled while
 * waiting or while an attempt is on its way (also on callers without a dispatcher). Whatever the
 * interleaving, no key may outlive the calls: a key left on the masters once every call ended is a
 * lock held by nobody, refusing everyone until it expires. Checked before the Redlocks close (close()
 * would release a lease that went astray, and hide it), within one node timeout of the last call's
 * end: the bound on a clean-up that a call sent but did not await (an acquire that ran out of wait
 * time stops waiting for it at its deadline).
 */
class ContentionTest : FunSpec({
    val fleet = sharedFleet(3)

    for (n in listOf(1, 3)) {
        test("N=$n: 12 contenders in 3 Redlocks, every call ending every way, leave no key behind and never overlap") {
            val nodeTimeout = 500.milliseconds
            val redlocks = (0 until 3).map {
                fleet.redlock(n) {
                    leaseTime(JavaDuration.ofSeconds(5))
                    waitTime(JavaDuration.ofSeconds(5))
                    retryDelay(JavaDuration.ofMillis(5))
                    nodeTimeout(JavaDuration.ofMillis(nodeTimeout.inWholeMilliseconds))
                }
            }
            try {
                val inside = AtomicInteger()
                val overlaps = AtomicInteger()
                val granted = AtomicInteger()
                val ended = AtomicInteger()
                val unexpected = java.util.concurrent.ConcurrentLinkedQueue<String>()
                suspend fun hold(lease: Lease) {
                    granted.incrementAndGet()
                    try {
                        if (inside.incrementAndGet() > 1) overlaps.incrementAndGet()
                        try {
                            delay(Random.nextLong(0, 3))
                        } finally {
                            inside.decrementAndGet()
                        }
                    } finally {
                        lease.release()
                    }
                }
                withTimeout(120.seconds) { // a hang guard, not a speed assertion
                    coroutineScope {
                        for (c in 0 until 12) {
                            val redlock = redlocks[c % 3]
                            // A third of the contenders have no dispatcher of their own.
                            val context = if (c % 3 == 2) Dispatchers.Unconfined else Dispatchers.Default
                            launch(context) {
                                val random = Random(c)
                                repeat(30) {
                                    try {
                                        when (random.nextInt(5)) {
                                            0 -> hold(redlock.acquire("contended"))
                                            1 -> redlock.tryAcquire("contended")?.let { hold(it) }
                                            2 -> hold(redlock.acquire("contended", waitTime = random.nextLong(1, 20).milliseconds))
                                            // Cancelled at a random moment: while waiting, during an
                                            // attempt, as it is granted, or while it holds. (Not
                                            // withTimeoutOrNull { acquire() }: a timeout after the
                                            // return drops the lease, as kotlinx.coroutines documents.)
                                            3 -> cancelAfter(random.nextLong(0, 15).milliseconds) { hold(redlock.acquire("contended")) }
                                            else -> cancelAfter(random.nextLong(0, 15).milliseconds) {
                                                redlock.withRedlock("contended") { lease -> hold(lease) }
                                            }
                                        }
                                    } catch (e: LockNotAcquiredException) {
                                        // Out of wait time: expected under this contention.
                                    } catch (e: Throwable) {
                                        // Also a CancellationException, which would end this
                                        // contender without failing the test.
                                        unexpected += "contender $c: $e"
                                        throw e
                                    }
                                    ended.incrementAndGet()
                                }
                            }
                        }
                    }
                }
                val allEnded = TimeSource.Monotonic.markNow()
                println("contention N=$n: ${ended.get()} calls ended, ${granted.get()} granted")
                withClue("sections overlapped") { overlaps.get() shouldBe 0 }
                withClue("contenders ended early: $unexpected") { ended.get() shouldBe 12 * 30 }
                // Every call has ended: within one node timeout, no key may remain.
                var left = fleet.leftovers(n)
                while (left.isNotEmpty() && allEnded.elapsedNow() < nodeTimeout) {
                    delay(10)
                    left = fleet.leftovers(n)
                }
                withClue("keys left ${allEnded.elapsedNow()} after the last call ended (held by nobody)") { left shouldBe emptyMap() }
                // Also a lease whose keys already expired: none may be left for close() to end.
                withClue("leases held in each Redlock after every call ended") { redlocks.map { it.engine.liveLeases } shouldBe listOf(0, 0, 0) }
            } finally {
                redlocks.forEach { it.close() }
            }
        }
    }
})

/** Runs [call] in a child coroutine cancelled after [after] unless it ended before. */
private suspend fun cancelAfter(after: kotlin.time.Duration, call: suspend () -> Unit) = coroutineScope {
    val job = launch { call() }
    launch {
        delay(after)
        job.cancel()
    }
    job.join()
    coroutineContext.cancelChildren()
}

/** Per master among the first [n], the keys left on it with their remaining time (ms). */
private fun RedisFleet.leftovers(n: Int): Map<Int, List<String>> =
    (0 until n).associateWith { i -> keys(i).map { k -> "$k pttl=${command(i, "PTTL", k)}" } }.filterValues { it.isNotEmpty() }

package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.Script
import dev.redlock.coroutines.internal.RedlockLease
import dev.redlock.testing.RedisFleet
import dev.redlock.testing.TcpProxy
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.time.Duration as JavaDuration
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.runBlocking

/**
 * A release hands the lock to the next waiter of the same process in one script call per master
 * (the key moves from the old token to the new one where it still holds the old one), instead of
 * a release followed by the waiter's acquire. Every Redlock here waits on minutes-long fallbacks, so
 * a waiter can only get the lock by the hand-off or a release; the hand-off is told apart by what
 * the masters ran (a release deletes the key and publishes a notice, the hand-off does neither).
 * The script runs on the servers: the spec is in the compatibility tier, run on every server of the matrix.
 */
@Tags("compat")
class HandOffTest : FunSpec({
    val fleet = sharedFleet(3)

    fun RedisFleet.slowFallbacks(n: Int, uris: List<String> = uris().take(n)) = Redlock(
        RedlockConfig.builder()
            .masters(uris)
            .leaseTime(JavaDuration.ofMinutes(10))
            .waitTime(JavaDuration.ofMinutes(10))
            .retryDelay(JavaDuration.ofMinutes(1))
            .build(),
    )

    fun token(lease: Lease) = (lease as RedlockLease).token

    for (n in listOf(1, 3)) {
        test("a release hands the lock to the next waiter of this process in one call per master, with $n master(s)") {
            fleet.slowFallbacks(n).use { redlock ->
                val key = "redlock:handed"
                val holder = redlock.acquire("handed")
                coroutineScope {
                    val waiter = async { redlock.acquire("handed") }
                    eventually(what = "the waiter offers to take a hand-off") { redlock.engine.rooms.offering(key) }
                    val dels = (0 until n).map { fleet.commandCalls(it, "del") }
                    val publishes = (0 until n).map { fleet.commandCalls(it, "publish") }
                    holder.release()
                    val lease = awaitOrDump(waiter)
                    lease.isValid shouldBe true
                    redlock.engine.observer.handOffs.get() shouldBe 1L
                    redlock.engine.observer.handOffsFailed.get() shouldBe 0L
                    for (i in 0 until n) {
                        // Moved on every master: no release ran (no DEL, no notice), the key holds the new token.
                        fleet.commandCalls(i, "del") shouldBe dels[i]
                        fleet.commandCalls(i, "publish") shouldBe publishes[i]
                        fleet.command(i, "GET", key) shouldBe token(lease)
                    }
                    holder.isValid shouldBe false
                    lease.release()
                    // With nobody waiting, a release is the ordinary one.
                    for (i in 0 until n) fleet.commandCalls(i, "del") shouldBe dels[i] + 1
                }
            }
        }

        test("a hand-off keeps mutual exclusion when the old key expires just before it and another process takes the lock, with $n master(s)") {
            // The holder's key expires on a majority just as the hand-off reaches the masters, and
            // another process takes the lock there: the move fails there, and the waiter must not
            // be granted (it falls back to the ordinary path, and finds the lock held).
            val majority = n / 2 + 1
            val proxies = (0 until n).map { TcpProxy.start("127.0.0.1", fleet.port(it)) }
            try {
                fleet.slowFallbacks(n, proxies.map { it.uri() }).use { redlock ->
                    fleet.slowFallbacks(n).use { otherProcess ->
                        val key = "redlock:contested"
                        val holder = redlock.acquire("contested")
                        val taken = AtomicReference<Lease?>()
                        val done = CountDownLatch(1)
                        val first = AtomicBoolean()
                        for (proxy in proxies) {
                            // Each master's hand-off waits until the key expired and the other process took the lock.
                            proxy.onNextCommand({ it.isEvalSha(Script.HANDOFF.sha()) }) {
                                if (first.compareAndSet(false, true)) {
                                    try {
                                        for (i in 0 until majority) fleet.command(i, "DEL", key)
                                        taken.set(runBlocking { otherProcess.tryAcquire("contested") })
                                    } finally {
                                        done.countDown()
                                    }
                                } else {
                                    done.await(20, TimeUnit.SECONDS)
                                }
                            }
                        }
                        coroutineScope {
                            val waiter = async { runCatching { redlock.acquire("contested", waitTime = 1.seconds) } }
                            eventually(what = "the waiter offers to take a hand-off") { redlock.engine.rooms.offering(key) }
                            holder.release()
                            val outcome = awaitOrDump(waiter)
                            shouldThrow<LockNotAcquiredException> { outcome.getOrThrow() }
                        }
                        val other = taken.get() ?: throw AssertionError("the other process did not get the lock")
                        redlock.engine.observer.handOffs.get() shouldBe 1L
                        redlock.engine.observer.handOffsFailed.get() shouldBe 1L
                        other.isValid shouldBe true
                        for (i in 0 until majority) fleet.command(i, "GET", key) shouldBe token(other)
                        // Where the move succeeded (a minority), the waiter removed its key again.
                        for (i in majority until n) fleet.command(i, "EXISTS", key) shouldBe 0L
                        other.release()
                    }
                }
            } finally {
                proxies.forEach { it.close() }
            }
        }
    }
})

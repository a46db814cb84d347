package dev.redlock.coroutines

import dev.redlock.core.MasterStatus
import dev.redlock.core.RedlockMetrics
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import java.time.Duration
import java.util.concurrent.atomic.AtomicReference
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout

class ReleaseTest : FunSpec({
    val fleet = sharedFleet(3)

    test("an exception from the block propagates unchanged and the lock is released") {
        fleet.redlock().use { redlock ->
            val e = shouldThrow<IllegalStateException> {
                redlock.withRedlock("boom") { throw IllegalStateException("payment declined") }
            }
            e.message shouldBe "payment declined"
            fleet.keyCount() shouldBe 0
            redlock.tryAcquire("boom")!!.release()
        }
    }

    test("cancelling the caller releases the lock") {
        fleet.redlock().use { redlock ->
            val inside = CompletableDeferred<Unit>()
            coroutineScope {
                val job = launch { redlock.withRedlock("cancelled") { inside.complete(Unit); awaitCancellation() } }
                inside.await()
                (fleet.keyCount() >= 2) shouldBe true // a quorum; the third may still be answering
                job.cancelAndJoin()
            }
            fleet.keyCount() shouldBe 0
        }
    }

    test("release is bounded in time when every master hangs, and the hung masters still drop the keys") {
        fleet.redlock { nodeTimeout(Duration.ofMillis(100)) }.use { redlock ->
            withTimeout(10.seconds) { // a hang guard, not a speed assertion
                shouldThrow<IllegalArgumentException> {
                    redlock.withRedlock("hung") {
                        (0 until 3).forEach(fleet::pause)
                        throw IllegalArgumentException("failed while masters hang")
                    }
                }
            }
            (0 until 3).forEach(fleet::resume)
            // The release commands were queued behind the pause and run when the masters resume.
            eventually(what = "keys released by the queued release") { fleet.keyCount() == 0 }
        }
    }

    test("a failed attempt removes what it set, also on a master that timed out") {
        // Another holder has the key on masters 0 and 1; master 2 is free but paused.
        listOf(0, 1).forEach { fleet.command(it, "SET", "redlock:split", "someone-else", "PX", "60000") }
        fleet.redlock { nodeTimeout(Duration.ofMillis(100)).restartGuard(Duration.ofMinutes(1)) }.use { redlock ->
            // Connections open before the pause: paused first, master 2 would never open its
            // connection, the attempt would not be sent there, and there would be nothing to clean up.
            redlock.checkMasters()
            fleet.pause(2)
            try {
                redlock.tryAcquire("split", leaseTime = 60.seconds) shouldBe null
            } finally {
                fleet.resume(2)
            }
            // Master 2 runs the attempt's acquire (setting the key for 60 s) and then its cleanup,
            // then a probe sent after them on the same connection: once one answered, no key of
            // ours may be left there.
            withTimeout(10.seconds) { // a hang guard: probes time out while the master catches up
                while (redlock.checkMasters()[2].state() == MasterStatus.State.DOWN) delay(10.milliseconds)
            }
            fleet.keys(2) shouldBe emptyList()
            listOf(0, 1).forEach { fleet.command(it, "GET", "redlock:split") shouldBe "someone-else" }
        }
        listOf(0, 1).forEach { fleet.command(it, "DEL", "redlock:split") }
    }

    test("a cancelled waiter leaves no keys behind") {
        listOf(0, 1).forEach { fleet.command(it, "SET", "redlock:queue", "someone-else", "PX", "60000") }
        fleet.redlock { waitTime(Duration.ofSeconds(60)).restartGuard(Duration.ofMinutes(1)) }.use { redlock ->
            coroutineScope {
                val waiter = async { redlock.acquire("queue", leaseTime = 60.seconds) }
                delay(150.milliseconds) // several attempts, each granted on master 2 and cleaned up
                waiter.cancelAndJoin()
            }
            fleet.keys(2) shouldBe emptyList()
        }
        listOf(0, 1).forEach { fleet.command(it, "DEL", "redlock:queue") }
    }

    for (cancelled in listOf(true, false)) {
        val how = if (cancelled) "is cancelled" else "runs out of wait time"
        test("a caller that $how while its attempt is still on paused masters leaves no key once they run it") {
            fleet.redlock { nodeTimeout(Duration.ofMillis(200)).restartGuard(Duration.ofMinutes(1)) }.use { redlock ->
                redlock.tryAcquire("in-flight")!!.release() // connections open, scripts loaded
                (0 until 3).forEach(fleet::pause)
                try {
                    coroutineScope {
                        // Undispatched: the attempt is sent to every master before launch returns.
                        val caller = launch(start = CoroutineStart.UNDISPATCHED) {
                            if (cancelled) {
                                redlock.acquire("in-flight", leaseTime = 60.seconds, waitTime = 60.seconds)
                            } else {
                                shouldThrow<dev.redlock.core.LockNotAcquiredException> {
                                    redlock.acquire("in-flight", leaseTime = 60.seconds, waitTime = 1.milliseconds)
                                }
                            }
                        }
                        if (cancelled) caller.cancelAndJoin() else caller.join()
                    }
                } finally {
                    (0 until 3).forEach(fleet::resume)
                }
                // Each master now runs the attempt's acquire (setting the key for 60 s), then the
                // release the caller sent when it gave up, then this attempt: granted everywhere
                // only if that release followed the acquire on every master.
                val next = redlock.tryAcquire("in-flight")
                next shouldNotBe null
                next!!.release()
                (0 until 3).forEach { fleet.keys(it) shouldBe emptyList() }
            }
        }
    }

    for (once in listOf(false, true)) {
        val call = if (once) "tryAcquire" else "acquire"
        test("$call cancelled as its lease is granted, from a caller without a dispatcher: the lease is released before the call ends") {
            // Such a caller acquires on the work pool (it would otherwise be resumed on an I/O
            // thread); a cancellation that arrives while that hop ends drops its result. Here it
            // arrives at the one moment it can: from the metrics callback of the granted
            // acquisition, which runs on the work pool before the lease is handed back.
            val caller = AtomicReference<Job?>()
            val cancelOnGrant = object : RedlockMetrics {
                override fun acquisition(type: String, outcome: RedlockMetrics.Outcome, latency: Duration, waited: Duration) {
                    if (outcome == RedlockMetrics.Outcome.ACQUIRED) caller.get()?.cancel()
                }
            }
            fleet.redlock { metrics(cancelOnGrant) }.use { redlock ->
                coroutineScope {
                    val job = launch(Dispatchers.Unconfined, start = CoroutineStart.LAZY) {
                        if (once) redlock.tryAcquire("cancelled-grant") else redlock.acquire("cancelled-grant")
                    }
                    caller.set(job)
                    job.start()
                    job.join()
                    job.isCancelled shouldBe true
                }
                // No grace: the call ended, and with it the release of the lease nobody received
                // (awaited until every master answered). Left alone, the lock would be held by
                // nobody until close() or its lease time.
                (0 until 3).forEach { fleet.keys(it) shouldBe emptyList() }
                redlock.tryAcquire("cancelled-grant")!!.release()
            }
        }
    }

    test("multi-resource locks are all or nothing") {
        fleet.redlock { waitTime(Duration.ZERO) }.use { redlock ->
            val b = redlock.acquire("b")
            redlock.tryAcquire("a", "b") shouldBe null
            (0 until 3).forEach { fleet.keys(it) shouldBe listOf("redlock:b") }
            b.release()
            redlock.withRedlock("a", "b") { lease ->
                lease.resources shouldBe listOf("a", "b")
                redlock.tryAcquire("a") shouldBe null
                redlock.tryAcquire("b") shouldBe null
                redlock.tryAcquire("c")!!.release()
            }
        }
    }
})

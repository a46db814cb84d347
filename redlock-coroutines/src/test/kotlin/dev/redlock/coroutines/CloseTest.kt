package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.RedlockClosedException
import dev.redlock.core.internal.RedisNode
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.netty.util.concurrent.FastThreadLocalThread
import java.time.Duration as JavaDuration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.coroutines.Continuation
import kotlin.coroutines.EmptyCoroutineContext
import kotlin.coroutines.startCoroutine
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.supervisorScope
import kotlinx.coroutines.withContext

/**
 * `close()` ends everything a Redlock owns: running sections are cancelled and told why, leases
 * are released before it returns, waiters and later calls fail at once; and it is safe from any
 * thread, a Redis client's I/O thread included.
 */
class CloseTest : FunSpec({
    val fleet = sharedFleet(3)

    test("close() cancels a running section, which ends with LockLostException CLOSED, and releases its keys before returning") {
        val redlock = fleet.redlock(3)
        val inside = CompletableDeferred<Unit>()
        val cancelled = AtomicBoolean()
        supervisorScope {
            val holder = async {
                redlock.withRedlock("closing") {
                    inside.complete(Unit)
                    try {
                        awaitCancellation()
                    } catch (e: CancellationException) {
                        cancelled.set(true)
                        throw e
                    }
                }
            }
            awaitStart(inside, holder)
            eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it).isNotEmpty() } }
            withContext(Dispatchers.IO) { redlock.close() }
            // Released on every master by the time close() returned.
            (0 until 3).forEach { fleet.keys(it).shouldBeEmpty() }
            val e = shouldThrow<LockLostException> { awaitOrDump(holder) }
            e.reason() shouldBe LockLostException.Reason.CLOSED
            e.message shouldContain "closed"
            cancelled.get() shouldBe true
        }
    }

    test("a section whose caller is cancelled after close() but before the section could resume still ends with LockLostException CLOSED") {
        // What the Java facade does: close() declares the loss, then cancels the calls it still runs. The
        // section's thread is held up meanwhile, so it resumes with both the loss and its caller's cancellation.
        val redlock = fleet.redlock(3)
        val pool = java.util.concurrent.Executors.newSingleThreadExecutor()
        try {
            val dispatcher = pool.asCoroutineDispatcher()
            val inside = CompletableDeferred<Unit>()
            val holder = CoroutineScope(SupervisorJob() + dispatcher).async {
                redlock.withRedlock("closing-then-cancelled") {
                    inside.complete(Unit)
                    awaitCancellation()
                }
            }
            awaitStart(inside, holder)
            val gate = java.util.concurrent.CountDownLatch(1)
            pool.execute { gate.await(30, TimeUnit.SECONDS) }
            try {
                withContext(Dispatchers.IO) { redlock.close() }
                holder.cancel()
            } finally {
                gate.countDown()
            }
            val e = shouldThrow<LockLostException> { awaitOrDump(holder) }
            e.reason() shouldBe LockLostException.Reason.CLOSED
        } finally {
            pool.shutdownNow()
        }
    }

    test("close() releases a lease from acquire and declares it lost with reason CLOSED") {
        val redlock = fleet.redlock(3)
        val lease = redlock.acquire("held-by-hand")
        eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it).isNotEmpty() } }
        withContext(Dispatchers.IO) { redlock.close() }
        (0 until 3).forEach { fleet.keys(it).shouldBeEmpty() }
        lease.isValid shouldBe false
        lease.awaitLost().reason() shouldBe LockLostException.Reason.CLOSED
        lease.release() // a no-op now
    }

    test("a waiter fails at once with RedlockClosedException when its Redlock is closed, and leaves nothing behind") {
        fleet.redlock(3).use { other ->
            val holder = other.acquire("contended")
            val redlock = fleet.redlock(3) { waitTime(JavaDuration.ofMinutes(5)).retryDelay(JavaDuration.ofMinutes(1)) }
            supervisorScope {
                val waiter = async { redlock.acquire("contended") }
                eventually(what = "the waiter waits") { redlock.engine.rooms.size == 1 }
                withContext(Dispatchers.IO) { redlock.close() }
                // Without the fix it would retry until its five-minute wait ran out: the hang guard fails first.
                val e = shouldThrow<RedlockClosedException> { awaitOrDump(waiter, limit = 10.seconds) }
                e.message shouldContain "closed"
            }
            holder.release()
        }
    }

    test("every call on a closed Redlock fails at once with RedlockClosedException") {
        val redlock = fleet.redlock(3)
        redlock.close()
        redlock.close() // idempotent
        shouldThrow<RedlockClosedException> { redlock.withRedlock("x") { } }
        shouldThrow<RedlockClosedException> { redlock.acquire("x") }
        shouldThrow<RedlockClosedException> { redlock.tryAcquire("x") }
        shouldThrow<RedlockClosedException> { redlock.withReadLock("x") { } }
        shouldThrow<RedlockClosedException> { redlock.acquireWriteLock("x") }
        shouldThrow<RedlockClosedException> { redlock.tryAcquirePermit("x", permits = 2) }
    }

    test("close() called from inside a critical section ends that section too") {
        val redlock = fleet.redlock(3)
        val e = shouldThrow<LockLostException> {
            redlock.withRedlock("self-closing") {
                withContext(Dispatchers.IO) { redlock.close() }
                awaitCancellation()
            }
        }
        e.reason() shouldBe LockLostException.Reason.CLOSED
        (0 until 3).forEach { fleet.keys(it).shouldBeEmpty() }
    }

    test("close() on one of the Redis client's I/O threads neither deadlocks nor leaves the section running") {
        val redlock = fleet.redlock(3)
        val inside = CompletableDeferred<Unit>()
        supervisorScope {
            val holder = async { redlock.withRedlock("io-close") { inside.complete(Unit); awaitCancellation() } }
            awaitStart(inside, holder)
            // A command's completion runs on the library's own Netty event loop: close() from there.
            // (Paused meanwhile, so that the completion cannot come before it is attached.)
            val closedOn = CompletableFuture<Thread>()
            fleet.pause(0)
            (redlock.engine.masters.nodes[0] as RedisNode).warmUp(JavaDuration.ofSeconds(5))
                .whenComplete { _, _ ->
                    redlock.close()
                    closedOn.complete(Thread.currentThread())
                }
            fleet.resume(0)
            val thread = closedOn.get(10, TimeUnit.SECONDS) // a hang guard
            withClue(thread.javaClass.name + " " + thread.name) { (thread is FastThreadLocalThread) shouldBe true }
            shouldThrow<LockLostException> { awaitOrDump(holder) }.reason() shouldBe LockLostException.Reason.CLOSED
        }
        eventually(what = "the release sent by close() reached every master") { (0 until 3).all { fleet.keys(it).isEmpty() } }
    }

    test("a coroutine without a dispatcher (suspend fun main) never runs on an I/O thread, and closing from there returns") {
        // The README's Kotlin quick start as `suspend fun main` runs it: no dispatcher at all.
        val done = CompletableFuture<List<Thread>>()
        val seen = ArrayList<Thread>()
        suspend {
            fleet.redlock(3).use { redlock ->
                redlock.withRedlock("main") { seen += Thread.currentThread() }
                seen += Thread.currentThread()
            } // close() runs here, on whatever thread the caller was resumed on
            seen += Thread.currentThread()
            seen.toList()
        }.startCoroutine(Continuation(EmptyCoroutineContext) { result -> done.complete(result.getOrThrow()) })
        val threads = done.get(20, TimeUnit.SECONDS) // a hang guard: this deadlocked when main resumed on the event loop
        threads.none { it is FastThreadLocalThread } shouldBe true
    }
})

package dev.redlock.backends

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockClosedException
import dev.redlock.coroutines.DistributedLocks
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeInstanceOf
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout

/**
 * The behaviour every backend of [DistributedLocks] shares, written once against the interface:
 * mutual exclusion, reader-writer locks, semaphores, loss, cancellation, release on every exit
 * path, bad input. Each backend runs it as a subclass (see Backends.kt) with its [LockBackend];
 * two [DistributedLocks] over one store play two processes. After each test the store holds nothing.
 */
abstract class BehaviourSuite(newBackend: () -> LockBackend) : FunSpec({
    val backend = newBackend()
    lateinit var a: DistributedLocks
    lateinit var b: DistributedLocks

    beforeEach {
        a = backend.locks()
        b = backend.locks()
        // Connections, sessions and scripts are made on first use, which on a cold machine can take
        // longer than the short leases below: both "processes" are warmed up before a test times anything.
        a.tryAcquire("warm-up").shouldNotBeNull().release()
        b.tryAcquire("warm-up").shouldNotBeNull().release()
    }
    afterEach {
        a.close()
        b.close()
        backend.held().shouldBeEmpty()
    }
    afterSpec { backend.close() }

    /** Runs [sections] critical sections from both processes at once; how many ran at the same time at most. */
    suspend fun mostAtOnce(sections: Int, enter: suspend (DistributedLocks, suspend () -> Unit) -> Unit): Int {
        val inside = AtomicInteger()
        val most = AtomicInteger()
        coroutineScope {
            (1..sections).map { i ->
                async {
                    enter(if (i % 2 == 0) a else b) {
                        most.accumulateAndGet(inside.incrementAndGet(), ::maxOf)
                        delay(15.milliseconds)
                        inside.decrementAndGet()
                    }
                }
            }.awaitAll()
        }
        return most.get()
    }

    test("mutual exclusion: one holder at a time across processes, and every waiter gets its turn") {
        mostAtOnce(8) { locks, body -> locks.withLock("mutex") { body() } } shouldBe 1
    }

    test("tryAcquire finds a held lock held, and a lease on several resources holds all of them or none") {
        val held = a.acquire("x", "y")
        held.resources shouldBe listOf("x", "y")
        b.tryAcquire("x").shouldBeNull()
        b.tryAcquire("y", "z").shouldBeNull()
        b.tryAcquire("z").shouldNotBeNull().release()
        held.release()
        b.tryAcquire("x", "y").shouldNotBeNull().release()
    }

    test("fencing tokens grow with every holder of a resource, across processes") {
        val tokens = (1..4).map { i -> (if (i % 2 == 0) a else b).withLock("fenced", fencing = true) { it.fencingToken.shouldNotBeNull() } }
        tokens.zipWithNext().forEach { (earlier, later) -> later shouldBeGreaterThan earlier }
        a.withReadLock("fenced") { it.fencingToken.shouldBeNull() }
    }

    test("reader-writer: readers share, a writer excludes readers and writers, and waits for the readers") {
        val r1 = a.acquireReadLock("rw")
        val r2 = b.acquireReadLock("rw")
        b.tryAcquireWriteLock("rw").shouldBeNull()
        val writerIn = CompletableDeferred<Unit>()
        coroutineScope {
            val writer = async { b.withWriteLock("rw", writerPriority = false) { writerIn.complete(Unit); a.tryAcquireReadLock("rw").shouldBeNull() } }
            delay(100.milliseconds)
            writerIn.isCompleted shouldBe false
            r1.release()
            r2.release()
            writer.await()
        }
        mostAtOnce(6) { locks, body -> locks.withWriteLock("rw", writerPriority = false) { body() } } shouldBe 1
        // The reader-writer lock "rw" is not the mutex "rw".
        a.withReadLock("rw") { b.withLock("rw") { } }
    }

    test("semaphore: at most its permits at once across processes; a caller with another number is refused naming both") {
        // Never more than the permits (how many overlap at most depends on timing: at most 2 is the rule) ...
        mostAtOnce(8) { locks, body -> locks.withPermit("pool", 2) { body() } } shouldBeLessThanOrEqual 2
        // ... and both permits can be held at once, from two processes, while a third caller finds none.
        val p = a.acquirePermit("pool", 2)
        val q = b.tryAcquirePermit("pool", 2).shouldNotBeNull()
        a.tryAcquirePermit("pool", 2).shouldBeNull()
        b.tryAcquirePermit("pool", 2).shouldBeNull()
        shouldThrow<IllegalArgumentException> { b.tryAcquirePermit("pool", 3) }.message.let {
            it shouldContain "2"
            it shouldContain "3"
        }
        q.release()
        a.tryAcquirePermit("pool", 2).shouldNotBeNull().release()
        p.release()
    }

    test("loss: a hold that vanishes behind the holder's back cancels its critical section with LockLostException") {
        for (kind in listOf("lock", "read", "write", "permit")) {
            val resource = "lost-$kind"
            val started = CompletableDeferred<Unit>()
            val loss = shouldThrow<LockLostException> {
                val block: suspend () -> Unit = {
                    started.complete(Unit)
                    backend.loseHolds(resource)
                    withTimeout(10.seconds) { while (true) delay(5.milliseconds) }
                }
                when (kind) {
                    "lock" -> a.withLock(resource) { block() }
                    "read" -> a.withReadLock(resource) { block() }
                    "write" -> a.withWriteLock(resource) { block() }
                    else -> a.withPermit(resource, 2) { block() }
                }
            }
            started.isCompleted shouldBe true
            loss.reason() shouldBe LockLostException.Reason.NOT_HELD
        }
    }

    test("a lease from acquire that is never extended frees the lock after its lease time, and reports its loss") {
        val forgotten = a.acquire("forgotten", leaseTime = 1.seconds)
        b.tryAcquire("forgotten").shouldBeNull()
        val next = b.acquire("forgotten", waitTime = 5.seconds)
        forgotten.awaitLost().reason() shouldBe LockLostException.Reason.EXPIRED
        forgotten.isValid shouldBe false
        forgotten.state.value shouldBe LeaseState.LOST
        next.release()
    }

    test("cancellation: a cancelled waiter leaves nothing behind, a cancelled section releases at once") {
        val held = a.acquire("cancel")
        coroutineScope {
            val waiter = async { b.withLock("cancel") { error("must not run") } }
            delay(100.milliseconds)
            waiter.cancel()
            shouldThrow<CancellationException> { waiter.await() }
        }
        held.release()
        b.tryAcquire("cancel").shouldNotBeNull().release()

        val inside = CompletableDeferred<Unit>()
        coroutineScope {
            val section = async { a.withLock("cancel") { inside.complete(Unit); delay(30.seconds) } }
            inside.await()
            section.cancel()
        }
        // Released when the cancellation propagated: no lease time to wait out.
        b.tryAcquire("cancel").shouldNotBeNull().release()
    }

    test("release on every exit path: return, exception, timeout waiting, and extend/release by hand") {
        a.withLock("exit") { 42 } shouldBe 42
        b.tryAcquire("exit").shouldNotBeNull().release()

        val boom = IllegalStateException("boom")
        shouldThrow<IllegalStateException> { a.withWriteLock("exit") { throw boom } } shouldBe boom
        b.tryAcquireWriteLock("exit").shouldNotBeNull().release()

        val held = a.acquire("exit")
        val start = TimeSource.Monotonic.markNow()
        shouldThrow<LockNotAcquiredException> { b.withLock("exit", waitTime = 150.milliseconds) { error("must not run") } }.isContended shouldBe true
        (start.elapsedNow() < 5.seconds) shouldBe true
        held.extend()
        held.isValid shouldBe true
        held.release()
        held.release() // a second release does nothing
        held.state.value shouldBe LeaseState.RELEASED
        b.tryAcquire("exit").shouldNotBeNull().release()
    }

    test("bad input is refused with IllegalArgumentException naming what is wrong; a closed instance refuses everything") {
        shouldThrow<IllegalArgumentException> { a.acquire() }
        shouldThrow<IllegalArgumentException> { a.acquire("") }
        shouldThrow<IllegalArgumentException> { a.acquire("d", "d") }.message shouldContain "d"
        shouldThrow<IllegalArgumentException> { a.acquirePermit("p", 0) }.message shouldContain "permits"
        shouldThrow<IllegalArgumentException> { a.acquire("x", leaseTime = (-1).seconds) }.message shouldContain "leaseTime"
        shouldThrow<IllegalArgumentException> { a.tryAcquireReadLock("x\u0000y") }.message shouldContain "NUL"
        a.close()
        shouldThrow<RedlockClosedException> { a.tryAcquire("x") }
        shouldThrow<RedlockClosedException> { a.withLock("x") { } }.shouldBeInstanceOf<RedlockClosedException>()
    }
})

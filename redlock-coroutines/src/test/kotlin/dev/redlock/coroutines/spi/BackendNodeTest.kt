@file:OptIn(InternalRedlockApi::class)

package dev.redlock.coroutines.spi

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.MasterStatus
import dev.redlock.core.RedlockClosedException
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeInstanceOf
import java.time.Duration
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield

/**
 * The engine over a node that is not Redis: the backend SPI's decoding of every kind's script
 * calls, its expiry timer, and loss found by an extend. Two "processes" (two DistributedLocks,
 * each with its own node) share one [MemoryStore].
 */
class BackendNodeTest : FunSpec({
    val store = MemoryStore()
    val settings = BackendSettings(leaseTime = Duration.ofSeconds(2), waitTime = Duration.ofSeconds(5), retryDelay = Duration.ofMillis(20))
    lateinit var a: DistributedLocks
    lateinit var b: DistributedLocks

    beforeEach {
        a = distributedLocks(MemoryNode(store, "memory-a"), settings)
        b = distributedLocks(MemoryNode(store, "memory-b"), settings)
    }
    afterEach {
        a.close()
        b.close()
        store.empty() shouldBe true
    }

    test("a mutex excludes the other process until released, and the waiter gets it on the release notice") {
        val inside = AtomicInteger()
        val most = AtomicInteger()
        coroutineScope {
            (1..6).map { i ->
                async {
                    (if (i % 2 == 0) a else b).withLock("m", waitTime = 5.seconds) {
                        most.accumulateAndGet(inside.incrementAndGet(), ::maxOf)
                        delay(10.milliseconds)
                        inside.decrementAndGet()
                    }
                }
            }.awaitAll()
        }
        most.get() shouldBe 1
        a.tryAcquire("m").shouldNotBeNull().release()
    }

    test("a multi-resource lock is all or nothing") {
        val held = a.acquire("x", "y")
        b.tryAcquire("y", "z").shouldBeNull()
        b.tryAcquire("z").shouldNotBeNull().release()
        held.resources shouldBe listOf("x", "y")
        held.release()
        b.tryAcquire("y", "z").shouldNotBeNull().release()
    }

    test("readers share, a writer excludes readers and writers") {
        val r1 = a.acquireReadLock("rw")
        val r2 = b.acquireReadLock("rw")
        b.tryAcquireWriteLock("rw").shouldBeNull()
        r1.release()
        r2.release()
        val w = a.acquireWriteLock("rw")
        b.tryAcquireReadLock("rw").shouldBeNull()
        b.tryAcquireWriteLock("rw").shouldBeNull()
        // The reader-writer lock "rw" is not the mutex "rw".
        b.tryAcquire("rw").shouldNotBeNull().release()
        w.release()
        b.tryAcquireReadLock("rw").shouldNotBeNull().release()
    }

    test("a semaphore admits its permits, refuses one more, and names a disagreement on permits") {
        val p1 = a.acquirePermit("s", 2)
        val p2 = b.acquirePermit("s", 2)
        a.tryAcquirePermit("s", 2).shouldBeNull()
        shouldThrow<IllegalArgumentException> { b.tryAcquirePermit("s", 3) }.message shouldContain "use 2"
        p1.release()
        val p3 = b.acquirePermit("s", 2, waitTime = 1.seconds)
        p2.release()
        p3.release()
    }

    test("fencing tokens grow with every holder, across processes") {
        val first = a.acquire("f", fencing = true)
        val t1 = first.fencingToken.shouldNotBeNull()
        first.release()
        val second = b.acquireWriteLock("f", fencing = true)
        val w1 = second.fencingToken.shouldNotBeNull()
        second.release()
        val third = b.acquire("f", fencing = true)
        third.fencingToken.shouldNotBeNull() shouldBe t1 + 1
        third.release()
        w1 shouldBe 1L
    }

    test("a hold that is not extended is given up by the node after its lease time") {
        val forgotten = a.acquire("e", leaseTime = 300.milliseconds)
        b.tryAcquire("e").shouldBeNull()
        // Waits at most the lease time (plus scheduling), woken by the expiry's release notice.
        val next = b.acquire("e", waitTime = 3.seconds)
        forgotten.isValid shouldBe false
        forgotten.state.value shouldBe LeaseState.LOST
        next.release()
    }

    test("a hold the node no longer has (deleted behind its back) cancels the critical section") {
        val started = CompletableDeferred<Unit>()
        val loss = shouldThrow<LockLostException> {
            a.withLock("gone", leaseTime = 600.milliseconds) {
                started.complete(Unit)
                store.drop("redlock:gone")
                withTimeout(5.seconds) { while (true) { delay(5.milliseconds); yield() } }
            }
        }
        started.isCompleted shouldBe true
        loss.reason() shouldBe LockLostException.Reason.NOT_HELD
    }

    test("a store that fails makes acquisition fail naming the node; health reports it") {
        val failing = MemoryNode(store, "memory-off").apply { failing = true }
        val locks = distributedLocks(failing, settings)
        try {
            val e = shouldThrow<LockNotAcquiredException> { locks.acquire("z", waitTime = 100.milliseconds) }
            e.message shouldContain "memory-off"
            e.message shouldContain "switched off"
            val status = locks.checkMasters()
            status shouldHaveSize 1
            status[0].state() shouldBe MasterStatus.State.DOWN
            status[0].failure().get().shouldBeInstanceOf<MasterFailureException>().kind() shouldBe MasterFailureException.Kind.UNREACHABLE
            failing.failing = false
            locks.checkMasters()[0].state() shouldBe MasterStatus.State.UP
        } finally {
            locks.close()
        }
    }

    test("close cancels running sections with CLOSED, releases their holds, and fails later calls") {
        val started = CompletableDeferred<Unit>()
        coroutineScope {
            val section = async {
                runCatching { a.withLock("c") { started.complete(Unit); delay(30.seconds) } }.exceptionOrNull()
            }
            started.await()
            a.close()
            section.await().shouldBeInstanceOf<LockLostException>().reason() shouldBe LockLostException.Reason.CLOSED
        }
        eventually(what = "the closed holder's lock is free") { store.empty() }
        shouldThrow<RedlockClosedException> { a.tryAcquire("c") }
        b.tryAcquire("c").shouldNotBeNull().release()
    }
})

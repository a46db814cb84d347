package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.supervisorScope

@Tags("compat")
class ReadWriteLockTest : FunSpec({
    val fleet = sharedFleet(5)

    /** Whether master [i] has [key] (keys of the reader-writer lock contain a NUL separator). */
    fun has(i: Int, key: String): Boolean = (fleet.command(i, "EXISTS", key) as Long) == 1L

    for (n in listOf(1, 3, 5)) {
        test("readers share, a writer excludes readers and writers, with $n master(s)") {
            val clients = List(2) { fleet.redlock(n) }
            try {
                val readers = AtomicInteger()
                val writers = AtomicInteger()
                val overlaps = AtomicInteger()
                val reads = AtomicInteger()
                val writes = AtomicInteger()
                coroutineScope {
                    for (client in clients) {
                        repeat(3) {
                            launch(Dispatchers.Default) {
                                repeat(8) {
                                    client.withReadLock("doc") {
                                        readers.incrementAndGet()
                                        if (writers.get() != 0) overlaps.incrementAndGet()
                                        delay(2.milliseconds)
                                        if (writers.get() != 0) overlaps.incrementAndGet()
                                        readers.decrementAndGet()
                                        reads.incrementAndGet()
                                    }
                                }
                            }
                        }
                        launch(Dispatchers.Default) {
                            repeat(5) {
                                client.withWriteLock("doc") {
                                    if (writers.incrementAndGet() != 1 || readers.get() != 0) overlaps.incrementAndGet()
                                    delay(2.milliseconds)
                                    if (readers.get() != 0) overlaps.incrementAndGet()
                                    writers.decrementAndGet()
                                    writes.incrementAndGet()
                                }
                            }
                        }
                    }
                }
                overlaps.get() shouldBe 0
                reads.get() shouldBe 2 * 3 * 8
                writes.get() shouldBe 2 * 5
            } finally {
                clients.forEach { it.close() }
            }
        }
    }

    test("readers of several processes hold the lock at the same time, and a writer then cannot enter") {
        val a = fleet.redlock(3)
        val b = fleet.redlock(3)
        try {
            a.withReadLock("shared") {
                b.withReadLock("shared") {
                    shouldThrow<LockNotAcquiredException> { b.withWriteLock("shared", waitTime = Duration.ZERO) { } }
                        .isContended() shouldBe true
                    "both in"
                } shouldBe "both in"
            }
            // Free again: the writer gets in at once.
            b.withWriteLock("shared", waitTime = Duration.ZERO) { "written" } shouldBe "written"
        } finally {
            a.close()
            b.close()
        }
    }

    test("the reader-writer lock and a mutex on the same resource are distinct locks with distinct keys") {
        fleet.redlock(3).use { redlock ->
            redlock.withRedlock("same") {
                redlock.withWriteLock("same", waitTime = Duration.ZERO) {
                    redlock.withPermit("same", permits = 1, waitTime = Duration.ZERO) {
                        fleet.keys(0).toSet() shouldBe setOf("redlock:same", "redlock:same\u0000write", "redlock:same\u0000permits", "redlock:same\u0000permit-count")
                    }
                }
            }
        }
    }

    test("a waiting writer keeps new readers out until it got in, so a steady stream of readers cannot starve it") {
        val readersClient = fleet.redlock(3)
        val writerClient = fleet.redlock(3)
        try {
            coroutineScope {
                val stop = AtomicBoolean(false)
                val readerSections = AtomicInteger()
                // Overlapping readers: at any moment some reader holds the lock.
                val stream = List(3) { i ->
                    launch(Dispatchers.Default) {
                        delay((i * 10).milliseconds)
                        while (!stop.get()) {
                            readersClient.withReadLock("feed") {
                                readerSections.incrementAndGet()
                                delay(30.milliseconds)
                            }
                        }
                    }
                }
                eventually(what = "readers stream") { readerSections.get() >= 6 }
                val written = writerClient.withWriteLock("feed", waitTime = 10.seconds) { readerSections.get() }
                stop.set(true)
                stream.forEach { it.join() }
                written shouldBeGreaterThanOrEqual 6
            }
        } finally {
            readersClient.close()
            writerClient.close()
        }
    }

    for (priority in listOf(true, false)) {
        test("a writer waiting for a reader ${if (priority) "keeps a new reader out" else "lets a new reader in when writerPriority is off"}") {
            val a = fleet.redlock(3)
            val b = fleet.redlock(3)
            try {
                supervisorScope {
                    val readerIn = CompletableDeferred<Unit>()
                    val releaseReader = CompletableDeferred<Unit>()
                    val reader = async { a.withReadLock("pref") { readerIn.complete(Unit); releaseReader.await() } }
                    awaitStart(readerIn, reader)
                    val writer = async { b.withWriteLock("pref", writerPriority = priority) { "wrote" } }
                    if (priority) {
                        eventually(what = "the waiting writer's mark on a majority") { (0 until 3).count { has(it, "redlock:pref\u0000write-waiting") } >= 2 }
                        shouldThrow<LockNotAcquiredException> { a.withReadLock("pref", waitTime = Duration.ZERO) { } }
                    } else {
                        delay(50.milliseconds) // the writer has tried and waits
                        a.withReadLock("pref", waitTime = Duration.ZERO) { "read" } shouldBe "read"
                        (0 until 3).none { has(it, "redlock:pref\u0000write-waiting") } shouldBe true
                    }
                    releaseReader.complete(Unit)
                    reader.await()
                    awaitOrDump(writer) shouldBe "wrote"
                }
            } finally {
                a.close()
                b.close()
            }
        }
    }

    test("a writer that gives up waiting removes its mark at once, letting readers in") {
        val a = fleet.redlock(3)
        val b = fleet.redlock(3)
        try {
            a.withReadLock("impatient", leaseTime = 5.seconds) {
                shouldThrow<LockNotAcquiredException> { b.withWriteLock("impatient", waitTime = 200.milliseconds) { } }
                (0 until 3).none { has(it, "redlock:impatient\u0000write-waiting") } shouldBe true
                b.withReadLock("impatient", waitTime = Duration.ZERO) { "read" } shouldBe "read"
            }
        } finally {
            a.close()
            b.close()
        }
    }

    for ((side, key) in listOf("reader" to "redlock:lost\u0000readers", "writer" to "redlock:lost\u0000write")) {
        test("a $side whose entry is gone from a majority has its block cancelled with LockLostException") {
            fleet.redlock().use { redlock ->
                val inside = CompletableDeferred<Unit>()
                val cancelled = AtomicBoolean(false)
                supervisorScope {
                    val holder = async {
                        val block: suspend kotlinx.coroutines.CoroutineScope.(Lease) -> Unit = {
                            inside.complete(Unit)
                            try {
                                awaitCancellation()
                            } catch (e: CancellationException) {
                                cancelled.set(true)
                                throw e
                            }
                        }
                        if (side == "reader") redlock.withReadLock("lost", leaseTime = 600.milliseconds, block = block)
                        else redlock.withWriteLock("lost", leaseTime = 600.milliseconds, block = block)
                    }
                    awaitStart(inside, holder)
                    eventually(what = "every master holds the $side") { (0 until 5).all { has(it, key) } }
                    listOf(0, 1, 2).forEach { fleet.command(it, "DEL", key) }
                    val e = shouldThrow<LockLostException> { awaitOrDump(holder) }
                    e.reason() shouldBe LockLostException.Reason.NOT_HELD
                    e.resources() shouldBe listOf("lost")
                }
                cancelled.get() shouldBe true
            }
        }
    }

    test("readers and writers renew their leases while the block runs") {
        fleet.redlock(3).use { redlock ->
            redlock.withReadLock("long", leaseTime = 300.milliseconds) { lease ->
                repeat(8) {
                    delay(100.milliseconds)
                    lease.isValid shouldBe true
                }
            }
            redlock.withWriteLock("long", leaseTime = 300.milliseconds) { lease ->
                repeat(8) {
                    delay(100.milliseconds)
                    lease.isValid shouldBe true
                }
            }
        }
    }

    test("a reader-writer lock takes one resource, and a wrong count is a clear error") {
        fleet.redlock(1).use { redlock ->
            @OptIn(InternalRedlockApi::class)
            shouldThrow<IllegalArgumentException> {
                redlock.runWithLease(LockType.READ, arrayOf("a", "b"), null, null, renew = true, fencing = null, "withReadLock") { }
            }.message shouldBe "a read lock holds one resource, but 2 were given: [a, b]"
        }
    }

    test("a write lock carries a fencing token that grows with every writer, across masters; a reader has none") {
        fleet.redlock(3).use { redlock ->
            val tokens = (1..5).map { redlock.withWriteLock("fenced-rw", fencing = true) { it.fencingToken!! } }
            tokens.zipWithNext().all { (a, b) -> b > a } shouldBe true
            // Every master that confirmed keeps its counter at least the last token.
            redlock.acquireWriteLock("fenced-rw", fencing = true).let { lease ->
                (lease.fencingToken!! > tokens.last()) shouldBe true
                lease.release()
            }
            redlock.withWriteLock("fenced-rw") { it.fencingToken } shouldBe null
        }
        // With fencing on in the config, writers carry tokens and readers (no single holder) do not.
        fleet.redlock(3) { fencing(true) }.use { redlock ->
            (redlock.withWriteLock("fenced-rw") { it.fencingToken!! } > 0) shouldBe true
            redlock.withReadLock("fenced-rw") { it.fencingToken } shouldBe null
        }
        for (i in 0 until 3) fleet.command(i, "DEL", "redlock:fenced-rw\u0000write\u0000fence")
    }
})

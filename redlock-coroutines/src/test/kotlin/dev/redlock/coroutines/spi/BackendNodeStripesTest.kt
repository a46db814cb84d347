@file:OptIn(InternalRedlockApi::class)

package dev.redlock.coroutines.spi

import dev.redlock.core.MasterFailureException
import dev.redlock.core.internal.Script
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.eventually
import dev.redlock.coroutines.internal.LockKind
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeInstanceOf
import java.time.Duration
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runInterruptible
import kotlinx.coroutines.withTimeout

/**
 * A [BackendNode] with several stripes: one lock's operations (every token's) on one stripe, in
 * issue order, never two of one token at once; different locks' operations at the same time; an
 * extend batch split by stripe and answered in its order; close after the operations in flight.
 */
class BackendNodeStripesTest : FunSpec({
    val settings = BackendSettings(
        leaseTime = Duration.ofMillis(600), waitTime = Duration.ofSeconds(10), retryDelay = Duration.ofMillis(20),
        nodeTimeout = Duration.ofMillis(200),
    )

    test("one token's operations run in the order they were issued, interleaved with other tokens' on several stripes") {
        val store = MemoryStore()
        val node = RecordingNode(store, "ordered", stripes = 4)
        node.jitter = true
        try {
            val tokens = (1..16).map { "ordered-$it" }
            val extends = ArrayList<java.util.concurrent.CompletableFuture<BooleanArray>>()
            val releases = ArrayList<java.util.concurrent.CompletableFuture<Long>>()
            val acquires = ArrayList<java.util.concurrent.CompletableFuture<dev.redlock.core.internal.AcquireReply>>()
            // Round-robin over the tokens, so that each token's next call is issued while the others' run.
            for (step in 0 until 4) {
                for ((i, token) in tokens.withIndex()) {
                    when (step) {
                        0 -> acquires += node.acquireMutex("o$i", token, leaseMillis = 10_000)
                        3 -> releases += node.releaseMutex("o$i", token)
                        else -> extends += node.extendMutexes(listOf("o$i"), listOf(token), leaseMillis = 10_000)
                    }
                }
            }
            acquires.forEach { it.get(5, TimeUnit.SECONDS).acquired() shouldBe true }
            // Each extend found its lease held (it ran after the acquire), each release released it.
            extends.forEach { it.get(5, TimeUnit.SECONDS).toList() shouldBe listOf(true) }
            releases.forEach { it.get(5, TimeUnit.SECONDS) shouldBe 1L }
            for (token in tokens) node.ops.filter { it.token == token }.map { it.op } shouldBe listOf("acquire", "extend", "extend", "release")
            node.overlaps.get() shouldBe 0
            tokens.indices.map { node.stripeOf("o$it") }.distinct().size shouldBeGreaterThan 1
        } finally {
            node.closeAndWait(Duration.ofSeconds(5))
        }
        store.empty() shouldBe true
    }

    test("operations on one lock keep their issue order across tokens: an attempt sent right behind a release finds the lock free") {
        val store = MemoryStore()
        val node = RecordingNode(store, "handover", stripes = 4)
        node.jitter = true
        try {
            val keys = (1..24).map { "h$it" }
            for (k in keys) node.acquireMutex(k, "first-$k", leaseMillis = 10_000).get(5, TimeUnit.SECONDS).acquired() shouldBe true
            // As the engine does when it wakes a waiter of this process: the release, then at once the waiter's attempt.
            val handovers = keys.map { k -> node.releaseMutex(k, "first-$k") to node.acquireMutex(k, "second-$k", leaseMillis = 10_000) }
            for ((release, attempt) in handovers) {
                release.get(5, TimeUnit.SECONDS) shouldBe 1L
                attempt.get(5, TimeUnit.SECONDS).acquired() shouldBe true
            }
            for (k in keys) node.releaseMutex(k, "second-$k").get(5, TimeUnit.SECONDS) shouldBe 1L
            keys.map { node.stripeOf(it) }.distinct().size shouldBeGreaterThan 1
        } finally {
            node.closeAndWait(Duration.ofSeconds(5))
        }
        store.empty() shouldBe true
    }

    test("through the engine: one lock's operations run on its stripe, one token's one at a time, acquire first; locks spread over several stripes") {
        val store = MemoryStore()
        val node = RecordingNode(store, "striped", stripes = 4)
        val locks = distributedLocks(node, settings)
        try {
            coroutineScope {
                // Held for about two renewals each (a renewal every 200 ms), some of them coalesced into one batch.
                (1..40).map { i -> launch { locks.withLock("r${i % 20}") { delay(450.milliseconds) } } }
            }
        } finally {
            locks.close()
        }
        store.empty() shouldBe true
        node.overlaps.get() shouldBe 0
        val byToken = node.ops.groupBy { it.token }
        byToken.size shouldBe 40
        for ((token, ops) in byToken) {
            withClue("token ${token.take(4)}: ${ops.map { it.op }}") {
                ops.map { it.thread }.distinct() shouldContainExactly listOf(node.threadOf(ops[0].key))
                ops.first().op shouldBe "acquire"
                // A renewal the engine sent as the section ended may come after the release (and finds nothing).
                ops.any { it.op == "release" } shouldBe true
            }
        }
        byToken.values.map { node.stripeOf(it[0].key) }.distinct().size shouldBeGreaterThan 1
        // Renewals ran, and every extendHolds call got leases of its own stripe only.
        node.extendCalls.isEmpty() shouldBe false
        for ((thread, leases) in node.extendCalls) leases.map { node.threadOf(it.keys[0]) }.distinct() shouldContainExactly listOf(thread)
    }

    test("an operation held up on one stripe does not hold up acquisitions of tokens on other stripes") {
        val store = MemoryStore()
        val node = RecordingNode(store, "held-up", stripes = 4)
        val locks = distributedLocks(node, BackendSettings(leaseTime = Duration.ofSeconds(6), nodeTimeout = Duration.ofSeconds(2)))
        try {
            coroutineScope {
                val slow = async { runCatching { locks.tryAcquire("slow") } }
                runInterruptible(Dispatchers.IO) { node.stalled.await(5, TimeUnit.SECONDS) } shouldBe true
                // Sixteen callers on other resources: the first to get its lock shows another stripe's progress
                // (the resources' stripes are fixed by their names: several differ from the held-up one's).
                val first = CompletableDeferred<String>()
                val others = (1..16).map { i -> async { locks.acquire("other-$i").also { first.complete("other-$i") } } }
                withTimeout(5.seconds) { first.await() }
                node.stalling.get() shouldBe true // the held-up call is still inside acquireHold
                node.gate.countDown()
                others.awaitAll().forEach { it.release() }
                slow.await().getOrNull()?.release()
            }
        } finally {
            node.gate.countDown()
            locks.close()
        }
        store.empty() shouldBe true
    }

    test("with one stripe the same acquisitions wait for the held-up call (so the check above can fail)") {
        val store = MemoryStore()
        val node = RecordingNode(store, "one-stripe", stripes = 1)
        val locks = distributedLocks(node, BackendSettings(leaseTime = Duration.ofSeconds(6), nodeTimeout = Duration.ofSeconds(2)))
        try {
            coroutineScope {
                val slow = async { runCatching { locks.tryAcquire("slow") } }
                runInterruptible(Dispatchers.IO) { node.stalled.await(5, TimeUnit.SECONDS) } shouldBe true
                val got = AtomicInteger()
                val others = (1..16).map { i -> async { locks.acquire("other-$i").also { got.incrementAndGet() } } }
                delay(500.milliseconds)
                got.get() shouldBe 0
                node.stalling.get() shouldBe true
                node.gate.countDown()
                others.awaitAll().forEach { it.release() }
                slow.await().getOrNull()?.release()
            }
        } finally {
            node.gate.countDown()
            locks.close()
        }
        store.empty() shouldBe true
    }

    test("an extend batch over several stripes is split by stripe, each part on its stripe, answered in the batch's order") {
        val store = MemoryStore()
        val node = RecordingNode(store, "batch", stripes = 4)
        try {
            val tokens = (1..12).map { "token-$it" }
            for ((i, token) in tokens.withIndex()) node.acquireMutex("k$i", token, leaseMillis = 10_000).get(2, TimeUnit.SECONDS).acquired() shouldBe true
            store.drop("k3")
            store.drop("k7")
            node.extendCalls.clear()
            val answers = node.extendMutexes(tokens.indices.map { "k$it" }, tokens, leaseMillis = 10_000).get(2, TimeUnit.SECONDS)
            answers.toList() shouldBe tokens.indices.map { it != 3 && it != 7 }
            val stripes = tokens.indices.map { node.stripeOf("k$it") }.distinct()
            stripes.size shouldBeGreaterThan 1
            node.extendCalls.size shouldBe stripes.size
            for ((thread, part) in node.extendCalls) {
                part.map { node.threadOf(it.keys[0]) }.distinct() shouldContainExactly listOf(thread)
                val partTokens = part.map { it.token }
                partTokens shouldBe tokens.filter { it in partTokens } // in the batch's order
            }
            node.extendCalls.flatMap { it.second }.map { it.token }.toSet() shouldBe tokens.toSet()

            // A part that fails fails the whole call, naming the node.
            node.failExtendOf = tokens[5]
            val e = shouldThrow<ExecutionException> { node.extendMutexes(tokens.indices.map { "k$it" }, tokens, 10_000).get(2, TimeUnit.SECONDS) }
            e.cause.shouldBeInstanceOf<MasterFailureException>().message shouldContain "batch"
            node.failExtendOf = null
            for ((i, token) in tokens.withIndex()) node.releaseMutex("k$i", token).get(2, TimeUnit.SECONDS)
        } finally {
            node.closeAndWait(Duration.ofSeconds(5))
        }
        store.empty() shouldBe true
    }

    test("a hold that is not extended expires on its token's stripe") {
        val store = MemoryStore()
        val node = RecordingNode(store, "expiry", stripes = 4)
        try {
            node.acquireMutex("e", "expiring-token", leaseMillis = 100).get(2, TimeUnit.SECONDS).acquired() shouldBe true
            eventually(what = "the hold expired") { store.empty() }
            val expiry = node.ops.single { it.op == "release" }
            expiry.thread shouldBe node.threadOf("e")
            expiry.notice shouldBe true
        } finally {
            node.closeAndWait(Duration.ofSeconds(5))
        }
    }

    test("close with operations in flight on several stripes: closeStore runs once, after them; later calls fail; every stripe stops") {
        val store = MemoryStore()
        val node = RecordingNode(store, "closing", stripes = 4)
        // One lock per stripe, each acquisition stalled inside acquireHold, each with its release queued behind it.
        val keys = (0 until 1000).map { "c$it" }.groupBy { node.stripeOf(it) }.map { it.value.first() }
        keys.size shouldBe 4
        node.stallAll = true
        val acquires = keys.map { k -> node.acquireMutex(k, "token-$k", leaseMillis = 10_000, timeoutMillis = 10_000) }
        eventually(what = "every stripe is inside acquireHold") { node.inside.get() == 4 }
        val releases = keys.map { k -> node.releaseMutex(k, "token-$k", timeoutMillis = 10_000) }
        node.close() // never blocks, though every stripe is busy
        node.storeCloses.get() shouldBe 0
        val late = shouldThrow<ExecutionException> { node.acquireMutex("late", "late-token", 10_000).get(1, TimeUnit.SECONDS) }
        late.cause.shouldBeInstanceOf<MasterFailureException>().message shouldContain "closed"
        node.gate.countDown()
        node.closeAndWait(Duration.ofSeconds(5))
        acquires.forEach { it.get(1, TimeUnit.SECONDS).acquired() shouldBe true }
        releases.forEach { it.get(1, TimeUnit.SECONDS) shouldBe 1L }
        node.storeCloses.get() shouldBe 1
        node.log.last() shouldBe "closeStore"
        node.log.count { it.startsWith("release") } shouldBe 4
        store.empty() shouldBe true
        Thread.getAllStackTraces().keys.filter { it.isAlive && it.name.startsWith("redlock-node-") && it.name.endsWith("-closing") }.shouldBeEmpty()
    }

    test("a node refuses a stripe count out of range, naming it") {
        shouldThrow<IllegalArgumentException> { MemoryNode(MemoryStore(), "bad", stripes = 0) }.message shouldBe "stripes must be between 1 and 256, but was 0"
    }
})

/** A [MemoryNode] that records which thread ran each operation of each token, and can stall acquisitions. */
private class RecordingNode(store: MemoryStore, name: String, stripes: Int) : MemoryNode(store, name, stripes) {
    class Op(val token: String, val key: String, val op: String, val thread: String, val granted: Boolean = false, val notice: Boolean = false)

    val ops: MutableList<Op> = Collections.synchronizedList(ArrayList())
    val log: MutableList<String> = Collections.synchronizedList(ArrayList())
    val extendCalls: MutableList<Pair<String, List<HeldLease>>> = Collections.synchronizedList(ArrayList())
    val overlaps = AtomicInteger()
    private val busy = ConcurrentHashMap<String, AtomicInteger>()
    private val threads = ConcurrentHashMap<Int, String>()

    /** Acquisitions of resource "slow" (or of every resource, with [stallAll]) wait for [gate]. */
    val gate = CountDownLatch(1)
    val stalled = CountDownLatch(1)
    val stalling = java.util.concurrent.atomic.AtomicBoolean(false)
    val inside = AtomicInteger()

    @Volatile var stallAll = false

    /** Each operation sleeps up to a millisecond, to shuffle how the stripes interleave. */
    @Volatile var jitter = false

    @Volatile var failExtendOf: String? = null
    val storeCloses = AtomicInteger()

    /** The stripe thread that ran the operations on lock [key] (checked against its stripe number). */
    fun threadOf(key: String): String = threads[stripeOf(key)] ?: "stripe ${stripeOf(key)} never ran"

    private fun <T> running(leases: List<HeldLease>, op: () -> T): T {
        val tokens = leases.map { it.token }
        val stripe = stripeOf(leases[0].keys[0])
        threads.putIfAbsent(stripe, Thread.currentThread().name)
        check(threads[stripe] == Thread.currentThread().name) { "stripe $stripe ran on two threads" }
        for (t in tokens) if (busy.computeIfAbsent(t) { AtomicInteger() }.incrementAndGet() != 1) overlaps.incrementAndGet()
        if (jitter) Thread.sleep(0, java.util.concurrent.ThreadLocalRandom.current().nextInt(1_000_000))
        try {
            return op()
        } finally {
            for (t in tokens) busy[t]!!.decrementAndGet()
        }
    }

    override fun acquireHold(request: AcquireRequest, timeout: Duration): AcquireResult = running(listOf(request.lease)) {
        if (stallAll || request.keys[0].endsWith("slow")) {
            inside.incrementAndGet()
            stalling.set(true)
            stalled.countDown()
            gate.await(30, TimeUnit.SECONDS)
            stalling.set(false)
        }
        super.acquireHold(request, timeout).also {
            ops += Op(request.token, request.keys[0], "acquire", Thread.currentThread().name, granted = it is AcquireResult.Granted)
            log += "acquire ${request.token}"
        }
    }

    override fun extendHolds(leases: List<HeldLease>, leaseMillis: Long, timeout: Duration): BooleanArray = running(leases) {
        extendCalls += Thread.currentThread().name to leases
        failExtendOf?.let { t ->
            if (leases.any { it.token == t }) throw MasterFailureException(name(), MasterFailureException.Kind.ERROR, "a failing part of the batch", null)
        }
        for (l in leases) ops += Op(l.token, l.keys[0], "extend", Thread.currentThread().name)
        super.extendHolds(leases, leaseMillis, timeout)
    }

    override fun releaseHold(lease: HeldLease, final: Boolean, notice: String?, timeout: Duration): Boolean = running(listOf(lease)) {
        ops += Op(lease.token, lease.keys[0], "release", Thread.currentThread().name, notice = notice != null)
        log += "release ${lease.token}"
        super.releaseHold(lease, final, notice, timeout)
    }

    override fun closeStore() {
        storeCloses.incrementAndGet()
        log += "closeStore"
        super.closeStore()
    }

    fun acquireMutex(key: String, token: String, leaseMillis: Long, timeoutMillis: Long = 2_000) =
        acquire(Script.ACQUIRE, LockKind.Mutex.acquireKeys(arrayOf(key), false, false),
            LockKind.Mutex.acquireArgs(arrayOf(key), token, leaseMillis, false, false), Duration.ofMillis(timeoutMillis))

    fun extendMutexes(keys: List<String>, tokens: List<String>, leaseMillis: Long) =
        extend(Script.EXTEND, keys.toTypedArray(), (listOf(leaseMillis.toString()) + tokens.flatMap { listOf("1", it) }).toTypedArray(), Duration.ofSeconds(2))

    fun releaseMutex(key: String, token: String, timeoutMillis: Long = 2_000) =
        release(Script.RELEASE, arrayOf(key), LockKind.Mutex.releaseArgs(arrayOf(key), token, "", true), Duration.ofMillis(timeoutMillis))
}

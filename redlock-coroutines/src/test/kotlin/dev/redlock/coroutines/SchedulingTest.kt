package dev.redlock.coroutines

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.LockNotExtendedException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.Script
import dev.redlock.coroutines.internal.HINT_JITTER_MAX
import dev.redlock.coroutines.internal.retryPause
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.property.Arb
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.long
import io.kotest.property.checkAll
import java.time.Duration
import java.util.concurrent.CompletableFuture
import kotlin.random.Random
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.async
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.StandardTestDispatcher
import kotlinx.coroutines.test.TestScope
import kotlinx.coroutines.test.currentTime
import kotlinx.coroutines.test.runTest

/**
 * Extra, on virtual time through the node seam: the retry schedule. Every behaviour here is
 * also shown against real masters in the other specs.
 */
class SchedulingTest : FunSpec({

    test("retryPause lies between zero and the smallest of the jittered delay, the holder's time plus jitter, and the remaining wait") {
        checkAll(Arb.long(1L..5_000L), Arb.long(-1L..20_000L), Arb.long(0L..30_000L), Arb.int()) { delay, pttl, left, seed ->
            val holder = if (pttl >= 0) pttl.milliseconds else null
            val pause = retryPause(delay.milliseconds, holder, left.milliseconds, Random(seed))
            (pause >= kotlin.time.Duration.ZERO) shouldBe true
            (pause <= left.milliseconds) shouldBe true
            (pause <= delay.milliseconds * 1.5) shouldBe true
            if (holder != null) (pause <= holder + minOf(delay.milliseconds * 0.1, HINT_JITTER_MAX)) shouldBe true
        }
    }

    test("any two quorums share a master") {
        checkAll(Arb.int(1..99)) { n -> (2 * LockMath.quorum(n) > n) shouldBe true }
    }

    test("a waiter retries when the holder's lease runs out, not a polling period later") {
        runTest {
            val nodes = List(3) { FakeNode(this) }
            nodes.forEach { it.hold("redlock:r", "other", 1_500) }
            val redlock = virtualRedlock(config(retryDelay = Duration.ofSeconds(10)), nodes)
            redlock.acquire("r")
            // Refused at t = 0 with 1.5 s left (twice: once more when its subscription is in);
            // retried after 1.5 s plus at most 10 % of the retry delay.
            (currentTime in 1_500L..2_500L) shouldBe true
            nodes[0].acquires shouldBe 3
        }
    }

    test("waiting stops at the wait time with LockNotAcquiredException") {
        runTest {
            val nodes = List(3) { FakeNode(this) }
            nodes.forEach { it.hold("redlock:r", "other", 60_000) }
            val redlock = virtualRedlock(config(waitTime = Duration.ofSeconds(5)), nodes)
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("r") }
            e.isContended shouldBe true
            currentTime shouldBe 5_000L
        }
    }

    test("a waiter is woken by the release notice, long before the holder's lease or the retry delay would end") {
        runTest {
            val nodes = List(3) { FakeNode(this) }
            val redlock = virtualRedlock(config(retryDelay = Duration.ofSeconds(10)), nodes)
            val holder = redlock.acquire("r")
            val waiter = async { redlock.acquire("r") }
            testScheduler.advanceTimeBy(1_000)
            nodes.all { "redlock:r" in it.watched } shouldBe true
            holder.release()
            val lease = waiter.await()
            lease.isValid shouldBe true
            // Woken at the release (t = 1 s), not 30 s (the holder's lease) or 5 s (the jittered retry delay) later.
            currentTime shouldBe 1_000L
            nodes.none { "redlock:r" in it.watched } shouldBe true
        }
    }

    test("a release that slips by before the subscription is caught: once subscribed, the waiter looks again at once") {
        runTest {
            // The holder's key goes away, unannounced, while the waiter subscribes; the fake
            // confirms subscriptions at once, before the waiter's handlers are attached.
            val nodes = List(3) { FakeNode(this) }
            nodes.forEach { it.hold("redlock:r", "other", 60_000); it.dropOnWatch = "redlock:r" }
            val redlock = virtualRedlock(config(retryDelay = Duration.ofSeconds(10)), nodes)
            val lease = redlock.acquire("r")
            lease.isValid shouldBe true
            // Acquired right after subscribing, not at the retry delay (5 s or more) or the holder's 60 s.
            currentTime shouldBe 0L
            nodes[0].acquires shouldBe 2
        }
    }

    test("a release that reaches the masters one by one: the same release heard again wakes the waiter it woke") {
        runTest {
            val nodes = List(3) { FakeNode(this) }
            nodes.forEach { it.hold("redlock:r", "other", 60_000) }
            val redlock = virtualRedlock(config(retryDelay = Duration.ofSeconds(10)), nodes)
            val waiter = async { redlock.acquire("r") }
            testScheduler.advanceTimeBy(1_000)
            nodes.all { "redlock:r" in it.watched } shouldBe true
            // The release runs on master 0 first; its notice sends the waiter into an attempt that
            // masters 1 and 2, not yet released, refuse.
            nodes[0].release(Script.RELEASE, arrayOf("redlock:r"), arrayOf("other", "", "release-1"), Duration.ofSeconds(1))
            testScheduler.runCurrent()
            waiter.isCompleted shouldBe false
            testScheduler.advanceTimeBy(1_000)
            // The same release reaches masters 1 and 2: its notices wake the waiter again.
            nodes[1].release(Script.RELEASE, arrayOf("redlock:r"), arrayOf("other", "", "release-1"), Duration.ofSeconds(1))
            nodes[2].release(Script.RELEASE, arrayOf("redlock:r"), arrayOf("other", "", "release-1"), Duration.ofSeconds(1))
            waiter.await().isValid shouldBe true
            currentTime shouldBe 2_000L
        }
    }

    test("lease state: HELD, AT_RISK after a failed renewal, HELD after a good one, LOST when validity runs out") {
        runTest {
            val nodes = List(3) { FakeNode(this) }
            val redlock = virtualRedlock(config(), nodes)
            val lease = redlock.acquire("r")
            lease.state.value shouldBe LeaseState.HELD
            nodes[0].failExtends = true
            nodes[1].failExtends = true
            shouldThrow<LockNotExtendedException> { lease.extend() }
            lease.state.value shouldBe LeaseState.AT_RISK
            lease.isValid shouldBe true
            nodes[1].failExtends = false
            lease.extend()
            lease.state.value shouldBe LeaseState.HELD
            nodes[1].failExtends = true
            shouldThrow<LockNotExtendedException> { lease.extend() }
            lease.state.value shouldBe LeaseState.AT_RISK
            testScheduler.advanceTimeBy(30_000)
            lease.isValid shouldBe false
            lease.state.value shouldBe LeaseState.LOST
            lease.awaitLost().reason() shouldBe LockLostException.Reason.EXPIRED
        }
    }

    test("maximum hold: the lease counts as lost once held for maxHoldTime, although its validity remains") {
        runTest {
            val nodes = List(3) { FakeNode(this) }
            val config = RedlockConfig.builder().master("redis://fake:1").leaseTime(Duration.ofSeconds(30))
                .maxHoldTime(Duration.ofSeconds(45)).build()
            val redlock = virtualRedlock(config, nodes)
            val lease = redlock.acquire("r")
            testScheduler.advanceTimeBy(20_000)
            lease.extend() // valid until t = 50 s, but held for at most 45 s
            testScheduler.advanceTimeBy(24_000)
            lease.isValid shouldBe true
            testScheduler.advanceTimeBy(1_001)
            lease.isValid shouldBe false
            val loss = lease.awaitLost()
            loss.reason() shouldBe LockLostException.Reason.MAX_HOLD
            loss.message shouldContain "maxHoldTime 45s"
            shouldThrow<LockLostException> { lease.extend() }
        }
    }

    test("an acquisition ends by its wait time plus one node timeout, whatever the masters do (virtual time)") {
        runTest {
            val nodes = List(3) { FakeNode(this).apply { silent = true } }
            val config = RedlockConfig.builder().master("redis://fake:1").leaseTime(Duration.ofSeconds(30))
                .nodeTimeout(Duration.ofMillis(500)).retryDelay(Duration.ofMillis(300)).waitTime(Duration.ofSeconds(5)).build()
            val redlock = virtualRedlock(config, nodes)
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("silent") }
            e.masterFailures().size shouldBe 3
            // Every attempt and every cleanup waits out its node timeout; none may push the end past this.
            (currentTime <= 5_500L) shouldBe true
            (currentTime >= 5_000L) shouldBe true
        }
    }

    test("a release ends within one node timeout, whatever the masters do (virtual time)") {
        runTest {
            val nodes = List(3) { FakeNode(this) }
            val config = RedlockConfig.builder().master("redis://fake:1").leaseTime(Duration.ofSeconds(30))
                .nodeTimeout(Duration.ofMillis(500)).build()
            val redlock = virtualRedlock(config, nodes)
            val lease = redlock.acquire("r")
            nodes.forEach { it.silent = true }
            val before = currentTime
            lease.release()
            (currentTime - before) shouldBe 500L
        }
    }

    test("a retry is never blocked by its own earlier attempt's key") {
        runTest {
            // The first attempt sets the key but its answer and its cleanup are lost.
            val node = FakeNode(this, loseFirstAnswer = true)
            val redlock = virtualRedlock(config(), listOf(node))
            val lease = redlock.acquire("r")
            lease.isValid shouldBe true
            node.acquires shouldBe 2
        }
    }
})

/** A Redlock over [nodes] whose clock, timer and work all run on the test's virtual time. */
private fun TestScope.virtualRedlock(config: RedlockConfig, nodes: List<LockNode>): Redlock =
    Redlock(config, nodes, testScheduler.timeSource, Random(7), StandardTestDispatcher(testScheduler))

private fun config(
    retryDelay: Duration = Duration.ofMillis(200),
    waitTime: Duration = Duration.ofSeconds(10),
): RedlockConfig =
    RedlockConfig.builder().master("redis://fake:1").leaseTime(Duration.ofSeconds(30))
        .retryDelay(retryDelay).waitTime(waitTime).build()

/** An in-memory master on the test's virtual clock, following the scripts' rules. */
private class FakeNode(private val scope: TestScope, private var loseFirstAnswer: Boolean = false) : LockNode {
    private class Entry(val token: String, val expiresAt: Long)
    private val keys = HashMap<String, Entry>()
    var acquires = 0
    private var dropNextRelease = false

    /** A master that never answers: every call fails with a timeout once its own bound has passed (the node contract). */
    var silent = false

    private fun <T> timedOut(timeout: Duration): CompletableFuture<T> {
        val call = CompletableFuture<T>()
        scope.launch {
            kotlinx.coroutines.delay(timeout.toMillis())
            call.completeExceptionally(MasterFailureException("fake", MasterFailureException.Kind.TIMEOUT, "no reply within $timeout", null))
        }
        return call
    }

    private fun now() = scope.testScheduler.currentTime
    private fun live(key: String) = keys[key]?.takeIf { it.expiresAt > now() }

    fun hold(key: String, token: String, forMillis: Long) {
        keys[key] = Entry(token, now() + forMillis)
    }

    override fun name() = "fake"
    override fun serverId(): String? = null
    override fun probe(timeout: Duration): CompletableFuture<Long> = CompletableFuture.completedFuture(Long.MAX_VALUE / 2)
    override fun onTracking(listener: LockNode.TrackingListener) {}
    override fun tracking() = false
    override fun connected() = true
    override fun warmUp(timeout: Duration) = CompletableFuture.completedFuture<Void>(null)

    override fun confirmFence(keys: Array<String>, token: String, fence: Long, timeout: Duration): CompletableFuture<Boolean> =
        CompletableFuture.failedFuture(UnsupportedOperationException("no fencing on the fake"))

    /** The mutex's acquire script: args are token, lease time, number of lock keys, fencing and guard flags. */
    override fun acquire(script: Script, keys: Array<String>, args: Array<String>, timeout: Duration): CompletableFuture<AcquireReply> {
        if (silent) return timedOut(timeout)
        val token = args[0]
        val leaseMillis = args[1].toLong()
        val keys = keys.copyOf(args[2].toInt()).requireNoNulls()
        acquires++
        val others = keys.mapNotNull { live(it) }.filter { it.token != token }
        if (others.isNotEmpty()) {
            return CompletableFuture.completedFuture(AcquireReply.refused(others.maxOf { it.expiresAt - now() }))
        }
        keys.forEach { this.keys[it] = Entry(token, now() + leaseMillis) }
        if (loseFirstAnswer) {
            loseFirstAnswer = false
            dropNextRelease = true
            return CompletableFuture.failedFuture(MasterFailureException("fake", MasterFailureException.Kind.TIMEOUT, "lost answer", null))
        }
        return CompletableFuture.completedFuture(AcquireReply.GRANTED)
    }

    var failExtends = false

    /** One lease per call here: args are the lease time, the key count and the token. */
    override fun extend(script: Script, keys: Array<String>, args: Array<String>, timeout: Duration): CompletableFuture<BooleanArray> {
        if (failExtends) return CompletableFuture.failedFuture(MasterFailureException("fake", MasterFailureException.Kind.TIMEOUT, "no answer", null))
        val leaseMillis = args[0].toLong()
        val held = keys.all { live(it)?.token == args[2] }
        if (held) keys.forEach { this.keys[it] = Entry(args[2], now() + leaseMillis) }
        return CompletableFuture.completedFuture(booleanArrayOf(held))
    }

    /** The mutex's release script: args are the token, the channel prefix and the release id. */
    override fun release(script: Script, keys: Array<String>, args: Array<String>, timeout: Duration): CompletableFuture<Long> {
        if (silent) return timedOut(timeout)
        val token = args[0]
        val releaseId = args[2]
        if (dropNextRelease) {
            dropNextRelease = false
            return CompletableFuture.failedFuture(MasterFailureException("fake", MasterFailureException.Kind.TIMEOUT, "lost release", null))
        }
        val mine = keys.filter { live(it)?.token == token }
        mine.forEach { this.keys.remove(it) }
        if (releaseId.isNotEmpty()) mine.filter { it in watched }.forEach { listener.released(it, releaseId) }
        return CompletableFuture.completedFuture(mine.size.toLong())
    }

    private var listener = LockNode.ReleaseListener { _, _ -> }
    val watched = HashSet<String>()

    override fun onRelease(listener: LockNode.ReleaseListener) {
        this.listener = listener
    }

    /** A key removed silently when its notices are first watched: a release that slipped by. */
    var dropOnWatch: String? = null

    override fun watch(key: String, timeout: Duration): CompletableFuture<Void> {
        if (key == dropOnWatch) keys.remove(key)
        watched += key
        return CompletableFuture.completedFuture(null)
    }

    override fun unwatch(key: String, timeout: Duration): CompletableFuture<Void> {
        watched -= key
        return CompletableFuture.completedFuture(null)
    }

    override fun close() {}
}

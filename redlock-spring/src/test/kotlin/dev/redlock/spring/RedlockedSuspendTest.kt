package dev.redlock.spring

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import dev.redlock.testing.RedisFleet
import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import org.springframework.boot.test.context.assertj.AssertableApplicationContext
import org.springframework.context.annotation.Bean
import org.springframework.context.annotation.Configuration

/**
 * `@Redlocked` on Kotlin suspend functions, in two application contexts over the same masters. The
 * build runs this class twice: with kotlinx-coroutines-reactor on the class path (Spring AOP then
 * hands suspend functions to interceptors as Monos) and without it (as plain methods taking a
 * continuation); `RedlockedSuspendTest.mode` tells which one ran.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RedlockedSuspendTest {
    private val fleet = RedisFleet.start(3)
    private val hangGuard = SpringFleets.HANG_GUARD.toMillis()

    @AfterAll
    fun stop() = fleet.close()

    @AfterEach
    fun noKeysLeft() {
        SpringFleets.eventually("no keys left on the masters") { fleet.keyCount() == 0 }
        fleet.flushAll()
    }

    @BeforeAll
    fun mode() {
        val reactor = runCatching { Class.forName("kotlinx.coroutines.reactor.MonoKt") }.isSuccess
        println("RedlockedSuspendTest runs with Spring AOP's ${if (reactor) "Mono" else "continuation"} form of suspend functions")
        // Set by the build for each of its two runs of this class.
        System.getProperty("redlock.expectReactor")?.let { assertEquals(it.toBoolean(), reactor, "kotlinx-coroutines-reactor present") }
    }

    private fun twoInstances(body: suspend CoroutineScope.(Jobs, Jobs) -> Unit) {
        val app = SpringFleets.runner(fleet).withUserConfiguration(App::class.java)
        app.run { one -> app.run { two -> runBlocking { body(started(one).getBean(Jobs::class.java), started(two).getBean(Jobs::class.java)) } } }
    }

    private fun started(context: AssertableApplicationContext): AssertableApplicationContext {
        context.startupFailure?.let { throw AssertionError("the context did not start", it) }
        // Calls that make one attempt do not wait for a new Redlock's first connections.
        runBlocking { context.getBean(Redlock::class.java).withRedlock("warm-up") { } }
        return context
    }

    @Test
    fun `a suspend function excludes callers of another instance, per key`() = twoInstances { one, two ->
        val entered = CompletableDeferred<Unit>()
        val leave = CompletableDeferred<Unit>()
        val holder = async(Dispatchers.Default) { one.report("daily", entered, leave) }
        withTimeout(hangGuard) { entered.await() }

        val refused = assertThrows<LockNotAcquiredException> { two.tryReport("daily") }
        assertTrue(refused.isContended)
        assertEquals("ran weekly", two.tryReport("weekly"))

        leave.complete(Unit)
        assertEquals("daily done", withTimeout(hangGuard) { holder.await() })
        assertEquals("ran daily", two.tryReport("daily"))
    }

    @Test
    fun `loss cancels the suspend function and the caller gets LockLostException`() = twoInstances { one, two ->
        val entered = CompletableDeferred<Unit>()
        val cancelled = AtomicBoolean()
        val call = async(Dispatchers.Default) { runCatching { one.waitForever("cleanup", entered, cancelled) } }
        withTimeout(hangGuard) { entered.await() }
        SpringFleets.steal(fleet, "jobs:cleanup")

        val loss = withTimeout(hangGuard) { call.await() }.exceptionOrNull()
        assertTrue(loss is LockLostException, "expected LockLostException, got $loss")
        assertEquals(LockLostException.Reason.NOT_HELD, (loss as LockLostException).reason())
        assertTrue(cancelled.get(), "the function was cancelled")
        assertEquals("ran cleanup", two.tryReport("cleanup"))
    }

    @Test
    fun `the lease is reachable inside, with its fencing token`() = twoInstances { one, two ->
        val first = one.fenced("ledger")
        val second = two.fenced("ledger")
        assertTrue(second > first, "$second > $first")
        assertNull(redlockedLeaseOrNull())
        fleet.flushAll() // fencing counters have no expiry, by design
    }

    @Test
    fun `cancelling the caller cancels the function and releases the lock`() = twoInstances { one, two ->
        val entered = CompletableDeferred<Unit>()
        val cancelled = AtomicBoolean()
        val call = async(Dispatchers.Default) { one.waitForever("cancelled", entered, cancelled) }
        withTimeout(hangGuard) { entered.await() }
        call.cancel()
        SpringFleets.eventually("the function is cancelled") { cancelled.get() }
        SpringFleets.eventually("the lock is released") { fleet.keyCount() == 0 }
        assertEquals("ran cancelled", two.tryReport("cancelled"))
    }

    @Test
    fun `the Kotlin Redlock bean is closed with the context`() {
        var redlock: Redlock? = null
        var lease: dev.redlock.coroutines.Lease? = null
        SpringFleets.runner(fleet).run { context ->
            redlock = started(context).getBean(Redlock::class.java)
            lease = runBlocking { redlock!!.acquire("held-at-close") }
        }
        runBlocking {
            val loss = withTimeout(hangGuard) { lease!!.awaitLost() }
            assertEquals(LockLostException.Reason.CLOSED, loss.reason())
            assertThrows<dev.redlock.core.RedlockClosedException> { redlock!!.checkMasters() }
        }
    }

    /** The annotated bean (open: Spring proxies it by subclassing). */
    open class Jobs {
        @Redlocked("jobs:#{#name}")
        open suspend fun report(name: String, entered: CompletableDeferred<Unit>, leave: CompletableDeferred<Unit>): String {
            entered.complete(Unit)
            leave.await()
            return "$name done"
        }

        @Redlocked("jobs:#{#name}", waitTime = "0s")
        open suspend fun tryReport(name: String): String {
            kotlinx.coroutines.yield()
            return "ran $name"
        }

        @Redlocked("jobs:#{#name}")
        open suspend fun waitForever(name: String, entered: CompletableDeferred<Unit>, cancelled: AtomicBoolean): String {
            entered.complete(Unit)
            try {
                awaitCancellation()
            } catch (e: CancellationException) {
                cancelled.set(true)
                throw e
            }
        }

        @Redlocked("fenced:#{#name}", fencing = true)
        open suspend fun fenced(name: String): Long = redlockedLease().fencingToken!!
    }

    @Configuration(proxyBeanMethods = false)
    open class App {
        @Bean
        open fun jobs(): Jobs = Jobs()
    }
}

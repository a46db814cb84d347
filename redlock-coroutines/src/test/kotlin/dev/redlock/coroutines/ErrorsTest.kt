package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockConfig
import dev.redlock.testing.RedisFleet
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import java.net.ServerSocket
import java.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay

@Tags("compat")
class ErrorsTest : FunSpec({
    val fleet = sharedFleet(3)

    test("contention: LockNotAcquiredException says another holder has it and for how long") {
        fleet.redlock { waitTime(Duration.ofMillis(150)) }.use { redlock ->
            val holder = redlock.acquire("busy", leaseTime = 3.seconds)
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("busy") }
            e.isContended shouldBe true
            e.masterFailures() shouldBe emptyList()
            val left = e.holderRemaining().orElseThrow()
            (left > Duration.ZERO && left <= Duration.ofSeconds(3)) shouldBe true
            e.message shouldContain "held by another holder"
            e.resources() shouldBe listOf("busy")
            holder.release()
        }
    }

    test("tryAcquire returns null on contention and throws when masters fail") {
        fleet.redlock().use { redlock ->
            val holder = redlock.acquire("t")
            redlock.tryAcquire("t") shouldBe null
            holder.release()
            (0 until 3).forEach(fleet::kill)
            val e = shouldThrow<LockNotAcquiredException> { redlock.tryAcquire("t") }
            e.isContended shouldBe false
            e.masterFailures() shouldHaveSize 3
        }
    }

    test("cancellation of a waiting acquirer is a plain CancellationException and leaves no keys") {
        fleet.redlock { waitTime(Duration.ofSeconds(30)) }.use { redlock ->
            val holder = redlock.acquire("c", leaseTime = 5.seconds)
            coroutineScope {
                val waiter = async { redlock.acquire("c") }
                delay(100.milliseconds)
                waiter.cancel()
                shouldThrow<CancellationException> { waiter.await() }
            }
            holder.release()
        }
    }

    test("unreachable masters at start-up are not fatal while a majority answers") {
        val dead = ServerSocket(0).use { it.localPort }
        val config = RedlockConfig.builder()
            .masters(fleet.uris().take(2) + "redis://127.0.0.1:$dead")
            .waitTime(Duration.ofMillis(100))
            .build()
        Redlock(config).use { redlock ->
            redlock.withRedlock("u") { it.isValid shouldBe true }
        }
    }

    test("all masters unreachable: a clear LockNotAcquiredException naming every master") {
        val ports = List(3) { ServerSocket(0).use { it.localPort } }
        val config = RedlockConfig.builder()
            .masters(ports.map { "redis://127.0.0.1:$it" })
            .waitTime(Duration.ofMillis(100))
            .build()
        Redlock(config).use { redlock ->
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("nobody") }
            e.masterFailures().map { it.master() } shouldBe ports.map { "127.0.0.1:$it" }
            e.masterFailures().forEach { it.kind() shouldBe MasterFailureException.Kind.UNREACHABLE }
            ports.forEach { e.message shouldContain "127.0.0.1:$it" }
        }
    }

    test("a lock key holding another type fails at once, naming the key and its type") {
        (0 until 3).forEach { fleet.command(it, "HSET", "redlock:typed", "field", "value") }
        fleet.redlock { waitTime(Duration.ofSeconds(30)) }.use { redlock ->
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("typed") }
            e.masterFailures() shouldHaveSize 3
            e.masterFailures().forEach { it.kind() shouldBe MasterFailureException.Kind.WRONG_TYPE }
            e.message shouldContain "redlock:typed"
            e.message shouldContain "hash"
        }
        (0 until 3).forEach { fleet.command(it, "DEL", "redlock:typed") }
    }

    test("a wrong password fails at once with an authentication failure per master") {
        RedisFleet.builder().masters(3).password("s3cret").start().use { secured ->
            val uris = secured.uris().map { it.replace(":s3cret@", ":wrong@") }
            val config = RedlockConfig.builder().masters(uris).waitTime(Duration.ofSeconds(30)).build()
            Redlock(config).use { redlock ->
                val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("auth") }
                e.masterFailures() shouldHaveSize 3
                e.masterFailures().forEach { it.kind() shouldBe MasterFailureException.Kind.AUTHENTICATION }
                e.message shouldContain "authentication failed"
                (e.message!!.contains("wrong")) shouldBe false
            }
            Redlock(RedlockConfig.builder().masters(secured.uris()).build()).use { redlock ->
                redlock.withRedlock("auth") { it.isValid shouldBe true }
            }
            secured.keyCount() shouldBe 0
        }
    }

    test("scripts flushed from the masters are reloaded transparently") {
        fleet.redlock().use { redlock ->
            redlock.withRedlock("s") { }
            (0 until 3).forEach { fleet.command(it, "SCRIPT", "FLUSH") }
            redlock.withRedlock("s") { lease ->
                (0 until 3).forEach { fleet.command(it, "SCRIPT", "FLUSH") }
                lease.extend()
            }
            val loads = (0 until 3).sumOf { fleet.commandCalls(it, "script|load").coerceAtLeast(fleet.commandCalls(it, "script")) }
            loads shouldNotBe 0L
        }
    }

    test("bad per-call arguments name what is wrong") {
        fleet.redlock().use { redlock ->
            shouldThrow<IllegalArgumentException> { redlock.acquire() }.message shouldContain "at least one resource"
            shouldThrow<IllegalArgumentException> { redlock.acquire("") }.message shouldContain "non-empty"
            shouldThrow<IllegalArgumentException> { redlock.acquire("a", "a") }.message shouldContain "distinct"
            shouldThrow<IllegalArgumentException> { redlock.acquire("a", leaseTime = 1.milliseconds) }.message shouldContain "leaseTime must be between 10ms and 1d, but was 1ms"
            shouldThrow<IllegalArgumentException> { redlock.acquire("a", waitTime = (-1).seconds) }.message shouldContain "waitTime"
        }
    }
})

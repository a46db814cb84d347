package dev.redlock.kotest

import dev.redlock.coroutines.Redlock
import dev.redlock.testing.RedisFleet
import io.kotest.core.annotation.Condition
import io.kotest.core.annotation.EnabledIf
import io.kotest.core.extensions.install
import io.kotest.core.spec.Spec
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import java.time.Duration
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.reflect.KClass
import kotlin.time.Duration.Companion.seconds

// Specs as users write them, run one at a time by ExtensionLifecycleTest, which then checks what
// the extension did. They record what they were handed in Recorded.

/** What the case specs were handed. */
object Recorded {
    val fleets: MutableList<RedisFleet> = CopyOnWriteArrayList()
    val pids: MutableList<Long> = CopyOnWriteArrayList()
    val testRedlocks: MutableList<Redlock> = CopyOnWriteArrayList()
    val specRedlocks: MutableList<Redlock> = CopyOnWriteArrayList()
    val seen: MutableList<Any?> = CopyOnWriteArrayList()

    fun clear() {
        fleets.clear()
        pids.clear()
        testRedlocks.clear()
        specRedlocks.clear()
        seen.clear()
    }

    fun record(fleet: RedisFleet) {
        if (fleets.none { it === fleet }) fleets += fleet
        pids += fleet.pids()
    }
}

/** Case specs run only inside ExtensionLifecycleTest (some fail on purpose); anywhere else they are skipped. */
class HarnessOnly : Condition {
    override fun evaluate(kclass: KClass<out Spec>): Boolean = running

    companion object {
        @Volatile var running: Boolean = false
    }
}

@EnabledIf(HarnessOnly::class)
class ResetCase :
    FunSpec({
        val redis = install(RedisFleetExtension(masters = 2))
        lateinit var forTheSpec: Redlock

        beforeSpec {
            forTheSpec = redis.redlock() // outside any test: belongs to the spec
            Recorded.specRedlocks += forTheSpec
        }

        test("first breaks the fleet") {
            Recorded.record(redis.fleet)
            val redlock = redis.redlock()
            Recorded.testRedlocks += redlock
            redlock.tryAcquire("left:behind").shouldNotBeNull()
            redis.fleet.command(0, "SET", "user:key", "v")
            redis.fleet.kill(1)
            redis.fleet.pause(0)
        }

        test("second finds it reset") {
            Recorded.record(redis.fleet)
            redis.fleet.isRunning(1) shouldBe true
            redis.fleet.isPaused(0) shouldBe false
            redis.fleet.keyCount() shouldBe 0
            Recorded.seen += runCatching { Recorded.testRedlocks[0].tryAcquire("after") }.exceptionOrNull()
            // Still open; it reconnects to the restarted master in the background, so it may need a retry.
            forTheSpec.acquire("spec:redlock", waitTime = 10.seconds).release()
        }

        context("a container") {
            test("leaf a sets a key") { redis.fleet.command(0, "SET", "in:context", "v") }
            test("leaf b does not see it") { redis.fleet.keyCount() shouldBe 0 }
        }
    })

@EnabledIf(HarnessOnly::class)
class NoResetCase :
    FunSpec({
        val redis = install(RedisFleetExtension(resetAfterEach = false))

        test("first sets a key") {
            Recorded.record(redis.fleet)
            redis.fleet.command(0, "SET", "kept", "v")
        }

        test("second sees it") { redis.fleet.command(0, "GET", "kept") shouldBe "v" }
    })

@EnabledIf(HarnessOnly::class)
class FailingCase :
    FunSpec({
        val redis = install(RedisFleetExtension())

        test("fails on purpose") {
            Recorded.record(redis.fleet)
            Recorded.testRedlocks += redis.redlock()
            redis.fleet.pause(0)
            throw AssertionError("this test fails on purpose")
        }
    })

@EnabledIf(HarnessOnly::class)
class ConfiguredCase :
    FunSpec({
        val redis =
            install(RedisFleetExtension(masters = 1)) {
                masters = 3
                fleet { password("s3cret") }
                redlockConfig { leaseTime(Duration.ofSeconds(2)) }
            }

        test("settings reach the fleet and the configs") {
            Recorded.record(redis.fleet)
            redis.fleet.size shouldBe 3
            redis.config.masters() shouldBe redis.fleet.uris()
            redis.config.masters()[0] shouldBe "redis://:s3cret@127.0.0.1:${redis.fleet.port(0)}"
            redis.config.leaseTime() shouldBe Duration.ofSeconds(2)
            val tuned = redis.redlock { waitTime(Duration.ZERO) }
            Recorded.testRedlocks += tuned
            tuned.config.waitTime() shouldBe Duration.ZERO
            tuned.config.leaseTime() shouldBe Duration.ofSeconds(2)
        }
    })

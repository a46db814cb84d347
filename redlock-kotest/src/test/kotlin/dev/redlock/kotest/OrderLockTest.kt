package dev.redlock.kotest

// The README's kotest example, as a user writes it (imports included): keep the two in step.
// region kotest
import dev.redlock.coroutines.withRedlock
import dev.redlock.kotest.RedisFleetExtension
import io.kotest.core.extensions.install
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.time.Duration

class OrderLockTest :
    FunSpec({
        val redis =
            install(RedisFleetExtension(masters = 3)) {
                redlockConfig { leaseTime(Duration.ofSeconds(5)) }
            }

        test("the lock survives one master crash") {
            redis.fleet.kill(0) // one of three masters is down: a majority is still there
            val redlock = redis.redlock() // closed by the extension after this test

            redlock.withRedlock("orders:42") { lease ->
                lease.isValid shouldBe true
                redis.redlock().tryAcquire("orders:42") shouldBe null // nobody else gets it
            }
        }

        test("every test starts with all masters up and no keys") {
            (0 until redis.fleet.size).all { redis.fleet.isRunning(it) } shouldBe true
            redis.fleet.keyCount() shouldBe 0
        }
    })
// endregion

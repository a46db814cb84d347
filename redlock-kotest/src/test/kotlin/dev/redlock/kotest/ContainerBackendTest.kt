package dev.redlock.kotest

import dev.redlock.core.LockNotExtendedException
import dev.redlock.coroutines.withRedlock
import dev.redlock.testing.RedisFleet
import dev.redlock.testing.RedisFleetException
import io.kotest.matchers.string.shouldContain
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.extensions.install
import io.kotest.core.spec.style.FunSpec
import io.kotest.core.test.Enabled
import io.kotest.core.test.TestCase
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import java.time.Duration
import kotlin.time.Duration.Companion.seconds

/** Runs where a Docker engine is reachable through Testcontainers; reported as skipped, with why, elsewhere. */
private val needsDocker: (TestCase) -> Enabled = {
    RedisFleet.dockerUnavailableReason()?.let { Enabled.disabled("needs a Docker engine: $it") } ?: Enabled.enabled
}

/** The other side: runs where there is no Docker engine. */
private val needsNoDocker: (TestCase) -> Enabled = {
    if (RedisFleet.dockerAvailable()) Enabled.disabled("a Docker engine is available here") else Enabled.enabled
}

/** The extension on the container backend, with a lock through kill, pause and restart. */
class ContainerBackendTest :
    FunSpec({
        val redis =
            install(RedisFleetExtension(masters = 3, backend = RedisFleet.Backend.CONTAINERS)) {
                // Built on the engine from the bundled redis-server: no registry needed.
                fleet { image(RedisFleet.LOCAL_BINARY_IMAGE).commandTimeout(Duration.ofMillis(500)) }
                redlockConfig { leaseTime(Duration.ofSeconds(5)).nodeTimeout(Duration.ofMillis(200)) }
            }

        test("a lock holds through a killed master and a pause, and others get it only after release")
            .config(enabledOrReasonIf = needsDocker) {
                val fleet = redis.fleet
                fleet.backend shouldBe RedisFleet.Backend.CONTAINERS
                val other = redis.redlock()
                redis.redlock().withRedlock("orders:42") { lease ->
                    // Granted once a majority answered; the third master may set its key a moment later.
                    eventually(10.seconds) { for (i in 0 until 3) fleet.keys(i, "*orders:42*") shouldHaveSize 1 }

                    fleet.kill(0) // a crash: two of three masters still hold the key
                    lease.extend()
                    lease.isValid shouldBe true
                    other.tryAcquire("orders:42") shouldBe null

                    fleet.pause(1) // now only one master answers: the lease cannot be renewed
                    shouldThrow<LockNotExtendedException> { lease.extend() }
                    fleet.resume(1)
                    fleet.keys(1, "*orders:42*") shouldHaveSize 1 // a pause keeps the data

                    fleet.restart(0) // back empty, on the same port
                    fleet.keys(0).shouldBeEmpty()
                }
                other.acquire("orders:42", waitTime = 10.seconds).release()
            }

        // Also keeps one test active where Docker is missing: kotest drops the skip reasons of a
        // spec none of whose tests runs.
        test("without a Docker engine, the fleet fails on first use with what Testcontainers found")
            .config(enabledOrReasonIf = needsNoDocker) {
                shouldThrow<RedisFleetException> { redis.fleet }.message shouldContain RedisFleet.dockerUnavailableReason()!!
            }

        test("every test starts with all containers up, none paused, and no keys")
            .config(enabledOrReasonIf = needsDocker) {
                for (i in 0 until redis.fleet.size) {
                    redis.fleet.isRunning(i) shouldBe true
                    redis.fleet.isPaused(i) shouldBe false
                }
                redis.fleet.keyCount() shouldBe 0
            }
    })

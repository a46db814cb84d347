package dev.redlock.testing

import dev.redlock.testing.RedisFleet.Backend
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.nio.file.Path

/**
 * Runs in its own Surefire execution with Testcontainers and docker-java left off the class path,
 * as for a user who has only local binaries (see this module's pom).
 */
class WithoutTestcontainersTest :
    FunSpec({
        test("Testcontainers is really absent from this run's class path") {
            shouldThrow<ClassNotFoundException> { Class.forName("org.testcontainers.DockerClientFactory") }
            shouldThrow<ClassNotFoundException> { Class.forName("com.github.dockerjava.api.DockerClient") }
            ContainerSupport.onClassPath() shouldBe false
        }

        test("an AUTO fleet runs local masters and its whole lifecycle without loading a Testcontainers class") {
            RedisFleet.builder().masters(2).start().use { fleet ->
                fleet.backend shouldBe Backend.LOCAL
                fleet.command(0, "SET", "k", "v") shouldBe "OK"
                fleet.pause(0)
                fleet.resume(0)
                fleet.kill(1)
                fleet.restart(1)
                fleet.keyCount() shouldBe 1
                fleet.flushAll()
            }
        }

        test("dockerAvailable is false and says to add Testcontainers, without throwing") {
            RedisFleet.dockerAvailable() shouldBe false
            RedisFleet.dockerUnavailableReason()!! shouldContain "add the test dependency org.testcontainers:testcontainers"
        }

        test("CONTAINERS fails with a message that names the missing dependency") {
            shouldThrow<RedisFleetException> { RedisFleet.builder().backend(Backend.CONTAINERS).start() }.message shouldContain
                "Testcontainers is not on the class path (add the test dependency org.testcontainers:testcontainers)"
        }

        test("AUTO without a local binary names both the local search and the missing dependency") {
            val noLocal =
                object : BackendProbe {
                    override fun localBinary(): Path = throw RedisFleetException("no redis-server on PATH")

                    override fun dockerUnavailableReason(): String? = ContainerSupport.unavailableReason()
                }
            val error = shouldThrow<RedisFleetException> { RedisFleet.builder().probe(noLocal).start() }
            error.message shouldContain "(1) local: no redis-server on PATH"
            error.message shouldContain "(2) Docker: Testcontainers is not on the class path"
        }
    })

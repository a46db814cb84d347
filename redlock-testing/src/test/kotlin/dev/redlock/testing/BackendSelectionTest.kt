package dev.redlock.testing

import dev.redlock.testing.RedisFleet.Backend
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import io.kotest.matchers.types.shouldBeInstanceOf
import io.kotest.matchers.types.shouldBeSameInstanceAs
import java.nio.file.Path
import java.nio.file.Paths
import org.testcontainers.DockerClientFactory

/** A machine as the selection sees it, counting what it was asked. */
private class FakeProbe(private val local: Path?, private val docker: Boolean) : BackendProbe {
    var localAsked = 0
    var dockerAsked = 0
    val localFailure = RedisFleetException("no redis-server anywhere (fake: PATH and embedded-redis checked)")

    override fun localBinary(): Path {
        localAsked++
        return local ?: throw localFailure
    }

    override fun dockerUnavailableReason(): String? {
        dockerAsked++
        return if (docker) null else "fake: no Docker engine answers"
    }
}

class BackendSelectionTest :
    FunSpec({
        val binary = Paths.get("/opt/fake/redis-server")

        // Every request against every machine: (requested, local binary?, Docker?) -> outcome.
        for (requested in Backend.values()) {
            for (hasLocal in listOf(true, false)) {
                for (hasDocker in listOf(true, false)) {
                    val machine = "${if (hasLocal) "a local binary" else "no local binary"} and ${if (hasDocker) "Docker" else "no Docker"}"
                    test("$requested with $machine") {
                        val probe = FakeProbe(if (hasLocal) binary else null, hasDocker)
                        val expectLocal = (requested == Backend.LOCAL || requested == Backend.AUTO) && hasLocal
                        val expectContainers =
                            (requested == Backend.CONTAINERS && hasDocker) || (requested == Backend.AUTO && !hasLocal && hasDocker)
                        when {
                            expectLocal -> {
                                val selected = selectBackend(requested, probe).shouldBeInstanceOf<SelectedBackend.Local>()
                                selected.binary shouldBe binary
                            }
                            expectContainers -> selectBackend(requested, probe) shouldBe SelectedBackend.Containers
                            else -> {
                                val error = shouldThrow<RedisFleetException> { selectBackend(requested, probe) }
                                when (requested) {
                                    Backend.LOCAL -> error shouldBeSameInstanceAs probe.localFailure
                                    Backend.CONTAINERS -> {
                                        error.message shouldContain "backend CONTAINERS needs a Docker engine"
                                        error.message shouldContain "fake: no Docker engine answers"
                                    }
                                    Backend.AUTO -> error.message shouldContain "No way to run Redis masters"
                                }
                            }
                        }
                        // Each backend asks only what it needs; AUTO asks Docker only without a local binary.
                        probe.localAsked shouldBe if (requested == Backend.CONTAINERS) 0 else 1
                        probe.dockerAsked shouldBe
                            when (requested) {
                                Backend.LOCAL -> 0
                                Backend.CONTAINERS -> 1
                                Backend.AUTO -> if (hasLocal) 0 else 1
                            }
                    }
                }
            }
        }

        test("the AUTO error names what was checked for both backends and how to fix either") {
            val probe = FakeProbe(null, docker = false)
            val error = shouldThrow<RedisFleetException> { selectBackend(Backend.AUTO, probe) }
            error.message shouldContain "(1) local: no redis-server anywhere (fake: PATH and embedded-redis checked)"
            error.message shouldContain "(2) Docker: fake: no Docker engine answers"
            error.message shouldContain "make a redis-server available"
            error.message shouldContain "org.testcontainers:testcontainers"
            error.cause shouldBeSameInstanceAs probe.localFailure
        }

        test("the real local probe's message for a machine without binaries says where it looked") {
            // Windows has no bundled binary: the local check fails with its own list of places.
            val failure = shouldThrow<RedisFleetException> { RedisServerBinary.resolve(null, { null }, "Windows 11", "amd64") }
            val error =
                shouldThrow<RedisFleetException> {
                    selectBackend(
                        Backend.AUTO,
                        object : BackendProbe {
                            override fun localBinary(): Path = throw failure

                            override fun dockerUnavailableReason(): String = "Testcontainers found no Docker engine"
                        },
                    )
                }
            error.message shouldContain "REDLOCK_REDIS_SERVER"
            error.message shouldContain "PATH"
            error.message shouldContain "os.name='Windows 11'"
            error.message shouldContain "Testcontainers found no Docker engine"
        }

        test("the builder's backend reaches the selection, and a redisServer path means LOCAL") {
            val bundled = RedisServerBinary.bundled()
            val withLocal = FakeProbe(bundled, docker = false)
            RedisFleet.builder().probe(withLocal).start().use { fleet ->
                fleet.backend shouldBe Backend.LOCAL
                fleet.command(0, "PING") shouldBe "PONG"
            }
            withLocal.dockerAsked shouldBe 0

            // AUTO with an explicit binary does not fall back to Docker when the binary is unusable.
            val noLocal = FakeProbe(null, docker = true)
            shouldThrow<RedisFleetException> { RedisFleet.builder().redisServer(bundled).probe(noLocal).start() }
            noLocal.dockerAsked shouldBe 0

            val conflict = shouldThrow<IllegalArgumentException> {
                RedisFleet.builder().redisServer(bundled).backend(Backend.CONTAINERS).start()
            }
            conflict.message shouldContain "redisServer(path) expected only with backend LOCAL or AUTO"

            val noDocker = FakeProbe(bundled, docker = false)
            shouldThrow<RedisFleetException> { RedisFleet.builder().backend(Backend.CONTAINERS).probe(noDocker).start() }
                .message shouldContain "fake: no Docker engine answers"
            noDocker.localAsked shouldBe 0
        }

        test("image rejects a blank name") {
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().image(" ") }.message shouldContain
                "image expected to be a Docker image name"
        }

        test("dockerAvailable agrees with Testcontainers on this machine, and its reason says why not") {
            ContainerSupport.onClassPath() shouldBe true
            val available = DockerClientFactory.instance().isDockerAvailable
            RedisFleet.dockerAvailable() shouldBe available
            val reason = RedisFleet.dockerUnavailableReason()
            if (available) {
                reason shouldBe null
            } else {
                reason!! shouldContain "Docker engine"
                reason shouldNotContain "not on the class path"
            }
        }
    })

package dev.redlock.testing

import dev.redlock.testing.RedisFleet.Backend
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.core.test.Enabled
import io.kotest.core.test.TestCase
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainAll
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.longs.shouldBeLessThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldStartWith
import io.kotest.matchers.types.shouldBeInstanceOf
import java.net.InetSocketAddress
import java.net.Socket
import java.net.SocketTimeoutException
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.time.Duration
import java.util.concurrent.TimeUnit

/** Runs where a Docker engine is reachable through Testcontainers; reported as skipped, with why, elsewhere. */
internal val needsDocker: (TestCase) -> Enabled = {
    RedisFleet.dockerUnavailableReason()?.let { Enabled.disabled("needs a Docker engine: $it") } ?: Enabled.enabled
}

/** The other side: runs where there is no Docker engine. */
internal val needsNoDocker: (TestCase) -> Enabled = {
    if (RedisFleet.dockerAvailable()) Enabled.disabled("a Docker engine is available here") else Enabled.enabled
}

class ContainerFleetTest :
    FunSpec({
        test("a container fleet starts, kills, restarts empty on the same port, pauses, resumes and is removed by close")
            .config(enabledOrReasonIf = needsDocker) {
                val fleet =
                    RedisFleet.builder().masters(3).backend(Backend.CONTAINERS).image(RedisFleet.LOCAL_BINARY_IMAGE)
                        .commandTimeout(Duration.ofMillis(500)).start()
                val ports = (0 until 3).map(fleet::port)
                fleet.use {
                    fleet.backend shouldBe Backend.CONTAINERS
                    fleet.serverVersion shouldStartWith "6.2." // the image holds the bundled binary
                    fleet.pids().shouldBeEmpty()
                    ports.toSet() shouldHaveSize 3
                    fleet.uris() shouldBe ports.map { "redis://${fleet.host}:$it" }
                    for (i in 0 until 3) {
                        fleet.isRunning(i) shouldBe true
                        fleet.command(i, "SET", "k", "v") shouldBe "OK"
                    }
                    fleet.keyCount() shouldBe 3
                    fleet.keys(0) shouldBe listOf("k")

                    fleet.kill(1)
                    fleet.isRunning(1) shouldBe false
                    shouldThrow<RedisFleetException> { fleet.command(1, "PING") }.message shouldContain "not running"
                    fleet.keyCount() shouldBe 2
                    fleet.kill(1) // killing a dead master does nothing
                    fleet.restart(1)
                    fleet.port(1) shouldBe ports[1]
                    fleet.command(1, "GET", "k") shouldBe null
                    fleet.command(1, "EXISTS", RedisFleet.BOOT_MARKER_KEY) shouldBe 0L

                    fleet.pause(0)
                    fleet.isPaused(0) shouldBe true
                    fleet.isRunning(0) shouldBe true
                    val timeout = shouldThrow<RedisFleetException> { fleet.command(0, "GET", "k") }
                    timeout.message shouldContain "paused"
                    timeout.cause.shouldBeInstanceOf<SocketTimeoutException>()
                    fleet.keyCount() shouldBe 1 // master 0 is skipped, master 1 is empty
                    fleet.resume(0)
                    fleet.isPaused(0) shouldBe false
                    fleet.command(0, "GET", "k") shouldBe "v" // data survives a pause

                    fleet.pause(2)
                    fleet.kill(2) // a paused container can be killed
                    fleet.isRunning(2) shouldBe false
                    fleet.restart(2)
                    fleet.command(2, "DBSIZE") shouldBe 0L
                    fleet.pause(2)
                    fleet.restart(2) // and a paused one restarted
                    fleet.command(2, "PING") shouldBe "PONG"

                    fleet.flushAll()
                    fleet.keyCount() shouldBe 0
                }
                for (i in 0 until 3) fleet.isRunning(i) shouldBe false
                for (port in ports) {
                    shouldThrow<java.io.IOException> {
                        Socket().use { socket ->
                            socket.connect(InetSocketAddress(fleet.host, port), 1000)
                            socket.soTimeout = 1000
                            socket.getOutputStream().write("PING\r\n".toByteArray())
                            if (socket.getInputStream().read() == -1) throw java.io.EOFException("closed")
                        }
                    }
                }
            }

        test("a container fleet with a password and serverArgs passes both to every container")
            .config(enabledOrReasonIf = needsDocker) {
                RedisFleet.builder()
                    .masters(2)
                    .backend(Backend.CONTAINERS)
                    .image(RedisFleet.LOCAL_BINARY_IMAGE)
                    .password("p@ss word")
                    .serverArgs("--maxmemory", "2mb")
                    .start()
                    .use { fleet ->
                        fleet.uri(0) shouldBe "redis://:p%40ss%20word@${fleet.host}:${fleet.port(0)}"
                        fleet.command(1, "CONFIG", "GET", "maxmemory") shouldBe listOf("maxmemory", "2097152")
                        val unauthenticated =
                            Socket().use { socket ->
                                socket.connect(InetSocketAddress(fleet.host, fleet.port(0)), 2000)
                                socket.soTimeout = 2000
                                socket.getOutputStream().write("GET k\r\n".toByteArray())
                                socket.getInputStream().bufferedReader().readLine()
                            }
                        unauthenticated shouldStartWith "-NOAUTH"
                    }
            }

        // Also keeps one test active where Docker is missing: kotest drops the skip reasons of a
        // spec none of whose tests runs.
        test("without a Docker engine, CONTAINERS fails at start with what Testcontainers found")
            .config(enabledOrReasonIf = needsNoDocker) {
                val error = shouldThrow<RedisFleetException> { RedisFleet.builder().backend(Backend.CONTAINERS).start() }
                error.message shouldContain "backend CONTAINERS needs a Docker engine reachable through Testcontainers"
                error.message shouldContain RedisFleet.dockerUnavailableReason()!!
            }

        test("an image built from a local binary holds that binary and its libraries only, and later fleets reuse it")
            .config(enabledOrReasonIf = needsDocker) {
                // The binary a local fleet would run, when it is one (the fetched servers are wrapper scripts).
                val onPath = RedisServerBinary.resolve(null)
                val binary = if (isElf(onPath)) onPath else RedisServerBinary.bundled()
                val expected = RedisFleet.builder().redisServer(binary).start().use { it.serverVersion }
                val docker = org.testcontainers.DockerClientFactory.instance().client()
                fun localImages() =
                    docker.listImagesCmd().withLabelFilter(mapOf("dev.redlock.testing.image" to "local-binary")).exec()
                        .associate { it.id to it.created }

                val first =
                    RedisFleet.builder().backend(Backend.CONTAINERS).image(RedisFleet.LOCAL_BINARY_IMAGE).redisServer(binary).start().use { fleet ->
                        fleet.serverVersion shouldBe expected
                        fleet.command(0, "SET", "k", "v") shouldBe "OK"
                        localImages()
                    }
                val image = docker.listImagesCmd().withLabelFilter(mapOf("dev.redlock.testing.image" to "local-binary")).exec()
                    .first { it.repoTags.orEmpty().any { tag -> tag.startsWith("redlock-testing/redis-server:") } }
                val config = docker.inspectImageCmd(image.id).exec()
                config.config?.cmd?.toList() shouldBe listOf("redis-server")
                config.size!! shouldBeLessThan 64L * 1024 * 1024 // a binary and its libraries, no distribution
                RedisFleet.builder().backend(Backend.CONTAINERS).image(RedisFleet.LOCAL_BINARY_IMAGE).redisServer(binary).start().use { fleet ->
                    fleet.serverVersion shouldBe expected
                }
                localImages() shouldBe first // nothing rebuilt
            }

        test("an image cannot be built from a wrapper script, nor redisServer be combined with a registry image")
            .config(enabledOrReasonIf = needsDocker) {
                val script = Files.createTempFile("redis-server-wrapper", ".sh")
                try {
                    Files.writeString(script, "#!/bin/sh\nexec redis-server \"$@\"\n")
                    script.toFile().setExecutable(true)
                    val error =
                        shouldThrow<RedisFleetException> {
                            RedisFleet.builder().backend(Backend.CONTAINERS).image(RedisFleet.LOCAL_BINARY_IMAGE).redisServer(script).start()
                        }
                    error.message shouldContain "not an ELF executable"
                    error.message shouldContain script.toString()
                } finally {
                    Files.deleteIfExists(script)
                }
                shouldThrow<IllegalArgumentException> {
                    RedisFleet.builder().backend(Backend.CONTAINERS).redisServer(RedisServerBinary.bundled()).start()
                }.message shouldContain "LOCAL_BINARY_IMAGE"
            }

        test("containers of a JVM that was killed outright are removed by the next sweep")
            .config(enabledOrReasonIf = needsDocker) {
                val java = Paths.get(System.getProperty("java.home"), "bin", "java").toString()
                val child =
                    ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), UnclosedContainerFleetMain::class.java.name)
                        .redirectErrorStream(true)
                        .apply { environment()["TESTCONTAINERS_RYUK_DISABLED"] = "true" }
                        .start()
                val output = child.inputStream.bufferedReader().readText()
                child.waitFor(60, TimeUnit.SECONDS) shouldBe true
                val ids = Regex("containers=([0-9a-f,]+)").find(output)?.groupValues?.get(1)?.split(",")
                    ?: error("the child printed no container ids:\n$output")
                ids shouldHaveSize 2
                val docker = org.testcontainers.DockerClientFactory.instance().client()
                fun exists(id: String) = runCatching { docker.inspectContainerCmd(id).exec() }.isSuccess
                ids.filter(::exists) shouldHaveSize 2 // halted without its shutdown hook: left behind

                Orphans.sweep() shouldContainAll ids
                ids.filter(::exists).shouldBeEmpty()
            }

        test("a broken image fails the start with the image's name, and leaves no container behind")
            .config(enabledOrReasonIf = needsDocker) {
                val error =
                    shouldThrow<RedisFleetException> {
                        RedisFleet.builder().backend(Backend.CONTAINERS).image("redlock-no-such-image:0.0.0").start()
                    }
                error.message shouldContain "redlock-no-such-image:0.0.0"
            }
    })

/** Whether [path] is an ELF executable rather than a script. */
internal fun isElf(path: Path): Boolean =
    Files.newInputStream(path).use { it.readNBytes(4) }.contentEquals(byteArrayOf(0x7f, 'E'.code.toByte(), 'L'.code.toByte(), 'F'.code.toByte()))

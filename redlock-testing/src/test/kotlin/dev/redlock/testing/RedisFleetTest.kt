package dev.redlock.testing

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldNotBeEmpty
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldMatch
import io.kotest.matchers.string.shouldStartWith
import io.kotest.matchers.types.shouldBeInstanceOf
import java.io.InputStream
import java.net.ConnectException
import java.net.InetSocketAddress
import java.net.Socket
import java.net.SocketTimeoutException
import java.net.URI
import java.nio.file.Files
import java.nio.file.Paths
import java.time.Duration
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread

@Tags("compat")
class RedisFleetTest :
    FunSpec({
        afterEach { redisChildren().shouldBeEmpty() }

        test("start(3) starts three masters that answer PING on distinct loopback ports") {
            RedisFleet.start(3).use { fleet ->
                fleet.size shouldBe 3
                val ports = (0 until 3).map(fleet::port)
                ports.toSet() shouldHaveSize 3
                for (i in 0 until 3) {
                    fleet.isRunning(i) shouldBe true
                    fleet.command(i, "PING") shouldBe "PONG"
                    raw(ports[i], "PING") shouldBe "+PONG"
                }
                fleet.uris() shouldBe ports.map { "redis://127.0.0.1:$it" }
                fleet.uri(2) shouldBe "redis://127.0.0.1:${ports[2]}"
                fleet.host shouldBe "127.0.0.1"
                fleet.backend shouldBe RedisFleet.Backend.LOCAL
                fleet.toString() shouldContain "backend=LOCAL"
                fleet.serverVersion shouldMatch Regex("""\d+\.\d+\.\d+""")
                fleet.pids().toSet() shouldHaveSize 3
            }
        }

        test("kill makes a master unreachable and restart brings it back on the same port with no data") {
            RedisFleet.start(2).use { fleet ->
                fleet.command(1, "SET", "k", "v") shouldBe "OK"
                val port = fleet.port(1)
                val pid = fleet.pids()[1]

                fleet.kill(1)
                fleet.isRunning(1) shouldBe false
                alive(pid) shouldBe false
                fleet.pids() shouldHaveSize 1
                shouldThrow<ConnectException> { Socket().use { it.connect(InetSocketAddress("127.0.0.1", port), 1000) } }
                shouldThrow<RedisFleetException> { fleet.command(1, "PING") }.message shouldContain "not running"
                fleet.command(0, "PING") shouldBe "PONG"
                fleet.kill(1) // killing a dead master does nothing

                fleet.restart(1)
                fleet.port(1) shouldBe port
                fleet.isRunning(1) shouldBe true
                fleet.command(1, "GET", "k") shouldBe null
                fleet.keyCount() shouldBe 0
            }
        }

        test("restart of a running master replaces its process and empties its data") {
            RedisFleet.start(1).use { fleet ->
                fleet.command(0, "SET", "k", "v")
                val before = fleet.pids().single()
                fleet.restart(0)
                (fleet.pids().single() == before) shouldBe false
                alive(before) shouldBe false
                fleet.keys(0).shouldBeEmpty()
            }
        }

        test("pause makes a master stop answering and resume brings it back with its data") {
            RedisFleet.builder().masters(2).commandTimeout(Duration.ofMillis(300)).start().use { fleet ->
                fleet.command(0, "SET", "k", "v")
                fleet.command(1, "SET", "k", "v")
                fleet.isPaused(0) shouldBe false
                fleet.pause(0)
                fleet.isRunning(0) shouldBe true
                fleet.isPaused(0) shouldBe true
                fleet.isPaused(1) shouldBe false
                fleet.pids() shouldHaveSize 2

                val timeout = shouldThrow<RedisFleetException> { fleet.command(0, "GET", "k") }
                timeout.message shouldContain "paused"
                timeout.cause.shouldBeInstanceOf<SocketTimeoutException>()
                fleet.keyCount() shouldBe 1 // the paused master is skipped

                Socket().use { socket ->
                    socket.connect(InetSocketAddress("127.0.0.1", fleet.port(0)), 1000)
                    socket.soTimeout = 200
                    socket.getOutputStream().write("PING\r\n".toByteArray())
                    shouldThrow<SocketTimeoutException> { readLine(socket.getInputStream()) }
                    fleet.resume(0)
                    fleet.isPaused(0) shouldBe false
                    socket.soTimeout = 2000
                    readLine(socket.getInputStream()) shouldBe "+PONG" // the pending command is answered
                }
                fleet.command(0, "GET", "k") shouldBe "v"
                fleet.keyCount() shouldBe 2
            }
        }

        test("a paused master can be killed and restarted") {
            RedisFleet.start(1).use { fleet ->
                fleet.pause(0)
                fleet.kill(0)
                fleet.isRunning(0) shouldBe false
                fleet.isPaused(0) shouldBe false
                shouldThrow<IllegalStateException> { fleet.resume(0) }.message shouldContain "not running"
                fleet.restart(0)
                fleet.command(0, "PING") shouldBe "PONG"
                fleet.pause(0)
                fleet.restart(0)
                fleet.isPaused(0) shouldBe false
                fleet.command(0, "PING") shouldBe "PONG"
            }
        }

        test("a password fleet rejects unauthenticated clients with NOAUTH and its uris carry the password") {
            RedisFleet.builder().masters(2).password("s3cret/pw").start().use { fleet ->
                val port = fleet.port(0)
                raw(port, "PING") shouldStartWith "-NOAUTH"
                raw(port, "AUTH wrong") shouldStartWith "-WRONGPASS"
                fleet.uri(0) shouldBe "redis://:s3cret%2Fpw@127.0.0.1:$port"
                URI(fleet.uris()[1]).userInfo shouldBe ":s3cret/pw"
                fleet.command(0, "PING") shouldBe "PONG"
                fleet.command(1, "SET", "k", "v") shouldBe "OK"
                fleet.keyCount() shouldBe 1
                fleet.flushAll()
                fleet.keyCount() shouldBe 0
                fleet.restart(1)
                raw(fleet.port(1), "PING") shouldStartWith "-NOAUTH"
                fleet.command(1, "PING") shouldBe "PONG"
            }
        }

        test("close stops every process, paused ones too, deletes the directories and is idempotent") {
            val fleet = RedisFleet.start(3)
            fleet.pause(1)
            val pids = fleet.pids()
            pids shouldHaveSize 3
            val directory = fleet.directory!!
            Files.exists(directory) shouldBe true

            fleet.close()
            pids.filter(::alive).shouldBeEmpty()
            fleet.pids().shouldBeEmpty()
            (0 until 3).map(fleet::isRunning) shouldBe listOf(false, false, false)
            Files.exists(directory) shouldBe false

            fleet.close()
            shouldThrow<IllegalStateException> { fleet.command(0, "PING") }.message shouldBe "RedisFleet is closed"
            shouldThrow<IllegalStateException> { fleet.restart(0) }
            shouldThrow<IllegalStateException> { fleet.keyCount() }
            shouldThrow<IllegalStateException> { fleet.flushAll() }
            fleet.isPaused(1) shouldBe false
            fleet.uri(0) shouldBe "redis://127.0.0.1:${fleet.port(0)}"
        }

        test("command returns strings, integers, arrays and nil and throws the server's error message") {
            RedisFleet.start(1).use { fleet ->
                fleet.command(0, "SET", "s", "żółw ok") shouldBe "OK"
                fleet.command(0, "GET", "s") shouldBe "żółw ok"
                fleet.command(0, "GET", "missing") shouldBe null
                fleet.command(0, "INCR", "n") shouldBe 1L
                fleet.command(0, "RPUSH", "l", "a", "", "c") shouldBe 3L
                fleet.command(0, "LRANGE", "l", "0", "-1") shouldBe listOf("a", "", "c")
                fleet.command(0, "LRANGE", "nothing", "0", "-1") shouldBe emptyList<Any?>()

                shouldThrow<RedisFleetException> { fleet.command(0, "INCR", "s") }.message shouldBe
                    "ERR value is not an integer or out of range"
                shouldThrow<RedisFleetException> { fleet.command(0, "NOPE", "x") }.message shouldStartWith
                    "ERR unknown command"
                shouldThrow<IllegalArgumentException> { fleet.command(0) }
                shouldThrow<IllegalArgumentException> { fleet.command(1, "PING") }.message shouldBe
                    "index expected in 0..0, but was 1"
                fleet.command(0, "PING") shouldBe "PONG"
            }
        }

        test("keys, keyCount and flushAll see the keys on every running master") {
            RedisFleet.start(3).use { fleet ->
                for (key in listOf("b:1", "a:2", "a:1")) fleet.command(0, "SET", key, "x")
                fleet.command(2, "SET", "a:3", "x")
                fleet.keys(0) shouldContainExactly listOf("a:1", "a:2", "b:1")
                fleet.keys(0, "a:*") shouldContainExactly listOf("a:1", "a:2")
                fleet.keys(1).shouldBeEmpty()
                fleet.keyCount() shouldBe 4

                fleet.kill(1) // a dead master counts as empty and is skipped by flushAll
                fleet.keyCount() shouldBe 4
                fleet.flushAll()
                fleet.keyCount() shouldBe 0
                fleet.keys(0).shouldBeEmpty()
                fleet.keys(2).shouldBeEmpty()
            }
        }

        test("commands from several threads at once all get through") {
            RedisFleet.start(2).use { fleet ->
                val failures = java.util.concurrent.ConcurrentLinkedQueue<Throwable>()
                val threads =
                    (0 until 8).map { t ->
                        thread {
                            try {
                                repeat(50) { fleet.command(t % 2, "INCR", "n") }
                            } catch (e: Throwable) {
                                failures.add(e)
                            }
                        }
                    }
                threads.forEach { it.join() }
                failures.shouldBeEmpty()
                fleet.command(0, "GET", "n") shouldBe "200"
                fleet.command(1, "GET", "n") shouldBe "200"

                val restarts = (0 until 2).map { i -> thread { fleet.restart(i) } }
                restarts.forEach { it.join() }
                (0 until 2).map { fleet.command(it, "PING") } shouldBe listOf("PONG", "PONG")
            }
        }

        test("serverArgs reach every redis-server") {
            RedisFleet.builder().masters(2).serverArgs("--maxmemory", "2mb").start().use { fleet ->
                for (i in 0 until 2) fleet.command(i, "CONFIG", "GET", "maxmemory") shouldBe listOf("maxmemory", "2097152")
            }
        }

        test("a master that fails to start reports the tail of its log and leaves no process behind") {
            val e = shouldThrow<RedisFleetException> { RedisFleet.builder().masters(3).serverArgs("--no-such-directive", "1").start() }
            e.message shouldContain "exited with code"
            // The log's own words differ by server ("Bad directive" up to Redis 7 and on Valkey,
            // "Unresolved Configuration(s) Detected" on Redis 8); each names the directive.
            val log = e.message!!.substringAfter("last lines:")
            log shouldContain "no-such-directive"
            listOf("Bad directive", "Unresolved Configuration").filter { it in log }.shouldNotBeEmpty()
        }

        test("bad settings and indexes are rejected with the setting, the range and the value") {
            shouldThrow<IllegalArgumentException> { RedisFleet.start(0) }.message shouldBe "masters expected in 1..15, but was 0"
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().masters(16) }.message shouldBe
                "masters expected in 1..15, but was 16"
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().password("") }
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().serverArgs("--port", "1") }.message shouldContain "--port"
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().commandTimeout(Duration.ZERO) }
            RedisFleet.start(1).use { fleet ->
                shouldThrow<IllegalArgumentException> { fleet.port(-1) }
                shouldThrow<IllegalArgumentException> { fleet.kill(1) }
            }
        }

        test("an explicit redis-server path is used, and a missing one fails with a clear message") {
            val bundled = RedisServerBinary.bundled()
            RedisFleet.builder().redisServer(bundled).start().use { it.command(0, "PING") shouldBe "PONG" }
            val missing = Paths.get("/nonexistent/redis-server")
            shouldThrow<RedisFleetException> { RedisFleet.builder().redisServer(missing).start() }.message shouldContain
                "does not exist"
        }

        test("the binary comes from REDLOCK_REDIS_SERVER, then PATH, then the embedded-redis jar") {
            val bundled = RedisServerBinary.bundled()
            val dir = Files.createTempDirectory("fake-path-")
            try {
                val onPath = Files.copy(bundled, dir.resolve("redis-server"))
                val env = mapOf("REDLOCK_REDIS_SERVER" to bundled.toString(), "PATH" to "/nowhere:$dir")
                RedisServerBinary.resolve(null, env::get, "Linux", "amd64") shouldBe bundled
                RedisServerBinary.resolve(null, (env - "REDLOCK_REDIS_SERVER")::get, "Linux", "amd64") shouldBe onPath
                RedisServerBinary.resolve(null, { null }, "Linux", "x86_64") shouldBe RedisServerBinary.bundled()
                shouldThrow<RedisFleetException> {
                    RedisServerBinary.resolve(null, mapOf("REDLOCK_REDIS_SERVER" to "/nope")::get, "Linux", "amd64")
                }.message shouldContain "\$REDLOCK_REDIS_SERVER does not exist"
                val unsupported = shouldThrow<RedisFleetException> { RedisServerBinary.resolve(null, { null }, "Windows 11", "amd64") }
                unsupported.message shouldContain "os.name='Windows 11'"
                unsupported.message shouldContain "REDLOCK_REDIS_SERVER"
                unsupported.message shouldContain "redisServer(path)"
            } finally {
                RedisMaster.deleteRecursively(dir)
            }
        }

        test("a fleet never closed is stopped by the shutdown hook when its JVM dies") {
            val java = Paths.get(System.getProperty("java.home"), "bin", "java").toString()
            val child =
                ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), UnclosedFleetMain::class.java.name)
                    .redirectErrorStream(true)
                    .start()
            val output = child.inputStream.bufferedReader().readText()
            child.waitFor(30, TimeUnit.SECONDS) shouldBe true
            output shouldContain "a test failed without closing its fleet"
            val pids = Regex("pids=([0-9,]+)").find(output)!!.groupValues[1].split(",").map(String::toLong)
            pids shouldHaveSize 2
            pids.filter(::alive).shouldBeEmpty()
        }

        test("Java callers use the API with statics, overloads and try-with-resources") {
            JavaUsage.run(RedisServerBinary.bundled()) shouldBe
                listOf<Any?>(
                    "OK", listOf("java:key"), listOf("java:key"), 1, 0, 2, 2, true, false,
                    RedisFleet.Backend.LOCAL, "127.0.0.1", true, false, 2,
                    listOf("maxmemory", "2097152"), true, true, true,
                )
        }
    })

private fun alive(pid: Long): Boolean = ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)

private fun redisChildren(): List<ProcessHandle> =
    ProcessHandle.current().children().filter { handle ->
        handle.isAlive && handle.info().command().map { it.contains("redis-server") }.orElse(false)
    }.toList()

/** Sends one inline command over a fresh connection and returns the first reply line. */
private fun raw(port: Int, line: String): String =
    Socket().use { socket ->
        socket.connect(InetSocketAddress("127.0.0.1", port), 2000)
        socket.soTimeout = 2000
        socket.getOutputStream().write("$line\r\n".toByteArray())
        readLine(socket.getInputStream())
    }

private fun readLine(input: InputStream): String {
    val line = StringBuilder()
    while (true) {
        val b = input.read()
        check(b != -1) { "connection closed" }
        if (b == '\n'.code) return line.toString().removeSuffix("\r")
        line.append(b.toChar())
    }
}

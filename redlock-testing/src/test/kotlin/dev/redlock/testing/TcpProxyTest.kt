package dev.redlock.testing

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.throwables.shouldThrowAny
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.comparables.shouldBeGreaterThanOrEqualTo
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldStartWith
import io.kotest.matchers.types.shouldBeInstanceOf
import java.io.IOException
import java.io.InputStream
import java.net.ConnectException
import java.net.InetSocketAddress
import java.net.Socket
import java.net.SocketTimeoutException
import java.time.Duration
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

class TcpProxyTest :
    FunSpec({
        val fleet = RedisFleet.start(1)
        afterSpec { fleet.close() }
        afterEach {
            fleet.flushAll()
            eventually("no proxy thread left") { proxyThreads().isEmpty() }
        }

        test("forwards commands and replies in both directions and counts its connections") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                proxy.uri() shouldBe "redis://127.0.0.1:${proxy.port}"
                proxy.connectionCount shouldBe 0
                Client(proxy.port).use { client ->
                    client.call("SET k v") shouldBe "+OK"
                    client.call("GET k") shouldBe "\$1"
                    client.line() shouldBe "v"
                    proxy.connectionCount shouldBe 1
                }
                fleet.command(0, "GET", "k") shouldBe "v"
                eventually("the closed client's connection is gone") { proxy.connectionCount == 0 }
            }
        }

        test("latency delays every reply by at least that much and keeps byte order") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                Client(proxy.port).use { client ->
                    client.call("PING") shouldBe "+PONG"
                    proxy.latency = Duration.ofMillis(150)
                    val started = System.nanoTime()
                    client.call("PING") shouldBe "+PONG"
                    // A lower bound only: the request and the reply are each delayed by 150 ms.
                    Duration.ofNanos(System.nanoTime() - started) shouldBeGreaterThanOrEqualTo Duration.ofMillis(300)

                    proxy.latency = Duration.ofMillis(5)
                    // Many small writes, each its own chunk: the replies still come back in order.
                    for (i in 0 until 200) client.send("INCR counter")
                    for (i in 1..200) client.line() shouldBe ":$i"
                    proxy.latency = Duration.ZERO
                    client.call("PING") shouldBe "+PONG"
                }
            }
        }

        test("latency rejects a negative duration") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                shouldThrow<IllegalArgumentException> { proxy.latency = Duration.ofMillis(-1) }
                    .message shouldContain "latency expected to be zero or positive, but was PT-0.001S"
            }
        }

        test("a black hole forwards nothing either way but keeps connections open; heal forwards again") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                Client(proxy.port).use { client ->
                    client.call("PING") shouldBe "+PONG"
                    proxy.blackHole()
                    proxy.isBlackHoled shouldBe true
                    client.send("SET lost 1")
                    shouldThrow<SocketTimeoutException> { client.line(timeoutMillis = 300) }
                    fleet.command(0, "EXISTS", "lost") shouldBe 0L
                    proxy.connectionCount shouldBe 1

                    // Accepted, but not connected to the master while the black hole lasts.
                    Client(proxy.port).use { late ->
                        late.send("SET late 1")
                        shouldThrow<SocketTimeoutException> { late.line(timeoutMillis = 300) }
                        proxy.connectionCount shouldBe 2
                        fleet.command(0, "EXISTS", "late") shouldBe 0L

                        proxy.heal()
                        proxy.isBlackHoled shouldBe false
                        late.call("SET late 2") shouldBe "+OK"
                        fleet.command(0, "GET", "late") shouldBe "2"
                    }
                    client.call("SET kept 1") shouldBe "+OK"
                    fleet.command(0, "EXISTS", "lost") shouldBe 0L
                }
            }
        }

        test("a reply read before the black hole but still waiting out its latency is dropped") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                Client(proxy.port).use { client ->
                    proxy.latency = Duration.ofMillis(400)
                    client.send("SET slow 1")
                    Thread.sleep(100)
                    proxy.blackHole()
                    Thread.sleep(100)
                    proxy.heal()
                    shouldThrow<SocketTimeoutException> { client.line(timeoutMillis = 1_000) }
                    fleet.command(0, "EXISTS", "slow") shouldBe 0L
                }
            }
        }

        test("resetConnections closes both sides with an RST and the proxy keeps serving") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                val before = connectedClients(fleet)
                Client(proxy.port).use { client ->
                    client.call("PING") shouldBe "+PONG"
                    connectedClients(fleet) shouldBe before + 1
                    proxy.resetConnections()
                    val failure = shouldThrowAny { client.line(timeoutMillis = 2_000) }
                    failure.shouldBeInstanceOf<IOException>()
                    failure.message shouldContain "reset"
                    proxy.connectionCount shouldBe 0
                    eventually("the master saw its side closed") { connectedClients(fleet) == before }
                }
                Client(proxy.port).use { again -> again.call("PING") shouldBe "+PONG" }
            }
        }

        test("closeConnections closes both sides the orderly way and the proxy keeps serving") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                val before = connectedClients(fleet)
                Client(proxy.port).use { client ->
                    client.call("PING") shouldBe "+PONG"
                    proxy.closeConnections()
                    // An orderly close reads as the end of the stream, not as a reset.
                    shouldThrow<IOException> { client.line(timeoutMillis = 2_000) }.message shouldBe "connection closed"
                    proxy.connectionCount shouldBe 0
                    eventually("the master saw its side closed") { connectedClients(fleet) == before }
                }
                Client(proxy.port).use { again -> again.call("PING") shouldBe "+PONG" }
            }
        }

        test("a connection to a target that is down is reset") {
            RedisFleet.start(1).use { other ->
                TcpProxy.start("127.0.0.1", other.port(0)).use { proxy ->
                    other.kill(0)
                    Client(proxy.port).use { client ->
                        client.send("PING")
                        shouldThrowAny { client.line(timeoutMillis = 2_000) }.shouldBeInstanceOf<IOException>()
                    }
                    eventually("the refused connection is gone") { proxy.connectionCount == 0 }
                }
            }
        }

        test("a black hole armed on the next matching command drops that command and those after it, not those before") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                Client(proxy.port).use { client ->
                    client.call("PING") shouldBe "+PONG"
                    val armed = proxy.blackHoleFromNextCommand { it.name == "SET" && it.argument(0) == "b" }
                    armed.isFired shouldBe false
                    // One write: the proxy most likely reads all three at once and must cut between them.
                    client.send("SET a 1\r\nSET b 2\r\nSET c 3")
                    armed.fired.get(5, TimeUnit.SECONDS).arguments shouldBe listOf("b", "2")
                    proxy.isBlackHoled shouldBe true
                    eventually("the command before the matching one reached the master") { fleet.command(0, "EXISTS", "a") == 1L }
                    Thread.sleep(300)
                    fleet.command(0, "EXISTS", "b") shouldBe 0L
                    fleet.command(0, "EXISTS", "c") shouldBe 0L
                    proxy.resetConnections()
                    proxy.heal()
                }
                Client(proxy.port).use { again -> again.call("EXISTS b") shouldBe ":0" }
            }
        }

        test("a command split over many reads is recognised once its last byte passes, in RESP as clients send it") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                Client(proxy.port).use { client ->
                    val armed = proxy.blackHoleFromNextCommand { it.name == "SET" && it.argument(0) == "split" }
                    client.sendRaw(resp("SET", "before", "1"))
                    client.line() shouldBe "+OK"
                    val bytes = resp("SET", "split", "value")
                    for (b in bytes) {
                        client.sendRaw(byteArrayOf(b))
                        Thread.sleep(2)
                    }
                    armed.fired.get(5, TimeUnit.SECONDS).toString() shouldBe "SET split value"
                    Thread.sleep(300)
                    fleet.command(0, "EXISTS", "split") shouldBe 0L
                    fleet.command(0, "GET", "before") shouldBe "1"
                    proxy.resetConnections()
                    proxy.heal()
                }
            }
        }

        test("the armed action runs before the matching command reaches the server, and only on a match") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                Client(proxy.port).use { client ->
                    val armed = proxy.onNextCommand({ it.name == "GET" && it.argument(0) == "flag" }) {
                        fleet.command(0, "SET", "flag", "set-by-action")
                    }
                    client.call("PING") shouldBe "+PONG"
                    client.call("GET other") shouldBe "\$-1"
                    armed.isFired shouldBe false
                    client.call("GET flag") shouldBe "\$13"
                    client.line() shouldBe "set-by-action"
                    armed.isFired shouldBe true
                    armed.fired.isDone shouldBe true
                }
            }
        }

        test("a latency armed on a script's EVALSHA starts with that call: it is delayed, the calls before it are not touched") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                Client(proxy.port).use { client ->
                    client.call("SCRIPT LOAD \"return 7\"") shouldBe "\$40"
                    val sha = client.line()
                    val armed = proxy.latencyFromNextCommand(Duration.ofMillis(200)) { it.isEvalSha(sha) }
                    client.call("EVALSHA ${"0".repeat(40)} 0").shouldStartWith("-NOSCRIPT")
                    client.call("PING") shouldBe "+PONG"
                    proxy.latency shouldBe Duration.ZERO
                    armed.isFired shouldBe false
                    val sent = System.nanoTime()
                    client.call("EVALSHA ${sha.uppercase()} 0") shouldBe ":7"
                    val replied = System.nanoTime()
                    armed.fired.get(5, TimeUnit.SECONDS).name shouldBe "EVALSHA"
                    (armed.firedAtNanos in sent..replied) shouldBe true
                    // The call itself and its reply were each delayed (a lower bound only).
                    Duration.ofNanos(replied - sent) shouldBeGreaterThanOrEqualTo Duration.ofMillis(400)
                    // The latency stays in force until it is set again.
                    proxy.latency shouldBe Duration.ofMillis(200)
                    proxy.latency = Duration.ZERO
                }
            }
        }

        test("a reset armed on the next command loses that command and resets every connection; the proxy keeps serving") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                Client(proxy.port).use { bystander ->
                    bystander.call("PING") shouldBe "+PONG"
                    Client(proxy.port).use { client ->
                        val armed = proxy.resetOnNextCommand { it.name == "SET" }
                        client.call("PING") shouldBe "+PONG"
                        client.send("SET lost 1")
                        shouldThrowAny { client.line(timeoutMillis = 2_000) }.shouldBeInstanceOf<IOException>()
                        shouldThrowAny { bystander.line(timeoutMillis = 2_000) }.shouldBeInstanceOf<IOException>()
                        armed.fired.get(5, TimeUnit.SECONDS).name shouldBe "SET"
                        fleet.command(0, "EXISTS", "lost") shouldBe 0L
                    }
                }
                Client(proxy.port).use { again -> again.call("SET kept 1") shouldBe "+OK" }
            }
        }

        test("an armed fault fires once, on whichever connection sends the first match; cancel disarms; a throwing matcher fails it") {
            TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
                val runs = AtomicInteger()
                Client(proxy.port).use { one ->
                    Client(proxy.port).use { two ->
                        val armed = proxy.onNextCommand({ it.name == "INCR" }) { runs.incrementAndGet() }
                        two.call("INCR n") shouldBe ":1"
                        one.call("INCR n") shouldBe ":2"
                        runs.get() shouldBe 1
                        armed.cancel() shouldBe false

                        val disarmed = proxy.onNextCommand({ it.name == "INCR" }) { runs.incrementAndGet() }
                        disarmed.cancel() shouldBe true
                        disarmed.cancel() shouldBe false
                        one.call("INCR n") shouldBe ":3"
                        runs.get() shouldBe 1
                        disarmed.fired.isCancelled shouldBe true
                        disarmed.isFired shouldBe false

                        val broken = proxy.onNextCommand({ error("matcher failed") }) { runs.incrementAndGet() }
                        one.call("INCR n") shouldBe ":4"
                        shouldThrow<ExecutionException> { broken.fired.get(5, TimeUnit.SECONDS) }.cause!!.message shouldBe "matcher failed"
                        runs.get() shouldBe 1
                    }
                }
                val left = proxy.onNextCommand { runs.incrementAndGet() }
                proxy.close()
                left.fired.isCancelled shouldBe true
            }
        }

        test("the command reader finds the same commands however the stream is cut, and gives up on what is not RESP") {
            val stream = resp("EVALSHA", "abc", "1", "k", "t") + "PING\r\n".toByteArray() + resp("SET", "", "x") + resp("GET", "k")
            fun read(cuts: List<Int>): List<Pair<Int, String>> {
                val reader = CommandReader()
                val found = ArrayList<Pair<Int, String>>()
                var from = 0
                for (to in cuts + stream.size) {
                    val piece = stream.copyOfRange(from, to)
                    reader.feed(piece, piece.size) { start, _, command -> found += (if (start < 0) -1 else from + start) to command.toString() }
                    from = to
                }
                return found
            }
            val whole = read(emptyList())
            whole.map { it.second } shouldBe listOf("EVALSHA abc 1 k t", "PING", "SET  x", "GET k")
            val starts = whole.map { it.first }
            starts shouldBe listOf(0, 47, 53, 79)
            val ends = starts.drop(1) + stream.size
            for (cut in 1 until stream.size) {
                val found = read(listOf(cut))
                found.map { it.second } shouldBe whole.map { it.second }
                // A command that began in the first piece and ends in the second is reported with -1.
                found.map { it.first } shouldBe starts.mapIndexed { i, start -> if (start < cut && ends[i] > cut) -1 else start }
            }
            read((1 until stream.size).toList()).map { it.second } shouldBe whole.map { it.second }

            val garbage = CommandReader()
            garbage.feed("*2\r\nX".toByteArray(), 5) { _, _, _ -> error("nothing expected") }
            garbage.usable shouldBe false
        }

        test("close stops listening, resets every connection, stops its threads and is idempotent") {
            val proxy = TcpProxy.start("127.0.0.1", fleet.port(0))
            val port = proxy.port
            Client(port).use { client ->
                client.call("PING") shouldBe "+PONG"
                proxy.blackHole()
                Client(port).use { held ->
                    eventually("the held connection is accepted") { proxy.connectionCount == 2 }
                    proxy.close()
                    proxy.close()
                    shouldThrowAny { client.line(timeoutMillis = 2_000) }.shouldBeInstanceOf<IOException>()
                    shouldThrowAny { held.line(timeoutMillis = 2_000) }.shouldBeInstanceOf<IOException>()
                }
            }
            proxy.connectionCount shouldBe 0
            shouldThrow<ConnectException> { Socket().use { it.connect(InetSocketAddress("127.0.0.1", port), 1_000) } }
            eventually("no thread of the closed proxy left") { proxyThreads().isEmpty() }
            proxyThreads().shouldBeEmpty()
        }

        test("start rejects a bad target") {
            shouldThrow<IllegalArgumentException> { TcpProxy.start("127.0.0.1", 0) }
                .message shouldBe "targetPort expected in 1..65535, but was 0"
            shouldThrow<IllegalArgumentException> { TcpProxy.start(" ", 6379) }
                .message shouldContain "targetHost"
        }
    })

/** A raw RESP client speaking inline commands, reading reply lines. */
private class Client(port: Int) : AutoCloseable {
    private val socket = Socket().apply { connect(InetSocketAddress("127.0.0.1", port), 2_000) }
    private val input: InputStream = socket.getInputStream()

    fun send(command: String) {
        socket.getOutputStream().apply {
            write("$command\r\n".toByteArray())
            flush()
        }
    }

    fun sendRaw(bytes: ByteArray) {
        socket.getOutputStream().apply {
            write(bytes)
            flush()
        }
    }

    fun call(command: String): String {
        send(command)
        return line()
    }

    fun line(timeoutMillis: Int = 5_000): String {
        socket.soTimeout = timeoutMillis
        val out = StringBuilder()
        while (true) {
            val b = input.read()
            if (b == -1) throw IOException("connection closed")
            if (b == '\n'.code) return out.toString().removeSuffix("\r")
            out.append(b.toChar())
        }
    }

    override fun close() = socket.close()
}

/** A command as client libraries send it: a RESP array of bulk strings. */
private fun resp(vararg parts: String): ByteArray {
    val out = java.io.ByteArrayOutputStream()
    out.write("*${parts.size}\r\n".toByteArray())
    for (p in parts) {
        val bytes = p.toByteArray()
        out.write("\$${bytes.size}\r\n".toByteArray())
        out.write(bytes)
        out.write("\r\n".toByteArray())
    }
    return out.toByteArray()
}

private fun connectedClients(fleet: RedisFleet): Int {
    val info = fleet.command(0, "INFO", "clients") as String
    // The INFO call itself is one of the connected clients.
    return info.lineSequence().first { it.startsWith("connected_clients:") }.substringAfter(':').trim().toInt() - 1
}

private fun proxyThreads(): List<Thread> = Thread.getAllStackTraces().keys.filter { it.name.startsWith("tcp-proxy-") && it.isAlive }

/** Polls [condition] for up to 10 s (a hang guard, not a speed assertion). */
private fun eventually(what: String, condition: () -> Boolean) {
    val deadline = System.nanoTime() + 10_000_000_000L
    while (!condition()) {
        if (System.nanoTime() > deadline) throw AssertionError("not reached within 10 s: $what")
        Thread.sleep(10)
    }
}

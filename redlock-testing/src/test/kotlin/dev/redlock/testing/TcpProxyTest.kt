package dev.redlock.testing

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.throwables.shouldThrowAny
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.comparables.shouldBeGreaterThanOrEqualTo
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeInstanceOf
import java.io.IOException
import java.io.InputStream
import java.net.ConnectException
import java.net.InetSocketAddress
import java.net.Socket
import java.net.SocketTimeoutException
import java.time.Duration

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

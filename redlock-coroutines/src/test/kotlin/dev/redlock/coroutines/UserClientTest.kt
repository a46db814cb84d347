package dev.redlock.coroutines

import dev.redlock.core.RedlockConfig
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.lettuce.core.ClientOptions
import io.lettuce.core.RedisClient
import io.lettuce.core.RedisURI
import io.lettuce.core.api.StatefulRedisConnection
import java.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope

/** Masters reached through the application's own Lettuce client or connection: used, never shut down. */
@Tags("compat")
class UserClientTest : FunSpec({
    val fleet = sharedFleet(3)
    lateinit var client: RedisClient
    beforeSpec {
        client = RedisClient.create().apply {
            options = ClientOptions.builder().disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS).build()
        }
    }
    afterSpec { client.shutdown(Duration.ZERO, Duration.ofSeconds(5)) }

    fun connectedClients(i: Int): Long =
        (fleet.command(i, "INFO", "clients") as String).lineSequence()
            .first { it.startsWith("connected_clients:") }.substringAfter(':').trim().toLong()

    test("a URI, a user's client and a user's connection as the 3 masters: locks work, waiters are woken, and close leaves the user's client and connection working") {
        val connection: StatefulRedisConnection<String, String> = client.connect(RedisURI.create(fleet.uri(2)))
        try {
            val before = connectedClients(1)
            val config = RedlockConfig.builder().restartGuard(java.time.Duration.ofSeconds(30))
                .master(fleet.uri(0))
                .master(client, RedisURI.create(fleet.uri(1)))
                .master(connection)
                .leaseTime(Duration.ofSeconds(5))
                .waitTime(Duration.ofSeconds(40))
                // A wake-up within seconds can only come from a release notice.
                .retryDelay(Duration.ofSeconds(20))
                .build()
            Redlock(config).use { redlock ->
                Redlock(config).use { other ->
                    redlock.withRedlock("mixed") {
                        // Granted once a majority answered; the third master sets the key a moment later.
                        eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it) == listOf("redlock:mixed") } }
                    }
                    val holder = other.acquire("mixed", leaseTime = 30.seconds)
                    val started = CompletableDeferred<Unit>()
                    coroutineScope {
                        val waiter = async {
                            started.complete(Unit)
                            redlock.acquire("mixed")
                        }
                        awaitStart(started, waiter)
                        eventually(what = "the waiter is queued") { redlock.engine.rooms.size == 1 }
                        holder.release()
                        // Released by another Redlock: woken by the notices of the masters with a notice
                        // connection, long before the holder's 30 s lease or a 10-30 s retry delay.
                        awaitOrDump(waiter, limit = 5.seconds).release()
                    }
                    (connectedClients(1) > before) shouldBe true
                }
            }
            eventually(what = "the connections the library opened are closed") { connectedClients(1) == before }
            connection.isOpen shouldBe true
            connection.sync().ping() shouldBe "PONG"
            client.connect(RedisURI.create(fleet.uri(1))).use { it.sync().set("after-close", "ok") shouldBe "OK" }
            fleet.command(1, "DEL", "after-close")
        } finally {
            connection.close()
        }
    }

    test("masters given only as connections: locks work through them, waiters fall back to the retry delay, and the connections stay open") {
        val connections = (0 until 3).map { client.connect(RedisURI.create(fleet.uri(it))) }
        try {
            val config = RedlockConfig.builder().restartGuard(java.time.Duration.ofSeconds(30))
                .apply { connections.forEach { master(it) } }
                .leaseTime(Duration.ofSeconds(5))
                .retryDelay(Duration.ofMillis(20))
                .build()
            Redlock(config).use { redlock ->
                Redlock(config).use { other ->
                    val holder = other.acquire("conn", leaseTime = 30.seconds)
                    eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it) == listOf("redlock:conn") } }
                    coroutineScope {
                        val waiter = async { redlock.acquire("conn", waitTime = 20.seconds) }
                        eventually(what = "the waiter is queued") { redlock.engine.rooms.size == 1 }
                        holder.release()
                        // No notice connection: the waiter learns of the release at its next retry.
                        awaitOrDump(waiter, limit = 10.seconds).release()
                    }
                }
            }
            for (c in connections) {
                c.isOpen shouldBe true
                c.sync().ping() shouldBe "PONG"
            }
        } finally {
            connections.forEach { it.close() }
        }
    }
})

package dev.redlock.benchmarks

import dev.redlock.testing.RedisFleet
import io.lettuce.core.RedisClient
import io.lettuce.core.RedisURI
import io.lettuce.core.api.StatefulRedisConnection
import io.lettuce.core.api.async.RedisAsyncCommands
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.future.await

/**
 * An administrator's connections to every master of [fleet], one each, opened once: what scenarios
 * 6 to 8 do to the masters (`DEL`, `FLUSHALL`) and read from them (`PTTL`, `INFO`) while the
 * subjects hold locks. A command to several masters is sent to all of them at once, as a quick
 * administrator's script would, and awaited.
 */
class Admin(private val fleet: RedisFleet) : AutoCloseable {
    private val client: RedisClient = RedisClient.create()
    private val connections: List<StatefulRedisConnection<String, String>>
    private val commands: List<RedisAsyncCommands<String, String>>

    init {
        try {
            connections = fleet.uris().map { client.connect(RedisURI.create(it)) }
            commands = connections.map { it.async() }
        } catch (e: Throwable) {
            client.shutdown(0, 2, TimeUnit.SECONDS)
            throw e
        }
    }

    /** `DEL keys` on each of [masters] at once; returns the keys deleted, summed. */
    suspend fun del(masters: List<Int>, keys: Array<String>): Long {
        val sent = masters.map { commands[it].del(*keys).toCompletableFuture() }
        return sent.sumOf { it.await() }
    }

    /**
     * `FLUSHALL` on each of [masters] at once. It also removes the boot marker of the library's
     * restart guard, which then (rightly) stops counting those masters' votes for a lease time:
     * [restoreBootMarkers] puts it back, as [RedisFleet.flushAll] does, before the next sample.
     */
    suspend fun flushAll(masters: List<Int>) {
        val sent = masters.map { commands[it].flushall().toCompletableFuture() }
        for (s in sent) s.await()
    }

    /** Marks [masters] again as masters that granted nothing they could have forgotten (see [RedisFleet.flushAll]). */
    suspend fun restoreBootMarkers(masters: List<Int>) {
        val sent = masters.map {
            commands[it].eval<String>(MARK_NEVER_GRANTED, io.lettuce.core.ScriptOutputType.STATUS, RedisFleet.BOOT_MARKER_KEY).toCompletableFuture()
        }
        for (s in sent) s.await()
    }

    /** One `PTTL` reading: the key's remaining time in ms (-2 gone, -1 no expiry), and when it was asked and answered. */
    class Pttl(val sentNanos: Long, val answeredNanos: Long, val millis: Long) {
        /**
         * When the key expires, on this process's clock: the middle of the round trip plus the
         * remaining time (which the server truncates to the millisecond), or null without expiry.
         */
        val expiresAtNanos: Long? get() = if (millis < 0) null else (sentNanos + answeredNanos) / 2 + millis * 1_000_000
    }

    /** `PTTL key` on each of [masters] at once. */
    suspend fun pttl(masters: List<Int>, key: String): List<Pttl> {
        val sent = masters.map { m ->
            val at = now()
            val reply = commands[m].pttl(key).toCompletableFuture()
            at to reply.thenApply { Pttl(at, now(), it) }
        }
        return sent.map { it.second.await() }
    }

    /** How many of [keys] exist on master [master]. */
    suspend fun exists(master: Int, keys: Array<String>): Long = commands[master].exists(*keys).toCompletableFuture().await()

    /** `INFO section` of master [master], as `name -> value` pairs. */
    suspend fun info(master: Int, section: String): Map<String, String> {
        val text = commands[master].info(section).toCompletableFuture().await()
        return text.lineSequence().filter { ':' in it && !it.startsWith("#") }
            .associate { it.substringBefore(':').trim() to it.substringAfter(':').trim() }
    }

    /** The calls counters of `INFO commandstats` on master [master]. */
    suspend fun commandStats(master: Int): CommandStats =
        CommandStats(info(master, "commandstats").mapNotNull { (name, value) ->
            if (!name.startsWith("cmdstat_")) null
            else value.substringAfter("calls=").substringBefore(',').trim().toLongOrNull()?.let { name.removePrefix("cmdstat_") to it }
        }.toMap())

    /** `CONFIG GET name` of master [master]. */
    suspend fun config(master: Int, name: String): String? = commands[master].configGet(name).toCompletableFuture().await()[name]

    override fun close() {
        connections.forEach { runCatching { it.close() } }
        client.shutdown(0, 2, TimeUnit.SECONDS)
    }

    private companion object {
        /** As RedisFleet's own marker: dated a year back, so no master counts as having started empty. */
        const val MARK_NEVER_GRANTED =
            "local t = redis.call('TIME') return redis.call('SET', KEYS[1], string.format('%d', t[1] * 1000 - 31536000000))"
    }
}

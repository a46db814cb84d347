package dev.redlock.postgres.internal

import java.sql.Connection
import java.sql.SQLException
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import javax.sql.DataSource
import org.postgresql.PGConnection
import org.slf4j.LoggerFactory

/**
 * Release notices across processes: a release sends `NOTIFY channel, '<notice> <family> <key>'`
 * from the holder's session, and every node that has waiters listens on the channel with one
 * connection of its own (`LISTEN`), on a daemon thread blocked in the driver until a notice comes,
 * so waiting costs no polling. Notices of locks nobody here waits for are dropped.
 *
 * A notice can be missed (the listening connection dropped and is being opened again; a holder's
 * session ended without a release); the engine's retry pause then wakes the waiter anyway.
 */
internal class ReleaseNotices(
    private val dataSource: DataSource,
    private val node: String,
    private val channel: String,
    private val heard: (family: String, key: String, notice: String) -> Unit,
) : AutoCloseable {
    private val watched = ConcurrentHashMap<String, Int>()
    private val lock = Any()
    private var thread: Thread? = null

    @Volatile private var connection: Connection? = null
    @Volatile private var closed = false
    @Volatile private var listening = CountDownLatch(1)

    /**
     * Starts passing on notices of [family]'s lock [key]. Never waits: the node's stripe must not stand
     * still while the listening connection is being opened (a new session can take longer than a
     * lock operation's bound). A notice sent before the channel is listened to is missed, and the
     * waiter then tries again after its retry pause.
     */
    fun watch(family: String, key: String) {
        watched.merge(watchKey(family, key), 1, Int::plus)
        start()
    }

    /** Whether the channel is listened to now (for tests). */
    fun isListening(timeoutMillis: Long): Boolean = listening.await(timeoutMillis, TimeUnit.MILLISECONDS)

    /** Stops passing on notices of [family]'s lock [key] once every watch of it ended. */
    fun unwatch(family: String, key: String) {
        watched.computeIfPresent(watchKey(family, key)) { _, n -> if (n <= 1) null else n - 1 }
    }

    /** Opens the listening connection in the background (the locks do so when they are created). */
    fun start() {
        synchronized(lock) {
            if (thread != null || closed) return
            thread = Thread(::run, "redlock-postgres-listen-$node").apply {
                isDaemon = true
                start()
            }
        }
    }

    private fun run() {
        var backoff = 50L
        while (!closed) {
            val c =
                try {
                    dataSource.connection.also { connection = it }
                } catch (e: SQLException) {
                    LOG.warn("Cannot listen for release notices on {}: {} (waiters fall back to their retry pause)", node, e.toString())
                    sleep(backoff)
                    backoff = minOf(backoff * 2, 2_000)
                    continue
                }
            try {
                c.autoCommit = true
                c.createStatement().use { it.execute("LISTEN $channel") }
                listening.countDown()
                backoff = 50
                val pg = c.unwrap(PGConnection::class.java)
                while (!closed) {
                    val notifications = pg.getNotifications(0) ?: continue
                    for (n in notifications) {
                        val parsed = ReleaseNotices.parse(n.parameter) ?: continue
                        if (watched.containsKey(watchKey(parsed.second, parsed.third))) heard(parsed.second, parsed.third, parsed.first)
                    }
                }
            } catch (e: SQLException) {
                if (!closed) LOG.warn("Listening for release notices on {} stopped: {}; connecting again", node, e.toString())
                listening = CountDownLatch(1)
            } catch (e: Throwable) {
                if (!closed) LOG.warn("Listening for release notices on {} failed", node, e)
                listening = CountDownLatch(1)
            } finally {
                AdvisoryStore.discard(c)
                connection = null
            }
            if (!closed) sleep(backoff)
        }
    }

    private fun sleep(millis: Long) {
        try {
            Thread.sleep(millis)
        } catch (_: InterruptedException) {
            Thread.currentThread().interrupt()
        }
    }

    /** Stops listening: the connection is aborted, which ends the blocked read at once. */
    override fun close() {
        closed = true
        connection?.let { AdvisoryStore.discard(it) }
        synchronized(lock) { thread }?.interrupt()
    }

    internal companion object {
        private val LOG = LoggerFactory.getLogger(ReleaseNotices::class.java)

        private fun watchKey(family: String, key: String) = "$family\u0000$key"

        /** The notice's text: the release id, the family, then the key (which may hold spaces). */
        fun payload(notice: String, family: String, key: String): String = "$notice $family $key"

        /** (notice, family, key), or null for a payload that is not ours. */
        fun parse(payload: String): Triple<String, String, String>? {
            val first = payload.indexOf(' ')
            if (first <= 0) return null
            val second = payload.indexOf(' ', first + 1)
            if (second <= first + 1) return null
            return Triple(payload.substring(0, first), payload.substring(first + 1, second), payload.substring(second + 1))
        }
    }
}

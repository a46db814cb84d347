package dev.redlock.testing

import java.net.InetAddress
import java.net.ServerSocket
import java.util.concurrent.ConcurrentHashMap

/**
 * One master of a [RedisFleet], whatever runs it: a local `redis-server` process ([RedisMaster]) or
 * a Docker container ([ContainerMaster]).
 *
 * Implementations serialize lifecycle changes (start, kill, pause, resume, restart) per master;
 * [destroy] must not wait behind them, so that `close()` and the shutdown hook never block on a
 * restart in progress.
 */
internal interface FleetMaster {
    val index: Int

    /** Where clients connect, for the fleet's own commands. */
    val address: InetAddress

    /** The host as written in URIs. */
    val hostName: String

    /** The host port, fixed by the first successful start and kept across restarts. */
    val port: Int

    /** The server's version from `INFO server`, read when the master last became ready. */
    val version: String

    /** `Redis` or `Valkey`, from `INFO server`, read with [version]. */
    val serverName: String

    val isRunning: Boolean

    val isPaused: Boolean

    /** The local process id while the process is alive; null for a container. */
    fun pid(): Long?

    fun describe(): String

    fun start()

    fun kill()

    fun pause()

    fun resume()

    fun restart()

    /** First half of close: marks the master closed and stops it, without waiting where it can. */
    fun destroy()

    /** Second half of close: waits until the master is gone and gives its port back. */
    fun awaitDestroyed()
}

/** Host ports held by live masters of this JVM, so that parallel starts never pick the same one. */
internal object PortReservations {
    private val reserved: MutableSet<Int> = ConcurrentHashMap.newKeySet()

    /** A loopback port that was free a moment ago and that no other master of this JVM holds. */
    fun reserve(): Int {
        repeat(100) {
            val candidate = ServerSocket(0, 1, LOOPBACK).use { it.localPort }
            if (reserved.add(candidate)) return candidate
        }
        throw RedisFleetException("cannot find a free loopback port")
    }

    /** Gives [port] back, and its bus port when it was reserved with [reserveWithBus]. */
    fun release(port: Int) {
        if (withBus.remove(port)) reserved.remove(port + BUS_PORT_OFFSET)
        reserved.remove(port)
    }

    /** The ports reserved by [reserveWithBus], whose bus port is reserved too. */
    private val withBus: MutableSet<Int> = ConcurrentHashMap.newKeySet()

    /** How far above a cluster node's port its cluster bus listens (Redis' fixed offset before 7.0). */
    const val BUS_PORT_OFFSET: Int = 10_000

    /**
     * A port P for a cluster node, with P + [BUS_PORT_OFFSET] for its bus, both free a moment ago and
     * held by no other master of this JVM. Both lie below Linux's ephemeral range (32768 and up), so
     * that no client connection takes them meanwhile; Redis before 7.0 cannot move the bus elsewhere.
     */
    fun reserveWithBus(): Int {
        val random = java.util.concurrent.ThreadLocalRandom.current()
        repeat(200) {
            val candidate = random.nextInt(CLUSTER_PORT_MIN, CLUSTER_PORT_MAX + 1)
            val bus = candidate + BUS_PORT_OFFSET
            if (!bindable(candidate) || !bindable(bus)) return@repeat
            if (reserved.add(candidate)) {
                if (reserved.add(bus)) {
                    withBus.add(candidate)
                    return candidate
                }
                reserved.remove(candidate)
            }
        }
        throw RedisFleetException("cannot find a free loopback port P with P + $BUS_PORT_OFFSET free (for a cluster bus)")
    }

    private const val CLUSTER_PORT_MIN = 12_000
    private const val CLUSTER_PORT_MAX = 32_767 - BUS_PORT_OFFSET

    private fun bindable(port: Int): Boolean =
        try {
            ServerSocket().use { socket ->
                socket.reuseAddress = false
                socket.bind(java.net.InetSocketAddress(LOOPBACK, port), 1)
            }
            true
        } catch (_: java.io.IOException) {
            false
        }

    /**
     * Starts a master on a reserved port: [launch] on a fresh port, and again on another when it
     * fails with [Taken] (someone outside this JVM took the port in between), up to [attempts]
     * times. [onPort] sees every port tried, and 0 after a failed try. Returns normally once
     * [launch] does; after the last failed try, throws what [giveUp] makes of the last [Taken].
     */
    inline fun <reified Taken : Exception> startOnFreePort(
        attempts: Int,
        onPort: (Int) -> Unit,
        launch: (Int) -> Unit,
        reserve: () -> Int = ::reserve,
        giveUp: (Taken?) -> RedisFleetException,
    ) {
        var last: Taken? = null
        repeat(attempts) {
            val candidate = reserve()
            onPort(candidate)
            try {
                launch(candidate)
                return
            } catch (e: Exception) {
                if (e !is Taken) throw e
                last = e
                release(candidate)
                onPort(0)
            }
        }
        throw giveUp(last)
    }
}

package dev.redlock.chaos

import dev.redlock.testing.RedisFleet
import dev.redlock.testing.TcpProxy
import java.time.Duration as JavaDuration
import java.util.logging.Level
import java.util.logging.Logger

/**
 * N real masters and, in front of each, one [TcpProxy] per side: clients are split into [sides]
 * groups, each reaching every master through its own proxy, so that a network fault can cut some
 * clients off a master while others still reach it (an asymmetric partition). One more proxy per
 * master, [probeProxies], serves only the probe client of the faults that need one.
 */
class ChaosCluster(val masters: Int, val sides: Int = 2) : AutoCloseable {
    val fleet: RedisFleet = RedisFleet.builder().masters(masters).commandTimeout(JavaDuration.ofSeconds(3)).start()

    /** `proxies[side][master]`. */
    val proxies: List<List<TcpProxy>>

    /** `probeProxies[master]`: used by a fault's own probe client only. */
    val probeProxies: List<TcpProxy>

    init {
        val started = ArrayList<TcpProxy>()
        try {
            proxies = List(sides) { List(masters) { m -> TcpProxy.start("127.0.0.1", fleet.port(m)).also { started += it } } }
            probeProxies = List(masters) { m -> TcpProxy.start("127.0.0.1", fleet.port(m)).also { started += it } }
        } catch (e: Throwable) {
            started.forEach { runCatching { it.close() } }
            fleet.close()
            throw e
        }
    }

    /** The URIs clients of [side] use: one proxy per master. */
    fun uris(side: Int): List<String> = proxies[side % sides].map { it.uri() }

    /** The URIs of a fault's probe client. */
    fun probeUris(): List<String> = probeProxies.map { it.uri() }

    /**
     * Undoes every fault still in force: heals the proxies, continues paused masters, restarts
     * killed ones and resets their memory limit. Each step is tried even if another fails.
     */
    fun restore() {
        for (p in proxies.flatten() + probeProxies) {
            p.latency = JavaDuration.ZERO
            if (p.isBlackHoled) {
                p.resetConnections()
                p.heal()
            }
        }
        for (m in 0 until masters) {
            runCatching { if (!fleet.isRunning(m)) fleet.restart(m) else fleet.resume(m) }
            runCatching { fleet.command(m, "CONFIG", "SET", "maxmemory", "0") }
        }
    }

    /** The suite's lock keys on every running master. */
    fun lockKeys(): Map<Int, List<String>> =
        (0 until masters).filter { fleet.isRunning(it) }.associateWith { lockKeys(fleet, it) }.filterValues { it.isNotEmpty() }

    override fun close() {
        var failure: Throwable? = null
        for (p in proxies.flatten() + probeProxies) {
            try {
                p.close()
            } catch (e: Throwable) {
                failure = failure ?: e
            }
        }
        try {
            fleet.close()
        } catch (e: Throwable) {
            failure?.addSuppressed(e) ?: run { failure = e }
        }
        failure?.let { throw it }
    }
}

private val quietened = ArrayList<Logger>()

/**
 * Quietens the library's and Lettuce's logs (every loss is a WARNING; a soak has thousands), but
 * keeps SEVERE. The loggers are held here, so that java.util.logging does not forget the levels.
 */
fun quietLogs() {
    synchronized(quietened) {
        if (quietened.isNotEmpty()) return
        for (name in listOf("dev.redlock", "io.lettuce", "io.netty", "reactor")) {
            quietened += Logger.getLogger(name).apply { level = Level.SEVERE }
        }
    }
}

/**
 * The suite's lock keys on master [m]: the keys under [Timing.KEY_PREFIX], without the fencing
 * counters, which live on the masters without expiry by design.
 */
fun lockKeys(fleet: dev.redlock.testing.RedisFleet, m: Int): List<String> =
    fleet.keys(m, "${Timing.KEY_PREFIX}*").filterNot { it.endsWith("\u0000fence") }

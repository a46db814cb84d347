package dev.redlock.testing

import java.util.concurrent.ConcurrentHashMap

/**
 * The fleets of this JVM that are not closed yet ([RedisFleet], [RedisClusterFleet]), and the one
 * shutdown hook that closes them when the JVM exits without `close()` (a failing test,
 * `System.exit`, Ctrl-C).
 */
internal object FleetRegistry {
    private val live: MutableSet<AutoCloseable> = ConcurrentHashMap.newKeySet()

    private val hook: Thread by lazy {
        Thread(::closeAll, "redis-fleet-shutdown").also { Runtime.getRuntime().addShutdownHook(it) }
    }

    fun register(fleet: AutoCloseable) {
        hook // installed on first use
        live.add(fleet)
    }

    fun unregister(fleet: AutoCloseable) {
        live.remove(fleet)
    }

    private fun closeAll() {
        for (fleet in live.toList()) {
            try {
                fleet.close()
            } catch (_: Throwable) {
                // Keep going: every other fleet's processes must still be stopped.
            }
        }
    }
}

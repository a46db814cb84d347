package dev.redlock.testing

/**
 * A JVM that starts a fleet, prints its pids and dies of an exception without closing it, as a
 * failing test run would; RedisFleetTest checks that the shutdown hook stopped the masters.
 */
object UnclosedFleetMain {
    @JvmStatic
    fun main(args: Array<String>) {
        val fleet = RedisFleet.start(2)
        fleet.pause(1)
        println("pids=" + fleet.pids().joinToString(","))
        System.out.flush()
        throw IllegalStateException("a test failed without closing its fleet")
    }
}

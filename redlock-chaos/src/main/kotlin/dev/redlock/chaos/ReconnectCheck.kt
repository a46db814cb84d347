package dev.redlock.chaos

import dev.redlock.coroutines.Redlock
import dev.redlock.testing.RedisFleet
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.nanoseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking

/** How long after its only master answered again, following an [outage], a lock could be taken. */
data class Reconnect(val outage: Duration, val usableAfter: Duration, val attempts: Int)

/**
 * Kills the only master of a fresh fleet for each of [outages] while a client keeps trying to lock
 * (every 20 ms, as waiting clients do), restarts it, and measures how long after the master
 * answers PING again a `tryAcquire` succeeds. Gives up on one outage after [limit].
 */
fun runReconnectCheck(
    outages: List<Duration> = listOf(1.seconds, 2500.milliseconds, 5.seconds),
    limit: Duration = 40.seconds,
    log: (String) -> Unit = ::println,
): List<Reconnect> {
    quietLogs()
    // The master comes back empty, so the restart guard would keep its vote out for a lease on
    // purpose; this check is about reconnecting, so the guard is off.
    val timing = Timing(restartGuard = Duration.ZERO)
    return outages.map { outage ->
        RedisFleet.start(1).use { fleet ->
            Redlock(timing.config(listOf(fleet.uri(0)))).use { redlock ->
                runBlocking {
                    redlock.tryAcquire("warm-up")!!.release()
                    fleet.kill(0)
                    val down = System.nanoTime()
                    while ((System.nanoTime() - down).nanoseconds < outage) {
                        runCatching { redlock.tryAcquire("x")?.release() }
                        delay(20.milliseconds)
                    }
                    fleet.restart(0)
                    val back = System.nanoTime()
                    var attempts = 0
                    while ((System.nanoTime() - back).nanoseconds < limit) {
                        attempts++
                        if (runCatching { redlock.tryAcquire("x")?.release() }.isSuccess) break
                        delay(20.milliseconds)
                    }
                    Reconnect(outage, (System.nanoTime() - back).nanoseconds, attempts)
                        .also { log("reconnect: after a ${it.outage} outage, the lock was usable ${it.usableAfter.inWholeMilliseconds} ms after the master answered again (${it.attempts} attempts)") }
                }
            }
        }
    }
}

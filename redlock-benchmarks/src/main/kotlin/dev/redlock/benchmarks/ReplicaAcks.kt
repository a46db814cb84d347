package dev.redlock.benchmarks

import dev.redlock.coroutines.Redlock
import dev.redlock.core.RedlockConfig
import dev.redlock.testing.RedisFleet
import java.util.Locale

/** One measured window of scenario 9: acquire + release on a primary with one replica, with or without waiting for it. */
data class ReplicaAckWindow(val replicaAcks: Int, val window: Int, val latency: Latency)

/**
 * Scenario 9: what `replicaAcks(1)` costs per acquire + release. One master with one replica
 * (`REPLICAOF` on loopback, no proxy), scenario 1's closed loop, in alternating windows with
 * `replicaAcks` 0 and 1, so that drifts of the machine fall on both alike.
 */
suspend fun replicaAcksCost(profile: Profile, log: (String) -> Unit): List<ReplicaAckWindow> =
    RedisFleet.start(2).use { fleet ->
        fleet.command(1, "REPLICAOF", "127.0.0.1", fleet.port(0).toString())
        val deadline = System.nanoTime() + 10_000_000_000L
        while (!(fleet.command(1, "INFO", "replication") as String).contains("master_link_status:up")) {
            check(System.nanoTime() < deadline) { "the replica did not link up with its primary within 10 s" }
            Thread.sleep(20)
        }
        val windows = ArrayList<ReplicaAckWindow>()
        for (window in 1..3) {
            for (acks in listOf(0, 1)) {
                log("scenario 9, window $window, replicaAcks $acks")
                val config = RedlockConfig.builder().master(fleet.uri(0)).replicaAcks(acks).build()
                Redlock(config).use { redlock ->
                    val latency = closedLoop(profile.warmup, profile.measure) { timed { redlock.acquire("s9").release() } }
                    windows += ReplicaAckWindow(acks, window, latency)
                }
            }
        }
        windows
    }

internal fun scenario9(windows: List<ReplicaAckWindow>, profile: Profile, line: (String) -> Unit) {
    line("")
    line("## 9. What replicaAcks costs")
    line("")
    line("One master with one replica (`REPLICAOF` over loopback), scenario 1's loop (one caller, one resource, ${profile.warmup}")
    line("warm-up then ${profile.measure} measured) with `replicaAcks(0)` and `replicaAcks(1)` in alternating windows. With it, each")
    line("acquire waits (`WAIT 1`) until the replica has the key; the release does not wait.")
    line("")
    line("| window | replicaAcks | p50 | p99 | max | operations |")
    line("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for (w in windows) {
        line("| ${w.window} | ${w.replicaAcks} | ${us(w.latency.p50)} | ${us(w.latency.p99)} | ${us(w.latency.max)} | ${w.latency.count} |")
    }
    val off = windows.filter { it.replicaAcks == 0 }.map { it.latency.p50 }.sorted()
    val on = windows.filter { it.replicaAcks == 1 }.map { it.latency.p50 }.sorted()
    if (off.isNotEmpty() && on.isNotEmpty()) {
        val a = off[off.size / 2]
        val b = on[on.size / 2]
        line("")
        line(String.format(Locale.ROOT, "Median of the windows' p50: %s without, %s with: +%s per acquire + release (%.2fx).", us(a), us(b), us(b - a), b / a))
    }
}


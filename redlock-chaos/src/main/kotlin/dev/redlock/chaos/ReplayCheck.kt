package dev.redlock.chaos

import dev.redlock.coroutines.Redlock
import dev.redlock.testing.RedisFleet
import dev.redlock.testing.TcpProxy
import java.time.Duration as JavaDuration
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking

/**
 * One round of the reset-mid-command check: a lock attempt whose commands were in flight (in the
 * proxy, delayed by [latencyMs] each way) when the proxy closed the connection, [closeAfterMs] after
 * the attempt began, with an RST ([close] = `RST`) or the orderly way (`FIN`): in [phase]
 * `before-delivery` the request had not reached the master yet, in `reply-in-flight` it had run
 * there and its reply was on its way. [callerWaiting] says whether the caller was still waiting for
 * that master (the close came before the node timeout) or had already given up on it.
 *
 * @property outcome what `tryAcquire` did: `granted`, `refused` or the exception's simple name
 * @property ranBeforeDone scripts the master ran from the attempt's start until the caller was done
 * @property ranAfterDone scripts the master ran after the caller was done (and nothing was in
 *   flight any more): commands Lettuce replayed on its own after reconnecting
 * @property keyTtlAtDoneMs the lock key's time to live when the caller was done (-2: no key)
 * @property keyOutlivedLease whether the key still existed one lease after the caller was done
 */
data class ReplayRound(
    val index: Int,
    val close: String,
    val phase: String,
    val latencyMs: Long,
    val closeAfterMs: Long,
    val callerWaiting: Boolean,
    val outcome: String,
    val ranBeforeDone: Long,
    val ranAfterDone: Long,
    val keyTtlAtDoneMs: Long,
    val keyOutlivedLease: Boolean,
)

/** The rounds of [runReplayCheck], with its verdicts. */
class ReplayReport(val rounds: List<ReplayRound>, val lease: Duration) {
    val staleReplays: Int
        get() = rounds.count { it.ranAfterDone > 0 }

    val keysOutlivingLease: Int
        get() = rounds.count { it.keyOutlivedLease }

    fun summary(): String = buildString {
        append("reset mid-command: ${rounds.size} rounds, $staleReplays with commands replayed after the caller was done, ")
        append("$keysOutlivingLease with a key outliving one lease (${lease.inWholeMilliseconds} ms)")
        for (r in rounds) append("\n  $r")
    }
}

/**
 * Shows what Lettuce does with commands caught by a connection reset: one master behind a proxy
 * that delays every chunk by 40-250 ms each way, a lock attempt (`tryAcquire`, node timeout 150 ms),
 * and the connection closed at a random moment while the attempt's commands are in flight —
 * before the request reached the master, or after it ran there but before the reply came back —
 * with an RST or with a FIN (Lettuce treats the two differently).
 *
 * For each round it counts the scripts the master runs after the caller is done, when the proxy
 * holds nothing any more: any such command is a stale one replayed by the client. It also checks
 * that no lock key outlives one lease after the caller is done.
 */
fun runReplayCheck(seed: Long, rounds: Int = 16, log: (String) -> Unit = ::println): ReplayReport {
    quietLogs()
    log("chaos: reset-mid-command check, seed=$seed, $rounds rounds")
    val lease = 2.seconds
    val timing = Timing(lease = lease, wait = lease, nodeTimeout = 150.milliseconds, retryDelay = 10.milliseconds)
    val random = Random(seed)
    val results = ArrayList<ReplayRound>()
    RedisFleet.start(1).use { fleet ->
        TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
            Redlock(timing.config(listOf(proxy.uri()))).use { redlock ->
                runBlocking(Dispatchers.Default) {
                    redlock.tryAcquire("warm-up")?.release()
                    val doneAt = LongArray(rounds)
                    for (i in 0 until rounds) {
                        // Every combination in turn: close before delivery or while the reply is on its
                        // way, with an RST or a FIN; the latency decides whether the caller still waits.
                        val replyInFlight = i % 2 == 1
                        val orderly = (i / 2) % 2 == 1
                        val latency = random.nextLong(40, 251)
                        val closeAfter = if (replyInFlight) latency * 3 / 2 else latency / 2
                        val resource = "replay$i"
                        val key = "${Timing.KEY_PREFIX}$resource"
                        val before = scriptCalls(fleet)
                        proxy.latency = JavaDuration.ofMillis(latency)
                        val attempt = async {
                            try {
                                val lease = redlock.tryAcquire(resource, leaseTime = lease)
                                lease?.release()
                                if (lease != null) "granted" else "refused"
                            } catch (e: Exception) {
                                e.javaClass.simpleName
                            }
                        }
                        delay(closeAfter)
                        proxy.latency = JavaDuration.ZERO
                        if (orderly) proxy.closeConnections() else proxy.resetConnections()
                        val outcome = attempt.await()
                        doneAt[i] = System.nanoTime()
                        val atDone = scriptCalls(fleet)
                        val ttl = fleet.command(0, "PTTL", key) as Long
                        // Lettuce reconnects within milliseconds; a replay shows up well within this.
                        delay(1_000)
                        val later = scriptCalls(fleet)
                        results += ReplayRound(
                            i, if (orderly) "FIN" else "RST", if (replyInFlight) "reply-in-flight" else "before-delivery",
                            latency, closeAfter, closeAfter < timing.nodeTimeout.inWholeMilliseconds, outcome,
                            atDone - before, later - atDone, ttl, false,
                        )
                    }
                    // Every key written before its caller was done expires within one lease of it.
                    val wait = doneAt[rounds - 1] + (lease + 100.milliseconds).inWholeNanoseconds - System.nanoTime()
                    if (wait > 0) delay(wait / 1_000_000 + 1)
                    for (i in 0 until rounds) {
                        val left = fleet.command(0, "EXISTS", "${Timing.KEY_PREFIX}replay$i") == 1L
                        results[i] = results[i].copy(keyOutlivedLease = left)
                    }
                }
            }
        }
    }
    return ReplayReport(results, lease).also { log(it.summary()) }
}

/** Scripts the master has run (EVALSHA and EVAL), from INFO commandstats. */
private fun scriptCalls(fleet: RedisFleet): Long {
    val info = fleet.command(0, "INFO", "commandstats") as String
    return info.lineSequence()
        .filter { it.startsWith("cmdstat_evalsha:") || it.startsWith("cmdstat_eval:") }
        .sumOf { it.substringAfter("calls=").substringBefore(',').toLong() }
}

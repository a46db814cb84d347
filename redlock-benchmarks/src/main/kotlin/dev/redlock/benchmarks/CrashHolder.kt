@file:JvmName("CrashHolder")

package dev.redlock.benchmarks

import dev.redlock.coroutines.withRedlock
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlin.system.exitProcess
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.runBlocking

/**
 * The holder that scenario 7 kills: a JVM of its own that takes one lock, says `HELD` on its
 * standard output, and holds it (renewed) until it is killed. Arguments: the variant's name
 * ([Variant]), the lease time in milliseconds, the resource, then the masters' URIs.
 *
 * It exits by itself when its standard input closes, that is when the harness that started it has
 * gone, even if the harness was killed: no holder outlives the run.
 */
fun main(args: Array<String>) {
    if (args.size < 4) {
        System.err.println("usage: CrashHolder VARIANT LEASE_MS RESOURCE URI...")
        exitProcess(2)
    }
    val variant = Variant.valueOf(args[0])
    val lease = args[1].toLong().milliseconds
    val resource = args[2]
    val uris = args.drop(3)
    quietLogs()
    thread(isDaemon = true, name = "parent-watch") {
        try {
            @Suppress("ControlFlowWithEmptyBody")
            while (System.`in`.read() >= 0) {}
        } finally {
            Runtime.getRuntime().halt(0)
        }
    }
    when (variant) {
        Variant.TRACKING, Variant.UNTRACKED -> {
            val subject = OursSubject(uris, lease, keyTracking = variant == Variant.TRACKING)
            runBlocking {
                subject.redlock.withRedlock(resource) {
                    println(HELD)
                    System.out.flush()
                    awaitCancellation()
                }
            }
        }
        Variant.REDISSON -> {
            val subject = RedissonSubject(uris, lease)
            // A lease of -1 hands the lock to the watchdog, which renews it every third of the lease.
            subject.lockOf(resource).lockAsync(-1, TimeUnit.MILLISECONDS, 1L).get(1, TimeUnit.MINUTES)
            println(HELD)
            System.out.flush()
            Thread.sleep(Long.MAX_VALUE)
        }
    }
}

/** What the holder prints once it holds the lock. */
const val HELD = "HELD"

// The README's Kotlin quick start, compiled. README.md shows the region below verbatim
// (ReadmeSamplesTest checks it, QuickStartsRunTest runs it in a JVM of its own); change both together.
package dev.redlock.examples.readme

// region quick-start
import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import dev.redlock.testing.RedisFleet
import java.time.Duration

suspend fun main() {
    // Three throwaway Redis masters on this machine. In production, list your own:
    // .masters(listOf("redis://10.0.0.1:6379", "redis://10.0.0.2:6379", "redis://10.0.0.3:6379"))
    RedisFleet.start(3).use { fleet ->
        val config = RedlockConfig.builder()
            .masters(fleet.uris())
            .leaseTime(Duration.ofSeconds(10))
            .build()
        Redlock(config).use { redlock ->               // one per application; thread-safe
            val receipt = redlock.withRedlock("orders:42") { lease ->
                // held on a majority of masters, renewed every leaseTime / 3 while this runs
                chargeCard(orderId = 42)
            }                                            // released here, also on exception or cancellation
            println(receipt)
        }
    }
}

/** Stands in for the work the lock protects. */
fun chargeCard(orderId: Int): String = "charged order $orderId"
// endregion

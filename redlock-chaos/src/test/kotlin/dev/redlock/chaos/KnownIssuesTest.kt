package dev.redlock.chaos

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.comparables.shouldBeLessThan
import kotlin.time.Duration.Companion.seconds

/**
 * Problems the chaos suite found in the library, each as a test that failed before its fix and
 * now guards against its return. A test for a problem not fixed yet is kept off with
 * `enabled = enabled` (run those with `-Dredlock.chaos.knownIssues=true`).
 */
class KnownIssuesTest :
    FunSpec({
        val enabled = System.getProperty("redlock.chaos.knownIssues").toBoolean()

        // Liveness, not safety. Redlock builds its own Lettuce ClientResources with Lettuce's default
        // reconnect delay (exponential: doubling from 1 ms, capped at 30 s), and its lock connections
        // reject commands while disconnected: once a master has been down a few seconds, Lettuce's
        // next reconnect attempt can be seconds away when the master comes back, and every lock call
        // on that master fails at once meanwhile. How long depends on where in the backoff the master
        // returns: measured 0.1 to 4.1 s after a 5 s outage of the only master, 0.2 s after 1 s. In
        // the soak (seed 42, round 6: N=1, kill and restart after one lease, back to back) no section
        // started for 7.8 s after a restart. A fix would bound the reconnect delay
        // (ClientResources.reconnectDelay) by something like the retry delay or a fraction of the lease.
        // Fixed: LettuceMasters caps the reconnect delay at 500 ms (jittered); measured after the fix:
        // usable 52 to 495 ms after the master answered again, for 4 to 7 s outages.
        test("after its only master was down for several seconds, the lock is usable again within one lease of the master answering") {
            val lease = Timing().lease
            // Several outage lengths, so that the master comes back at several points of the backoff.
            val results = runReconnectCheck(outages = listOf(4.seconds, 5.seconds, 6.seconds, 7.seconds))
            withClue(results.joinToString("\n")) {
                results.maxOf { it.usableAfter } shouldBeLessThan lease
            }
        }
    })

package dev.redlock.chaos

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainAll
import io.kotest.matchers.shouldBe

/**
 * Lettuce under connection resets: a command that timed out may still run on the server, and a
 * client may replay commands after reconnecting. With the proxy closing the connection while lock
 * commands are in flight, nothing may run on the master once the caller is done, and no lock key
 * may outlive one lease.
 */
class ReplayTest :
    FunSpec({
        test("a connection closed mid-command (RST or FIN) replays nothing and leaves no key beyond one lease") {
            val report = runReplayCheck(seed = 5, rounds = 8)
            withClue(report.summary()) {
                report.staleReplays shouldBe 0
                report.keysOutlivingLease shouldBe 0
                // The rounds covered what they claim: commands that ran before the close, and closes
                // that came while the caller was still waiting as well as after it gave up.
                report.rounds.map { it.ranBeforeDone > 0 }.toSet() shouldBe setOf(true, false)
                report.rounds.map { it.close to it.phase }.toSet() shouldContainAll
                    listOf("RST" to "before-delivery", "RST" to "reply-in-flight", "FIN" to "before-delivery", "FIN" to "reply-in-flight")
                report.rounds.map { it.callerWaiting }.toSet() shouldBe setOf(true, false)
            }
        }
    })

package dev.redlock.chaos

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlin.time.Duration.Companion.seconds

/**
 * Negative controls: runs that break one Redlock assumption at the moment it matters must make the
 * checker report a violation between the holder H and the contender C; their twins, which keep
 * the assumption, must not. A checker that never fires proves nothing.
 */
class ControlsTest :
    FunSpec({
        for (control in Control.entries) {
            val expectation = if (control.mustFire) "reports the overlap" else "reports nothing"
            test("${control.name}: ${control.label}; the checker $expectation") {
                // Two seconds: the slow clock's overlap is a tenth of the lease, well above scheduling noise.
                val result = runControl(control, lease = 2.seconds)
                withClue(result.summary()) {
                    result.fired shouldBe control.mustFire
                    if (control.fault == FaultKind.ADMIN_DEL_MAJORITY) {
                        // The deletion controls: no overlap (nobody else takes "x"); H told, or the checker says it was not.
                        result.report.violations.shouldBeEmpty()
                        result.report.deletions.single().victims.single().section.id shouldBe "H"
                        if (control.mustFire) {
                            result.report.deletionProblems.single() shouldContain "not declared lost"
                        } else {
                            result.report.deletions.single().victims.single().section.lossReason shouldBe "NOT_HELD"
                        }
                    } else if (control.mustFire) {
                        val v = result.report.violations.first()
                        setOf(v.first.client, v.second.client) shouldBe setOf("H", "C")
                    }
                    result.report.missedLosses.shouldBeEmpty()
                }
            }
        }
    })

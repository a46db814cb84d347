package dev.redlock.coroutines

import dev.redlock.core.MasterFailureException
import dev.redlock.core.MasterStatus
import dev.redlock.core.RedlockConfig
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.time.Duration as JavaDuration

/** `checkMasters`: each master's state as a health check sees it, from a light probe of each. */
class CheckMastersTest : FunSpec({
    val fleet = sharedFleet(3)

    test("up, down, restart-guarded and duplicate masters are told apart, and a probe creates nothing") {
        fleet.redlock(3).use { redlock ->
            redlock.checkMasters().map { it.state() } shouldBe List(3) { MasterStatus.State.UP }
            fleet.kill(2)
            val down = redlock.checkMasters()
            down.map { it.state() } shouldBe listOf(MasterStatus.State.UP, MasterStatus.State.UP, MasterStatus.State.DOWN)
            down[2].failure().get().kind() shouldBe MasterFailureException.Kind.UNREACHABLE
            down[2].counts() shouldBe false
            fleet.restart(2) // back empty, a moment ago: its votes wait for the guard
            eventually(what = "master 2 answers again") { kotlinx.coroutines.runBlocking { redlock.checkMasters()[2].state() != MasterStatus.State.DOWN } }
            val guarded = redlock.checkMasters()[2]
            guarded.state() shouldBe MasterStatus.State.RESTART_GUARDED
            (guarded.guardedFor() > JavaDuration.ZERO && guarded.guardedFor() <= redlock.config.restartGuard()) shouldBe true
            fleet.keys(2) shouldBe emptyList() // the probe created no marker
        }
        val same = fleet.uri(0).replace("127.0.0.1", "localhost")
        Redlock(RedlockConfig.builder().masters(listOf(fleet.uri(0), same, fleet.uri(1))).build()).use { redlock ->
            redlock.withRedlock("warm") { } // both spellings have told their server's identity
            redlock.checkMasters().map { it.state() } shouldBe listOf(MasterStatus.State.UP, MasterStatus.State.DUPLICATE, MasterStatus.State.UP)
        }
    }
})

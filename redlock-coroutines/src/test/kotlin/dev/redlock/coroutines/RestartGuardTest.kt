package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.time.Duration as JavaDuration
import kotlin.time.Duration.Companion.seconds

/**
 * The restart guard: a master that comes back without its data does not vote until the guard
 * period has passed. The scenario is the classic Redlock failure: holder A has a bare majority
 * {0, 1} of three masters, master 0 crashes and restarts empty at once; B can then win {0, 2}
 * while A's lease is still valid.
 */
@Tags("compat")
class RestartGuardTest : FunSpec({
    val fleet = sharedFleet(3)

    /** A holds "guarded" on masters 0 and 1 only, and master 0 has just restarted empty. */
    suspend fun holderOnBareMajorityThenRestart(redlock: Redlock): Lease {
        val a = redlock.acquire("guarded")
        eventually(what = "every master holds A's key") { (0 until 3).all { fleet.keys(it).isNotEmpty() } }
        fleet.command(2, "DEL", "redlock:guarded") // A now holds a bare majority: {0, 1}
        fleet.kill(0)
        fleet.restart(0)
        return a
    }

    test("without the guard, a master restarted empty lets a second holder in while the first is valid (the unsafe case)") {
        // Without key tracking, which would find A lost as soon as master 0 is back and checked:
        // the guard is for the time before anyone notices, and for masters that do not track.
        fleet.redlock { restartGuard(JavaDuration.ZERO).keyTracking(false) }.use { redlock ->
            val a = holderOnBareMajorityThenRestart(redlock)
            // Once the client has reconnected to master 0, B wins {0, 2}.
            var b: Lease? = null
            eventually(what = "B acquires") {
                b = kotlinx.coroutines.runBlocking { runCatching { redlock.tryAcquire("guarded") }.getOrNull() }
                b != null
            }
            b.shouldNotBeNull()
            // Two valid leases on one resource: exactly what the guard is for.
            a.isValid shouldBe true
            b!!.isValid shouldBe true
            b!!.release()
            a.release()
        }
    }

    test("with the guard, the restarted master's vote is not counted until the guard period has passed") {
        fleet.redlock { restartGuard(JavaDuration.ofSeconds(5)).keyTracking(false) }.use { redlock ->
            val a = holderOnBareMajorityThenRestart(redlock)
            val refused = shouldThrow<LockNotAcquiredException> { redlock.acquire("guarded", waitTime = 2.seconds) }
            refused.message shouldContain "started empty or lost their data less than restartGuard 5s ago"
            a.isValid shouldBe true
            a.release()
            // Once the guard period is over, master 0 votes again.
            val b = redlock.acquire("guarded", waitTime = 10.seconds)
            b.isValid shouldBe true
            b.release()
        }
    }

    test("a master whose data was flushed is guarded the same way, and masters of a fresh fleet are not") {
        fleet.redlock { restartGuard(JavaDuration.ofSeconds(30)) }.use { redlock ->
            // A fresh fleet: its masters granted nothing they could have forgotten.
            redlock.acquire("flushed").release()
            fleet.command(0, "FLUSHALL")
            fleet.command(1, "FLUSHALL")
            val refused = shouldThrow<LockNotAcquiredException> { redlock.tryAcquire("flushed") }
            refused.message shouldContain "2 granted on master(s) that started empty or lost their data"
        }
        fleet.flushAll()
    }
})

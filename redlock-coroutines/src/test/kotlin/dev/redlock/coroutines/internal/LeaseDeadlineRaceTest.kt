package dev.redlock.coroutines.internal

import dev.redlock.core.LeaseState
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlin.time.Duration.Companion.milliseconds

/**
 * Found by the model checker (LeaseStatesLincheckTest): a reader of the lease (isValid, awaitLost)
 * decided on the validity it had read before a renewal moved it. Replayed here deterministically,
 * on virtual time, with the renewal placed between the reader's look at the state and its look at
 * the clock.
 */
class LeaseDeadlineRaceTest : FunSpec({

    test("a renewal that lands while isValid is reading is not undone: the lease stays held on its new validity") {
        // A 3 s lease granted at t = 0: valid until 2968 ms, declared lost from 2958 ms on.
        val clock = HookedClock()
        val config = modelConfig(3_000)
        val engine = modelEngine(config, 3, clock)
        val lease = modelLease(engine, clock, "r", config)
        clock.advance(2_000)
        // isValid reads the state (valid until 2968 ms), then the clock. In between: a renewal that
        // started at 2 s is confirmed by every master (valid until 4968 ms), and 1 s passes.
        clock.beforeNextRead {
            lease.extended(clock.markNow(), 3, 0, emptyList()) shouldBe null
            clock.advance(1_000)
        }
        lease.isValid shouldBe true
        lease.state.value shouldBe LeaseState.HELD
        lease.remaining shouldBe 1_968.milliseconds
    }

    test("a release that lands while isValid is reading does not make a lease past its deadline look valid") {
        // Found by the model checker too: isValid saw the lease held, the holder released it, and
        // the deadline check, finding it released, reported no loss, so isValid answered true at
        // 3 s for a lease whose deadline was 2958 ms.
        val clock = HookedClock()
        val config = modelConfig(3_000)
        val engine = modelEngine(config, 3, clock)
        val lease = modelLease(engine, clock, "r", config)
        clock.advance(3_000)
        clock.beforeNextRead { lease.markReleased() shouldBe true }
        lease.isValid shouldBe false
        lease.state.value shouldBe LeaseState.RELEASED
    }
})

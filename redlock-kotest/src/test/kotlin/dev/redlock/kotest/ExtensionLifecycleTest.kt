package dev.redlock.kotest

import dev.redlock.core.RedlockClosedException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.Spec
import io.kotest.core.spec.SpecRef
import io.kotest.core.spec.style.FunSpec
import io.kotest.engine.TestEngineLauncher
import io.kotest.engine.listener.CollectingTestEngineListener
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeInstanceOf
import kotlin.reflect.KClass

/** Runs the specs of LifecycleCases.kt and checks what the extension did around them. */
class ExtensionLifecycleTest :
    FunSpec({
        beforeEach { Recorded.clear() }

        suspend fun run(spec: KClass<out Spec>): CollectingTestEngineListener {
            val listener = CollectingTestEngineListener()
            HarnessOnly.running = true
            try {
                TestEngineLauncher().withListener(listener).withSpecRefs(SpecRef.Reference(spec)).execute()
            } finally {
                HarnessOnly.running = false
            }
            return listener
        }

        fun assertStopped() {
            Recorded.fleets shouldHaveSize 1
            val fleet = Recorded.fleets[0]
            (0 until fleet.size).none { fleet.isRunning(it) } shouldBe true
            Recorded.pids.filter { pid -> ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) } shouldBe emptyList()
            shouldThrow<IllegalStateException> { fleet.command(0, "PING") }
        }

        suspend fun assertClosed(redlock: dev.redlock.coroutines.Redlock) {
            shouldThrow<RedlockClosedException> { redlock.tryAcquire("after:close") }.message shouldContain "closed"
        }

        test("the fleet is reset after each leaf test, a test's Redlocks closed after it, the spec's after the spec") {
            val listener = run(ResetCase::class)
            listener.tests.filterValues { !it.isSuccess } shouldBe emptyMap()
            listener.tests.size shouldBe 5 // four leaves and their container
            Recorded.seen.single().shouldBeInstanceOf<RedlockClosedException>() // closed between the tests
            assertStopped()
            Recorded.specRedlocks.forEach { assertClosed(it) }
            Recorded.testRedlocks.forEach { assertClosed(it) }
        }

        test("resetAfterEach = false keeps the data between tests") {
            val listener = run(NoResetCase::class)
            listener.tests.values.all { it.isSuccess } shouldBe true
            listener.tests.size shouldBe 2
            assertStopped()
        }

        test("a failing test still stops the fleet, its paused master too, and closes its Redlocks") {
            val listener = run(FailingCase::class)
            listener.tests.values.single().isFailure shouldBe true
            assertStopped()
            Recorded.testRedlocks.single().let { assertClosed(it) }
        }

        test("the install block's settings reach the fleet, the config and each Redlock") {
            val listener = run(ConfiguredCase::class)
            listener.tests.values.single().isSuccess shouldBe true
            assertStopped()
            assertClosed(Recorded.testRedlocks.single())
        }

        test("an extension installs once, and bad settings fail at install with the setting and its range") {
            val extension = RedisFleetExtension()
            extension.mount {}
            shouldThrow<IllegalStateException> { extension.mount {} }.message shouldContain "create one per spec"
            shouldThrow<IllegalArgumentException> { RedisFleetExtension(masters = 0).mount {} }.message shouldBe
                "masters expected in 1..15, but was 0"
            shouldThrow<IllegalArgumentException> { RedisFleetExtension().mount { masters = 16 } }.message shouldBe
                "masters expected in 1..15, but was 16"
        }
    })

package dev.redlock.kotest

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.Spec
import io.kotest.core.spec.SpecRef
import io.kotest.core.spec.style.FunSpec
import io.kotest.engine.TestEngineLauncher
import io.kotest.engine.listener.CollectingTestEngineListener
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlin.reflect.KClass

/** Runs the specs of PostgresCases.kt and checks what the PostgreSQL extension did around them. */
class PostgresExtensionTest :
    FunSpec({
        beforeEach { RecordedServers.servers.clear() }

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
            RecordedServers.servers shouldHaveSize 1
            val server = RecordedServers.servers[0]
            server.isRunning shouldBe false
            shouldThrow<IllegalStateException> { server.query("SELECT 1") }
        }

        test("settings reach the server, a killed server is back for the next test, and it is stopped after the spec") {
            val listener = run(PostgresKillCase::class)
            listener.tests.filterValues { !it.isSuccess } shouldBe emptyMap()
            listener.tests.size shouldBe 2
            assertStopped()
        }

        test("a failing test still stops the server") {
            val listener = run(PostgresFailingCase::class)
            listener.tests.values.single().isFailure shouldBe true
            assertStopped()
        }

        test("a spec that never uses its server starts none, and an extension installs once") {
            val listener = run(PostgresUnusedCase::class)
            listener.tests.values.single().isSuccess shouldBe true
            RecordedServers.servers.shouldBeEmpty()
            val extension = PostgresExtension()
            extension.mount { }
            shouldThrow<IllegalStateException> { extension.mount { } }.message shouldContain "installed already"
        }
    })

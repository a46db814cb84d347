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

/** Runs the specs of ClusterCases.kt and checks what the cluster extension did around them. */
class ClusterExtensionTest :
    FunSpec({
        beforeEach { RecordedClusters.clear() }

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
            RecordedClusters.clusters shouldHaveSize 1
            val cluster = RecordedClusters.clusters[0]
            (0 until cluster.size).none { cluster.isRunning(it) } shouldBe true
            RecordedClusters.pids.filter { pid -> ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) }.shouldBeEmpty()
            shouldThrow<IllegalStateException> { cluster.command(0, "PING") }
        }

        test("the cluster is reset after each test and stopped after the spec") {
            val listener = run(ClusterResetCase::class)
            listener.tests.filterValues { !it.isSuccess } shouldBe emptyMap()
            listener.tests.size shouldBe 2
            assertStopped()
        }

        test("settings from the install block reach the cluster, and resetAfterEach = false keeps the keys") {
            val listener = run(ClusterConfiguredCase::class)
            listener.tests.values.all { it.isSuccess } shouldBe true
            listener.tests.size shouldBe 2
            assertStopped()
        }

        test("a failing test still stops the cluster") {
            val listener = run(ClusterFailingCase::class)
            listener.tests.values.single().isFailure shouldBe true
            assertStopped()
        }

        test("a spec that never uses its cluster starts none") {
            val listener = run(ClusterUnusedCase::class)
            listener.tests.values.single().isSuccess shouldBe true
            RecordedClusters.clusters.shouldBeEmpty()
        }

        test("bad settings fail at install, naming the setting, and an extension installs once") {
            val extension = RedisClusterExtension()
            shouldThrow<IllegalArgumentException> { extension.mount { shards = 9 } }.message shouldContain "shards"
            shouldThrow<IllegalStateException> { extension.mount { } }.message shouldContain "installed already"
            shouldThrow<IllegalArgumentException> { RedisClusterExtension(replicasPerShard = -1).mount { } }.message shouldContain
                "replicasPerShard"
        }
    })

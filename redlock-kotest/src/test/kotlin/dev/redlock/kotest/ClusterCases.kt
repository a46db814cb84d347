package dev.redlock.kotest

import dev.redlock.testing.RedisClusterFleet
import io.kotest.core.annotation.EnabledIf
import io.kotest.core.extensions.install
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.time.Duration
import java.util.concurrent.CopyOnWriteArrayList

// Specs with a cluster, as users write them, run one at a time by ClusterExtensionTest, which then
// checks what the extension did. They record what they were handed in RecordedClusters.

/** What the cluster case specs were handed. */
object RecordedClusters {
    val clusters: MutableList<RedisClusterFleet> = CopyOnWriteArrayList()
    val pids: MutableList<Long> = CopyOnWriteArrayList()

    fun clear() {
        clusters.clear()
        pids.clear()
    }

    fun record(cluster: RedisClusterFleet) {
        if (clusters.none { it === cluster }) clusters += cluster
        pids += cluster.pids()
    }
}

@EnabledIf(HarnessOnly::class)
class ClusterResetCase :
    FunSpec({
        val redis = install(RedisClusterExtension(shards = 2))

        test("first breaks the cluster") {
            val cluster = redis.cluster
            RecordedClusters.record(cluster)
            cluster.size shouldBe 4
            cluster.command(cluster.primary(cluster.shardOf(cluster.slotOf("k"))), "SET", "k", "v") shouldBe "OK"
            cluster.kill(cluster.replicas(0).single())
            cluster.pause(cluster.replicas(1).single())
        }

        test("second finds it whole and empty") {
            val cluster = redis.cluster
            RecordedClusters.record(cluster)
            (0 until cluster.size).all { cluster.isRunning(it) && !cluster.isPaused(it) } shouldBe true
            cluster.keyCount() shouldBe 0
        }
    })

@EnabledIf(HarnessOnly::class)
class ClusterConfiguredCase :
    FunSpec({
        val redis =
            install(RedisClusterExtension()) {
                shards = 1
                replicasPerShard = 0
                resetAfterEach = false
                cluster { nodeTimeout(Duration.ofMillis(1500)) }
            }

        test("settings reach the cluster") {
            RecordedClusters.record(redis.cluster)
            redis.cluster.size shouldBe 1
            redis.cluster.command(0, "CONFIG", "GET", "cluster-node-timeout").toString() shouldContain "1500"
            redis.cluster.command(0, "SET", "kept", "v")
        }

        test("and no reset between tests") { redis.cluster.command(0, "GET", "kept") shouldBe "v" }
    })

@EnabledIf(HarnessOnly::class)
class ClusterFailingCase :
    FunSpec({
        val redis = install(RedisClusterExtension(shards = 1, replicasPerShard = 0))

        test("fails on purpose") {
            RecordedClusters.record(redis.cluster)
            throw AssertionError("this test fails on purpose")
        }
    })

@EnabledIf(HarnessOnly::class)
class ClusterUnusedCase :
    FunSpec({
        val redis = install(RedisClusterExtension())
        test("never touches the cluster") { redis.toString() shouldContain "not started" }
    })

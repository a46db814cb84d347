package dev.redlock.testing

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldStartWith
import java.io.IOException
import java.net.InetSocketAddress
import java.net.Socket
import java.nio.file.Files
import java.nio.file.Path

@Tags("compat")
class RedisClusterFleetTest :
    FunSpec({
        val cluster = RedisClusterFleet.builder().commandTimeout(java.time.Duration.ofMillis(1500)).start()
        afterEach { cluster.reset() }
        afterSpec { cluster.close() }

        test("three primaries with a replica each serve every slot, and a node that does not serve a key redirects with MOVED") {
            cluster.shards shouldBe 3
            cluster.size shouldBe 6
            cluster.uris() shouldBe (0 until 6).map { "redis://127.0.0.1:${cluster.port(it)}" }
            val info = cluster.command(0, "CLUSTER", "INFO") as String
            info shouldContain "cluster_state:ok"
            info shouldContain "cluster_slots_assigned:16384"
            info shouldContain "cluster_known_nodes:6"
            for (shard in 0 until 3) {
                cluster.nodesOf(shard) shouldBe listOf(2 * shard, 2 * shard + 1)
                cluster.primary(shard) shouldBe 2 * shard
                cluster.replicas(shard) shouldBe listOf(2 * shard + 1)
                (cluster.command(2 * shard + 1, "ROLE") as List<*>)[0] shouldBe "slave"
                cluster.shardOfNode(2 * shard + 1) shouldBe shard
            }
            cluster.shardOf(0) shouldBe 0
            cluster.shardOf(RedisClusterFleet.SLOTS - 1) shouldBe 2

            for (key in listOf("orders:42", "{user:7}:cart", "{user:7}:profile", "{}plain", "a{}b{c}", "ünïcode")) {
                val slot = cluster.slotOf(key)
                cluster.command(0, "CLUSTER", "KEYSLOT", key) shouldBe slot.toLong()
                val owner = cluster.primary(cluster.shardOf(slot))
                cluster.command(owner, "SET", key, "v") shouldBe "OK"
                val elsewhere = (owner + 2) % 6
                shouldThrow<RedisFleetException> { cluster.command(elsewhere, "GET", key) }.message shouldContain
                    "MOVED $slot 127.0.0.1:${cluster.port(owner)}"
            }
            cluster.slotOf("{user:7}:cart") shouldBe cluster.slotOf("{user:7}:profile")
            cluster.keyCount() shouldBe 6
            cluster.flushAll()
            cluster.keyCount() shouldBe 0
        }

        test("a one-node cluster lists its own address in CLUSTER SLOTS (not an empty host), so any cluster client can reach it") {
            RedisClusterFleet.builder().shards(1).replicasPerShard(0).start().use { single ->
                val slots = single.command(0, "CLUSTER", "SLOTS") as List<*>
                slots shouldHaveSize 1
                val primary = (slots[0] as List<*>)[2] as List<*>
                primary[0] shouldBe "127.0.0.1"
                primary[1] shouldBe single.port(0).toLong()
            }
        }

        test("markNeverGranted dates every slot's boot marker a year back on the primary serving it, and masterUri names every node") {
            cluster.masterUri() shouldBe "redis-cluster://" + (0 until 6).joinToString(",") { "127.0.0.1:${cluster.port(it)}" }
            cluster.markNeverGranted()
            cluster.keyCount() shouldBe RedisClusterFleet.SLOTS
            for (slot in listOf(0, 5000, RedisClusterFleet.SLOTS - 1)) {
                val marker = dev.redlock.core.internal.Keys.clusterBootMarker(slot)
                cluster.slotOf(marker) shouldBe slot
                val dated = (cluster.command(cluster.primary(cluster.shardOf(slot)), "GET", marker) as String).toLong()
                val now = ((cluster.command(0, "TIME") as List<*>)[0] as String).toLong() * 1000
                (now - dated) / 86_400_000L shouldBe 365L
            }
        }

        test("failover hands a shard to its replica with the data, and the old primary follows the new one") {
            val key = keyOnShard(cluster, 1, "fo")
            cluster.command(2, "SET", key, "kept") shouldBe "OK"
            val oldId = cluster.nodeId(2)

            val promoted = cluster.failover(1)
            promoted shouldBe 3
            cluster.primary(1) shouldBe 3
            cluster.replicas(1) shouldBe listOf(2)
            cluster.command(3, "GET", key) shouldBe "kept"
            (cluster.command(2, "ROLE") as List<*>)[0] shouldBe "slave"
            shouldThrow<RedisFleetException> { cluster.command(2, "GET", key) }.message shouldContain "MOVED"
            cluster.nodeId(2) shouldBe oldId

            cluster.failover(1) shouldBe 2 // and back
            cluster.primary(1) shouldBe 2
        }

        test("a killed primary is replaced by its replica, and comes back after restart as a replica with the data") {
            val key = keyOnShard(cluster, 0, "crash")
            cluster.command(0, "SET", key, "v") shouldBe "OK"
            cluster.awaitReplicated(0)
            cluster.keys(1) shouldBe listOf(key) // a replica answers KEYS without redirecting
            val oldId = cluster.nodeId(0)

            cluster.kill(0)
            cluster.isRunning(0) shouldBe false
            shouldThrow<RedisFleetException> { cluster.command(0, "PING") }.message shouldContain "not running"
            cluster.awaitReady() // the cluster promotes node 1 by itself
            cluster.primary(0) shouldBe 1
            cluster.command(1, "GET", key) shouldBe "v"

            cluster.restart(0)
            cluster.awaitReady()
            cluster.nodeId(0) shouldBe oldId // nodes.conf survived the restart
            cluster.primary(0) shouldBe 1
            cluster.replicas(0) shouldBe listOf(0)
            cluster.keys(0) shouldBe listOf(key) // it copied the data from the new primary
        }

        test("a primary restarted before its replica took over comes back empty, still serving its slots") {
            val key = keyOnShard(cluster, 2, "lost")
            cluster.command(4, "SET", key, "v") shouldBe "OK"
            cluster.restart(4)
            cluster.awaitReady()
            cluster.primary(2) shouldBe 4
            cluster.command(4, "GET", key) shouldBe null
            cluster.keys(5).shouldBeEmpty() // and the replica copied the empty data set
        }

        test("a paused node answers nothing until resumed") {
            cluster.pause(5)
            cluster.isPaused(5) shouldBe true
            cluster.isRunning(5) shouldBe true
            val timeout = shouldThrow<RedisFleetException> { cluster.command(5, "PING") }
            timeout.message shouldContain "paused"
            cluster.resume(5)
            cluster.isPaused(5) shouldBe false
            cluster.command(5, "PING") shouldBe "PONG"
            cluster.awaitReady()
        }

        test("a slot migrates with its keys: ASK for the keys moved while it is in flight, MOVED once it is done") {
            val tag = "{mig}"
            val slot = cluster.slotOf(tag)
            val source = cluster.primary(cluster.shardOf(slot))
            val toShard = (cluster.shardOf(slot) + 1) % 3
            val target = cluster.primary(toShard)
            for (k in listOf("a", "b", "c")) cluster.command(source, "SET", "$tag$k", k, "PX", "60000") shouldBe "OK"

            val migration = cluster.beginSlotMigration(slot, toShard)
            migration.source shouldBe source
            migration.target shouldBe target
            migration.moveKeys(1) shouldBe 1
            val left = migration.keysLeft()
            left shouldHaveSize 2
            val moved = (listOf("a", "b", "c").map { "$tag$it" } - left.toSet()).single()
            shouldThrow<RedisFleetException> { cluster.command(source, "GET", moved) }.message shouldContain
                "ASK $slot 127.0.0.1:${cluster.port(target)}"
            cluster.command(source, "GET", left.first()) shouldBe left.first().removePrefix(tag)
            askingGet(cluster.port(target), moved) shouldBe moved.removePrefix(tag)
            cluster.shardOf(slot) shouldBe cluster.shardOfNode(source) // still served from the source

            migration.finish()
            cluster.shardOf(slot) shouldBe toShard
            cluster.keys(target, "$tag*") shouldContainExactly listOf("${tag}a", "${tag}b", "${tag}c")
            cluster.keys(source, "$tag*").shouldBeEmpty()
            (cluster.command(target, "PTTL", "${tag}a") as Long) shouldNotBe -1L // the time to live moved along
            shouldThrow<RedisFleetException> { cluster.command(source, "GET", "${tag}a") }.message shouldContain
                "MOVED $slot 127.0.0.1:${cluster.port(target)}"

            cluster.migrateSlot(slot, cluster.shardOfNode(source)) // and back in one call
            cluster.shardOf(slot) shouldBe cluster.shardOfNode(source)
            cluster.command(source, "GET", "${tag}b") shouldBe "b"
        }

        test("reset brings killed and paused nodes back, ends an unfinished migration and empties the cluster") {
            val slot = cluster.slotOf("{reset}")
            val from = cluster.shardOf(slot)
            cluster.command(cluster.primary(from), "SET", "{reset}k", "v")
            cluster.beginSlotMigration(slot, (from + 1) % 3)
            cluster.kill(1)
            cluster.pause(3)

            cluster.reset()
            for (node in 0 until 6) {
                cluster.isRunning(node) shouldBe true
                cluster.isPaused(node) shouldBe false
            }
            cluster.shardOf(slot) shouldBe from
            cluster.keyCount() shouldBe 0
            val nodes = cluster.command(0, "CLUSTER", "NODES") as String
            nodes shouldNotContainAny listOf("->-", "-<-")
        }

        test("settings are checked, and a start that fails stops what it started and says why") {
            shouldThrow<IllegalArgumentException> { RedisClusterFleet.builder().shards(0) }.message shouldContain "shards"
            shouldThrow<IllegalArgumentException> { RedisClusterFleet.builder().replicasPerShard(4) }.message shouldContain "replicasPerShard"
            shouldThrow<IllegalArgumentException> { RedisClusterFleet.builder().serverArgs("--cluster-enabled", "no") }.message shouldContain
                "--cluster-enabled"
            val before = redisChildren()
            val error =
                shouldThrow<RedisFleetException> {
                    RedisClusterFleet.builder().shards(1).replicasPerShard(0).serverArgs("--no-such-option", "1").start()
                }
            error.message shouldContain "no-such-option"
            redisChildren() shouldBe before
        }

        test("a one-shard cluster without replicas starts, and close stops every process and deletes its directory") {
            val pids: List<Long>
            val dirs: List<Path>
            RedisClusterFleet.builder().shards(1).replicasPerShard(0).start().use { single ->
                single.size shouldBe 1
                single.serverVersion shouldBe cluster.serverVersion
                single.serverName shouldBe cluster.serverName
                single.shardOf(RedisClusterFleet.keySlot("anything")) shouldBe 0
                single.command(0, "SET", "anything", "v") shouldBe "OK"
                pids = single.pids()
                dirs = pids.map { pid -> Path.of("/proc/$pid/cwd").toRealPath().parent }
            }
            pids shouldHaveSize 1
            pids.filter { pid -> ProcessHandle.of(pid).map { it.isAlive }.orElse(false) }.shouldBeEmpty()
            dirs.filter(Files::exists).shouldBeEmpty()
        }

        test("the cluster reports which server runs it, Valkey by its own version") {
            val info = cluster.command(0, "INFO", "server") as String
            if ("valkey_version:" in info) {
                cluster.serverName shouldBe "Valkey"
                info shouldContain "valkey_version:${cluster.serverVersion}"
            } else {
                cluster.serverName shouldBe "Redis"
                info shouldContain "redis_version:${cluster.serverVersion}"
            }
            cluster.toString() shouldStartWith "RedisClusterFleet(shards=3, replicasPerShard=1"
        }
    })

/** A key that shard [shard] serves now, made from [base]. */
private fun keyOnShard(cluster: RedisClusterFleet, shard: Int, base: String): String =
    generateSequence(0) { it + 1 }.map { "$base:$it" }.first { cluster.shardOf(cluster.slotOf(it)) == shard }

/** GET after ASKING, on one connection: what a client does after an ASK redirection. */
private fun askingGet(port: Int, key: String): String? =
    Socket().use { socket ->
        socket.soTimeout = 2_000
        socket.connect(InetSocketAddress("127.0.0.1", port), 2_000)
        val k = key.toByteArray()
        socket.getOutputStream().write("*1\r\n\$6\r\nASKING\r\n*2\r\n\$3\r\nGET\r\n\$${k.size}\r\n".toByteArray() + k + "\r\n".toByteArray())
        val reader = socket.getInputStream().bufferedReader()
        reader.readLine() shouldBe "+OK"
        val header = reader.readLine() ?: throw IOException("closed")
        if (header == "\$-1") null else if (header.startsWith("$")) reader.readLine() else throw IOException(header)
    }

private infix fun String.shouldNotContainAny(parts: List<String>) {
    parts.filter { it in this } shouldBe emptyList()
}

private fun redisChildren(): List<Long> =
    ProcessHandle.current().children().filter { handle ->
        handle.isAlive && handle.info().command().map { it.contains("redis-server") || it.contains("ld-linux") }.orElse(false)
    }.map { it.pid() }.toList().sorted()

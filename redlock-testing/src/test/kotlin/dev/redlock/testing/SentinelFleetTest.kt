package dev.redlock.testing

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain

@Tags("compat")
class SentinelFleetTest :
    FunSpec({
        test("a sentinel fleet monitors its groups, fails them over, holds replication back on demand, and leaves nothing behind") {
            val pids: List<Long>
            SentinelFleet.builder().groups(2).sentinels(3).start().use { fleet ->
                fleet.sentinelPorts() shouldHaveSize 3
                fleet.uri(1) shouldBe "redis-sentinel://" + fleet.sentinelPorts().joinToString(",") { "127.0.0.1:$it" } + "#group-1"
                val (primary, replica) = fleet.nodePorts(0)
                fleet.primaryPort(0) shouldBe primary
                fleet.command(primary, "SET", "k", "v") shouldBe "OK"
                // Replication is asynchronous: let "k" reach the replica before cutting it off.
                val deadline = System.nanoTime() + 10_000_000_000L // a hang guard
                while (fleet.command(replica, "GET", "k") == null && System.nanoTime() < deadline) Thread.sleep(10)

                fleet.cutReplication(0)
                fleet.command(primary, "SET", "late", "v") shouldBe "OK"
                Thread.sleep(200)
                fleet.command(replica, "GET", "late") shouldBe null
                fleet.command(replica, "GET", "k") shouldBe "v"

                val promoted = fleet.failover(0)
                promoted shouldBe replica
                fleet.primaryPort(0) shouldBe replica
                (fleet.command(primary, "ROLE") as List<*>)[0] shouldBe "slave"
                // The write the replica never saw is gone from the group.
                fleet.command(replica, "GET", "late") shouldBe null
                fleet.command(primary, "GET", "late") shouldBe null
                fleet.primaryPort(1) shouldNotBe replica
                shouldThrow<IllegalArgumentException> { fleet.uri(2) }.message shouldContain "group"
                pids = ProcessHandle.current().children().map { it.pid() }.toList()
            }
            pids.filter { pid -> ProcessHandle.of(pid).map { it.isAlive }.orElse(false) } shouldBe emptyList()
        }
    })

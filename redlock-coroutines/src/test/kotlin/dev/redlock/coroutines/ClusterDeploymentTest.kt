package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.LockNotExtendedException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.Keys
import dev.redlock.testing.RedisClusterFleet
import dev.redlock.testing.RedisFleet
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeStrictlyIncreasing
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import java.time.Duration as JavaDuration
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay

/** The slot of a resource's keys on a cluster master (default key prefix). */
fun slotOfResource(resource: String): Int = Keys.slot(Keys.onCluster(Keys.lock("redlock:", resource)))

/** The shard serving a resource's keys now. */
fun RedisClusterFleet.shardOfResource(resource: String): Int = shardOf(slotOfResource(resource))

/** Whether the primary serving [resource] now holds its key (of the layout [Keys] names: lock key, or derived with [derive]). */
fun RedisClusterFleet.holds(resource: String, derive: (String) -> String = { it }): Boolean {
    val key = Keys.onCluster(derive(Keys.lock("redlock:", resource)))
    return command(primary(shardOfResource(resource)), "EXISTS", key) == 1L
}

/**
 * Dates the restart guard's markers of the slots of [resources] a year back on their primaries: the
 * masters have granted nothing they could have forgotten (as RedisFleet does for standalone masters).
 */
fun RedisClusterFleet.neverGranted(vararg resources: String) {
    for (r in resources) {
        val slot = slotOfResource(r)
        command(primary(shardOf(slot)), "EVAL", Keys.BOOT_MARKER_NEVER_GRANTED, "1", Keys.clusterBootMarker(slot))
    }
}

/**
 * Stops replication to shard [shard]'s replicas: its primary's default user may no longer run the
 * replication commands, and the replicas' links are dropped (they reconnect and are refused). Later
 * writes to the primary reach no replica, as when a failover follows a write before it replicated.
 * Lasts until the primary restarts.
 */
fun RedisClusterFleet.cutReplication(shard: Int) {
    awaitReplicated(shard)
    val primary = primary(shard)
    command(primary, "ACL", "SETUSER", "default", "-psync", "-sync", "-replconf")
    command(primary, "CLIENT", "KILL", "TYPE", "slave")
}

/** The library's keys on every primary that answers, boot markers aside. */
fun RedisClusterFleet.lockKeys(): List<String> =
    (0 until shards).flatMap { s ->
        runCatching { keys(primary(s), "{redlock:*") }.getOrDefault(emptyList())
    }

/**
 * A Redis Cluster (three shards of a primary and a replica) as one Redlock master, and with two
 * standalone masters as one of three: every kind of lock, release notices, cross-slot refusal,
 * renewals per slot, a slot migration under a held lock, failovers that keep or lose a lock, a
 * primary restarted empty, and a node that is down. Three clusters would be 18 processes on a
 * shared two-core machine: N = 3 is one cluster plus two standalone masters.
 */
@Tags("compat")
class ClusterDeploymentTest : FunSpec({
    val cluster = RedisClusterFleet.builder().nodeTimeout(JavaDuration.ofSeconds(5)).start().apply { markNeverGranted() }
    val standalone = RedisFleet.start(2)
    afterSpec {
        cluster.close()
        standalone.close()
    }
    afterEach {
        for (i in 0 until cluster.size) if (!cluster.isRunning(i)) cluster.restart(i)
        cluster.awaitReady()
        // No lock, reader, writer or permit key left; fencing counters (kept on purpose) are removed.
        val left = cluster.lockKeys()
        for (s in 0 until cluster.shards) {
            for (key in cluster.keys(cluster.primary(s), "{redlock:*")) cluster.command(cluster.primary(s), "DEL", key)
        }
        left.filterNot { it.endsWith("\u0000fence") } shouldBe emptyList()
        for (m in 0 until standalone.size) {
            for (key in standalone.keys(m)) if (key.endsWith("\u0000fence")) standalone.command(m, "DEL", key)
        }
        standalone.restoreAndCheckClean()
    }

    fun config(masters: List<String>, configure: RedlockConfig.Builder.() -> Unit = {}): RedlockConfig =
        RedlockConfig.builder()
            .masters(masters)
            .leaseTime(JavaDuration.ofSeconds(5))
            .restartGuard(JavaDuration.ofSeconds(30))
            .waitTime(JavaDuration.ofSeconds(10))
            .retryDelay(JavaDuration.ofMillis(20))
            .apply(configure)
            .build()

    fun one(configure: RedlockConfig.Builder.() -> Unit = {}) = Redlock(config(listOf(cluster.masterUri()), configure))

    fun three(configure: RedlockConfig.Builder.() -> Unit = {}) =
        Redlock(config(listOf(cluster.masterUri()) + standalone.uris(), configure))

    test("a lock on a cluster master lives in its resource's slot, under a hash-tagged key, named by the cluster's seeds") {
        cluster.neverGranted("orders")
        one().use { redlock ->
            redlock.engine.masters.nodes.single().name() shouldBe "cluster " + (0 until cluster.size).joinToString(",") { "127.0.0.1:${cluster.port(it)}" }
            one().use { other ->
                // A single attempt of a Redlock just created may find its cluster connections still
                // opening (topology, then every primary): let them open first.
                cluster.neverGranted("warm-up")
                val giveUp = TimeSource.Monotonic.markNow() + 20.seconds
                while (runCatching { other.tryAcquire("warm-up")!!.release() }.isFailure) {
                    check(giveUp.hasNotPassedNow()) { "the second Redlock never connected" }
                    delay(50.milliseconds)
                }
                redlock.withRedlock("orders") {
                    cluster.holds("orders") shouldBe true
                    cluster.command(cluster.primary(cluster.shardOfResource("orders")), "EXISTS", "redlock:orders") shouldBe 0L
                    other.tryAcquire("orders") shouldBe null
                }
            }
            cluster.holds("orders") shouldBe false
        }
    }

    for (n in listOf(1, 3)) {
        test("locks, read-write locks, permits and fencing work with $n master(s), a cluster among them") {
            cluster.neverGranted("kinds-lock", "kinds-rw", "kinds-sem")
            val make = { if (n == 1) one { fencing(true) } else three { fencing(true) } }
            make().use { a ->
                make().use { b ->
                    val tokens = ArrayList<Long>()
                    repeat(3) {
                        a.withRedlock("kinds-lock") { lease ->
                            tokens += lease.fencingToken.shouldNotBeNull()
                            b.tryAcquire("kinds-lock") shouldBe null
                        }
                        b.withRedlock("kinds-lock") { lease -> tokens += lease.fencingToken.shouldNotBeNull() }
                    }
                    tokens.shouldBeStrictlyIncreasing()

                    val r1 = a.acquireReadLock("kinds-rw")
                    val r2 = b.acquireReadLock("kinds-rw")
                    cluster.holds("kinds-rw") { Keys.readers(it) } shouldBe true
                    b.tryAcquireWriteLock("kinds-rw") shouldBe null
                    r1.release()
                    r2.release()
                    val w = b.acquireWriteLock("kinds-rw")
                    cluster.holds("kinds-rw") { Keys.writer(it) } shouldBe true
                    a.tryAcquireReadLock("kinds-rw") shouldBe null
                    w.release()

                    val p1 = a.acquirePermit("kinds-sem", 2)
                    val p2 = b.acquirePermit("kinds-sem", 2)
                    cluster.holds("kinds-sem") { Keys.permitHolders(it) } shouldBe true
                    a.tryAcquirePermit("kinds-sem", 2) shouldBe null
                    p1.release()
                    a.tryAcquirePermit("kinds-sem", 2).shouldNotBeNull().release()
                    p2.release()
                }
            }
        }
    }

    test("a release on the cluster wakes a waiter at once (release notices reach it), not by its 20 s retry delay") {
        cluster.neverGranted("wake")
        one().use { holder ->
            Redlock(config(listOf(cluster.masterUri())) { retryDelay(JavaDuration.ofSeconds(20)).waitTime(JavaDuration.ofSeconds(40)) }).use { slow ->
                val lease = holder.acquire("wake", leaseTime = 30.seconds)
                val started = CompletableDeferred<Unit>()
                coroutineScope {
                    val waiter = async { started.complete(Unit); slow.acquire("wake") }
                    awaitStart(started, waiter)
                    eventually(what = "the waiter is subscribed") { slow.engine.rooms.size == 1 }
                    delay(200.milliseconds) // the subscription reaches the node
                    lease.release()
                    awaitOrDump(waiter, limit = 10.seconds).release()
                }
            }
        }
    }

    test("a multi-resource lock takes resources of one slot (a common hash tag), and refuses resources of different slots at the call, naming them and their slots") {
        cluster.neverGranted("{order-7}:payment")
        one().use { redlock ->
            slotOfResource("{order-7}:payment") shouldBe slotOfResource("{order-7}:stock")
            redlock.withRedlock("{order-7}:payment", "{order-7}:stock") {
                cluster.holds("{order-7}:payment") shouldBe true
                cluster.holds("{order-7}:stock") shouldBe true
            }
            slotOfResource("alpha") shouldNotBe slotOfResource("beta")
            val e = shouldThrow<IllegalArgumentException> { redlock.withRedlock("alpha", "beta") { } }
            e.message shouldContain "'alpha' (slot ${slotOfResource("alpha")})"
            e.message shouldContain "'beta' (slot ${slotOfResource("beta")})"
            e.message shouldContain "hash to different slots"
        }
        // With standalone masters too, the cluster's rule applies to the whole lock.
        three().use { redlock -> shouldThrow<IllegalArgumentException> { redlock.acquire("alpha", "beta") } }
        // A resource key starting with '}' could not carry a hash tag.
        Redlock(config(listOf(cluster.masterUri())) { keyPrefix("") }).use { redlock ->
            shouldThrow<IllegalArgumentException> { redlock.acquire("}odd") }.message shouldContain "starts with '}'"
        }
    }

    test("the same cluster given twice under other seeds is found by its node ids and counted once") {
        cluster.neverGranted("twice")
        val a = "redis-cluster://127.0.0.1:${cluster.port(0)},127.0.0.1:${cluster.port(1)}"
        val b = "redis-cluster://127.0.0.1:${cluster.port(2)}"
        Redlock(config(listOf(a, b))).use { redlock ->
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("twice", waitTime = 3.seconds) }
            e.message shouldContain "the same server as masters[0]"
        }
    }

    test("leases of different slots renewed together are renewed slot by slot, and all stay held") {
        val names = listOf("renew-a", "renew-b", "renew-c", "renew-d")
        names.map(::slotOfResource).distinct().size shouldBe names.size
        cluster.neverGranted(*names.toTypedArray())
        one().use { redlock ->
            coroutineScope {
                val gate = CompletableDeferred<Unit>()
                val sections = names.map { name -> async { redlock.withRedlock(name, leaseTime = 3.seconds) { lease -> gate.await(); lease.isValid } } }
                delay(4.seconds) // three renewal rounds, due together
                for (name in names) cluster.holds(name) shouldBe true
                gate.complete(Unit)
                sections.map { it.await() } shouldBe names.map { true }
            }
        }
    }

    test("a slot migration under a held lock: renewals follow the keys through ASK while it lasts and MOVED once done") {
        val resource = "migrating"
        cluster.neverGranted(resource)
        one().use { redlock ->
            redlock.withRedlock(resource, leaseTime = 4.seconds) { lease ->
                val slot = slotOfResource(resource)
                val from = cluster.shardOf(slot)
                val to = (from + 1) % cluster.shards
                val migration = cluster.beginSlotMigration(slot, to)
                migration.moveKeys() shouldNotBe 0
                migration.keysLeft() shouldBe emptyList()
                // The source answers ASK for the moved keys: extend and the renewals reach them there
                // (a first call may also have to load the scripts on the target: retried on a timeout).
                extendWithin(lease, 10.seconds)
                delay(3.seconds) // two renewals
                lease.isValid shouldBe true
                migration.finish()
                cluster.shardOf(slot) shouldBe to
                extendWithin(lease, 10.seconds) // MOVED, then the client's refreshed view
                delay(3.seconds)
                lease.isValid shouldBe true
                cluster.holds(resource) shouldBe true
            }
            cluster.holds(resource) shouldBe false
        }
    }

    test("a coordinated failover keeps a replicated lock: its renewals reach the new primary") {
        val resource = "kept-in-failover"
        cluster.neverGranted(resource)
        val shard = cluster.shardOfResource(resource)
        one().use { redlock ->
            one().use { other ->
                redlock.withRedlock(resource, leaseTime = 3.seconds) { lease ->
                    cluster.awaitReplicated(shard)
                    val old = cluster.primary(shard)
                    val promoted = cluster.failover(shard)
                    promoted shouldNotBe old
                    cluster.holds(resource) shouldBe true
                    extendWithin(lease, 10.seconds)
                    other.tryAcquire(resource) shouldBe null
                    delay(2.seconds)
                    lease.isValid shouldBe true
                }
            }
        }
    }

    test("UNSAFE: a failover to a replica that had not received the lock key lets a second holder in while the first lease is still valid") {
        val resource = "lost-in-failover"
        cluster.neverGranted(resource)
        val shard = cluster.shardOfResource(resource)
        one { keyTracking(false) }.use { first ->
            one().use { second ->
                val primary = cluster.primary(shard)
                val replica = cluster.replicas(shard).single()
                cluster.cutReplication(shard) // after the slot's boot marker reached the replica: the guard sees nothing
                val lease = first.acquire(resource, leaseTime = 30.seconds)
                cluster.holds(resource) shouldBe true
                cluster.keys(replica, "{redlock:$resource}") shouldBe emptyList()
                cluster.kill(primary)
                cluster.failover(shard) shouldBe replica
                cluster.holds(resource) shouldBe false

                // The new primary never heard of the lock: a second holder gets it while the first
                // lease is still valid by its own clock. Two holders.
                val intruder = second.acquire(resource, waitTime = 20.seconds)
                lease.isValid shouldBe true

                // The first holder learns of it at its next renewal: the key is not its own.
                val lost = extendUntilLost(lease, 20.seconds)
                lost.reason() shouldBe LockLostException.Reason.NOT_HELD
                intruder.release()
                lease.release()
            }
        }
    }

    test("a primary restarted empty before a failover is held back by the restart guard, and the holder learns its lease is lost") {
        val resource = "guarded-restart"
        cluster.neverGranted(resource)
        val shard = cluster.shardOfResource(resource)
        one().use { first ->
            one().use { second ->
                val lease = first.acquire(resource, leaseTime = 20.seconds)
                val primary = cluster.primary(shard)
                cluster.restart(primary) // back empty, still serving its slots
                cluster.awaitReady()
                cluster.primary(shard) shouldBe primary
                cluster.holds(resource) shouldBe false
                // The slot's marker is gone: it is created anew, dated from the restart, and the
                // cluster master's votes do not count for the guard's 30 s.
                val refused = retryWhileDisconnected { second.tryAcquire(resource) }
                refused.message shouldContain "restartGuard"
                extendUntilLost(lease, 20.seconds).reason() shouldBe LockLostException.Reason.NOT_HELD
                lease.release()
            }
        }
    }

    test("checkMasters probes every shard primary of a cluster master: a primary restarted empty shows as guarded") {
        // The lowest slot of each primary (CLUSTER SLOTS: start, end, primary's host and port...),
        // whose marker the probe reads.
        val lowest = (cluster.command(0, "CLUSTER", "SLOTS") as List<*>).map { it as List<*> }
            .groupBy { ((it[2] as List<*>)[1] as Long).toInt() }
            .mapValues { (_, ranges) -> ranges.minOf { (it[0] as Long).toInt() } }
        for ((port, slot) in lowest) {
            val node = (0 until cluster.size).first { cluster.port(it) == port }
            cluster.command(node, "EVAL", Keys.BOOT_MARKER_NEVER_GRANTED, "1", Keys.clusterBootMarker(slot))
        }
        val firstSlots = lowest.values.sorted()
        one().use { redlock ->
            val up = statusOnceConnected(redlock)
            withClue(up.toString()) { up.state() shouldBe dev.redlock.core.MasterStatus.State.UP }
        }
        val shard = cluster.shardOf(firstSlots[1])
        cluster.restart(cluster.primary(shard)) // back empty, still serving its slots
        cluster.awaitReady()
        one().use { redlock ->
            val status = statusOnceConnected(redlock)
            status.state() shouldBe dev.redlock.core.MasterStatus.State.RESTART_GUARDED
            status.master() shouldBe redlock.engine.masters.nodes.single().name()
        }
    }

    test("a killed primary: locks of its slots fail at once, naming the cluster master, and work again once its replica took over") {
        val resource = "killed-node"
        cluster.neverGranted(resource)
        val shard = cluster.shardOfResource(resource)
        one().use { redlock ->
            redlock.acquire(resource).release()
            val primary = cluster.primary(shard)
            cluster.kill(primary)
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire(resource, waitTime = Duration.ZERO) }
            e.message shouldContain "cluster 127.0.0.1:${cluster.port(0)}"
            // Other shards keep working meanwhile.
            val elsewhere = (0 until 10_000).map { "elsewhere-$it" }.first { cluster.shardOfResource(it) != shard }
            cluster.neverGranted(elsewhere)
            redlock.acquire(elsewhere).release()
            cluster.failover(shard)
            val lease = redlock.acquire(resource, waitTime = 30.seconds)
            cluster.holds(resource) shouldBe true
            lease.release()
        }
        for (i in 0 until cluster.size) if (!cluster.isRunning(i)) cluster.restart(i)
        cluster.awaitReady()
    }
})

/** The single master's status, asked again while its connections are still opening (DOWN). */
private suspend fun statusOnceConnected(redlock: Redlock): dev.redlock.core.MasterStatus {
    val giveUp = TimeSource.Monotonic.markNow() + 20.seconds
    while (true) {
        val status = redlock.checkMasters().single()
        if (status.state() != dev.redlock.core.MasterStatus.State.DOWN || giveUp.hasPassedNow()) return status
        delay(100.milliseconds)
    }
}

/** Extends [lease] until it succeeds (the client may still be reconnecting after a failover). */
private suspend fun extendWithin(lease: Lease, limit: Duration) {
    val giveUp = TimeSource.Monotonic.markNow() + limit
    while (true) {
        try {
            lease.extend()
            return
        } catch (e: LockNotExtendedException) {
            if (giveUp.hasPassedNow()) throw e
            delay(50.milliseconds)
        }
    }
}

/** Extends [lease] until it is found lost; extends that fail for a disconnect are retried. */
private suspend fun extendUntilLost(lease: Lease, limit: Duration): LockLostException {
    val giveUp = TimeSource.Monotonic.markNow() + limit
    while (true) {
        check(giveUp.hasNotPassedNow()) { "the holder never learned of the loss" }
        try {
            lease.extend()
            throw AssertionError("the extend of a lease whose key is gone must not succeed")
        } catch (e: LockLostException) {
            return e
        } catch (e: LockNotExtendedException) {
            delay(50.milliseconds)
        }
    }
}

/** Runs a single attempt until it fails for something else than the connection coming back. */
private suspend fun retryWhileDisconnected(attempt: suspend () -> Lease?): LockNotAcquiredException {
    val giveUp = TimeSource.Monotonic.markNow() + 20.seconds
    while (true) {
        try {
            val lease = attempt()
            lease?.release()
            throw AssertionError("a master restarted empty must not grant within the restart guard, but returned $lease")
        } catch (e: LockNotAcquiredException) {
            if (e.message?.contains("restartGuard") == true || giveUp.hasPassedNow()) return e
            delay(100.milliseconds)
        }
    }
}



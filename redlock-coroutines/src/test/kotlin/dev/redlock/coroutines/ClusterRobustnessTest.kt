package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.LockNotExtendedException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.Keys
import dev.redlock.testing.RedisClusterFleet
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import java.time.Duration as JavaDuration
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import kotlinx.coroutines.withContext

/**
 * A cluster master under the events a real cluster goes through: `replicaAcks` on a shard with
 * its replica up or down and across a slot migration; release notices that must still reach a
 * waiter after the slot moved or the shard failed over; the restart guard of one shard primary
 * that must not hold the other shards' votes; `TRYAGAIN` during a slot migration under load; and
 * `CLUSTERDOWN`. One cluster of three shards with a replica each.
 */
@Tags("compat")
class ClusterRobustnessTest : FunSpec({
    val cluster = RedisClusterFleet.builder().nodeTimeout(JavaDuration.ofSeconds(3)).start().apply { markNeverGranted() }
    val sharded = cluster.serverVersion.substringBefore('.').toInt() >= 7
    afterSpec { cluster.close() }
    afterEach {
        for (i in 0 until cluster.size) if (cluster.isPaused(i)) cluster.resume(i)
        for (i in 0 until cluster.size) if (!cluster.isRunning(i)) cluster.restart(i)
        cluster.awaitReady()
        val left = cluster.lockKeys()
        for (s in 0 until cluster.shards) {
            for (key in cluster.keys(cluster.primary(s), "{redlock:*")) cluster.command(cluster.primary(s), "DEL", key)
        }
        left.filterNot { it.endsWith("\u0000fence") } shouldBe emptyList()
    }

    fun one(configure: RedlockConfig.Builder.() -> Unit = {}) =
        Redlock(
            RedlockConfig.builder()
                .master(cluster.masterUri())
                .leaseTime(JavaDuration.ofSeconds(5))
                .restartGuard(JavaDuration.ofSeconds(30))
                .waitTime(JavaDuration.ofSeconds(10))
                .retryDelay(JavaDuration.ofMillis(20))
                .apply(configure)
                .build(),
        )

    /** A resource (named from [prefix]) whose slot is served by a shard other than [shard]. */
    fun elsewhere(prefix: String, shard: Int): String = (0 until 10_000).map { "$prefix-$it" }.first { cluster.shardOfResource(it) != shard }

    test("replicaAcks on a cluster master: the vote counts once the slot's replica has the key; with that replica paused it does not (NOT_REPLICATED), and the other shards keep granting") {
        val resource = "{acked}:a"
        val shard = cluster.shardOfResource(resource)
        val other = elsewhere("acked-other", shard)
        cluster.neverGranted(resource, other)
        one { replicaAcks(1).nodeTimeout(JavaDuration.ofSeconds(1)).replicaAckTimeout(JavaDuration.ofMillis(200)) }.use { redlock ->
            val lease = connected { redlock.acquire(resource) }
            val replica = cluster.replicas(shard).single()
            // WAIT answered for this very write: the replica has the key already.
            cluster.keys(replica, "{redlock:{acked}*") shouldContain Keys.onCluster("redlock:$resource")
            lease.extend()

            cluster.pause(replica) // connected, but acknowledges nothing
            val notExtended = shouldThrow<LockNotExtendedException> { lease.extend() }
            notExtended.masterFailures().single().kind() shouldBe MasterFailureException.Kind.NOT_REPLICATED
            val refused = shouldThrow<LockNotAcquiredException> { redlock.acquire("{acked}:b", waitTime = Duration.ZERO) }
            withClue(refused.message) {
                refused.masterFailures().single().kind() shouldBe MasterFailureException.Kind.NOT_REPLICATED
                refused.message shouldContain "replicaAcks"
            }
            // Another shard's replica is up: its votes count.
            redlock.acquire(other, waitTime = Duration.ZERO).release()
            lease.release()
            cluster.resume(replica)
        }
    }

    test("replicaAcks follows a slot migration to the primary holding the keys (ASK, then MOVED) and waits for its replica there") {
        val resource = "acked-migrating"
        cluster.neverGranted(resource)
        one { replicaAcks(1).nodeTimeout(JavaDuration.ofSeconds(1)).replicaAckTimeout(JavaDuration.ofMillis(200)) }.use { redlock ->
            val lease = connected { redlock.acquire(resource) }
            val slot = slotOfResource(resource)
            val to = (cluster.shardOf(slot) + 1) % cluster.shards
            val migration = cluster.beginSlotMigration(slot, to)
            migration.moveKeys() shouldNotBe 0
            extendWithin(lease, 10.seconds) // ASK: ASKING + the script at the target, WAIT there
            migration.finish()
            extendWithin(lease, 10.seconds) // MOVED (the client's view may still name the source)
            cluster.keys(cluster.replicas(to).single(), "{redlock:$resource}") shouldBe listOf(Keys.onCluster("redlock:$resource"))
            lease.isValid shouldBe true
            lease.release()
        }
    }

    /** Subscribers of [resource]'s release channel at the primary serving its slot now (sharded pub/sub; 1 without it). */
    fun subscribers(resource: String): Long {
        if (!sharded) return 1L
        val channel = Keys.releaseChannel(Keys.onCluster(Keys.lock("redlock:", resource)))
        val reply = cluster.command(cluster.primary(cluster.shardOfResource(resource)), "PUBSUB", "SHARDNUMSUB", channel) as List<*>
        return reply[1] as Long
    }

    /**
     * A waiter in one Redlock, a holder in another (a release in the waiter's own process would
     * wake it without any notice); the waiter's retry pause (30 s at least) and the holder's
     * remaining time (about a minute) cannot wake it within the test's 20 s: only a notice can.
     */
    suspend fun wokenByNotice(resource: String, between: suspend (holder: Redlock, lease: Lease) -> Unit) {
        val slow: RedlockConfig.Builder.() -> Unit = {
            leaseTime(JavaDuration.ofSeconds(60)).restartGuard(JavaDuration.ofSeconds(90))
                .retryDelay(JavaDuration.ofSeconds(60)).waitTime(JavaDuration.ofSeconds(120))
        }
        one(slow).use { holder ->
            one(slow).use { waiterSide ->
                val lease = connected { holder.acquire(resource) }
                val started = CompletableDeferred<Unit>()
                coroutineScope {
                    val waiter = async { started.complete(Unit); waiterSide.acquire(resource) }
                    awaitStart(started, waiter)
                    eventually(what = "the waiter is subscribed") { waiterSide.engine.rooms.size == 1 && subscribers(resource) == 1L }
                    between(holder, lease)
                    if (sharded) {
                        // Where the slot is served now: the subscription was made again there.
                        eventually(limit = 20.seconds, what = "the waiter is subscribed at the slot's primary now") { subscribers(resource) == 1L }
                    }
                    extendWithin(lease, 15.seconds) // the holder's client follows the change too
                    lease.release()
                    awaitOrDump(waiter, limit = 20.seconds).release()
                }
            }
        }
    }

    test("a waiter is woken by the release notice after its slot migrated to another shard") {
        val resource = "woken-after-migration"
        cluster.neverGranted(resource)
        wokenByNotice(resource) { _, _ ->
            val slot = slotOfResource(resource)
            cluster.migrateSlot(slot, (cluster.shardOf(slot) + 1) % cluster.shards)
        }
    }

    test("a waiter is woken by the release notice after a coordinated failover of its slot's shard") {
        val resource = "woken-after-failover"
        cluster.neverGranted(resource)
        val shard = cluster.shardOfResource(resource)
        wokenByNotice(resource) { _, _ ->
            cluster.awaitReplicated(shard)
            cluster.failover(shard)
        }
    }

    test("a waiter is woken by the release notice after its slot's primary was killed and its replica took over (sharded pub/sub, Redis 7.0+)").config(enabled = sharded) {
        val resource = "woken-after-kill"
        cluster.neverGranted(resource)
        val shard = cluster.shardOfResource(resource)
        wokenByNotice(resource) { _, _ ->
            cluster.awaitReplicated(shard)
            cluster.kill(cluster.primary(shard))
            cluster.failover(shard)
        }
    }

    test("a shard primary restarted empty holds back its own slots' votes only: a lease on another shard keeps being renewed") {
        val steady = "{guard-steady}:a"
        val shard = cluster.shardOfResource(steady)
        val young = elsewhere("guard-young", shard)
        cluster.neverGranted(steady, young)
        one().use { redlock ->
            connected { redlock.acquire(steady) }.release()
            coroutineScope {
                val held = CompletableDeferred<Unit>()
                val done = CompletableDeferred<Unit>()
                val section = async {
                    redlock.withRedlock(steady, leaseTime = 3.seconds) { lease ->
                        held.complete(Unit)
                        done.await()
                        lease.isValid
                    }
                }
                awaitStart(held, section)
                cluster.restart(cluster.primary(cluster.shardOfResource(young))) // back empty, still serving its slots
                cluster.awaitReady()
                // The restarted primary's slot: its marker is new, so its votes there wait out the guard.
                val refused = retryWhileDisconnected { redlock.tryAcquire(young) }
                refused.message shouldContain "restartGuard"
                // Meanwhile the lease on the other shard is renewed (every second) and counted, and its
                // shard grants new locks.
                delay(4.seconds)
                redlock.acquire("{guard-steady}:b", waitTime = Duration.ZERO).release()
                done.complete(Unit)
                section.await() shouldBe true
            }
        }
    }

    test("a slot migration under load: calls whose keys are split between the two primaries fail with a TRYAGAIN failure naming the migration; the load goes on once it ends, one holder at a time") {
        val names = (0 until 4).map { "{migrating-load}:$it" }
        cluster.neverGranted(*names.toTypedArray())
        val slot = slotOfResource(names[0])
        one().use { redlock ->
            connected { redlock.acquire(names[0]) }.release()
            val inside = names.associateWith { AtomicInteger() }
            val overlaps = AtomicInteger()
            val rounds = AtomicInteger()
            val stop = CompletableDeferred<Unit>()
            coroutineScope {
                val workers = names.map { name ->
                    async(Dispatchers.Default) {
                        while (isActive && !stop.isCompleted) {
                            runCatching {
                                redlock.withRedlock(name, waitTime = 20.seconds) {
                                    if (inside.getValue(name).incrementAndGet() > 1) overlaps.incrementAndGet()
                                    delay(5.milliseconds)
                                    inside.getValue(name).decrementAndGet()
                                }
                                rounds.incrementAndGet()
                            }.onFailure { if (it !is LockNotAcquiredException) throw it }
                        }
                    }
                }
                eventually(what = "the load runs") { rounds.get() > 20 }
                val migration = cluster.beginSlotMigration(slot, (cluster.shardOf(slot) + 1) % cluster.shards)
                migration.moveKeys()
                val e = shouldThrow<LockNotAcquiredException> {
                    withContext(Dispatchers.Default) { redlock.acquire("{migrating-load}:free", waitTime = Duration.ZERO) }
                }
                withClue(e.message) {
                    e.message shouldContain "TRYAGAIN"
                    e.message shouldContain "being migrated"
                }
                migration.finish()
                val before = rounds.get()
                eventually(limit = 20.seconds, what = "the load goes on after the migration") { rounds.get() > before + 20 }
                stop.complete(Unit)
                workers.forEach { it.await() }
            }
            overlaps.get() shouldBe 0
            rounds.get() shouldBeGreaterThan 40
        }
    }

    test("leases of a migrating slot renewed together while the slot's keys are split between the two primaries: the renewal falls back to one call per lease, and every lease stays held") {
        val names = (0 until 4).map { "{split-renewals}:$it" }
        cluster.neverGranted(*names.toTypedArray())
        val slot = slotOfResource(names[0])
        val lockKeys = names.map { Keys.onCluster(Keys.lock("redlock:", it)) }
        one().use { redlock ->
            connected { redlock.acquire(names[0]) }.release()
            coroutineScope {
                val gate = CompletableDeferred<Unit>()
                val held = names.map { CompletableDeferred<Unit>() }
                val sections = names.mapIndexed { i, name ->
                    async {
                        redlock.withRedlock(name, leaseTime = 3.seconds) { lease ->
                            held[i].complete(Unit)
                            gate.await()
                            lease.isValid
                        }
                    }
                }
                held.forEach { it.await() }
                val migration = cluster.beginSlotMigration(slot, (cluster.shardOf(slot) + 1) % cluster.shards)
                // Move keys one at a time until some of the leases' keys are on each side.
                while (migration.keysLeft().let { left -> lockKeys.all { it in left } }) migration.moveKeys(1)
                val left = migration.keysLeft()
                withClue("keys left on the source: $left") {
                    lockKeys.any { it in left } shouldBe true
                    lockKeys.any { it !in left } shouldBe true
                }
                // Renewals are due together (every second): a call for all four would be refused
                // with TRYAGAIN until the migration ends, and the leases would run out after 3 s.
                delay(4.seconds)
                migration.finish()
                gate.complete(Unit)
                sections.map { it.await() } shouldBe names.map { true }
            }
        }
    }

    test("a shard down (primary and replica paused) with no replica to take over: the cluster answers CLUSTERDOWN, a failure named as such") {
        val resource = "cluster-down"
        val shard = cluster.shardOfResource(resource)
        val downShard = (shard + 1) % cluster.shards
        cluster.neverGranted(resource)
        Redlock(
            RedlockConfig.builder().master(cluster.masterUri()).leaseTime(JavaDuration.ofSeconds(5))
                .restartGuard(JavaDuration.ofSeconds(30)).build(),
        ).use { redlock ->
            connected { redlock.acquire(resource) }.release()
            for (node in cluster.nodesOf(downShard)) cluster.pause(node)
            // After the cluster's node timeout the others deem the shard failed, and with no replica
            // left to promote the whole cluster stops serving (cluster-require-full-coverage yes).
            val giveUp = TimeSource.Monotonic.markNow() + 30.seconds
            var last: LockNotAcquiredException? = null
            while (giveUp.hasNotPassedNow()) {
                val e = runCatching { redlock.acquire(resource, waitTime = Duration.ZERO).release() }.exceptionOrNull()
                if (e is LockNotAcquiredException && e.message!!.contains("CLUSTERDOWN")) {
                    last = e
                    break
                }
                delay(200.milliseconds)
            }
            withClue("no CLUSTERDOWN failure within 30 s") { last shouldNotBe null }
            last!!.masterFailures().single().kind() shouldBe MasterFailureException.Kind.UNREACHABLE
            last.message shouldContain "the cluster serves no commands now"
        }
        for (node in cluster.nodesOf(downShard)) cluster.resume(node)
        cluster.awaitReady()
    }
})

/** Runs [call] until the cluster connections opened (a first call may find them opening). */
private suspend fun <T> connected(call: suspend () -> T): T {
    val giveUp = TimeSource.Monotonic.markNow() + 20.seconds
    while (true) {
        try {
            return call()
        } catch (e: LockNotAcquiredException) {
            if (giveUp.hasPassedNow() || e.isContended) throw e
            delay(50.milliseconds)
        }
    }
}

/** Extends [lease] until it succeeds (the client may still be following a change of the cluster). */
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

package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.Keys
import dev.redlock.testing.RedisClusterFleet
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeStrictlyIncreasing
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import java.time.Duration as JavaDuration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay

/**
 * N = 3 where every master is a Redis Cluster: three small local clusters (one shard each, to
 * spare the CPU; the third has a replica so that it can fail over). Every kind of lock and fencing
 * across them, a whole cluster down while the other two keep the quorum, and one cluster failing
 * over (coordinated) under a held lock.
 *
 * Not in the compatibility tier: what it adds to ClusterDeploymentTest and ClusterRobustnessTest
 * (which are, on every server) is the engine's quorum over cluster masters, the same on every
 * server; it passed on Redis 6.2, 7.0, 8.0 and Valkey 8.1 when it was written, and runs in
 * `mvn verify` on the server first on PATH.
 */
class ThreeClustersTest : FunSpec({
    val clusters = listOf(
        RedisClusterFleet.builder().shards(1).replicasPerShard(0).start(),
        RedisClusterFleet.builder().shards(1).replicasPerShard(0).start(),
        RedisClusterFleet.builder().shards(1).replicasPerShard(1).nodeTimeout(JavaDuration.ofSeconds(5)).start(),
    ).onEach { it.markNeverGranted() }
    afterSpec { clusters.forEach { it.close() } }
    afterEach {
        for (c in clusters) {
            for (i in 0 until c.size) if (!c.isRunning(i)) c.restart(i)
            c.awaitReady()
            val left = c.lockKeys()
            for (key in c.keys(c.primary(0), "{redlock:*")) c.command(c.primary(0), "DEL", key)
            withClue("keys left on a cluster") { left.filterNot { it.endsWith("\u0000fence") } shouldBe emptyList() }
            c.markNeverGranted()
        }
    }

    fun redlock(configure: RedlockConfig.Builder.() -> Unit = {}) =
        Redlock(
            RedlockConfig.builder()
                .masters(clusters.map { it.masterUri() })
                .leaseTime(JavaDuration.ofSeconds(3))
                .restartGuard(JavaDuration.ofSeconds(30))
                .waitTime(JavaDuration.ofSeconds(10))
                .retryDelay(JavaDuration.ofMillis(20))
                .apply(configure)
                .build(),
        )

    /** How many of the clusters that answer hold [resource]'s key (of the layout [Keys] names, derived with [derive]). */
    fun holders(resource: String, derive: (String) -> String = { it }): Int =
        clusters.count { c ->
            runCatching { c.command(c.primary(0), "EXISTS", Keys.onCluster(derive(Keys.lock("redlock:", resource)))) == 1L }.getOrDefault(false)
        }

    test("locks, read-write locks, permits and fencing work over three cluster masters") {
        redlock { fencing(true) }.use { a ->
            redlock { fencing(true) }.use { b ->
                connected { a.acquire("warm-up") }.release()
                connected { b.acquire("warm-up") }.release()
                val tokens = ArrayList<Long>()
                repeat(3) {
                    a.withRedlock("three-lock") { lease ->
                        tokens += lease.fencingToken.shouldNotBeNull()
                        holders("three-lock") shouldBe 3
                        b.tryAcquire("three-lock") shouldBe null
                    }
                    b.withRedlock("three-lock") { lease -> tokens += lease.fencingToken.shouldNotBeNull() }
                }
                tokens.shouldBeStrictlyIncreasing()

                val r1 = a.acquireReadLock("three-rw")
                val r2 = b.acquireReadLock("three-rw")
                holders("three-rw") { Keys.readers(it) } shouldBe 3
                b.tryAcquireWriteLock("three-rw") shouldBe null
                r1.release()
                r2.release()
                val w = b.acquireWriteLock("three-rw")
                holders("three-rw") { Keys.writer(it) } shouldBe 3
                a.tryAcquireReadLock("three-rw") shouldBe null
                w.release()

                val p1 = a.acquirePermit("three-sem", 2)
                val p2 = b.acquirePermit("three-sem", 2)
                holders("three-sem") { Keys.permitHolders(it) } shouldBe 3
                a.tryAcquirePermit("three-sem", 2) shouldBe null
                p1.release()
                a.tryAcquirePermit("three-sem", 2).shouldNotBeNull().release()
                p2.release()
            }
        }
    }

    test("a whole cluster down: the other two keep the quorum, a held lease keeps being renewed and fencing tokens keep increasing") {
        redlock { fencing(true) }.use { a ->
            redlock { fencing(true) }.use { b ->
                connected { a.acquire("warm-up") }.release()
                connected { b.acquire("warm-up") }.release()
                val before = a.withRedlock("three-down") { it.fencingToken.shouldNotBeNull() }
                coroutineScope {
                    val held = CompletableDeferred<Unit>()
                    val done = CompletableDeferred<Unit>()
                    val section = async {
                        a.withRedlock("three-held", leaseTime = 3.seconds) { lease ->
                            held.complete(Unit)
                            done.await()
                            lease.isValid
                        }
                    }
                    awaitStart(held, section)
                    for (i in 0 until clusters[0].size) clusters[0].kill(i)
                    val after = b.withRedlock("three-down") { lease ->
                        holders("three-down") shouldBe 2
                        a.tryAcquire("three-down") shouldBe null
                        lease.fencingToken.shouldNotBeNull()
                    }
                    after shouldNotBe null
                    listOf(before, after).shouldBeStrictlyIncreasing()
                    delay(3.seconds) // three renewal rounds with one master down
                    b.tryAcquire("three-held") shouldBe null
                    done.complete(Unit)
                    section.await() shouldBe true
                }
            }
        }
    }

    // A cluster of one shard cannot fail over a dead primary (CLUSTER FAILOVER FORCE needs the votes
    // of a majority of primaries, and the only one is the dead one): the failover is the coordinated
    // one; a cluster that is down as a whole is the test above.
    test("one cluster's primary fails over to its replica: a held lease keeps its quorum throughout, and new locks are granted") {
        val c = clusters[2]
        redlock().use { a ->
            redlock().use { b ->
                connected { a.acquire("warm-up") }.release()
                connected { b.acquire("warm-up") }.release()
                coroutineScope {
                    val held = CompletableDeferred<Unit>()
                    val done = CompletableDeferred<Unit>()
                    val section = async {
                        a.withRedlock("three-failover", leaseTime = 3.seconds) { lease ->
                            held.complete(Unit)
                            done.await()
                            lease.isValid
                        }
                    }
                    awaitStart(held, section)
                    c.awaitReplicated(0)
                    val old = c.primary(0)
                    c.failover(0) shouldNotBe old
                    delay(3.seconds) // renewals reach the promoted replica again
                    b.tryAcquire("three-failover") shouldBe null
                    done.complete(Unit)
                    section.await() shouldBe true
                }
                // The promoted replica grants: its slot's marker came with the replication. (Until the
                // clients' view follows the switch, the other two carry the quorum.)
                val giveUp = TimeSource.Monotonic.markNow() + 20.seconds
                while (true) {
                    val lease = b.acquire("three-after")
                    val everywhere = holders("three-after") == 3
                    lease.release()
                    if (everywhere) break
                    check(giveUp.hasNotPassedNow()) { "the failed-over cluster never granted again" }
                    delay(200.milliseconds)
                }
            }
        }
    }
}) {
    private companion object {
        /** Runs [call] until the cluster connections opened (a first call may find them opening). */
        suspend fun <T> connected(call: suspend () -> T): T {
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
    }
}

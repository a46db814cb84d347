package dev.redlock.benchmarks

import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import dev.redlock.core.RedlockConfig
import io.lettuce.core.RedisClient
import io.lettuce.core.RedisURI
import io.lettuce.core.ScriptOutputType
import io.lettuce.core.SetArgs
import io.lettuce.core.api.StatefulRedisConnection
import io.lettuce.core.api.async.RedisScriptingAsyncCommands
import io.lettuce.core.api.async.RedisStringAsyncCommands
import io.lettuce.core.cluster.RedisClusterClient
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ThreadLocalRandom
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.minutes
import kotlin.time.toJavaDuration
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.delay
import kotlinx.coroutines.future.await
import kotlinx.coroutines.withContext
import org.redisson.Redisson
import org.redisson.api.RLock
import org.redisson.api.RedissonClient
import org.redisson.config.Config
import org.redisson.config.ReadMode
import org.redisson.config.SubscriptionMode

/** The implementations measured, in the order they run and appear in the tables. */
enum class Impl(val label: String) {
    OURS("ours"),
    REDISSON("Redisson"),
    BASELINE("baseline"),
}

/** A lock held by a subject, released with [release]. */
fun interface Held {
    suspend fun release()
}

/**
 * One implementation under measurement, connected to N masters. Holders are numbered: Redisson
 * owns a lock per thread id, and the harness gives each concurrent holder an id of its own.
 */
interface LockSubject : AutoCloseable {
    val impl: Impl

    /** Acquires [resource], waiting as long as it takes, with a fixed lease (no renewal). */
    suspend fun acquire(resource: String, holder: Long): Held

    /**
     * Runs [block] holding [resource], waiting as long as it takes, renewed the way the
     * implementation renews a lock held for an unknown time (ours: `withRedlock`; Redisson: its
     * watchdog; the baseline: not at all).
     */
    suspend fun <T> locked(resource: String, holder: Long, block: suspend () -> T): T

    /** Whether a coroutine waiting for a lock may be cancelled without leaving a lock behind. */
    val cancellableWait: Boolean
}

/** Opens the subject of [impl] over [uris]: one master for N = 1, a Redlock over all for N > 1. */
fun openSubject(impl: Impl, uris: List<String>, leaseTime: Duration, retry: RetryPolicy = RetryPolicy.PHYSICAL): LockSubject =
    when (impl) {
        Impl.OURS -> OursSubject(uris, leaseTime)
        Impl.REDISSON -> RedissonSubject(uris, leaseTime)
        Impl.BASELINE -> BaselineSubject.standalone(uris, leaseTime, retry)
    }

/**
 * This library, as a user would configure it: defaults except the lease time, and a wait long enough
 * never to give up. [keyTracking] false turns off the masters' pushes of changed keys (on by default).
 */
class OursSubject(uris: List<String>, leaseTime: Duration, keyTracking: Boolean = true) : LockSubject {
    override val impl = Impl.OURS
    override val cancellableWait = true
    val redlock = Redlock(
        RedlockConfig.builder().masters(uris).leaseTime(leaseTime.toJavaDuration()).waitTime(10.minutes.toJavaDuration())
            .keyTracking(keyTracking).build(),
    )

    override suspend fun acquire(resource: String, holder: Long): Held {
        val lease = redlock.acquire(resource)
        return Held { lease.release() }
    }

    override suspend fun <T> locked(resource: String, holder: Long, block: suspend () -> T): T =
        redlock.withRedlock(resource) { block() }

    override fun close() = redlock.close()
}

/**
 * Redisson: one client per master (`useSingleServer`), its `RLock` for N = 1 and its RedLock
 * (`getRedLock`, a multi-lock that needs a majority) over the N clients for N > 1; or one client in
 * its cluster mode ([cluster]) with its `RLock`. Thread pools are kept small (2 Netty threads, 2
 * executor threads per client) so that it does not get more of the 2 cores than Lettuce's shared
 * pools. The watchdog's timeout is the lease time.
 */
class RedissonSubject private constructor(leaseTime: Duration, configs: List<Config>) : LockSubject {
    constructor(uris: List<String>, leaseTime: Duration) : this(leaseTime, uris.map { uri ->
        baseConfig(leaseTime).apply {
            useSingleServer()
                .setAddress(uri)
                .setConnectionMinimumIdleSize(4)
                .setConnectionPoolSize(64)
                .setSubscriptionConnectionMinimumIdleSize(1)
        }
    })

    override val impl = Impl.REDISSON
    override val cancellableWait = false
    private val leaseMillis = leaseTime.inWholeMilliseconds
    val clients: List<RedissonClient>

    init {
        val opened = ArrayList<RedissonClient>()
        try {
            for (config in configs) opened += Redisson.create(config)
        } catch (e: Throwable) {
            opened.forEach { runCatching { it.shutdown(0, 2, TimeUnit.SECONDS) } }
            throw e
        }
        clients = opened
    }

    /** `RLock` for one master; for several, the RedLock over them (deprecated in Redisson 4, still its lock over independent masters). */
    @Suppress("DEPRECATION")
    fun lockOf(resource: String): RLock =
        if (clients.size == 1) clients[0].getLock(resource)
        else clients[0].getRedLock(*clients.map { it.getLock(resource) }.toTypedArray())

    override suspend fun acquire(resource: String, holder: Long): Held {
        val lock = lockOf(resource)
        lock.lockAsync(leaseMillis, TimeUnit.MILLISECONDS, holder).await()
        return Held { withContext(NonCancellable) { lock.unlockAsync(holder).await() } }
    }

    override suspend fun <T> locked(resource: String, holder: Long, block: suspend () -> T): T {
        val lock = lockOf(resource)
        // A lease time of -1 hands the lock to the watchdog, which renews it while it is held.
        lock.lockAsync(-1, TimeUnit.MILLISECONDS, holder).await()
        try {
            return block()
        } finally {
            withContext(NonCancellable) { lock.unlockAsync(holder).await() }
        }
    }

    override fun close() {
        // A renewal batch in flight when the client stops fails with "Redisson is shutdown", logged
        // as an error with its stack trace: expected at shutdown, so not shown.
        val renewal = RENEWAL_LOG.level
        RENEWAL_LOG.level = java.util.logging.Level.OFF
        try {
            for (client in clients) runCatching { client.shutdown(0, 2, TimeUnit.SECONDS) }
        } finally {
            RENEWAL_LOG.level = renewal
        }
    }

    companion object {
        /**
         * Redisson in its cluster mode (`useClusterServers`) over the cluster whose nodes are [seeds]
         * (`redis://host:port`): one client, the same pool sizes per primary as per server in the
         * single-server mode, writes and reads on the primaries.
         */
        fun cluster(seeds: List<String>, leaseTime: Duration): RedissonSubject =
            RedissonSubject(leaseTime, listOf(baseConfig(leaseTime).apply {
                useClusterServers()
                    .addNodeAddress(*seeds.toTypedArray())
                    .setReadMode(ReadMode.MASTER)
                    .setSubscriptionMode(SubscriptionMode.MASTER)
                    .setMasterConnectionMinimumIdleSize(4)
                    .setMasterConnectionPoolSize(64)
                    .setSubscriptionConnectionMinimumIdleSize(1)
            }))

        private fun baseConfig(leaseTime: Duration): Config =
            Config().setNettyThreads(2).setThreads(2).setLockWatchdogTimeout(leaseTime.inWholeMilliseconds)

        // Held strongly: java.util.logging keeps loggers weakly, and a collected one forgets its level.
        private val RENEWAL_LOG: java.util.logging.Logger = java.util.logging.Logger.getLogger("org.redisson.renewal.RenewalTask")
    }
}

/** How the baseline waits between attempts on a held lock. */
class RetryPolicy(val description: String, private val pause: (Random) -> Long) {
    fun nextMillis(random: Random): Long = pause(random)

    companion object {
        /** The physical limit: try again after a pause of the order of a few round trips. */
        val PHYSICAL = RetryPolicy("retries after 0-2 ms") { it.nextLong(0, 3) }

        /** node-redlock's defaults: 200 ms with up to 100 ms of jitter either way. */
        val POLLING = RetryPolicy("polls every 200 ms ± 100 ms, node-redlock's default") { 200 + it.nextLong(-100, 101) }
    }
}

/**
 * The raw baseline, the physical limit of a Redlock: `SET key token NX PX lease` sent to every
 * master at once, granted when a majority answers OK (it does not wait for the rest), and a
 * compare-and-delete script on every master to release. No renewal, no validity bookkeeping
 * beyond the elapsed time, no notifications: waiting is a retry loop with [retry]. Made by
 * [standalone] (one connection per server) or [cluster] (one cluster connection, which routes each
 * key to its slot's primary, as one master).
 */
class BaselineSubject private constructor(
    private val endpoints: List<Endpoint>,
    leaseTime: Duration,
    private val retry: RetryPolicy,
    private val closeAll: () -> Unit,
) : LockSubject {
    /** One master's commands: a server's connection or a whole cluster's. */
    private class Endpoint(val strings: RedisStringAsyncCommands<String, String>, val scripts: RedisScriptingAsyncCommands<String, String>)

    override val impl = Impl.BASELINE
    override val cancellableWait = true
    private val leaseMillis = leaseTime.inWholeMilliseconds
    private val validityNanos = (leaseMillis - leaseMillis / 100 - 2) * 1_000_000
    private val quorum = endpoints.size / 2 + 1
    private val releaseSha: String

    init {
        try {
            // On a cluster connection SCRIPT LOAD goes to every node.
            releaseSha = endpoints.map { it.scripts.scriptLoad(RELEASE).get(10, TimeUnit.SECONDS) }.first()
        } catch (e: Throwable) {
            closeAll()
            throw e
        }
    }

    override suspend fun acquire(resource: String, holder: Long): Held {
        val key = "baseline:$resource"
        val token = token()
        val random = Random(ThreadLocalRandom.current().nextLong())
        try {
            while (true) {
                val start = System.nanoTime()
                val sets = endpoints.map { it.strings.set(key, token, SetArgs.Builder.nx().px(leaseMillis)).toCompletableFuture() }
                if (majority(sets) && System.nanoTime() - start < validityNanos) {
                    return Held { withContext(NonCancellable) { release(key, token) } }
                }
                withContext(NonCancellable) { release(key, token) }
                delay(retry.nextMillis(random))
            }
        } catch (e: Throwable) {
            withContext(NonCancellable) { release(key, token) }
            throw e
        }
    }

    override suspend fun <T> locked(resource: String, holder: Long, block: suspend () -> T): T {
        val held = acquire(resource, holder)
        try {
            return block()
        } finally {
            held.release()
        }
    }

    /** True as soon as a majority answered OK; false as soon as a majority cannot. */
    private suspend fun majority(sets: List<CompletableFuture<String?>>): Boolean {
        if (sets.size == 1) return sets[0].await() == "OK"
        val decided = CompletableDeferred<Boolean>()
        val granted = AtomicInteger()
        val refused = AtomicInteger()
        for (set in sets) {
            set.whenComplete { reply, failure ->
                if (failure == null && reply == "OK") {
                    if (granted.incrementAndGet() == quorum) decided.complete(true)
                } else if (refused.incrementAndGet() == sets.size - quorum + 1) {
                    decided.complete(false)
                }
            }
        }
        return decided.await()
    }

    private suspend fun release(key: String, token: String) {
        val calls = endpoints.map {
            it.scripts.evalsha<Long>(releaseSha, ScriptOutputType.INTEGER, arrayOf(key), token).toCompletableFuture()
        }
        for (call in calls) runCatching { call.await() }
    }

    override fun close() = closeAll()

    companion object {
        /** One connection per server of [uris]; N = [uris]' size. */
        fun standalone(uris: List<String>, leaseTime: Duration, retry: RetryPolicy): BaselineSubject {
            val client = RedisClient.create()
            val connections = ArrayList<StatefulRedisConnection<String, String>>()
            val closeAll = {
                connections.forEach { runCatching { it.close() } }
                client.shutdown(0, 2, TimeUnit.SECONDS)
            }
            try {
                for (uri in uris) connections += client.connect(RedisURI.create(uri))
            } catch (e: Throwable) {
                closeAll()
                throw e
            }
            return BaselineSubject(connections.map { Endpoint(it.async(), it.async()) }, leaseTime, retry, closeAll)
        }

        /** One cluster connection to the cluster whose nodes are [seeds] (`redis://host:port`), as N = 1. */
        fun cluster(seeds: List<String>, leaseTime: Duration, retry: RetryPolicy): BaselineSubject {
            val client = RedisClusterClient.create(seeds.map(RedisURI::create))
            var connection: StatefulRedisClusterConnection<String, String>? = null
            val closeAll = {
                connection?.let { runCatching { it.close() } }
                client.shutdown(0, 2, TimeUnit.SECONDS)
            }
            try {
                connection = client.connect()
            } catch (e: Throwable) {
                closeAll()
                throw e
            }
            val async = connection!!.async()
            return BaselineSubject(listOf(Endpoint(async, async)), leaseTime, retry, closeAll)
        }

        private const val RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

        private fun token(): String {
            val random = ThreadLocalRandom.current()
            return java.lang.Long.toHexString(random.nextLong()) + java.lang.Long.toHexString(random.nextLong())
        }
    }
}

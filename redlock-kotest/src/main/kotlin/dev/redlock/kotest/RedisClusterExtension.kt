package dev.redlock.kotest

import dev.redlock.testing.RedisClusterFleet
import io.kotest.core.extensions.MountableExtension
import io.kotest.core.listeners.AfterEachListener
import io.kotest.core.listeners.AfterSpecListener
import io.kotest.core.spec.Spec
import io.kotest.core.test.TestCase
import io.kotest.engine.test.TestResult
import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * A kotest extension that gives a spec its own local Redis Cluster ([RedisClusterFleet]): started
 * on first use, reset after each test, stopped after the spec, also when tests fail. `install` it
 * and use the [RedisClusterHandle] it returns:
 *
 * ```kotlin
 * class CartClusterSpec : FunSpec({
 *     val redis = install(RedisClusterExtension(shards = 3))
 *
 *     test("a failover keeps the data") {
 *         redis.cluster.failover(0)
 *         // ...
 *     }
 * })
 * ```
 *
 * The block of `install` can change the settings and set any other cluster option with
 * [Settings.cluster].
 *
 * Lifecycle: the cluster starts the first time the spec uses it, so a spec whose tests are all
 * skipped starts none; after each leaf test it is reset ([RedisClusterFleet.reset]: paused nodes
 * resumed, killed ones restarted, unfinished slot migrations ended, every key deleted) unless
 * [Settings.resetAfterEach] is off; after the spec it is stopped. The reset does not put roles
 * back: a shard that a test failed over keeps its new primary.
 *
 * An extension instance can be installed once; create one per spec.
 */
public class RedisClusterExtension(
    shards: Int = 3,
    replicasPerShard: Int = 1,
    resetAfterEach: Boolean = true,
) : MountableExtension<RedisClusterExtension.Settings, RedisClusterHandle>,
    AfterEachListener,
    AfterSpecListener {

    private val defaults = Settings(shards, replicasPerShard, resetAfterEach)
    private val mounted = AtomicBoolean(false)

    @Volatile private var handle: RedisClusterHandle? = null

    /**
     * What the cluster looks like; set in the block passed to `install`.
     *
     * @property shards the number of shards, 1 to 8
     * @property replicasPerShard the number of replicas of each primary, 0 to 3
     * @property resetAfterEach whether to reset the cluster after each test
     */
    public class Settings internal constructor(
        public var shards: Int,
        public var replicasPerShard: Int,
        public var resetAfterEach: Boolean,
    ) {
        internal var clusterOptions: RedisClusterFleet.Builder.() -> Unit = {}

        /**
         * Further cluster settings (node timeout, server arguments, binary, timeouts), applied to the
         * [RedisClusterFleet.Builder] after [shards] and [replicasPerShard]; replaces options set before.
         */
        public fun cluster(options: RedisClusterFleet.Builder.() -> Unit) {
            clusterOptions = options
        }
    }

    /**
     * Called by `install`: applies [configure] to the settings and returns the spec's handle.
     *
     * @throws IllegalStateException if this extension was installed before.
     * @throws IllegalArgumentException if [Settings.shards] or [Settings.replicasPerShard] is out of range.
     */
    override fun mount(configure: Settings.() -> Unit): RedisClusterHandle {
        check(mounted.compareAndSet(false, true)) { "this RedisClusterExtension is installed already; create one per spec" }
        val settings = Settings(defaults.shards, defaults.replicasPerShard, defaults.resetAfterEach).apply(configure)
        RedisClusterFleet.builder().shards(settings.shards).replicasPerShard(settings.replicasPerShard) // validates now
        return RedisClusterHandle(settings).also { handle = it }
    }

    /** Resets the cluster after a leaf test, unless that is turned off. */
    override suspend fun afterEach(testCase: TestCase, result: TestResult) {
        val handle = handle ?: return
        withContext(Dispatchers.IO) { handle.testFinished() }
    }

    /** Stops the cluster. */
    override suspend fun afterSpec(spec: Spec) {
        val handle = handle ?: return
        withContext(Dispatchers.IO) { handle.close() }
    }
}

/**
 * A spec's view of its [RedisClusterExtension]: the cluster, started on first use. Thread-safe.
 */
public class RedisClusterHandle internal constructor(private val settings: RedisClusterExtension.Settings) {
    private val lock = Any()
    private var closed = false

    private val started: Lazy<RedisClusterFleet> = lazy {
        synchronized(lock) { check(!closed) { "the spec has finished: its Redis Cluster is stopped" } }
        RedisClusterFleet.builder()
            .shards(settings.shards)
            .replicasPerShard(settings.replicasPerShard)
            .apply(settings.clusterOptions)
            .start()
    }

    /**
     * The spec's cluster, started on first use (a failed start is tried again on the next use).
     *
     * @throws dev.redlock.testing.RedisFleetException if it cannot start (see [RedisClusterFleet.Builder.start]).
     */
    public val cluster: RedisClusterFleet
        get() = started.value

    internal fun testFinished() {
        if (settings.resetAfterEach && started.isInitialized()) started.value.reset()
    }

    /** Stops the cluster if it was started; idempotent. */
    internal fun close() {
        synchronized(lock) {
            if (closed) return
            closed = true
        }
        if (started.isInitialized()) started.value.close()
    }

    /** Describes the handle: its cluster, or that it has not been started yet. */
    override fun toString(): String =
        "RedisClusterHandle(${if (started.isInitialized()) started.value.toString() else "not started"})"
}

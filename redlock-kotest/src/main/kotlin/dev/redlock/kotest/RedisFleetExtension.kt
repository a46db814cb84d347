package dev.redlock.kotest

import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.Redlock
import dev.redlock.testing.RedisFleet
import io.kotest.core.extensions.MountableExtension
import io.kotest.core.listeners.AfterEachListener
import io.kotest.core.listeners.AfterSpecListener
import io.kotest.core.listeners.BeforeEachListener
import io.kotest.core.spec.Spec
import io.kotest.core.test.TestCase
import io.kotest.engine.test.TestResult
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.time.TimeSource
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * A kotest extension that gives a spec its own [RedisFleet]: started on first use, reset after each
 * test, stopped after the spec, also when tests fail. `install` it and use the [RedisFleetHandle]
 * it returns:
 *
 * ```kotlin
 * class InventorySpec : FunSpec({
 *     val redis = install(RedisFleetExtension(masters = 3))
 *
 *     test("the lock survives one master crash") {
 *         redis.fleet.kill(0)
 *         redis.redlock().withRedlock("orders:42") { lease -> lease.isValid shouldBe true }
 *     }
 * })
 * ```
 *
 * The constructor takes the common settings; the block of `install` can set every other one on
 * [Settings], such as the [RedlockConfig] of the handed-out Redlocks or the fleet's password.
 *
 * Lifecycle:
 * - the fleet starts the first time the spec uses it (usually in its first test), so a spec whose
 *   tests are all skipped starts none;
 * - after each leaf test, the Redlocks created during that test are closed, then (unless
 *   [Settings.resetAfterEach] is off) the fleet is reset: killed masters are restarted, paused
 *   ones resumed, every key deleted;
 * - after the spec, the remaining Redlocks are closed, then the fleet.
 *
 * One fleet per spec instance: with kotest's default isolation mode, one per spec class. Tests that
 * run concurrently in one spec share the fleet; turn [Settings.resetAfterEach] off there, since each
 * test's reset would disturb the others.
 *
 * An extension instance can be installed once; create one per spec.
 */
public class RedisFleetExtension(
    masters: Int = 1,
    backend: RedisFleet.Backend = RedisFleet.Backend.AUTO,
    resetAfterEach: Boolean = true,
) : MountableExtension<RedisFleetExtension.Settings, RedisFleetHandle>,
    BeforeEachListener,
    AfterEachListener,
    AfterSpecListener {

    private val defaults = Settings(masters, backend, resetAfterEach)
    private val mounted = AtomicBoolean(false)

    @Volatile private var handle: RedisFleetHandle? = null

    /**
     * What the fleet and its Redlocks look like; set in the block passed to `install`.
     *
     * @property masters the number of masters, 1 to 15
     * @property backend how the masters run; [RedisFleet.Backend.AUTO] picks local `redis-server`
     *   processes when a binary can be found, else Docker containers when Testcontainers finds an
     *   engine
     * @property resetAfterEach whether to restart killed masters, resume paused ones and delete
     *   every key after each test
     */
    public class Settings internal constructor(
        public var masters: Int,
        public var backend: RedisFleet.Backend,
        public var resetAfterEach: Boolean,
    ) {
        internal var fleetOptions: RedisFleet.Builder.() -> Unit = {}
        internal var configOptions: RedlockConfig.Builder.() -> Unit = {}

        /**
         * Further fleet settings (password, server arguments, image, command timeout, binary), applied
         * to the [RedisFleet.Builder] after [masters] and [backend]; replaces options set before.
         */
        public fun fleet(options: RedisFleet.Builder.() -> Unit) {
            fleetOptions = options
        }

        /**
         * Settings of the [RedlockConfig] that [RedisFleetHandle.config] and [RedisFleetHandle.redlock]
         * use, applied to a builder whose masters are already the fleet's; replaces options set before.
         */
        public fun redlockConfig(options: RedlockConfig.Builder.() -> Unit) {
            configOptions = options
        }
    }

    /**
     * Called by `install`: applies [configure] to the settings and returns the spec's handle.
     *
     * @throws IllegalStateException if this extension was installed before.
     * @throws IllegalArgumentException if [Settings.masters] is out of range.
     */
    override fun mount(configure: Settings.() -> Unit): RedisFleetHandle {
        check(mounted.compareAndSet(false, true)) {
            "this RedisFleetExtension is installed already; create one per spec"
        }
        val settings =
            Settings(defaults.masters, defaults.backend, defaults.resetAfterEach).apply(configure)
        RedisFleet.builder().masters(settings.masters) // validates now, with the fleet's own message
        return RedisFleetHandle(settings).also { handle = it }
    }

    /** Opens the test's scope: Redlocks created until [afterEach] belong to it. */
    override suspend fun beforeEach(testCase: TestCase) {
        handle?.testStarted(testCase)
    }

    /** Closes the Redlocks of the test, then resets the fleet unless that is turned off. */
    override suspend fun afterEach(testCase: TestCase, result: TestResult) {
        val handle = handle ?: return
        withContext(Dispatchers.IO) { handle.testFinished(testCase) }
    }

    /** Closes the remaining Redlocks and stops the fleet. */
    override suspend fun afterSpec(spec: Spec) {
        val handle = handle ?: return
        withContext(Dispatchers.IO) { handle.close() }
    }
}

/**
 * A spec's view of its [RedisFleetExtension]: the fleet, a configuration over it, and Redlocks the
 * extension closes.
 *
 * Thread-safe.
 */
public class RedisFleetHandle internal constructor(private val settings: RedisFleetExtension.Settings) {
    private val lock = Any()
    private val specScope = mutableListOf<AutoCloseable>()
    private val testScopes = LinkedHashMap<TestCase, MutableList<AutoCloseable>>()
    private var closed = false

    private val started: Lazy<RedisFleet> = lazy {
        synchronized(lock) { check(!closed) { "the spec has finished: its Redis fleet is stopped" } }
        RedisFleet.builder().masters(settings.masters).backend(settings.backend).apply(settings.fleetOptions).start()
    }

    /**
     * The spec's fleet, started on first use (a failed start is tried again on the next use): kill,
     * pause, resume and restart its masters from tests.
     *
     * @throws dev.redlock.testing.RedisFleetException if it cannot start (see [RedisFleet.Builder.start]).
     */
    public val fleet: RedisFleet
        get() = started.value

    /**
     * A configuration whose masters are the fleet's, with the settings of
     * [RedisFleetExtension.Settings.redlockConfig].
     */
    public val config: RedlockConfig by lazy { configWith {} }

    /**
     * A new [Redlock] over the fleet, with [config] changed by [configure]; closed by the extension
     * after the test that created it, or after the spec when created outside a test (or while
     * several tests of the spec run at once). Closing it earlier is fine.
     *
     * @param timeSource the clock that measures validity, as for [Redlock]
     * @throws IllegalArgumentException if [configure] sets an invalid value.
     * @throws IllegalStateException after the spec has finished.
     */
    public fun redlock(
        timeSource: TimeSource.WithComparableMarks = TimeSource.Monotonic,
        configure: RedlockConfig.Builder.() -> Unit = {},
    ): Redlock {
        val redlock = Redlock(configWith(configure), timeSource)
        synchronized(lock) {
            if (closed) {
                redlock.close()
                throw IllegalStateException("the spec has finished: its Redis fleet is stopped")
            }
            (testScopes.values.singleOrNull() ?: specScope).add(redlock)
        }
        return redlock
    }

    private fun configWith(configure: RedlockConfig.Builder.() -> Unit): RedlockConfig =
        RedlockConfig.builder().masters(fleet.uris()).apply(settings.configOptions).apply(configure).build()

    internal fun testStarted(testCase: TestCase) {
        synchronized(lock) { testScopes[testCase] = mutableListOf() }
    }

    internal fun testFinished(testCase: TestCase) {
        val owned = synchronized(lock) { testScopes.remove(testCase) } ?: emptyList()
        var failure = closeAll(owned)
        if (settings.resetAfterEach && started.isInitialized()) {
            try {
                reset(started.value)
            } catch (e: Exception) {
                failure?.addSuppressed(e) ?: run { failure = e }
            }
        }
        failure?.let { throw it }
    }

    /** Closes every Redlock still open, then the fleet; idempotent. */
    internal fun close() {
        val owned =
            synchronized(lock) {
                if (closed) return
                closed = true
                (testScopes.values.flatten() + specScope).also {
                    testScopes.clear()
                    specScope.clear()
                }
            }
        var failure = closeAll(owned)
        if (started.isInitialized()) {
            try {
                started.value.close()
            } catch (e: Exception) {
                failure?.addSuppressed(e) ?: run { failure = e }
            }
        }
        failure?.let { throw it }
    }

    /** Describes the handle: its fleet, or that the fleet has not been started yet. */
    override fun toString(): String =
        "RedisFleetHandle(${if (started.isInitialized()) started.value.toString() else "not started"})"

    private companion object {
        fun reset(fleet: RedisFleet) {
            for (i in 0 until fleet.size) {
                if (!fleet.isRunning(i)) fleet.restart(i) else if (fleet.isPaused(i)) fleet.resume(i)
            }
            fleet.flushAll()
        }

        /** Closes latest first; returns the first failure with the others suppressed. */
        fun closeAll(items: List<AutoCloseable>): Exception? {
            var failure: Exception? = null
            for (item in items.asReversed()) {
                try {
                    item.close()
                } catch (e: Exception) {
                    failure?.addSuppressed(e) ?: run { failure = e }
                }
            }
            return failure
        }
    }
}

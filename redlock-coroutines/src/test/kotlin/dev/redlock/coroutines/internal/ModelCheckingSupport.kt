package dev.redlock.coroutines.internal

import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.Script
import java.time.Duration as JavaDuration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executor
import java.util.concurrent.atomic.AtomicLong
import java.util.logging.Level
import java.util.logging.Logger
import kotlin.coroutines.CoroutineContext
import kotlin.random.Random
import kotlin.time.AbstractLongTimeSource
import kotlin.time.DurationUnit
import kotlinx.coroutines.CoroutineDispatcher
import org.jetbrains.lincheck.datastructures.Options

/*
 * What the model-checking tests (Lincheck) build the engine's state machines from: no Redis, no
 * threads or coroutines of the engine's own, no wall clock. Every moving part is an explicit step
 * that a test operation takes, so the model checker controls every interleaving and every run is
 * replayable.
 */

/** A clock that moves only when told to, in whole milliseconds. */
internal open class ManualClock : AbstractLongTimeSource(DurationUnit.MILLISECONDS) {
    private val millis = AtomicLong()

    val now: Long get() = millis.get()

    override fun read(): Long = millis.get()

    fun advance(ms: Long) {
        millis.addAndGet(ms)
    }

    /** Back to zero, for a clock shared by runs that each start at zero. */
    fun reset() {
        millis.set(0)
    }
}

/**
 * A [ManualClock] that runs an action just before one read of it: what another thread would do
 * between two steps of the code under test, placed there deterministically.
 */
internal class HookedClock : ManualClock() {
    @Volatile
    private var hook: (() -> Unit)? = null

    /** Runs [action] before the next read of this clock (once). */
    fun beforeNextRead(action: () -> Unit) {
        hook = action
    }

    override fun read(): Long {
        hook?.let {
            hook = null
            it()
        }
        return super.read()
    }
}

/**
 * A dispatcher that never runs what it is given: the engine's own coroutines (its timer loop, its
 * renewal calls) stay parked, and the tests play their part instead, step by step.
 */
internal class ParkedDispatcher : CoroutineDispatcher() {
    private val parked = AtomicLong()

    /** How many tasks were dispatched here (and never run). */
    val dispatched: Long get() = parked.get()

    override fun dispatch(context: CoroutineContext, block: Runnable) {
        parked.incrementAndGet()
    }
}

/** A master the engine only needs to exist: the tests apply renewal outcomes to the leases themselves. */
internal class IdleNode : LockNode {
    override fun name() = "idle"
    override fun serverId(): String? = null
    override fun warmUp(timeout: JavaDuration): CompletableFuture<Void> = CompletableFuture.completedFuture(null)
    override fun acquire(script: Script, keys: Array<String>, args: Array<String>, timeout: JavaDuration): CompletableFuture<AcquireReply> = unused()
    override fun extend(script: Script, keys: Array<String>, args: Array<String>, timeout: JavaDuration): CompletableFuture<BooleanArray> = unused()
    override fun release(script: Script, keys: Array<String>, args: Array<String>, timeout: JavaDuration): CompletableFuture<Long> = unused()
    override fun confirmFence(keys: Array<String>, token: String, fence: Long, timeout: JavaDuration): CompletableFuture<Boolean> = unused()
    override fun onRelease(listener: LockNode.ReleaseListener) {}
    override fun watch(key: String, timeout: JavaDuration): CompletableFuture<Void> = unused()
    override fun unwatch(key: String, timeout: JavaDuration): CompletableFuture<Void> = unused()
    override fun probe(timeout: JavaDuration): CompletableFuture<Long> = unused()
    override fun onTracking(listener: LockNode.TrackingListener) {}
    override fun tracking(): Boolean = false
    override fun connected(): Boolean = true
    override fun close() {}

    private fun <T> unused(): CompletableFuture<T> = CompletableFuture.failedFuture(UnsupportedOperationException("not used by the model-checking tests"))
}

/** A config for engines over in-memory nodes: [leaseMillis] leases, at most [maxHoldMillis] held (0: no cap), defaults otherwise. */
internal fun modelConfig(leaseMillis: Long, maxHoldMillis: Long = 0): RedlockConfig =
    RedlockConfig.builder().master("redis://memory:1").leaseTime(JavaDuration.ofMillis(leaseMillis))
        .apply { if (maxHoldMillis > 0) maxHoldTime(JavaDuration.ofMillis(maxHoldMillis)) }
        .build()

/**
 * An engine over [masters] idle masters on [clock] whose own coroutines (its timer loop, its
 * renewal calls) never run: a test drives the timer's steps and applies renewal outcomes itself.
 */
internal fun modelEngine(config: RedlockConfig, masters: Int, clock: ManualClock, parked: ParkedDispatcher = ParkedDispatcher()): Engine =
    Engine(config, List(masters) { IdleNode() }, clock, Random(1), null, null, parked, parked, Executor { it.run() })

/** A lease granted now on [engine], as an acquisition would make it (mutex, quorum of the engine). */
internal fun modelLease(engine: Engine, clock: ManualClock, name: String, config: RedlockConfig): RedlockLease =
    RedlockLease(engine, listOf(name), arrayOf("redlock:$name"), "token-$name", Timing.of(config), clock.markNow(), null, LockKind.Mutex, engine.quorum)

/**
 * Runs [block] with the engine's log silenced: the model checker runs the code under test
 * thousands of times, and every loss would otherwise be logged each time.
 */
internal inline fun <T> withEngineLogsOff(block: () -> T): T {
    val logger = Logger.getLogger(Observer.LOG.name)
    val level = logger.level
    logger.level = Level.OFF
    try {
        return block()
    } finally {
        logger.level = level
    }
}


/**
 * How much more the model-checking tests explore than by default: `-Dredlock.lincheck.scale=10`
 * runs ten times as many scenarios, for a deeper look by hand (the build keeps the default, 1).
 */
internal val lincheckScale: Int = Integer.getInteger("redlock.lincheck.scale", 1).coerceAtLeast(1)

/**
 * The hang guard of the model-checking tests: longer than the project's minute, since they run
 * thousands of invocations of instrumented code on a machine that may be busy (a hang guard, not a
 * speed assertion; Lincheck also reports a single run that hangs, see [lenientHangDetection]).
 */
internal val MODEL_CHECKING_BOUND: kotlin.time.Duration = kotlin.time.Duration.parse("5m")

/**
 * Lincheck reports a run (one invocation) that takes longer than 30 s as hung. The first run that
 * reaches a class has Lincheck instrument it there and then, which on a busy 2-core machine has
 * taken longer than that, so that a correct run was reported as hung. Raised to 90 s: a run that
 * truly hangs is still reported, later. Set by reflection, since Lincheck 3.7 keeps the setting
 * protected; a later Lincheck that renames it fails here, loudly.
 */
internal fun <O : Options<*, *>> O.lenientHangDetection(): O = apply {
    Options::class.java.getDeclaredField("timeoutMs").apply { isAccessible = true }.setLong(this, 90_000L)
}

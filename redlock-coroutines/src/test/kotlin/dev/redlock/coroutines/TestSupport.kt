package dev.redlock.coroutines

import dev.redlock.core.RedlockConfig
import dev.redlock.testing.RedisFleet
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.time.Duration as JavaDuration
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource
import kotlin.time.toJavaDuration
import kotlinx.coroutines.delay

/** A Redlock over the first [n] masters of [fleet], with test-friendly timing unless overridden. */
fun RedisFleet.redlock(
    n: Int = size,
    timeSource: TimeSource.WithComparableMarks = TimeSource.Monotonic,
    configure: RedlockConfig.Builder.() -> Unit = {},
): Redlock {
    val config = RedlockConfig.builder()
        .masters(uris().take(n))
        .leaseTime(JavaDuration.ofSeconds(5))
        .waitTime(JavaDuration.ofSeconds(10))
        .retryDelay(JavaDuration.ofMillis(5))
        .apply(configure)
        .build()
    return Redlock(config, timeSource)
}

/** Brings every master back (restarted masters are empty), then checks that the test left no key behind. */
fun RedisFleet.restoreAndCheckClean() {
    for (i in 0 until size) {
        if (!isRunning(i)) restart(i)
    }
    for (i in 0 until size) {
        runCatching { resume(i) }
    }
    val left = (0 until size).associateWith { keys(it) }.filterValues { it.isNotEmpty() }
    flushAll()
    left shouldBe emptyMap()
}

/** Registers the standard fleet lifecycle for a spec: one fleet, checked clean after each test. */
fun FunSpec.sharedFleet(masters: Int): RedisFleet {
    val fleet = RedisFleet.start(masters)
    afterEach { fleet.restoreAndCheckClean() }
    afterSpec { fleet.close() }
    return fleet
}

/** How many times a command ran on a master, from INFO commandstats. */
fun RedisFleet.commandCalls(index: Int, command: String): Long {
    val info = command(index, "INFO", "commandstats") as String
    val line = info.lineSequence().firstOrNull { it.startsWith("cmdstat_$command:") } ?: return 0
    return line.substringAfter("calls=").substringBefore(',').toLong()
}

/** Polls [condition] until it holds; fails after [limit] (a hang guard, not a speed assertion). */
suspend fun eventually(limit: Duration = 10.seconds, what: String, condition: () -> Boolean) {
    val mark = TimeSource.Monotonic.markNow()
    while (!condition()) {
        if (mark.elapsedNow() > limit) throw AssertionError("not reached within $limit: $what")
        delay(10.milliseconds)
    }
}

fun Duration.java(): JavaDuration = toJavaDuration()

/** Waits until [started] completes, or rethrows why [worker] ended first (instead of hanging). */
suspend fun awaitStart(started: kotlinx.coroutines.CompletableDeferred<Unit>, worker: kotlinx.coroutines.Deferred<*>) {
    kotlinx.coroutines.selects.select<Unit> {
        started.onAwait { }
        worker.onAwait { throw AssertionError("the critical section ended before the test could act: $it") }
    }
}

/**
 * Awaits [deferred]; if it has not completed within [limit] (a hang guard), prints every live
 * coroutine with its stack and fails, so that a hang shows where it is stuck.
 */
suspend fun <T> awaitOrDump(deferred: kotlinx.coroutines.Deferred<T>, limit: Duration = 20.seconds): T {
    val done = kotlinx.coroutines.withTimeoutOrNull(limit) { deferred.join(); true }
    if (done == null) {
        kotlinx.coroutines.debug.DebugProbes.dumpCoroutines(System.err)
        throw AssertionError("not completed within $limit; coroutines dumped to stderr")
    }
    return deferred.await()
}

/**
 * The library's log records (logger `dev.redlock`, every level) from creation until [close]:
 * `captureLogs().use { logs -> ...; logs.lines(Level.INFO) }`.
 */
class CapturedLogs internal constructor() : AutoCloseable {
    private val records = java.util.Collections.synchronizedList(ArrayList<java.util.logging.LogRecord>())
    private val logger = java.util.logging.Logger.getLogger("dev.redlock")
    private val level = logger.level
    private val handler = object : java.util.logging.Handler() {
        override fun publish(record: java.util.logging.LogRecord) { records += record }
        override fun flush() {}
        override fun close() {}
    }

    init {
        logger.level = java.util.logging.Level.ALL
        logger.addHandler(handler)
    }

    /** Every record so far. */
    fun records(): List<java.util.logging.LogRecord> = synchronized(records) { records.toList() }

    /** The messages logged at [level] so far, with their `{}` arguments filled in. */
    fun lines(level: java.util.logging.Level): List<String> = records().filter { it.level == level }.map { r ->
        var text = r.message
        for (p in r.parameters.orEmpty()) text = text.replaceFirst("{}", p.toString())
        text
    }

    override fun close() {
        logger.removeHandler(handler)
        logger.level = level
    }
}

fun captureLogs(): CapturedLogs = CapturedLogs()

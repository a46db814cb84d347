package dev.redlock.benchmarks

import dev.redlock.testing.RedisFleet
import java.lang.management.ManagementFactory
import kotlin.time.Duration
import kotlinx.coroutines.delay
import org.HdrHistogram.AbstractHistogram
import org.HdrHistogram.Histogram

/** Nanoseconds on the monotonic clock. */
fun now(): Long = System.nanoTime()

/** CPU time used by every thread of this process so far, in nanoseconds. */
fun processCpuNanos(): Long =
    (ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean).processCpuTime

/** Live threads of this process. */
fun liveThreads(): Int = ManagementFactory.getThreadMXBean().threadCount

/** Heap in use after full collections, in bytes: collects until two readings agree within 64 KiB (at most 8 times) and returns the lowest. */
suspend fun heapAfterGc(): Long {
    val memory = ManagementFactory.getMemoryMXBean()
    var lowest = Long.MAX_VALUE
    var last = -1L
    repeat(8) {
        System.gc()
        delay(50)
        val used = memory.heapMemoryUsage.used
        lowest = minOf(lowest, used)
        if (last >= 0 && kotlin.math.abs(last - used) < 64 * 1024) return lowest
        last = used
    }
    return lowest
}

/** A histogram of durations in nanoseconds, 3 significant digits, growing as needed. */
fun newHistogram(): Histogram = Histogram(3)

/** Latency figures in microseconds. */
data class Latency(val count: Long, val p50: Double, val p99: Double, val p999: Double, val max: Double) {
    companion object {
        /** The figures of [histogram] (nanoseconds); not-a-number when it is empty. */
        fun of(histogram: AbstractHistogram): Latency =
            if (histogram.totalCount == 0L) Latency(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN) else Latency(
            count = histogram.totalCount,
            p50 = histogram.getValueAtPercentile(50.0) / 1000.0,
            p99 = histogram.getValueAtPercentile(99.0) / 1000.0,
            p999 = histogram.getValueAtPercentile(99.9) / 1000.0,
            max = histogram.maxValue / 1000.0,
        )
    }
}

/** Runs [op] in a closed loop, one call after the other, for [warmup] (not recorded) then [measure]; [op] returns the nanoseconds to record. */
suspend fun closedLoop(warmup: Duration, measure: Duration, op: suspend (Long) -> Long): Latency {
    var i = 0L
    val warmEnd = now() + warmup.inWholeNanoseconds
    while (now() < warmEnd) op(i++)
    val histogram = newHistogram()
    val end = now() + measure.inWholeNanoseconds
    while (now() < end) histogram.recordValue(op(i++))
    return Latency.of(histogram)
}

/** The `calls` counters of `INFO commandstats` on one master. */
data class CommandStats(val calls: Map<String, Long>) {
    val scripts: Long get() = (calls["eval"] ?: 0) + (calls["evalsha"] ?: 0)
    val total: Long get() = calls.values.sum()

    companion object {
        fun read(fleet: RedisFleet, master: Int): CommandStats = parse(fleet.command(master, "INFO", "commandstats") as String)

        /** The counters in the text of `INFO commandstats`. */
        fun parse(info: String): CommandStats {
            val calls = HashMap<String, Long>()
            for (line in info.lineSequence()) {
                if (!line.startsWith("cmdstat_")) continue
                val name = line.substringAfter("cmdstat_").substringBefore(':')
                val count = line.substringAfter("calls=").substringBefore(',').trim().toLongOrNull() ?: continue
                calls[name] = count
            }
            return CommandStats(calls)
        }
    }
}

/** Commands per second seen by one master between two readings. */
data class MasterRate(val scriptsPerSecond: Double, val commandsPerSecond: Double)

fun rate(before: CommandStats, after: CommandStats, seconds: Double): MasterRate =
    MasterRate(
        scriptsPerSecond = (after.scripts - before.scripts) / seconds,
        // The INFO call that took the second reading is not the subject's.
        commandsPerSecond = (after.total - before.total - 1) / seconds,
    )

/**
 * Live objects by class (after a full collection, as `jcmd <pid> GC.class_histogram` prints them):
 * class name to (instances, bytes). Read through the JVM's diagnostic command bean, in this process.
 */
fun classHistogram(): Map<String, Pair<Long, Long>> {
    val server = ManagementFactory.getPlatformMBeanServer()
    val text = server.invoke(
        javax.management.ObjectName("com.sun.management:type=DiagnosticCommand"),
        "gcClassHistogram", arrayOf<Any>(arrayOf<String>()), arrayOf(Array<String>::class.java.name),
    ) as String
    // "   1:        123456       7890123  java.lang.String (java.base@17)"
    val row = Regex("""^\s*\d+:\s+(\d+)\s+(\d+)\s+(\S+)""")
    return text.lineSequence().mapNotNull { row.find(it) }
        .associate { m -> m.groupValues[3] to (m.groupValues[1].toLong() to m.groupValues[2].toLong()) }
}

/**
 * What [locks] added to the heap between two [classHistogram]s, per lock: the classes with at least
 * [minBytes] bytes per lock, largest first, as "Class ×count B" entries, and the total of all classes.
 */
fun histogramPerLock(before: Map<String, Pair<Long, Long>>, after: Map<String, Pair<Long, Long>>, locks: Int, minBytes: Double = 8.0): Pair<List<String>, Double> {
    val rows = after.map { (name, a) ->
        val b = before[name] ?: (0L to 0L)
        Triple(name, (a.first - b.first).toDouble() / locks, (a.second - b.second).toDouble() / locks)
    }
    val total = rows.sumOf { it.third }
    val shown = rows.filter { it.third >= minBytes }.sortedByDescending { it.third }.map { (name, count, bytes) ->
        "${shortClassName(name)} ×${"%.2f".format(java.util.Locale.ROOT, count)} ${"%.0f".format(java.util.Locale.ROOT, bytes)} B"
    }
    return shown to total
}

/** "[Ljava.lang.Object;" as "Object[]", "[B" as "byte[]", "kotlinx.coroutines.JobImpl" as "JobImpl". */
internal fun shortClassName(name: String): String = when {
    name.startsWith("[L") -> shortClassName(name.removePrefix("[L").removeSuffix(";")) + "[]"
    name.startsWith("[") -> when (name.getOrNull(1)) {
        'B' -> "byte[]"; 'C' -> "char[]"; 'I' -> "int[]"; 'J' -> "long[]"; 'Z' -> "boolean[]"; 'S' -> "short[]"
        'D' -> "double[]"; 'F' -> "float[]"; '[' -> shortClassName(name.substring(1)) + "[]"
        else -> name
    }
    else -> name.substringAfterLast('.')
}

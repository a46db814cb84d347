package dev.redlock.benchmarks

import dev.redlock.testing.RedisFleet
import java.io.BufferedReader
import java.io.InputStreamReader
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.minutes
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout

/**
 * Scenario 2 across processes: the contenders for one hot resource spread over [JVMS] JVMs, as a
 * fleet of application instances would be, so that no in-process queue can hand the lock on: every
 * hand-off between JVMs goes through the masters (ours: a release notice and the waiter's acquire;
 * Redisson: its pub/sub notice; the baseline: polling).
 */
data class CrossHandOff(
    val impl: Impl,
    val n: Int,
    /** Contenders in all, over [JVMS] JVMs. */
    val contenders: Int,
    val sections: Long,
    val perSecond: Double,
    /** Of the counted sections, those whose holder is in another JVM than the previous one's. */
    val crossJvm: Long,
    val gap: Latency,
    /** The gap when the lock changed JVM. */
    val crossGap: Latency,
    /** CPU time of all worker JVMs over the measured phase, per section. */
    val cpuMicrosPerSection: Double,
    val overlaps: Int,
    val recorded: Int,
    val errors: Int,
)

const val JVMS = 4

/** Runs the cross-process variant of scenario 2 for every implementation at N = 1 and 5. */
suspend fun crossProcessHandOff(fleet: RedisFleet, profile: Profile, log: (String) -> Unit): List<CrossHandOff> {
    val results = ArrayList<CrossHandOff>()
    for (n in listOf(1, 5)) {
        for (impl in Impl.entries) {
            for (contenders in profile.crossContenders) {
                log("scenario 2, across $JVMS JVMs, N = $n, ${impl.label}, $contenders contenders")
                results += runCrossProcess(fleet, profile, impl, n, contenders)
                fleet.flushAll()
            }
        }
    }
    return results
}

private suspend fun runCrossProcess(fleet: RedisFleet, profile: Profile, impl: Impl, n: Int, contenders: Int): CrossHandOff {
    val resource = "hot-x-$contenders"
    val perJvm = maxOf(1, contenders / JVMS)
    val java = java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString()
    val workers = (0 until JVMS).map { jvm ->
        val command = listOf(
            java, "-Xmx512m", "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"),
            "dev.redlock.benchmarks.CrossProcessWorker",
            impl.name, fleet.uris().take(n).joinToString(","), resource, perJvm.toString(), jvm.toString(),
        )
        WorkerProcess(ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start())
    }
    try {
        return withContext(Dispatchers.IO) {
            withTimeout(5.minutes) {
                for (w in workers) w.expect("READY")
                // Every JVM starts contending at once; the first warm-up seconds are not counted.
                val start = now() + profile.warmup.inWholeNanoseconds
                val end = start + profile.measure.inWholeNanoseconds
                for (w in workers) w.send("GO $start $end")
                val outputs = workers.map { it.results() }
                summarize(impl, n, perJvm * JVMS, start, end, outputs)
            }
        }
    } finally {
        workers.forEach { it.kill() }
    }
}

/** One section as a worker JVM recorded it: start and end (System.nanoTime, shared by the JVMs of one machine on Linux), JVM and contender. */
private class XSection(val start: Long, val end: Long, val jvm: Int, val holder: Int)

private class WorkerOutput(val sections: List<XSection>, val cpuNanos: Long, val errors: Int)

private fun summarize(impl: Impl, n: Int, contenders: Int, start: Long, end: Long, outputs: List<WorkerOutput>): CrossHandOff {
    val all = outputs.flatMap { it.sections }.sortedBy { it.start }
    val gaps = newHistogram()
    val crossGaps = newHistogram()
    var overlaps = 0
    var counted = 0L
    var cross = 0L
    for (i in all.indices) {
        val s = all[i]
        val previous = all.getOrNull(i - 1)
        if (previous != null && s.start < previous.end) overlaps++
        if (s.start in start until end) {
            counted++
            if (previous != null) {
                val gap = (s.start - previous.end).coerceAtLeast(0)
                gaps.recordValue(gap)
                if (previous.jvm != s.jvm) {
                    cross++
                    crossGaps.recordValue(gap)
                }
            }
        }
    }
    val cpu = outputs.sumOf { it.cpuNanos }
    return CrossHandOff(
        impl = impl, n = n, contenders = contenders, sections = counted, perSecond = counted / ((end - start) / 1e9),
        crossJvm = cross, gap = Latency.of(gaps), crossGap = Latency.of(crossGaps),
        cpuMicrosPerSection = if (counted == 0L) Double.NaN else cpu / 1000.0 / counted,
        overlaps = overlaps, recorded = all.size, errors = outputs.sumOf { it.errors },
    )
}

/** A worker JVM, spoken to by lines on its standard input and output. */
private class WorkerProcess(val process: Process) {
    private val out = BufferedReader(InputStreamReader(process.inputStream))

    init {
        ALIVE += process
    }

    fun expect(what: String) {
        while (true) {
            val line = out.readLine() ?: throw IllegalStateException("a worker JVM ended before saying $what (exit ${process.waitFor()})")
            if (line == what) return
        }
    }

    fun send(line: String) {
        process.outputStream.write((line + "\n").toByteArray())
        process.outputStream.flush()
    }

    fun results(): WorkerOutput {
        val sections = ArrayList<XSection>()
        var cpu = 0L
        var errors = 0
        while (true) {
            val line = out.readLine() ?: throw IllegalStateException("a worker JVM ended before its results (exit ${process.waitFor()})")
            val parts = line.split(' ')
            when (parts[0]) {
                "S" -> sections += XSection(parts[1].toLong(), parts[2].toLong(), parts[3].toInt(), parts[4].toInt())
                "CPU" -> cpu = parts[1].toLong()
                "ERRORS" -> errors = parts[1].toInt()
                "END" -> return WorkerOutput(sections, cpu, errors)
            }
        }
    }

    fun kill() {
        if (process.isAlive) {
            process.destroy()
            if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(5, TimeUnit.SECONDS)
        }
        ALIVE.remove(process)
    }

    companion object {
        val ALIVE: MutableSet<Process> = java.util.concurrent.ConcurrentHashMap.newKeySet()

        init {
            Runtime.getRuntime().addShutdownHook(Thread { ALIVE.forEach { it.destroyForcibly() } })
        }
    }
}

/**
 * One JVM of the cross-process variant of scenario 2: opens the subject, warms it up on a resource
 * of its own, says READY, waits for "GO start end" (System.nanoTime), runs its contenders on the hot
 * resource until end, and prints every section, its CPU time from start to end and its errors.
 * Arguments: impl, master URIs (comma-separated), resource, contenders, JVM index.
 */
object CrossProcessWorker {
    @JvmStatic
    fun main(args: Array<String>) {
        quietLogs()
        val impl = Impl.valueOf(args[0])
        val uris = args[1].split(',')
        val resource = args[2]
        val contenders = args[3].toInt()
        val jvm = args[4].toInt()
        val retry = if (impl == Impl.BASELINE) RetryPolicy.POLLING else RetryPolicy.PHYSICAL
        val sections = ConcurrentLinkedQueue<XSection>()
        val errors = AtomicInteger()
        var cpu = 0L
        openSubject(impl, uris, LEASE, retry).use { subject ->
            runBlocking(Dispatchers.Default) {
                repeat(50) { subject.locked("warm-$jvm-${it % 4}", 1L) {} }
                println("READY")
                System.out.flush()
                val go = withContext(Dispatchers.IO) { readlnOrNull() } ?: return@runBlocking
                val (_, startText, endText) = go.split(' ')
                val start = startText.toLong()
                val end = endText.toLong()
                coroutineScope {
                    launch {
                        delay(((start - now()) / 1_000_000).coerceAtLeast(0))
                        val before = processCpuNanos()
                        delay(((end - now()) / 1_000_000).coerceAtLeast(0))
                        cpu = processCpuNanos() - before
                    }
                    repeat(contenders) { c ->
                        launch {
                            while (now() < end) {
                                try {
                                    subject.locked(resource, c + 1L) {
                                        val s = now()
                                        sections += XSection(s, now(), jvm, c)
                                    }
                                } catch (e: CancellationException) {
                                    throw e
                                } catch (e: Exception) {
                                    if (errors.incrementAndGet() == 1) System.err.println("cross-process worker $jvm: $e")
                                }
                            }
                        }
                    }
                }
            }
        }
        val text = StringBuilder()
        for (s in sections) text.append("S ").append(s.start).append(' ').append(s.end).append(' ').append(s.jvm).append(' ').append(s.holder).append('\n')
        text.append("CPU ").append(cpu).append('\n').append("ERRORS ").append(errors.get()).append('\n').append("END\n")
        print(text)
        System.out.flush()
        kotlin.system.exitProcess(0)
    }

    /** As scenario 2's lease. */
    private val LEASE: Duration = 30.seconds
}

/** The report's section for the cross-process variant of scenario 2. */
fun scenario2CrossProcess(results: List<CrossHandOff>, line: (String) -> Unit) {
    line("")
    line("### 2b. One hot resource, contenders in $JVMS JVMs")
    line("")
    line("The same contention with the contenders spread evenly over $JVMS JVMs (separate processes on this machine, as")
    line("application instances would be), so that a lock passes between processes through the masters and an")
    line("in-process queue cannot flatter anyone. Sections are gathered from all JVMs and ordered by System.nanoTime,")
    line("which the JVMs of one Linux machine share (CLOCK_MONOTONIC). \"changed JVM\" is the share of sections")
    line("whose holder is in another JVM than the previous section's, with the gap of those hand-offs. CPU is that of")
    line("all $JVMS JVMs over the measured phase, per section. Target: ours at least 1.5x Redisson's sections per second.")
    line("")
    line("| N | contenders | figure | ours | Redisson | polling baseline | ours / Redisson | ours / baseline |")
    line("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for ((n, contenders) in results.map { it.n to it.contenders }.distinct()) {
        val ours = results.find { it.impl == Impl.OURS && it.n == n && it.contenders == contenders }
        val redisson = results.find { it.impl == Impl.REDISSON && it.n == n && it.contenders == contenders }
        val base = results.find { it.impl == Impl.BASELINE && it.n == n && it.contenders == contenders }
        fun row(figure: String, f: (CrossHandOff) -> Double) {
            val o = ours?.let(f) ?: Double.NaN
            val rr = redisson?.let(f) ?: Double.NaN
            val b = base?.let(f) ?: Double.NaN
            line("| $n | $contenders | $figure | ${num(o)} | ${num(rr)} | ${num(b)} | ${x(o / rr)} | ${x(o / b)} |")
        }
        row("sections/s") { it.perSecond }
        row("hand-off gap p50 µs") { it.gap.p50 }
        row("hand-off gap p99 µs") { it.gap.p99 }
        row("changed JVM, %") { if (it.sections == 0L) Double.NaN else it.crossJvm * 100.0 / it.sections }
        row("gap when changing JVM, p50 µs") { it.crossGap.p50 }
        row("CPU µs/section, all JVMs") { it.cpuMicrosPerSection }
    }
    val overlaps = results.filter { it.overlaps > 0 }
    line("")
    line(
        if (overlaps.isEmpty()) "Overlapping sections seen: none (${results.sumOf { it.recorded }} sections checked, warm-up included)."
        else "Overlapping sections seen: " + overlaps.joinToString { "${it.impl.label} N = ${it.n}, ${it.contenders} contenders: ${it.overlaps}" },
    )
    val errors = results.filter { it.errors > 0 }
    if (errors.isNotEmpty()) line("Failed lock calls: " + errors.joinToString { "${it.impl.label} N = ${it.n}, ${it.contenders} contenders: ${it.errors}" })
    WHY_IN_ONE_PROCESS.lines().forEach(line)
}

/** Why the one-round-trip hand-off is not offered between processes (written by hand, kept with the section it explains). */
private val WHY_IN_ONE_PROCESS = """

#### Why the hand-off stays in one process

Inside one process a release hands a mutex to the next local waiter in one script call per master: the
key moves from the old token to the waiter's only where it still holds the old one, the waiter's validity
counts from before that call, and a master that refuses counts against the quorum like any refusal. A
queue of waiters kept on the masters, served by the release script, would do the same between processes,
and we do not build it, because under the Redlock rules it does not hold:

1. **The new holder cannot measure its validity.** Validity must count from a moment the holder took
   before the write that set its keys. A server-side hand-off is written by the old holder's call; the
   waiter hears of it afterwards. Counting from its registration is safe but mostly spent; counting from
   when it heard overstates the lease.
2. **Independent masters order their queues independently.** Registrations arrive at each master in its
   own order, so one master hands the key to one waiter and another master to a second: a split with no
   quorum, which retries re-enter in the same orders. A common order would need the masters to agree,
   which Redlock is built to do without.
3. **Waiters that are gone get the lock.** A waiter that crashed, gave up or was cancelled stays queued
   until its entry expires, and a hand-off to it leaves the lock held by nobody for a lease time, unless
   each waiter refreshes its entry, which is polling again.
4. **Notices are at most once.** A push lost with a dropped connection leaves a holder that does not know
   it holds; finding out takes a read on a quorum, a round trip with a fresh validity measurement: what a
   release notice followed by an acquire costs today, with the problems above on top.

Between processes we therefore keep the release notice: one publish per master, the first waiter of each
process woken once, no polling; the lock's gap when it changes JVM is that notice plus the waiter's acquire.
""".trimEnd()

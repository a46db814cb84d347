@file:JvmName("Demo")

package dev.redlock.examples

import java.io.PrintStream
import java.util.Locale
import java.util.logging.Level
import java.util.logging.Logger
import kotlin.system.exitProcess
import kotlin.time.Duration
import kotlin.time.DurationUnit
import kotlin.time.TimeSource
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import kotlin.time.Duration.Companion.seconds

val USAGE: String = """
    Usage (from the repository root):
      mvn -q -pl redlock-examples -am package -DskipTests -Ddemo [-Dexec.args="OPTIONS"]
      mvn -q -pl redlock-examples exec:java [-Dexec.args="OPTIONS"]    (after mvn -q install -DskipTests)

    Starts 5 local Redis masters and runs critical sections from many concurrent workers under
    Redlock, then kills 2 masters (work goes on) and a 3rd (holders lose their locks, new
    acquisitions are refused), and prints a summary. Exit code: 0 no overlap, 1 overlap seen,
    2 bad arguments or the demo could not run.

    Options:
      --masters URI,URI,...  use these masters instead of starting local ones, e.g.
                             redis://10.0.0.1:6379,redis://:secret@10.0.0.2:6379,...
                             they are not killed unless --chaos is given too
      --chaos                with --masters: shut masters down (SHUTDOWN NOSAVE) in phases 2 and 3
      --backend redis|postgres
                             postgres: start a local PostgreSQL instead and lock with PostgresLocks
                             (session advisory locks); phase 3 kills the server (default redis)
      --workers N            concurrent workers (default 16)
      --resources N          resources the workers share (default 4)
      --sections N           critical sections to run while a quorum is up (default 400)
      --verbose              also show the library's and Lettuce's log messages
      -h, --help             show this help
""".trimIndent()

/** What the command line asked for. */
internal sealed interface Command {
    data object Help : Command

    data class Run(val options: DemoOptions, val verbose: Boolean) : Command
}

/** A command line that cannot be run; the message says what is wrong with it. */
internal class UsageException(message: String) : RuntimeException(message)

/** Parses the command line; `--name value` and `--name=value` are both accepted. */
internal fun parseArgs(args: Array<String>): Command {
    var masters: List<String>? = null
    var chaos = false
    var verbose = false
    var workers = 16
    var resources = 4
    var sections = 400
    var backend = DemoBackend.REDIS
    var i = 0
    while (i < args.size) {
        val arg = args[i++]
        val name = arg.substringBefore('=')
        val inline = if ('=' in arg) arg.substringAfter('=') else null
        fun value(): String =
            inline ?: args.getOrNull(i++) ?: throw UsageException("$name needs a value")
        fun number(): Int {
            val text = value()
            return text.toIntOrNull() ?: throw UsageException("$name expects a whole number, but was '$text'")
        }
        fun flag(): Boolean {
            if (inline != null) throw UsageException("$name takes no value, but was given '$inline'")
            return true
        }
        when (name) {
            "-h", "--help" -> return Command.Help
            "--masters" -> masters = value().split(',').map { it.trim() }.filter { it.isNotEmpty() }.also {
                if (it.isEmpty()) throw UsageException("--masters needs at least one URI, like redis://localhost:6379")
                val bad = it.firstOrNull { uri -> !uri.startsWith("redis://") && !uri.startsWith("rediss://") }
                if (bad != null) throw UsageException("--masters expects redis:// or rediss:// URIs, but got '${redact(bad)}'")
            }
            "--chaos" -> chaos = flag()
            "--backend" -> backend = when (val b = value()) {
                "redis" -> DemoBackend.REDIS
                "postgres", "postgresql" -> DemoBackend.POSTGRES
                else -> throw UsageException("--backend expects redis or postgres, but was '$b'")
            }
            "--verbose" -> verbose = flag()
            "--workers" -> workers = number()
            "--resources" -> resources = number()
            "--sections" -> sections = number()
            else -> throw UsageException("unknown option '$arg'")
        }
    }
    if (chaos && masters == null) throw UsageException("--chaos only applies to --masters (local masters are always killed)")
    val options = try {
        DemoOptions(masters, chaos, workers, resources, sections, backend)
    } catch (e: IllegalArgumentException) {
        throw UsageException(e.message ?: "bad arguments")
    }
    return Command.Run(options, verbose)
}

/** Keeps the configured loggers reachable: JUL holds loggers weakly and would forget the levels. */
private val quietLoggers = mutableListOf<Logger>()

/**
 * Turns off the library's and Lettuce's own log messages. They warn about each lost lock and each
 * unreachable master: in the demo those are the point, and the summary counts them.
 */
internal fun quietLibraryLogs() {
    for (name in listOf("dev.redlock", "io.lettuce", "io.netty", "reactor", "org.postgresql")) {
        quietLoggers += Logger.getLogger(name).apply { level = Level.OFF }
    }
}

/**
 * The demo from the README: parses [args], runs [runDemo] with a live console, prints the summary,
 * and exits with 0 (no overlap), 1 (overlap) or 2 (bad arguments, or the demo could not run).
 */
fun main(args: Array<String>) {
    val command = try {
        parseArgs(args)
    } catch (e: UsageException) {
        System.err.println("error: ${e.message}")
        System.err.println("Run with --help for the options.")
        exitProcess(2)
    }
    val run = when (command) {
        Command.Help -> {
            println(USAGE)
            exitProcess(0)
        }
        is Command.Run -> command
    }
    if (!run.verbose) quietLibraryLogs()
    val console = ConsoleListener(System.out, interactive = System.console() != null)
    val code = try {
        val summary = runInterruptibly(run.options, console)
        console.done()
        printSummary(summary, System.out)
        if (summary.ok) 0 else 1
    } catch (e: DemoException) {
        console.done()
        System.err.println("demo failed: ${e.message}")
        2
    } catch (e: IllegalArgumentException) {
        console.done()
        System.err.println("error: ${e.message}")
        2
    } catch (e: CancellationException) {
        2 // Ctrl-C: the shutdown hook stopped the run; the JVM is exiting anyway.
    } catch (e: Exception) {
        console.done()
        System.err.println("demo failed: $e")
        e.printStackTrace()
        2
    }
    exitProcess(code)
}

/** Runs the demo; on Ctrl-C (JVM shutdown) cancels it and waits for it to stop its masters. */
private fun runInterruptibly(options: DemoOptions, console: ConsoleListener): DemoSummary = runBlocking {
    val demo = async(Dispatchers.Default) { runDemo(options, console) }
    val hook = Thread({
        if (demo.isActive) {
            console.info("interrupted: stopping the workers and the masters")
            demo.cancel()
            runBlocking { withTimeoutOrNull(5.seconds) { demo.join() } }
        }
    }, "redlock-demo-shutdown")
    Runtime.getRuntime().addShutdownHook(hook)
    try {
        demo.await()
    } finally {
        try {
            Runtime.getRuntime().removeShutdownHook(hook)
        } catch (_: IllegalStateException) {
            // Already shutting down: the hook is running.
        }
    }
}

/**
 * Phase lines with the time since start, and a progress line that overwrites itself on a terminal
 * (one line a second otherwise, so that logs stay readable).
 */
private class ConsoleListener(private val out: PrintStream, private val interactive: Boolean) : DemoListener {
    private val start = TimeSource.Monotonic.markNow()
    private val lock = Any()
    private var progressShown = false
    private var ticks = 0

    override fun phase(text: String) = line(String.format(Locale.ROOT, "[%5.1fs] %s", start.elapsedNow().toDouble(DurationUnit.SECONDS), text))

    override fun info(text: String) = line("         $text")

    override fun progress(progress: DemoProgress) {
        val text = String.format(
            Locale.ROOT,
            "         %5d sections  %6.1f/s  in flight: %2d held, %2d waiting  failures: %d lost, %d refused",
            progress.sections, progress.perSecond, progress.held, progress.waiting, progress.locksLost, progress.refused,
        )
        synchronized(lock) {
            if (interactive) {
                out.print("\r" + text + "\u001B[K")
                out.flush()
                progressShown = true
            } else if (ticks++ % 2 == 1) {
                out.println(text)
            }
        }
    }

    fun done() = synchronized(lock) {
        if (progressShown) out.println()
        progressShown = false
    }

    private fun line(text: String) = synchronized(lock) {
        if (progressShown) out.println()
        progressShown = false
        out.println(text)
    }
}

/** Prints the summary table. */
internal fun printSummary(s: DemoSummary, out: PrintStream) {
    fun row(label: String, value: String) = out.println("  " + label.padEnd(28) + value)
    fun ms(d: Duration) = String.format(Locale.ROOT, "%8.1f ms", d.toDouble(DurationUnit.MILLISECONDS))
    fun up(count: Int) = if (s.backend == "PostgreSQL") "the database up" else "$count of ${s.masters} masters up"

    out.println()
    out.println("Summary")
    row(
        "critical sections run",
        "${s.sections}" + if (s.sectionsByMastersUp.size > 1 || s.killedMasters > 0) {
            "  (" + s.sectionsByMastersUp.entries.joinToString(", ") { "${it.value} with ${up(it.key)}" } + ")"
        } else "",
    )
    row(
        "overlaps seen",
        "${s.overlaps}  ${if (s.ok) "OK" else "VIOLATION"}  (holder count > 1: ${s.holderOverlaps}, " +
            "another writer inside: ${s.writerOverlaps}, lost counter updates: ${s.lostUpdates})",
    )
    row("acquire latency", listOf("p50", "p90", "p99", "max").joinToString("  ") { it.padStart(11) } + "  " + "count".padStart(7) +
        "   (call to block start, waiting included)")
    for ((count, stats) in s.latencyByMastersUp) {
        row("  ${up(count)}", "${ms(stats.p50)}  ${ms(stats.p90)}  ${ms(stats.p99)}  ${ms(stats.max)}  ${"%7d".format(stats.count)}")
    }
    s.latency?.takeIf { s.latencyByMastersUp.size > 1 }?.let { stats ->
        row("  all", "${ms(stats.p50)}  ${ms(stats.p90)}  ${ms(stats.p99)}  ${ms(stats.max)}  ${"%7d".format(stats.count)}")
    }
    row("locks lost", "${s.locksLost}" + if (s.locksLost > 0) "  (LockLostException: the critical section was cancelled)" else "")
    row(
        "acquisitions refused",
        "${s.refusedContention + s.refusedMastersDown}  (contention: ${s.refusedContention}, ${if (s.backend == "PostgreSQL") "database" else "masters"} down: ${s.refusedMastersDown})",
    )
    if (s.killedMasters > 0) {
        if (s.backend == "PostgreSQL") row("database killed", "yes (every holding session ended)")
        else row("masters killed", "${s.killedMasters} of ${s.masters}")
    }
    s.keysLeft?.let { row("lock keys left behind", "$it on the ${s.masters - s.killedMasters} masters still up") }
    row("elapsed", String.format(Locale.ROOT, "%.1f s", s.elapsed.toDouble(DurationUnit.SECONDS)))
    out.println()
    out.println(
        if (s.ok) "OK: no two holders were ever inside the same critical section."
        else "VIOLATION: ${s.overlaps} overlap(s) seen — mutual exclusion was broken.",
    )
}

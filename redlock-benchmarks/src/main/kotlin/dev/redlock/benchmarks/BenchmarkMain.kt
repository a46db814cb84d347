@file:JvmName("BenchmarkMain")

package dev.redlock.benchmarks

import dev.redlock.testing.RedisFleet
import java.nio.file.Files
import java.nio.file.Path
import java.util.logging.Level
import java.util.logging.Logger
import kotlin.system.exitProcess
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext

/** The options a reader typed: without `--root`, which the Maven profile adds, and without blanks. */
fun shownArgs(args: Array<String>): List<String> {
    val shown = ArrayList<String>()
    var i = 0
    while (i < args.size) {
        val arg = args[i++]
        when {
            arg == "--root" -> i++
            arg.startsWith("--root=") || arg.isBlank() -> {}
            else -> shown += arg
        }
    }
    return shown
}

/** The command a reader runs to get the same report, with the options of this run. */
fun commandLine(args: List<String>): String {
    val shown = args.filter { it.isNotBlank() }
    val base = "mvn -q -pl redlock-benchmarks -am package -DskipTests -Dbench"
    return if (shown.isEmpty()) base else "$base -Dexec.args=\"${shown.joinToString(" ")}\""
}

/**
 * Runs the selected scenarios on a fresh fleet of 5 masters and returns the results. [log] gets
 * one line per phase.
 */
suspend fun runBenchmarks(options: Options, shownArgs: List<String>, log: (String) -> Unit): Results {
    val started = now()
    RedisFleet.start(5).use { fleet ->
        val machine = Machine.describe(options.root, fleet.serverVersion)
        val scenarios = Scenarios(fleet, options.profile, log)
        val chosen = options.scenarios
        return withContext(Dispatchers.Default) {
            scenarios.warmUp()
            val s1 = if (1 in chosen) scenarios.uncontended() else null
            val s2 = if (2 in chosen) scenarios.hotResource() else null
            val s2x = if (2 in chosen) crossProcessHandOff(fleet, options.profile, log) else null
            val s3 = if (3 in chosen) scenarios.manyResources() else null
            val s4 = if (4 in chosen) scenarios.heldLocks() else null
            val s5 = if (5 in chosen) scenarios.slowMaster() else null
            val loss = LossScenarios(fleet, options.profile, log)
            val s6 = if (6 in chosen) loss.adminFaults() else null
            val s7 = if (7 in chosen) loss.crashHandOff() else null
            val s8 = if (8 in chosen) loss.trackingCost() else null
            val s9 = if (9 in chosen) replicaAcksCost(options.profile, log) else null
            val s10 = if (10 in chosen) ClusterScenario(fleet, scenarios, options.profile, log).run() else null
            val s11 = if (11 in chosen) backendsCost(fleet, options.profile, log) else null
            Results(
                machine = machine,
                profile = options.profile,
                command = commandLine(shownArgs),
                uncontended = s1,
                hotResource = s2,
                crossProcess = s2x,
                manyResources = s3,
                heldLocks = s4,
                slowMaster = s5,
                adminFaults = s6,
                crashHandOff = s7,
                trackingCost = s8,
                replicaAcks = s9,
                clusterScaling = s10,
                backends = s11,
                serverHz = runCatching { (fleet.command(0, "CONFIG", "GET", "hz") as List<*>)[1].toString() }.getOrDefault("?"),
                runSeconds = (now() - started) / 1e9,
                loadAtEnd = Machine.loadAverage(),
            )
        }
    }
}

/** Writes the report of [results] to [path], creating its directory. */
fun writeReport(results: Results, path: Path) {
    Files.createDirectories(path.toAbsolutePath().parent)
    Files.writeString(path, render(results))
}

/** Quietens the clients' logs: Redisson and Netty report every connection event at INFO. */
fun quietLogs() {
    Logger.getLogger("").level = Level.WARNING
    for (logger in QUIET) logger.level = Level.SEVERE
    // Redisson logs its deprecation of getRedLock as an error on every call; the report says it once.
    // Netty reports, with a stack trace, a close listener that Redisson's shutdown leaves behind
    // after the event loop has stopped: noise about a client that is already gone.
    for (logger in SILENT) logger.level = Level.OFF
}

// java.util.logging keeps loggers weakly: held here so that their levels stick.
// Our own log reports every lost lock at WARNING: scenario 6 loses locks on purpose, and the other
// scenarios count their losses themselves.
private val QUIET = listOf("org.redisson", "io.netty", "io.lettuce", "dev.redlock").map { Logger.getLogger(it) }
private val SILENT = listOf("org.redisson.Redisson", "io.netty.util.concurrent.DefaultPromise.rejectedExecution").map { Logger.getLogger(it) }

fun main(args: Array<String>) {
    val options = try {
        Options.parse(args)
    } catch (e: UsageException) {
        System.err.println("redlock-benchmarks: ${e.message}")
        System.err.println(USAGE)
        exitProcess(2)
    }
    if (options.help) {
        println(USAGE)
        return
    }
    quietLogs()
    val shown = shownArgs(args)
    val out = options.output
    println("redlock-benchmarks: ${options.profile.name} run of scenarios ${options.scenarios.joinToString(",")}; report: $out")
    try {
        val results = runBlocking { runBenchmarks(options, shown) { println("[${"%5.0f".format((now() - T0) / 1e9)} s] $it") } }
        writeReport(results, out)
        val targets = targets(results)
        println("redlock-benchmarks: ${targets.count { it.met == true }} of ${targets.size} targets met; wrote $out")
    } catch (e: Throwable) {
        System.err.println("redlock-benchmarks: the run failed: $e")
        e.printStackTrace()
        exitProcess(1)
    }
    // Redisson's and Netty's non-daemon threads are shut down by then; exit anyway so a straggler cannot hold the build.
    exitProcess(0)
}

private val T0 = now()

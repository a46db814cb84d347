package dev.redlock.chaos

import dev.redlock.coroutines.Redlock
import java.io.File
import java.io.IOException
import java.io.PrintStream
import java.net.URLClassLoader
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.runBlocking

/**
 * A lock client in its own JVM, so that it can be frozen (SIGSTOP) like a process in a long GC
 * pause, or killed (SIGKILL) while it holds a lock. It runs [runWorker] and reports every section
 * event on stdout, one line each; the parent feeds them to its [History]. It stops when its stdin
 * closes or reads `STOP`.
 *
 * Arguments: `name seed leaseMs waitMs nodeTimeoutMs retryDelayMs minSectionMs resources(comma) masters(comma)`.
 */
object ChildClientMain {
    @JvmStatic
    fun main(args: Array<String>) {
        quietLogs()
        require(args.size == 9) {
            "expected 9 arguments (name seed leaseMs waitMs nodeTimeoutMs retryDelayMs minSectionMs resources masters), but got ${args.size}"
        }
        val name = args[0]
        val timing = Timing(args[2].toLong().milliseconds, args[3].toLong().milliseconds, args[4].toLong().milliseconds, args[5].toLong().milliseconds)
        val settings = WorkerSettings(name, args[7].split(','), args[1].toLong(), timing, minSectionMillis = args[6].toLong())
        val masters = args[8].split(',')
        val out = PrintStream(System.out, true, Charsets.UTF_8)
        val stop = AtomicBoolean(false)
        thread(name = "stdin-watch", isDaemon = true) {
            try {
                System.`in`.bufferedReader().useLines { lines -> lines.firstOrNull { it.trim() == "STOP" } }
            } catch (_: IOException) {
                // A closed stdin means stop as well.
            }
            stop.set(true)
        }
        Redlock(timing.config(masters)).use { redlock ->
            out.println("READY")
            runBlocking { runWorker(redlock, settings, LineSink(out), stop::get) }
        }
        out.println("BYE")
        out.flush()
    }

    /** Writes section events as lines; every line is flushed at once, so a SIGKILL loses nothing written. */
    private class LineSink(private val out: PrintStream) : SectionSink {
        override fun begin(id: String, client: String, resource: String, start: Long, validUntil: Long, requestedLease: Long) =
            line("B $id $client $resource $start $validUntil $requestedLease")

        override fun valid(id: String, validUntil: Long) = line("V $id $validUntil")

        override fun ended(id: String, end: Long, bodyCompleted: Boolean, validUntil: Long, lossDeclaredAt: Long?) =
            line("E $id $end ${if (bodyCompleted) 1 else 0} $validUntil ${lossDeclaredAt ?: "-"}")

        override fun outcome(id: String, outcome: Outcome, lossReason: String?, lossDeclaredAt: Long?) =
            line("O $id $outcome ${lossReason ?: "-"} ${lossDeclaredAt ?: "-"}")

        override fun notAcquired(client: String, kind: String) = line("N $client $kind")

        override fun fence(id: String, token: Long) = line("F $id $token")

        private fun line(text: String) {
            synchronized(out) { out.println(text) }
        }
    }
}

/**
 * The parent's handle on a [ChildClientMain] process: starts it, feeds its lines to [sink], and
 * freezes, continues or kills it. [close] stops it (and kills it if it does not stop in time).
 */
class ChildClient private constructor(
    val name: String,
    private val process: Process,
    private val logFile: Path,
    private val sink: History,
) : AutoCloseable {
    private val ready = java.util.concurrent.CountDownLatch(1)
    private val closed = AtomicBoolean(false)

    @Volatile var killedAt: Long = -1
        private set

    private val reader = thread(name = "child-$name-reader", isDaemon = true) { readLines() }

    val pid: Long
        get() = process.pid()

    val isAlive: Boolean
        get() = process.isAlive

    private fun readLines() {
        try {
            process.inputStream.bufferedReader(Charsets.UTF_8).forEachLine { line -> handle(line) }
        } catch (_: IOException) {
            // The process is gone.
        }
    }

    private fun handle(line: String) {
        val f = line.split(' ')
        when (f[0]) {
            "READY" -> ready.countDown()
            "B" -> sink.begin(f[1], f[2], f[3], f[4].toLong(), f[5].toLong(), f[6].toLong())
            "V" -> sink.valid(f[1], f[2].toLong())
            "E" -> sink.ended(f[1], f[2].toLong(), f[3] == "1", f[4].toLong(), f[5].takeIf { it != "-" }?.toLong())
            "O" -> sink.outcome(f[1], Outcome.valueOf(f[2]), f[3].takeIf { it != "-" }, f[4].takeIf { it != "-" }?.toLong())
            "N" -> sink.notAcquired(f[1], f[2])
            "F" -> sink.fence(f[1], f[2].toLong())
        }
    }

    /** Waits until the child's Redlock is up; throws with the child's log if it died first. */
    fun awaitReady(timeoutMillis: Long = 30_000) {
        if (!ready.await(timeoutMillis, TimeUnit.MILLISECONDS)) {
            throw IllegalStateException("child client $name did not get ready within $timeoutMillis ms; log:\n${logTail()}")
        }
    }

    /** SIGSTOP: the whole JVM stops, its timers and renewals with it. */
    fun freeze() = signal("STOP")

    /** SIGCONT. */
    fun thaw() = signal("CONT")

    /** SIGKILL while it may hold a lock; its open sections end now. */
    fun kill() {
        killedAt = System.nanoTime()
        process.destroyForcibly()
        process.waitFor(10, TimeUnit.SECONDS)
        reader.join(5_000)
        sink.clientDied(name, killedAt)
    }

    private fun signal(name: String) {
        val kill = ProcessBuilder("kill", "-$name", process.pid().toString()).redirectErrorStream(true).start()
        val output = kill.inputStream.readAllBytes().toString(Charsets.UTF_8)
        check(kill.waitFor(10, TimeUnit.SECONDS) && kill.exitValue() == 0) { "kill -$name ${process.pid()} failed: $output" }
    }

    fun logTail(): String =
        try {
            Files.readAllLines(logFile).takeLast(30).joinToString("\n")
        } catch (e: IOException) {
            "(no log: $e)"
        }

    /** Asks the child to stop (continuing it first), waits for it, kills it if it lingers. Idempotent. */
    override fun close() {
        if (!closed.compareAndSet(false, true)) return
        try {
            if (process.isAlive) {
                runCatching { signal("CONT") }
                runCatching {
                    process.outputStream.write("STOP\n".toByteArray())
                    process.outputStream.flush()
                    process.outputStream.close()
                }
                if (!process.waitFor(STOP_WAIT_SECONDS, TimeUnit.SECONDS)) {
                    process.destroyForcibly()
                    process.waitFor(10, TimeUnit.SECONDS)
                }
            }
            reader.join(5_000)
        } finally {
            if (process.isAlive) process.destroyForcibly()
            runCatching { Files.deleteIfExists(logFile) }
        }
    }

    companion object {
        private const val STOP_WAIT_SECONDS = 15L

        /** Starts a child client for [settings] against [masters]; call [awaitReady] before relying on it. */
        fun start(settings: WorkerSettings, masters: List<String>, sink: History): ChildClient {
            val t = settings.timing
            val java = Paths.get(System.getProperty("java.home"), "bin", "java").toString()
            val command = listOf(
                java, "-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
                "-cp", childClasspath(), ChildClientMain::class.java.name,
                settings.name, settings.seed.toString(), t.lease.inWholeMilliseconds.toString(), t.wait.inWholeMilliseconds.toString(),
                t.nodeTimeout.inWholeMilliseconds.toString(), t.retryDelay.inWholeMilliseconds.toString(), settings.minSectionMillis.toString(),
                settings.resources.joinToString(","), masters.joinToString(","),
            )
            val log = Files.createTempFile("redlock-chaos-${settings.name}-", ".log")
            val process = ProcessBuilder(command).redirectError(log.toFile()).start()
            ChildProcesses.register(process)
            return ChildClient(settings.name, process, log, sink)
        }

        /**
         * The classpath for a child JVM: this JVM's class path, plus the URLs of any URL class loader
         * above this class (exec:java runs the soak in such a loader, inside Maven's JVM).
         */
        fun childClasspath(): String {
            val fromLoaders = generateSequence(ChildClient::class.java.classLoader) { it.parent }
                .filterIsInstance<URLClassLoader>()
                .flatMap { it.urLs.asSequence() }
                .mapNotNull { url -> runCatching { Paths.get(url.toURI()).toString() }.getOrNull() }
                .toList()
            val own = System.getProperty("java.class.path").split(File.pathSeparator).filter { it.isNotEmpty() }
            return (fromLoaders + own).distinct().joinToString(File.pathSeparator)
        }
    }
}

/** Kills every child client still alive when the JVM exits, so that none outlives a crashed run. */
internal object ChildProcesses {
    private val live = java.util.concurrent.ConcurrentHashMap.newKeySet<Process>()

    init {
        Runtime.getRuntime().addShutdownHook(Thread({ live.forEach { it.destroyForcibly() } }, "chaos-children-reaper"))
    }

    fun register(process: Process) {
        live += process
        process.onExit().thenRun { live -= process }
    }
}

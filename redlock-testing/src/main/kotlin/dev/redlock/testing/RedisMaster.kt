package dev.redlock.testing

import java.io.IOException
import java.net.InetAddress
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock

/** Settings shared by every master of one fleet. */
internal class MasterSettings(
    val binary: Path,
    val security: FleetSecurity,
    val serverArgs: List<String>,
    val commandTimeoutMillis: Int,
    val startTimeoutMillis: Long = 10_000,
    /** A configuration file, passed first (a sentinel needs one it can rewrite); null for none. */
    val configFile: Path? = null,
    /**
     * Whether the server also listens on its cluster bus port (its port + 10000): ports are then
     * taken from a range where both are below the ephemeral range, and both are reserved.
     */
    val clusterBus: Boolean = false,
    /** Files of the master's directory that survive [RedisMaster.restart] (a cluster node's `nodes.conf`). */
    val keptFiles: Set<String> = emptySet(),
)

/** `redis-server` could not bind its port: another process holds it. */
private class PortInUseException(message: String) : Exception(message, null, false, false)

/**
 * One `redis-server` process and the port and directory that outlive it across restarts.
 *
 * Lifecycle changes (start, kill, pause, resume, restart) are serialized by [lock]. [destroy] takes no
 * lock, so that `close()` and the shutdown hook never wait behind a restart that is waiting for its
 * process; instead [launch] re-checks [closed] after every start, and whichever of the two runs second
 * kills the process.
 */
internal class RedisMaster(override val index: Int, private val settings: MasterSettings, private val dir: Path) : FleetMaster {
    private val lock = ReentrantLock()

    @Volatile private var process: Process? = null
    @Volatile private var paused = false
    @Volatile private var closed = false

    override val address: InetAddress
        get() = LOOPBACK

    override val hostName: String
        get() = "127.0.0.1"

    @Volatile override var port: Int = 0
        private set

    @Volatile override var version: String = ""
        private set

    @Volatile override var serverName: String = ""
        private set

    private val logFile: Path = dir.resolve("redis.log")

    override val isRunning: Boolean
        get() = process?.isAlive == true

    override val isPaused: Boolean
        get() = paused && isRunning

    override fun pid(): Long? = process?.takeIf { it.isAlive }?.pid()

    override fun describe(): String = "master $index (127.0.0.1:$port)"

    /** First start: picks a free port, and picks another if redis-server fails to bind it. */
    override fun start() {
        lock.withLock {
            val reserve = if (settings.clusterBus) PortReservations::reserveWithBus else PortReservations::reserve
            PortReservations.startOnFreePort<PortInUseException>(PORT_ATTEMPTS, { port = it }, ::launch, reserve) { last ->
                RedisFleetException(
                    "master $index: redis-server could not bind a free port in $PORT_ATTEMPTS attempts; last: ${last?.message}"
                )
            }
        }
    }

    /** SIGKILL; returns once the process is gone. A master that is not running is left as it is. */
    override fun kill() {
        lock.withLock {
            checkOpen()
            stopProcess()
        }
    }

    /** Kills the current process, if any, and forgets it. Call under [lock]. */
    private fun stopProcess() {
        process?.let { killAndWait(it) }
        process = null
        paused = false
    }

    /** SIGSTOP; returns once the kernel reports the process stopped. */
    override fun pause() {
        lock.withLock {
            checkOpen()
            val p = runningProcess("pause")
            signal(p.pid(), "STOP")
            paused = true
            awaitProcState(p.pid(), stopped = true)
        }
    }

    /** SIGCONT; returns once the master answers PING again. */
    override fun resume() {
        lock.withLock {
            checkOpen()
            val p = runningProcess("resume")
            signal(p.pid(), "CONT")
            paused = false
            awaitReady(p, port, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(settings.startTimeoutMillis))
        }
    }

    /** Kills the process if it runs and starts a fresh one, with empty data, on the same port. */
    override fun restart() {
        lock.withLock {
            checkOpen()
            stopProcess()
            var lastBusy: PortInUseException? = null
            // The port is ours, but for a moment a stranger may hold it (say, as a client's ephemeral port).
            repeat(PORT_ATTEMPTS) { attempt ->
                try {
                    launch(port)
                    return
                } catch (e: PortInUseException) {
                    lastBusy = e
                    Thread.sleep(50L * (attempt + 1))
                }
            }
            throw RedisFleetException("${describe()}: cannot restart, the port stays in use: ${lastBusy?.message}")
        }
    }

    /** First half of close: marks the master closed and sends SIGKILL, without waiting. */
    override fun destroy() {
        closed = true
        process?.destroyForcibly()
    }

    /** Second half of close: waits for the process to be gone and gives the port back. */
    override fun awaitDestroyed() {
        try {
            process?.let { killAndWait(it) }
        } finally {
            paused = false
            if (port != 0) PortReservations.release(port)
        }
    }

    /** The tail of this master's log, for error messages. */
    fun logTail(): String = tail(logFile)

    private fun checkOpen() {
        check(!closed) { "RedisFleet is closed" }
    }

    private fun runningProcess(operation: String): Process =
        process?.takeIf { it.isAlive }
            ?: throw IllegalStateException("cannot $operation ${describe()}: it is not running (restart($index) starts it again)")

    private fun command(port: Int): List<String> = buildList {
        add(settings.binary.toString())
        settings.configFile?.let { add(it.toString()) }
        addAll(settings.security.serverArgs(port))
        add("--bind"); add("127.0.0.1")
        add("--save"); add("")
        add("--appendonly"); add("no")
        add("--daemonize"); add("no")
        add("--dir"); add(dir.toString())
        add("--protected-mode"); add("no")
        addAll(settings.serverArgs)
    }

    /** Starts redis-server on [port] with an empty directory and waits until it answers PING. */
    private fun launch(port: Int) {
        clearDirectory()
        val builder =
            ProcessBuilder(command(port))
                .directory(dir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.to(logFile.toFile()))
        val p =
            try {
                builder.start()
            } catch (e: IOException) {
                throw RedisFleetException("master $index: cannot run ${settings.binary}: ${e.message}", e)
            }
        process = p
        if (closed) {
            killAndWait(p)
            throw IllegalStateException("RedisFleet is closed")
        }
        try {
            p.outputStream.close()
        } catch (_: IOException) {
            // Its stdin is never read; closing it only frees the pipe.
        }
        try {
            awaitReady(p, port, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(settings.startTimeoutMillis))
        } catch (e: Throwable) {
            killAndWait(p)
            process = null
            throw e
        }
    }

    /**
     * Polls with AUTH (with a password), PING and INFO server until PONG comes back from our own
     * process (INFO's process_id tells a stranger on the port from ours).
     */
    private fun awaitReady(p: Process, port: Int, deadline: Long) {
        var lastFailure: Throwable? = null
        while (true) {
            if (!p.isAlive) {
                check(!closed) { "RedisFleet is closed" }
                val log = logTail()
                if (log.contains("Address already in use")) throw PortInUseException("port $port: $log")
                throw RedisFleetException(
                    "master $index: redis-server exited with code ${p.exitValue()} before answering PING on port $port." +
                        "\nCommand: ${command(port).joinToString(" ") { if (it.isEmpty()) "\"\"" else it }.redactPassword()}" +
                        "\nLog ($logFile), last lines:\n$log",
                    lastFailure,
                )
            }
            try {
                val info = probe(port)
                if (info.pid != p.pid()) {
                    killAndWait(p)
                    throw PortInUseException("port $port is served by another redis-server (pid ${info.pid})")
                }
                version = info.version
                serverName = info.name
                return
            } catch (e: IOException) {
                lastFailure = e
            } catch (e: ProbeException) {
                lastFailure = e
            }
            if (System.nanoTime() - deadline > 0) {
                throw RedisFleetException(
                    "master $index: redis-server (pid ${p.pid()}) did not answer PING on port $port within " +
                        "${settings.startTimeoutMillis} ms (last attempt: $lastFailure).\nLog ($logFile), last lines:\n${logTail()}",
                    lastFailure,
                )
            }
            Thread.sleep(POLL_MILLIS)
        }
    }

    private fun probe(port: Int): ServerInfo =
        probeServer(settings.security.open(port, PROBE_TIMEOUT_MILLIS), settings.security.auth)

    private fun String.redactPassword(): String = settings.security.redact(this)

    private fun clearDirectory() {
        if (Files.exists(dir)) {
            if (settings.keptFiles.isEmpty()) {
                deleteRecursively(dir)
            } else {
                Files.list(dir).use { entries ->
                    entries.filter { it.fileName.toString() !in settings.keptFiles }.toList().forEach(::deleteRecursively)
                }
            }
        }
        Files.createDirectories(dir)
    }

    private fun killAndWait(p: Process) {
        p.destroyForcibly()
        if (!waitUninterruptibly(p, KILL_WAIT_MILLIS)) {
            throw RedisFleetException("${describe()}: pid ${p.pid()} is still alive $KILL_WAIT_MILLIS ms after SIGKILL")
        }
    }

    private fun signal(pid: Long, name: String) {
        val kill: Process
        val output: String
        try {
            kill = ProcessBuilder("kill", "-$name", pid.toString()).redirectErrorStream(true).start()
            output = kill.inputStream.readAllBytes().toString(Charsets.UTF_8).trim()
        } catch (e: IOException) {
            throw RedisFleetException("${describe()}: cannot run 'kill -$name $pid' (pause and resume need the kill command): $e", e)
        }
        if (!waitUninterruptibly(kill, KILL_WAIT_MILLIS) || kill.exitValue() != 0) {
            throw RedisFleetException("${describe()}: 'kill -$name $pid' failed: $output")
        }
    }

    /** On Linux, waits until /proc shows the process stopped; elsewhere the signal is trusted. */
    private fun awaitProcState(pid: Long, stopped: Boolean) {
        val stat = Paths.get("/proc", pid.toString(), "stat")
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(KILL_WAIT_MILLIS)
        while (System.nanoTime() - deadline < 0) {
            val state =
                try {
                    val text = Files.readString(stat)
                    text.substring(text.lastIndexOf(')') + 2).firstOrNull() ?: return
                } catch (_: IOException) {
                    return
                }
            if ((state == 'T' || state == 't') == stopped) return
            Thread.sleep(1)
        }
        throw RedisFleetException("${describe()}: pid $pid did not ${if (stopped) "stop" else "continue"} within $KILL_WAIT_MILLIS ms")
    }

    internal companion object {
        private const val PORT_ATTEMPTS = 8
        private const val POLL_MILLIS = 5L
        private const val PROBE_TIMEOUT_MILLIS = 1_000
        private const val KILL_WAIT_MILLIS = 10_000L
        private const val TAIL_BYTES = 4_096
        private const val TAIL_LINES = 25

        fun tail(file: Path): String =
            try {
                val bytes = Files.readAllBytes(file)
                val text = String(bytes, maxOf(0, bytes.size - TAIL_BYTES), minOf(bytes.size, TAIL_BYTES), Charsets.UTF_8)
                text.lines().dropLastWhile { it.isBlank() }.takeLast(TAIL_LINES).joinToString("\n").ifEmpty { "(empty)" }
            } catch (e: IOException) {
                "(log unreadable: $e)"
            }

        /** Waits for [p] to exit, ignoring interrupts until then but keeping the interrupt flag. */
        fun waitUninterruptibly(p: Process, millis: Long): Boolean {
            val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis)
            var interrupted = false
            try {
                while (true) {
                    try {
                        return p.waitFor(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)
                    } catch (_: InterruptedException) {
                        interrupted = true
                    }
                }
            } finally {
                if (interrupted) Thread.currentThread().interrupt()
            }
        }

        fun deleteRecursively(root: Path) {
            if (!Files.exists(root)) return
            Files.walk(root).use { paths ->
                paths.sorted(Comparator.reverseOrder()).forEach { Files.deleteIfExists(it) }
            }
        }
    }
}

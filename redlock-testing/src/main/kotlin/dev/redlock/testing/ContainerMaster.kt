package dev.redlock.testing

import com.github.dockerjava.api.DockerClient
import java.io.IOException
import java.net.InetAddress
import java.nio.file.Files
import java.nio.file.Path
import java.security.MessageDigest
import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import org.testcontainers.DockerClientFactory
import org.testcontainers.containers.GenericContainer
import org.testcontainers.containers.wait.strategy.Wait
import org.testcontainers.images.builder.ImageFromDockerfile
import org.testcontainers.utility.DockerImageName

// Every class in this file refers to Testcontainers or docker-java. RedisFleet reaches them only
// through ContainerBackend and DockerProbe, and only once the container backend was chosen (or
// Docker is asked about), so a JVM without Testcontainers never loads them.

/** Settings shared by every container master of one fleet. */
internal class ContainerSettings(
    val image: String,
    val password: String?,
    val serverArgs: List<String>,
    /** Generous: the first start may pull the image. */
    val startTimeoutMillis: Long = 120_000,
    val readyTimeoutMillis: Long = 10_000,
)

/** Creates the masters of a container fleet. */
internal object ContainerBackend {
    fun masters(count: Int, settings: ContainerSettings): List<FleetMaster> {
        val host = DockerClientFactory.instance().dockerHostIpAddress()
        Orphans.sweepOnce()
        return List(count) { ContainerMaster(it, settings, host) }
    }

    /** The tag of an image holding [binary] and what it links, built on the engine unless it is there already. */
    fun localImage(binary: Path): String = LocalImage.ensure(binary)
}

/**
 * Images made on the Docker engine itself, from a `redis-server` binary of this machine: `FROM
 * scratch`, the binary as `/usr/local/bin/redis-server`, and every shared library `ldd` says it
 * loads, each at the path it has here. No registry is involved. Tagged
 * `redlock-testing/redis-server:<digest of those files>`, so an engine builds each binary once and
 * keeps the image for later runs.
 */
internal object LocalImage {
    private const val REPOSITORY = "redlock-testing/redis-server"
    private const val IN_IMAGE = "/usr/local/bin/redis-server"
    private val known = ConcurrentHashMap<String, String>()

    @Synchronized
    fun ensure(binary: Path): String {
        val files = filesOf(binary)
        val tag = "$REPOSITORY:" + digest(files)
        known[tag]?.let { return it }
        val client = DockerClientFactory.instance().client()
        val present = runCatching { client.inspectImageCmd(tag).exec() }.isSuccess
        if (!present) build(tag, binary, files)
        known[tag] = tag
        return tag
    }

    /** The files of the image: where each goes in it, and where it is here. */
    private fun filesOf(binary: Path): Map<String, Path> {
        if (!Files.isRegularFile(binary)) throw RedisFleetException("cannot build an image from $binary: it is not a file")
        val magic = Files.newInputStream(binary).use { it.readNBytes(4) }
        if (!magic.contentEquals(byteArrayOf(0x7f, 'E'.code.toByte(), 'L'.code.toByte(), 'F'.code.toByte()))) {
            throw RedisFleetException(
                "cannot build an image from $binary: it is not an ELF executable (a wrapper script?); give " +
                    "redisServer(path) the server binary itself, or use a registry image with image(name)"
            )
        }
        val ldd =
            try {
                val process = ProcessBuilder("ldd", binary.toString()).redirectErrorStream(true).start()
                val output = process.inputStream.readAllBytes().toString(Charsets.UTF_8)
                if (!process.waitFor(30, TimeUnit.SECONDS) || process.exitValue() != 0) {
                    throw RedisFleetException("cannot build an image from $binary: 'ldd' failed: ${output.trim()}")
                }
                output
            } catch (e: IOException) {
                throw RedisFleetException(
                    "cannot build an image from $binary: it needs 'ldd' (a Linux machine with a Linux binary), but: $e", e,
                )
            }
        val files = LinkedHashMap<String, Path>()
        files[IN_IMAGE] = binary.toRealPath()
        for (line in ldd.lines().map(String::trim).filter(String::isNotEmpty)) {
            if ("not found" in line) throw RedisFleetException("cannot build an image from $binary: a library is missing: $line")
            val path = (if ("=>" in line) line.substringAfter("=>") else line).trim().substringBefore(" (").trim()
            if (!path.startsWith("/")) continue // the vDSO, which the kernel provides
            files[path] = Path.of(path).toRealPath()
        }
        return files
    }

    private fun digest(files: Map<String, Path>): String {
        val sha = MessageDigest.getInstance("SHA-256")
        for ((target, source) in files) {
            sha.update(target.toByteArray())
            Files.newInputStream(source).use { input ->
                val buffer = ByteArray(65_536)
                while (true) {
                    val n = input.read(buffer)
                    if (n < 0) break
                    sha.update(buffer, 0, n)
                }
            }
        }
        return sha.digest().take(8).joinToString("") { "%02x".format(it) }
    }

    private fun build(tag: String, binary: Path, files: Map<String, Path>) {
        val image = ImageFromDockerfile(tag, false)
        for ((target, source) in files) image.withFileFromPath("rootfs$target", source)
        image.withFileFromString(
            "Dockerfile",
            "FROM scratch\n" +
                "COPY rootfs/ /\n" +
                "ENV PATH=/usr/local/bin\n" +
                "LABEL dev.redlock.testing.image=local-binary\n" +
                "EXPOSE 6379\n" +
                "CMD [\"redis-server\"]\n",
        )
        try {
            image.get()
        } catch (e: Exception) {
            throw RedisFleetException("cannot build an image from $binary on the Docker engine: ${e.message ?: e}", e)
        }
    }
}

/**
 * Containers of fleets whose JVM is gone. A fleet removes its containers when it is closed, also from
 * a shutdown hook; only a JVM killed outright leaves them behind, and Testcontainers' reaper (Ryuk)
 * removes those where it runs. Where it cannot (no registry to pull its image from, so it is turned
 * off with `TESTCONTAINERS_RYUK_DISABLED=true`), the first container fleet of the next JVM on this
 * machine removes them: every container is labelled with its JVM's process id and start time.
 */
internal object Orphans {
    const val LABEL: String = "dev.redlock.testing.owner"
    val self: String by lazy {
        val me = ProcessHandle.current()
        "${hostName()}:${me.pid()}:${me.info().startInstant().map { it.toEpochMilli() }.orElse(0L)}"
    }
    private val swept = java.util.concurrent.atomic.AtomicBoolean(false)

    fun sweepOnce() {
        if (swept.compareAndSet(false, true)) sweep()
    }

    /** Removes the containers of this machine's fleets whose JVM is gone; returns their ids. */
    fun sweep(): List<String> {
        val removed = ArrayList<String>()
        runCatching {
            val client = DockerClientFactory.instance().client()
            val mine = hostName()
            for (container in client.listContainersCmd().withShowAll(true).withLabelFilter(listOf(LABEL)).exec()) {
                val owner = container.labels?.get(LABEL)?.split(':') ?: continue
                if (owner.size != 3 || owner[0] != mine) continue
                val pid = owner[1].toLongOrNull() ?: continue
                val alive = ProcessHandle.of(pid).map { handle ->
                    handle.isAlive && handle.info().startInstant().map { it.toEpochMilli().toString() }.orElse("0") == owner[2]
                }.orElse(false)
                if (!alive && runCatching { client.removeContainerCmd(container.id).withForce(true).exec() }.isSuccess) removed += container.id
            }
        }
        return removed
    }

    private fun hostName(): String = runCatching { InetAddress.getLocalHost().hostName }.getOrDefault("localhost")
}

/** Asks Testcontainers for a Docker engine; call only when Testcontainers is on the class path. */
internal object DockerProbe {
    fun unavailableReason(): String? =
        try {
            if (DockerClientFactory.instance().isDockerAvailable) {
                null
            } else {
                "Testcontainers found no Docker engine (it looks at DOCKER_HOST, ~/.testcontainers.properties " +
                    "and the usual Docker sockets)"
            }
        } catch (e: Exception) {
            "Testcontainers failed while looking for a Docker engine: $e"
        } catch (e: LinkageError) {
            "Testcontainers cannot be loaded (is docker-java on the class path?): $e"
        }
}

/** Kotlin cannot name `GenericContainer<SELF>`'s self type without a subclass. */
private class RedisContainer(image: DockerImageName) : GenericContainer<RedisContainer>(image)

/** The container's port of Redis. */
private const val REDIS_PORT = 6379

/** The container could not be started because its host port is taken. */
private class HostPortTakenException(message: String, cause: Throwable) : Exception(message, cause)

/**
 * One master as a Docker container from [ContainerSettings.image], its port 6379 published on a
 * fixed host port that is kept across restarts.
 *
 * kill is `docker kill` (SIGKILL to `redis-server`, PID 1 in the container); pause and resume are
 * `docker pause` / `docker unpause` (the cgroup freezer); restart removes the container and creates
 * a new one on the same host port, so no data and no file survives, whatever `serverArgs` say.
 */
internal class ContainerMaster(
    override val index: Int,
    private val settings: ContainerSettings,
    dockerHost: String,
) : FleetMaster {
    private val lock = ReentrantLock()
    private val client: DockerClient = DockerClientFactory.instance().client()

    /** A local engine publishes on loopback only; a remote one on all of its interfaces. */
    private val loopbackOnly: Boolean =
        dockerHost == "localhost" || runCatching { InetAddress.getByName(dockerHost).isLoopbackAddress }.getOrDefault(false)

    override val hostName: String = if (loopbackOnly) "127.0.0.1" else dockerHost

    override val address: InetAddress = if (loopbackOnly) LOOPBACK else InetAddress.getByName(dockerHost)

    @Volatile private var container: RedisContainer? = null
    @Volatile private var paused = false
    @Volatile private var closed = false

    @Volatile override var port: Int = 0
        private set

    @Volatile override var version: String = ""
        private set

    @Volatile override var serverName: String = ""
        private set

    override val isRunning: Boolean
        get() = container?.let(::inspectRunning) == true

    override val isPaused: Boolean
        get() = paused && isRunning

    override fun pid(): Long? = null

    override fun describe(): String {
        val id = container?.containerId?.take(12)?.let { ", container $it" } ?: ""
        return "master $index ($hostName:$port$id)"
    }

    override fun start() {
        lock.withLock {
            PortReservations.startOnFreePort<HostPortTakenException>(PORT_ATTEMPTS, { port = it }, ::launch) { last ->
                RedisFleetException(
                    "master $index: Docker could not publish a free host port in $PORT_ATTEMPTS attempts; last: ${last?.message}",
                    last,
                )
            }
        }
    }

    override fun kill() {
        lock.withLock {
            checkOpen()
            val c = container ?: return
            if (!inspectRunning(c)) {
                paused = false
                return
            }
            val id = c.containerId
            try {
                client.killContainerCmd(id).withSignal("KILL").exec()
            } catch (e: Exception) {
                // An engine that refuses to signal a frozen container gets it thawed first.
                if (!paused) throw RedisFleetException("${describe()}: docker kill failed: $e", e)
                client.unpauseContainerCmd(id).exec()
                client.killContainerCmd(id).withSignal("KILL").exec()
            }
            paused = false
            awaitStopped(c)
        }
    }

    override fun pause() {
        lock.withLock {
            checkOpen()
            val c = runningContainer("pause")
            try {
                client.pauseContainerCmd(c.containerId).exec()
            } catch (e: Exception) {
                throw RedisFleetException("${describe()}: docker pause failed: $e", e)
            }
            paused = true
        }
    }

    override fun resume() {
        lock.withLock {
            checkOpen()
            val c = runningContainer("resume")
            val frozen = paused || runCatching { client.inspectContainerCmd(c.containerId).exec().state.paused == true }.getOrDefault(false)
            if (frozen) {
                try {
                    client.unpauseContainerCmd(c.containerId).exec()
                } catch (e: Exception) {
                    throw RedisFleetException("${describe()}: docker unpause failed: $e", e)
                }
            }
            paused = false
            awaitReady(c, deadlineIn(settings.readyTimeoutMillis))
        }
    }

    override fun restart() {
        lock.withLock {
            checkOpen()
            removeContainer()
            var lastTaken: HostPortTakenException? = null
            // The port is ours, but the engine may take a moment to let go of the old binding.
            repeat(PORT_ATTEMPTS) { attempt ->
                try {
                    launch(port)
                    return
                } catch (e: HostPortTakenException) {
                    lastTaken = e
                    Thread.sleep(100L * (attempt + 1))
                }
            }
            throw RedisFleetException("${describe()}: cannot restart, the host port stays in use: ${lastTaken?.message}", lastTaken)
        }
    }

    override fun destroy() {
        closed = true
        removeContainer()
    }

    override fun awaitDestroyed() {
        // destroy() removed the container synchronously; a restart racing with it removes its own.
        paused = false
        if (port != 0) PortReservations.release(port)
    }

    private fun checkOpen() {
        check(!closed) { "RedisFleet is closed" }
    }

    private fun runningContainer(operation: String): RedisContainer =
        container?.takeIf(::inspectRunning)
            ?: throw IllegalStateException("cannot $operation ${describe()}: it is not running (restart($index) starts it again)")

    private fun command(): List<String> = buildList {
        add("redis-server")
        add("--save"); add("")
        add("--appendonly"); add("no")
        add("--protected-mode"); add("no")
        if (settings.password != null) {
            add("--requirepass"); add(settings.password)
        }
        addAll(settings.serverArgs)
    }

    /** Creates and starts a container publishing [hostPort], and waits until it answers PING. */
    private fun launch(hostPort: Int) {
        val c = RedisContainer(DockerImageName.parse(settings.image))
        c.withLabel(Orphans.LABEL, Orphans.self)
        c.withExposedPorts(REDIS_PORT)
        c.portBindings = listOf((if (loopbackOnly) "127.0.0.1:" else "") + "$hostPort:$REDIS_PORT")
        c.withCommand(*command().toTypedArray())
        c.waitingFor(
            Wait.forLogMessage(".*Ready to accept connections.*\\n", 1)
                .withStartupTimeout(Duration.ofMillis(settings.startTimeoutMillis))
        )
        container = c
        try {
            c.start()
        } catch (e: Exception) {
            container = null
            runCatching { c.stop() }
            if (closed) throw IllegalStateException("RedisFleet is closed")
            if (isPortConflict(e)) throw HostPortTakenException("host port $hostPort: ${rootMessage(e)}", e)
            throw RedisFleetException("master $index: cannot start a container from ${settings.image}: ${rootMessage(e)}", e)
        }
        if (closed) {
            removeContainer()
            throw IllegalStateException("RedisFleet is closed")
        }
        try {
            awaitReady(c, deadlineIn(settings.readyTimeoutMillis))
        } catch (e: Throwable) {
            removeContainer()
            throw e
        }
    }

    /** Polls PING and INFO server until the container's Redis answers. */
    private fun awaitReady(c: RedisContainer, deadline: Long) {
        var lastFailure: Exception? = null
        while (true) {
            try {
                val info = probeServer(address, port, settings.password, PROBE_TIMEOUT_MILLIS)
                version = info.version
                serverName = info.name
                return
            } catch (e: IOException) {
                lastFailure = e
            } catch (e: ProbeException) {
                lastFailure = e
            }
            if (!inspectRunning(c)) {
                throw RedisFleetException(
                    "master $index: container ${c.containerId.take(12)} (${settings.image}) stopped before answering PING on " +
                        "$hostName:$port.\nCommand: ${command().redacted()}\nLog, last lines:\n${logTail(c)}",
                    lastFailure,
                )
            }
            if (System.nanoTime() - deadline > 0) {
                throw RedisFleetException(
                    "master $index: container ${c.containerId.take(12)} did not answer PING on $hostName:$port within " +
                        "${settings.readyTimeoutMillis} ms (last attempt: $lastFailure).\nLog, last lines:\n${logTail(c)}",
                    lastFailure,
                )
            }
            Thread.sleep(POLL_MILLIS)
        }
    }

    private fun awaitStopped(c: RedisContainer) {
        val deadline = deadlineIn(STOP_WAIT_MILLIS)
        while (inspectRunning(c)) {
            if (System.nanoTime() - deadline > 0) {
                throw RedisFleetException("${describe()}: still running $STOP_WAIT_MILLIS ms after docker kill")
            }
            Thread.sleep(POLL_MILLIS)
        }
    }

    /** Thaws (a frozen container may refuse to die) and removes the container, if there is one. */
    private fun removeContainer() {
        val c = container ?: return
        container = null
        if (paused) runCatching { client.unpauseContainerCmd(c.containerId).exec() }
        paused = false
        try {
            c.stop()
        } catch (e: Exception) {
            throw RedisFleetException("master $index: cannot remove container ${c.containerId?.take(12)}: $e", e)
        }
    }

    private fun inspectRunning(c: RedisContainer): Boolean {
        val id = c.containerId ?: return false
        return try {
            client.inspectContainerCmd(id).exec().state.running == true
        } catch (_: Exception) {
            false // removed, or the engine is gone: either way it does not serve
        }
    }

    private fun logTail(c: RedisContainer): String =
        try {
            c.logs.lines().dropLastWhile { it.isBlank() }.takeLast(TAIL_LINES).joinToString("\n").ifEmpty { "(empty)" }
        } catch (e: Exception) {
            "(logs unavailable: $e)"
        }

    private fun List<String>.redacted(): String {
        val words = map { if (it.isEmpty()) "\"\"" else it }.toMutableList()
        val at = indexOf("--requirepass")
        if (at >= 0 && at + 1 < words.size) words[at + 1] = "******"
        return words.joinToString(" ")
    }

    private companion object {
        const val PORT_ATTEMPTS = 8
        const val POLL_MILLIS = 10L
        const val PROBE_TIMEOUT_MILLIS = 1_000
        const val STOP_WAIT_MILLIS = 10_000L
        const val TAIL_LINES = 25

        fun deadlineIn(millis: Long): Long = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis)

        fun isPortConflict(e: Throwable): Boolean =
            generateSequence(e) { it.cause }.take(10).any { cause ->
                val message = cause.message?.lowercase() ?: ""
                "port is already allocated" in message || "address already in use" in message
            }

        fun rootMessage(e: Throwable): String {
            val messages = generateSequence(e) { it.cause }.take(10).mapNotNull { it.message }.toList()
            return messages.lastOrNull() ?: e.toString()
        }
    }
}

@file:OptIn(InternalRedlockApi::class)

package dev.redlock.file.internal

import dev.redlock.core.MasterFailureException
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.spi.AcquireRequest
import dev.redlock.coroutines.spi.AcquireResult
import dev.redlock.coroutines.spi.BackendNode
import dev.redlock.coroutines.spi.HeldLease
import dev.redlock.coroutines.spi.LockFamily
import dev.redlock.coroutines.spi.LockMode
import java.io.IOException
import java.nio.channels.FileChannel
import java.nio.file.AccessDeniedException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import org.slf4j.LoggerFactory

/**
 * The file backend's node: holds are `FileChannel` locks on files in [directory] (see [FileNames]
 * for the names, [LockFiles] for the one OS lock per file per JVM).
 *
 * - mutex: an exclusive lock on `<name>.lock`, on every file of a multi-resource lease, all or none;
 * - reader-writer: a shared lock on `<name>.rw.lock` for readers, an exclusive one for a writer
 *   (no writer priority: a waiting writer does not keep new readers out);
 * - semaphore with K permits: an exclusive lock on one of `<name>.sem.0.lock` to `<name>.sem.<K-1>.lock`;
 *   each held slot records K, so a caller with another number is refused with both numbers;
 * - fencing: `<name>.fence` (`<name>.rw.fence` for writers) holds the last token, written under
 *   the lock and made durable (fsync, atomic rename) before it is handed out.
 *
 * Every quarter second while something is held, each held file is looked at once (a deleted or
 * replaced file is reported to the engine, which checks the lease at once).
 *
 * Release notices reach the waiters of every file node of this JVM on the same directory at once;
 * other processes' waiters notice a release by their retry pause.
 *
 * One stripe (the [BackendNode] default): every operation runs on the node's one thread, one at a
 * time; its state (the slots of its permits, its held channels) relies on that.
 */
internal class FileNode(val directory: Path) : BackendNode("file:$directory", "file:" + realPath(directory)) {
    private val realDirectory: Path = realPath(directory)

    override fun openStore(timeout: Duration) {
        checkDirectory(realDirectory, directory)?.let { throw MasterFailureException(name(), it.first, it.second, null) }
    }

    override fun checkStore(timeout: Duration) = openStore(timeout)

    override fun acquireHold(request: AcquireRequest, timeout: Duration): AcquireResult = io {
        val token = request.token
        val key = request.keys[0]
        when (request.mode) {
            LockMode.MUTEX -> {
                val files = request.keys.map { file(FileNames.mutex(it)) }
                val taken = ArrayList<Path>(files.size)
                for (f in files) {
                    if (!takeOrClose(f, shared = false, token)) {
                        for (t in taken) LockFiles.release(t, token)
                        return@io AcquireResult.Refused()
                    }
                    taken.add(f)
                }
                AcquireResult.Granted(if (request.fencing) nextFence(request.keys.map { file(FileNames.mutexFence(it)) }) else null)
            }
            LockMode.READ ->
                if (takeOrClose(file(FileNames.readWrite(key)), shared = true, token)) AcquireResult.Granted() else AcquireResult.Refused()
            LockMode.WRITE ->
                if (!takeOrClose(file(FileNames.readWrite(key)), shared = false, token)) AcquireResult.Refused()
                else AcquireResult.Granted(if (request.fencing) nextFence(listOf(file(FileNames.writeFence(key)))) else null)
            LockMode.PERMIT -> takePermit(key, request.permits, token)
        }
    }

    /** Takes [path] for [token]; false when someone else holds it. */
    private fun takeOrClose(path: Path, shared: Boolean, token: String): Boolean =
        when (val taken = LockFiles.take(path, shared, token, this)) {
            is LockFiles.Taken.Yes -> true
            is LockFiles.Taken.No -> {
                taken.channel?.close()
                false
            }
        }

    /** The first free slot of the semaphore, refusing when its holders use another number of permits. */
    private fun takePermit(key: String, permits: Int, token: String): AcquireResult {
        val record = "permits=$permits\n"
        for (slot in 0 until permits) {
            val path = file(FileNames.permit(key, slot))
            when (val taken = LockFiles.take(path, shared = false, token, this)) {
                is LockFiles.Taken.Yes -> {
                    LockFiles.writeText(taken.entry.channel, record)
                    permitSlots[token] = path
                    return AcquireResult.Granted()
                }
                is LockFiles.Taken.No -> {
                    val theirs = taken.channel?.use { LockFiles.readText(it) } ?: taken.inProcess?.let { LockFiles.readText(it.channel) }
                    val other = theirs?.removePrefix("permits=")?.trim()?.toIntOrNull()
                    if (other != null && other != permits) return AcquireResult.PermitsDiffer(other)
                }
            }
        }
        return AcquireResult.Refused()
    }

    override fun extendHolds(leases: List<HeldLease>, leaseMillis: Long, timeout: Duration): BooleanArray = io {
        BooleanArray(leases.size) { i ->
            val lease = leases[i]
            val files = filesOf(lease)
            val held = files.isNotEmpty() && files.all { LockFiles.held(it, lease.token) }
            // A lease that lost one of its files gives up the others too: it is lost as a whole.
            if (!held) {
                for (f in files) LockFiles.release(f, lease.token)
                permitSlots.remove(lease.token)
            }
            held
        }
    }

    /** Every [LOSS_CHECK_PERIOD] while something is held: one look (a `stat`) at each held file. */
    override val lossCheckPeriod: Duration get() = LOSS_CHECK_PERIOD

    override fun findLostHolds(leases: List<HeldLease>, timeout: Duration): Collection<HeldLease> = io {
        leases.filter { lease -> filesOf(lease).let { files -> files.isEmpty() || !files.all { LockFiles.held(it, lease.token) } } }
    }

    override fun releaseHold(lease: HeldLease, final: Boolean, notice: String?, timeout: Duration): Boolean {
        val released = io { filesOf(lease).map { LockFiles.release(it, lease.token) }.any { it } }
        permitSlots.remove(lease.token)
        if (notice != null) {
            for (key in lease.keys) Watchers.released(realDirectory, lease.mode.family, key, notice)
        }
        return released
    }

    override fun confirmFencing(lease: HeldLease, fence: Long, timeout: Duration): Boolean = io {
        val fenceFiles = when (lease.mode) {
            LockMode.MUTEX -> lease.keys.map { file(FileNames.mutexFence(it)) }
            LockMode.WRITE -> listOf(file(FileNames.writeFence(lease.keys[0])))
            else -> return@io false
        }
        filesOf(lease).all { LockFiles.held(it, lease.token) } && fenceFiles.all { readFence(it) >= fence }
    }

    override fun watchReleases(family: LockFamily, key: String, timeout: Duration) = Watchers.watch(realDirectory, family, key, this)

    override fun unwatchReleases(family: LockFamily, key: String, timeout: Duration) = Watchers.unwatch(realDirectory, family, key, this)

    override fun closeStore() {
        permitSlots.clear()
        LockFiles.releaseAll(this)
        Watchers.forget(this)
    }

    /** A release notice for this node's waiters (from [Watchers]). */
    fun noticed(family: LockFamily, key: String, notice: String) = releaseNoticed(family, key, notice)

    /** The lock files a lease holds (for a permit, the slot this token holds, if any). */
    private fun filesOf(lease: HeldLease): List<Path> = when (lease.mode) {
        LockMode.MUTEX -> lease.keys.map { file(FileNames.mutex(it)) }
        LockMode.READ, LockMode.WRITE -> listOf(file(FileNames.readWrite(lease.keys[0])))
        LockMode.PERMIT -> permitSlots[lease.token]?.let { listOf(it) } ?: emptyList()
    }

    /** Which slot each permit token of this node holds (node thread only). */
    private val permitSlots = HashMap<String, Path>()

    private fun file(name: String): Path = realDirectory.resolve(name)

    /** The next fencing token for these counters (the largest plus one), durable in all of them before it is returned. */
    private fun nextFence(counters: List<Path>): Long {
        val next = counters.maxOf { readFence(it) } + 1
        for (c in counters) writeFence(c, next)
        return next
    }

    private fun readFence(path: Path): Long = try {
        val text = Files.readString(path).trim()
        text.toLongOrNull() ?: throw IOException("the fencing counter $path holds '$text', not a number: it was changed by hand or damaged")
    } catch (e: NoSuchFileException) {
        0L
    }

    private fun writeFence(path: Path, value: Long) {
        val tmp = path.resolveSibling(path.fileName.toString() + ".tmp")
        FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING).use {
            it.write(java.nio.ByteBuffer.wrap("$value\n".toByteArray(Charsets.UTF_8)))
            it.force(true)
        }
        Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
        syncDirectory()
    }

    @Volatile
    private var directorySync = true

    /** Makes the rename durable: fsync of the directory, where the platform allows opening one. */
    private fun syncDirectory() {
        if (!directorySync) return
        try {
            FileChannel.open(realDirectory, StandardOpenOption.READ).use { it.force(true) }
        } catch (e: IOException) {
            directorySync = false
            LOG.info("The file system of {} cannot sync a directory ({}); fencing counters are written with fsync and an atomic rename only", realDirectory, e.toString())
        }
    }

    /** Runs file I/O, turning its failures into failures of this node that say what was wrong. */
    private inline fun <R> io(block: () -> R): R = try {
        block()
    } catch (e: AccessDeniedException) {
        throw MasterFailureException(name(), MasterFailureException.Kind.PERMISSION, "no permission for ${e.file}: the lock directory must be readable and writable by this process", e)
    } catch (e: NoSuchFileException) {
        val gone = !Files.isDirectory(realDirectory)
        throw MasterFailureException(
            name(), MasterFailureException.Kind.UNREACHABLE,
            if (gone) "the lock directory $realDirectory is gone (deleted or unmounted)" else "${e.file} vanished: ${e.message}", e,
        )
    } catch (e: IOException) {
        throw MasterFailureException(name(), MasterFailureException.Kind.ERROR, "file I/O failed: $e", e)
    }

    companion object {
        private val LOG = LoggerFactory.getLogger(FileNode::class.java)

        /**
         * How often the held files are looked at: a lock file deleted or replaced under a holder
         * cancels its block within about this long, instead of at the next renewal.
         */
        val LOSS_CHECK_PERIOD: Duration = Duration.ofMillis(250)

        fun realPath(directory: Path): Path = try {
            directory.toRealPath()
        } catch (e: IOException) {
            directory.toAbsolutePath().normalize()
        }

        /**
         * What is wrong with [real] as a lock directory (kind and message naming [given] and what
         * is needed), or null when it is a directory this process can read and write.
         */
        fun checkDirectory(real: Path, given: Path): Pair<MasterFailureException.Kind, String>? = when {
            !Files.exists(given) -> MasterFailureException.Kind.UNREACHABLE to
                "the lock directory $given does not exist: create it (with read and write permission for the user running this JVM) before creating the locks"
            !Files.isDirectory(real) -> MasterFailureException.Kind.PERMISSION to
                "the lock directory $given is not a directory: give the path of a directory"
            !Files.isReadable(real) || !Files.isWritable(real) || !Files.isExecutable(real) -> MasterFailureException.Kind.PERMISSION to
                "the lock directory $given cannot be used by this process (user ${System.getProperty("user.name")}): it needs read, write and execute (search) permission on it"
            else -> null
        }
    }
}

/** Which file nodes of this JVM wait for releases of which locks, per directory: release notices across the file nodes of one JVM. */
internal object Watchers {
    private data class Lock(val directory: Path, val family: LockFamily, val key: String)

    private val watching = ConcurrentHashMap<Lock, MutableSet<FileNode>>()

    fun watch(directory: Path, family: LockFamily, key: String, node: FileNode) {
        watching.computeIfAbsent(Lock(directory, family, key)) { ConcurrentHashMap.newKeySet() } += node
    }

    fun unwatch(directory: Path, family: LockFamily, key: String, node: FileNode) {
        watching.computeIfPresent(Lock(directory, family, key)) { _, nodes -> nodes.apply { remove(node) }.takeIf { it.isNotEmpty() } }
    }

    fun released(directory: Path, family: LockFamily, key: String, notice: String) {
        watching[Lock(directory, family, key)]?.forEach { it.noticed(family, key, notice) }
    }

    fun forget(node: FileNode) {
        for (k in watching.keys.toList()) unwatch(k.directory, k.family, k.key, node)
    }
}

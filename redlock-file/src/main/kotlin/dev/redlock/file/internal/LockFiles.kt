package dev.redlock.file.internal

import java.io.IOException
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.channels.FileLock
import java.nio.channels.OverlappingFileLockException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardOpenOption
import java.nio.file.attribute.BasicFileAttributes

/**
 * The lock files this JVM holds: one OS lock per file per JVM, shared by every holder in it.
 *
 * `FileChannel` locks belong to the whole JVM: a second lock on an overlapping region, from any
 * channel of the same JVM, throws `OverlappingFileLockException` (even when both are shared). So
 * every lock file goes through here: the first holder in this JVM opens the file and takes the OS
 * lock (exclusive, or shared for readers); further readers join the shared lock in-process;
 * anything else in-process is refused while the file is held. The OS lock is released, and the
 * channel closed, when the last holder in this JVM leaves. Guarded by this object's monitor:
 * every call is quick local I/O that never waits for a lock (`tryLock`).
 *
 * Lock files are never deleted by the library (deleting one on release would let a process that
 * opened it just before lock a file that no longer has a name, while a third creates and locks a
 * new one). A file that is deleted or replaced while held (its file key changed) loses its
 * holders: [held] answers false for them from then on.
 */
internal object LockFiles {
    private val entries = HashMap<Path, Entry>()

    /** One file held by this JVM: its channel and OS lock, and who holds it here (token to node). */
    class Entry(val path: Path, val channel: FileChannel, val lock: FileLock, val fileKey: Any?) {
        val holders = HashMap<String, FileNode>()
        val shared: Boolean get() = lock.isShared
    }

    /** The outcome of [take]. */
    sealed class Taken {
        /** Held now. */
        class Yes(val entry: Entry) : Taken()

        /** Held by someone else: in this JVM ([inProcess]) or by another process. */
        class No(val inProcess: Entry?, val channel: FileChannel?) : Taken()
    }

    /**
     * Takes [path] for [token] of [node]: shared (readers) or exclusive, without waiting. On
     * [Taken.No] from another process, [Taken.No.channel] is the channel opened to try, for the
     * caller to read the holder's record ([readText]); the caller closes it.
     */
    @Synchronized
    fun take(path: Path, shared: Boolean, token: String, node: FileNode): Taken {
        val current = entries[path]
        if (current != null) {
            if (!valid(current)) {
                drop(current)
            } else {
                if (shared && current.shared) {
                    current.holders[token] = node
                    return Taken.Yes(current)
                }
                return Taken.No(current, null)
            }
        }
        val channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)
        try {
            val keyBefore = fileKey(path)
            val lock = try {
                channel.tryLock(0, Long.MAX_VALUE, shared)
            } catch (e: OverlappingFileLockException) {
                // Another channel of this JVM, outside the library, locked the file: it is held.
                null
            }
            if (lock == null) return Taken.No(null, channel)
            // Locked; but if the name now points to another file (deleted and created again since
            // we opened it), we hold a lock nobody else will ever see.
            val keyAfter = fileKey(path)
            if (keyAfter == null && Files.notExists(path) || keyBefore != keyAfter) {
                lock.release()
                channel.close()
                return Taken.No(null, null)
            }
            val entry = Entry(path, channel, lock, keyAfter)
            entry.holders[token] = node
            entries[path] = entry
            return Taken.Yes(entry)
        } catch (e: Throwable) {
            channel.close()
            throw e
        }
    }

    /** Whether [token] still holds [path]: the OS lock is valid and the name still points to the locked file. */
    @Synchronized
    fun held(path: Path, token: String): Boolean {
        val entry = entries[path] ?: return false
        if (token !in entry.holders) return false
        if (!valid(entry)) {
            drop(entry)
            return false
        }
        return true
    }

    /** The entry [token] holds [path] with, if it still does (see [held]). */
    @Synchronized
    fun entry(path: Path, token: String): Entry? = if (held(path, token)) entries[path] else null

    /** [token] leaves [path]; the last holder in this JVM releases the OS lock. Whether it held it. */
    @Synchronized
    fun release(path: Path, token: String): Boolean {
        val entry = entries[path] ?: return false
        if (entry.holders.remove(token) == null) return false
        val stillHeld = valid(entry)
        if (entry.holders.isEmpty()) drop(entry)
        return stillHeld
    }

    /** Every hold of [node] ends (its locks are closed). */
    @Synchronized
    fun releaseAll(node: FileNode) {
        for (entry in entries.values.toList()) {
            entry.holders.values.removeIf { it === node }
            if (entry.holders.isEmpty()) drop(entry)
        }
    }

    /** In-process holders of [path] (for a semaphore's record), or null. */
    @Synchronized
    fun current(path: Path): Entry? = entries[path]?.takeIf { valid(it) }

    private fun valid(entry: Entry): Boolean =
        entry.channel.isOpen && entry.lock.isValid && try {
            val key = fileKey(entry.path)
            (key != null || Files.exists(entry.path)) && key == entry.fileKey
        } catch (e: IOException) {
            // The file cannot even be looked at (its directory is gone or closed to us): not held.
            false
        }

    private fun drop(entry: Entry) {
        entries.remove(entry.path, entry)
        try {
            if (entry.lock.isValid) entry.lock.release()
        } finally {
            entry.channel.close()
        }
    }

    /** The file's identity (device and inode on Unix), or null where the file system has none; null also for a missing file. */
    fun fileKey(path: Path): Any? = try {
        Files.readAttributes(path, BasicFileAttributes::class.java).fileKey()
    } catch (e: NoSuchFileException) {
        null
    }

    /** Writes [text] as the whole content of a held file (a semaphore slot's record). */
    fun writeText(channel: FileChannel, text: String) {
        channel.truncate(0)
        channel.write(ByteBuffer.wrap(text.toByteArray(Charsets.UTF_8)), 0)
    }

    /** Reads a small file's content through [channel]. */
    fun readText(channel: FileChannel): String {
        val buffer = ByteBuffer.allocate(256)
        channel.read(buffer, 0)
        return String(buffer.array(), 0, buffer.position(), Charsets.UTF_8)
    }
}

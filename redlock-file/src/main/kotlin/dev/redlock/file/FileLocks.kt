@file:OptIn(InternalRedlockApi::class)

package dev.redlock.file

import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.spi.distributedLocks
import dev.redlock.file.internal.FileNode

/**
 * Locks between the processes of one machine, kept as `FileChannel` locks on files in a
 * directory: the same [DistributedLocks] (locks, reader-writer locks, semaphores, leases that
 * renew and cancel their critical section when lost) as a Redlock, without a server.
 *
 * ```kotlin
 * FileLocks.create(FileLockConfig.builder(Path.of("/var/lock/my-app")).build()).use { locks ->
 *     locks.withLock("orders:42") { lease -> charge(order) }
 * }
 * ```
 *
 * ## Files
 * Each lock is a file in the directory, named after its resource (see the README, "File backend",
 * for the exact mapping: lower-case letters, digits, `-` and `_` are kept, every other byte is
 * written `%XX`, so names never collide, also on case-insensitive file systems; long names end
 * in a SHA-256): `<name>.lock` for a lock, `<name>.rw.lock` for a reader-writer lock (readers
 * hold it shared, a writer exclusively), `<name>.sem.<i>.lock` for permit `i` of a semaphore,
 * `<name>.fence` and `<name>.rw.fence` for fencing counters. The files stay after a release
 * (deleting them would let two processes lock two different files of the same name); they are
 * small and may be removed while no process uses the directory.
 *
 * ## What the locks guarantee
 * - Mutual exclusion between every process of this machine that uses the same directory through
 *   this library (and, on Linux and macOS, with other programs taking POSIX `fcntl` record locks
 *   on the same files), and between the locks of this JVM, which share one operating-system lock
 *   per file.
 * - A process that dies releases its locks at once (the operating system drops them). A lease
 *   from `acquire` that its holder stops extending is given up after its lease time by the
 *   holder's own process. A process that is frozen as a whole (stopped, a very long GC pause)
 *   keeps its locks until it runs again or dies: unlike Redis keys, nothing expires them outside
 *   the holder, so no other process can take the lock meanwhile; when it runs again, its leases
 *   whose validity ran out are lost and given up.
 * - A lease is lost, and its critical section cancelled, when its lock file is deleted or replaced
 *   (found within about 250 ms: while it holds anything, the backend looks at each held file that often), when its validity runs out
 *   without a renewal, or when the locks are closed.
 * - Waiting: a release in this JVM wakes its waiters at once; a release in another process is
 *   noticed within the retry delay ([FileLockConfig.Builder.retryDelay]).
 * - No writer priority: a writer waiting for readers does not keep new readers out.
 *
 * Not for network file systems (NFS, SMB): their locks are not reliable enough to build on.
 */
public object FileLocks {
    /**
     * Creates locks over the directory of [config]; close them when done (which releases every
     * lock still held). Checks the directory first.
     *
     * @param config the directory and timing
     * @return the locks
     * @throws IllegalArgumentException if the directory does not exist, is not a directory, or
     *   cannot be read and written by this process; the message names the path and what is needed
     */
    @JvmStatic
    public fun create(config: FileLockConfig): DistributedLocks {
        val directory = config.directory()
        FileNode.checkDirectory(FileNode.realPath(directory), directory)?.let { throw IllegalArgumentException(it.second) }
        return distributedLocks(FileNode(directory), config.settings)
    }
}

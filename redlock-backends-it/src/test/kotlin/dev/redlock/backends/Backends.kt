package dev.redlock.backends

import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.Redlock
import dev.redlock.file.FileLockConfig
import dev.redlock.file.FileLocks
import dev.redlock.postgres.PostgresLockConfig
import dev.redlock.postgres.PostgresLocks
import dev.redlock.testing.PostgresServer
import dev.redlock.testing.RedisFleet
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.channels.OverlappingFileLockException
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption
import java.security.MessageDigest

// The backends the suite runs on: one subclass of BehaviourSuite per backend, at the end of this
// file. A new backend adds its LockBackend and its subclass here.

/** Redlock over [masters] local Redis masters ([RedisFleet]). */
class RedlockBackend(private val masters: Int) : LockBackend {
    private val fleet = RedisFleet.start(masters)
    override val name = "Redlock N = $masters"

    override fun locks(): DistributedLocks = Redlock(
        RedlockConfig.builder().masters(fleet.uris())
            .leaseTime(LockBackend.LEASE).waitTime(LockBackend.WAIT).retryDelay(LockBackend.RETRY)
            .build(),
    )

    /** Deletes the resource's keys (every kind's) on every master. */
    override fun loseHolds(resource: String) {
        for (i in 0 until masters) {
            for (key in fleet.keys(i).filter { it == PREFIX + resource || it.startsWith(PREFIX + resource + "\u0000") }) {
                fleet.command(i, "DEL", key)
            }
        }
    }

    override fun held(): List<String> = (0 until masters).flatMap { i -> fleet.keys(i).filter { it.startsWith(PREFIX) && !it.contains("\u0000fence") } }

    override fun close() = fleet.close()

    private companion object {
        const val PREFIX = "redlock:"
    }
}

/** Lock files in a temporary directory ([FileLocks]). */
class FileBackend : LockBackend {
    private val dir: Path = Files.createTempDirectory("redlock-backends-it")
    override val name = "files"

    override fun locks(): DistributedLocks = FileLocks.create(
        FileLockConfig.builder(dir).leaseTime(LockBackend.LEASE).waitTime(LockBackend.WAIT).retryDelay(LockBackend.RETRY).build(),
    )

    /** Deletes the resource's lock files (the suite's names are plain: `<resource>.<kind>...`). */
    override fun loseHolds(resource: String) {
        Files.list(dir).use { files -> files.filter { it.fileName.toString().startsWith("$resource.") }.toList() }.forEach(Files::delete)
    }

    /** The lock files some process holds: those a fresh channel cannot lock. */
    override fun held(): List<String> = Files.list(dir).use { files -> files.filter { it.fileName.toString().endsWith(".lock") }.toList() }
        .filter { file ->
            FileChannel.open(file, StandardOpenOption.WRITE).use { channel ->
                try {
                    val lock = channel.tryLock()
                    lock?.release()
                    lock == null
                } catch (e: OverlappingFileLockException) {
                    true // held by this JVM
                }
            }
        }
        .map { it.fileName.toString() }

    override fun close() {
        dir.toFile().deleteRecursively()
    }
}

/** PostgreSQL advisory locks ([PostgresLocks]) in a local server from the test kit ([PostgresServer]). */
class PostgresBackend : LockBackend {
    private val server = PostgresServer.start()
    override val name = "PostgreSQL"

    override fun locks(): DistributedLocks = PostgresLocks.create(
        PostgresLockConfig.builder(server.dataSource())
            .leaseTime(LockBackend.LEASE).waitTime(LockBackend.WAIT).retryDelay(LockBackend.RETRY)
            .build(),
    )

    /**
     * Ends the sessions that hold the resource's advisory locks, as an administrator's
     * `pg_terminate_backend` would. The keys are computed as the backend documents them: SHA-256 of
     * family and lock key, first 8 bytes (a semaphore: one key per permit slot).
     */
    override fun loseHolds(resource: String) {
        val key = "redlock:$resource"
        val keys = listOf(hash("m\u0000$key"), hash("rw\u0000$key")) + (0 until 64).map { hash("s\u0000$key\u0000$it") }
        val pids = server.query(
            "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted " +
                "AND ((classid::bigint << 32) | objid::bigint) IN (${keys.joinToString()})",
        ).map { (it[0] as Number).toInt() }
        check(pids.isNotEmpty()) { "no session holds $resource" }
        pids.forEach { server.terminateSession(it) }
    }

    /** The advisory locks some session holds. */
    override fun held(): List<String> =
        server.query("SELECT pid, classid, objid, objsubid, mode FROM pg_locks WHERE locktype = 'advisory' AND granted").map { it.toString() }

    override fun close() = server.close()

    private fun hash(text: String): Long =
        ByteBuffer.wrap(MessageDigest.getInstance("SHA-256").digest(text.toByteArray(Charsets.UTF_8))).long
}

class RedlockOneMasterBehaviourTest : BehaviourSuite({ RedlockBackend(1) })

class RedlockThreeMastersBehaviourTest : BehaviourSuite({ RedlockBackend(3) })

class FileBehaviourTest : BehaviourSuite({ FileBackend() })

class PostgresBehaviourTest : BehaviourSuite({ PostgresBackend() })

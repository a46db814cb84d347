package dev.redlock.file

import dev.redlock.core.LockLostException
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.file.internal.FileNames
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactlyInAnyOrder
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldStartWith
import java.io.BufferedReader
import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.util.concurrent.TimeUnit
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.minutes
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout

/** What only the file backend has: its files and names, its directory checks, and other processes. */
class FileLocksTest : FunSpec({
    lateinit var dir: Path
    val open = ArrayList<DistributedLocks>()

    fun locks(configure: FileLockConfig.Builder.() -> Unit = {}): DistributedLocks =
        FileLocks.create(FileLockConfig.builder(dir).leaseTime(Duration.ofSeconds(3)).retryDelay(Duration.ofMillis(20)).apply(configure).build())
            .also { open += it }

    beforeEach { dir = Files.createTempDirectory("redlock-file-test") }
    afterEach {
        open.forEach { it.close() }
        open.clear()
        dir.toFile().deleteRecursively()
    }

    test("names map to file names that never collide, also when only the case differs, and stay short") {
        FileNames.encode("orders-42_a") shouldBe "orders-42_a"
        FileNames.encode("Orders/42") shouldBe "%4Frders%2F42"
        FileNames.encode("a.b") shouldBe "a%2Eb"
        FileNames.encode("é") shouldBe "%C3%A9"
        val names = listOf("a", "A", "%41", "a.lock", "a%2Elock", "../x", "", " ", "~", "x".repeat(500), "x".repeat(501))
        names.map { FileNames.encode(it) }.toSet().size shouldBe names.size
        names.map { FileNames.encode(it).lowercase() }.toSet().size shouldBe names.size
        val long = FileNames.encode("ü".repeat(300))
        long.length shouldBe long.length.coerceAtMost(FileNames.KEPT + 1 + 64)
        long shouldContain "~"
        (FileNames.permit("x".repeat(1000), 99_999).toByteArray().size < 255) shouldBe true
    }

    test("a lock is a file named after its resource; the file stays after release") {
        val locks = locks()
        locks.withLock("Orders/42") { Files.exists(dir.resolve("%4Frders%2F42.lock")) shouldBe true }
        locks.withReadLock("cat") { Files.exists(dir.resolve("cat.rw.lock")) shouldBe true }
        locks.withPermit("pool", 2) { Files.readString(dir.resolve("pool.sem.0.lock")) shouldBe "permits=2\n" }
        Files.list(dir).use { files -> files.map { it.fileName.toString() }.toList() } shouldContainExactlyInAnyOrder
            listOf("%4Frders%2F42.lock", "cat.rw.lock", "pool.sem.0.lock")
    }

    test("two locks objects of one JVM share each file's one OS lock: readers share, a writer waits for them") {
        val a = locks()
        val b = locks()
        val r1 = a.acquireReadLock("rw")
        val r2 = b.acquireReadLock("rw")
        b.tryAcquireWriteLock("rw").shouldBeNull()
        r1.release()
        b.tryAcquireWriteLock("rw").shouldBeNull()
        r2.release()
        val w = b.acquireWriteLock("rw", waitTime = 1.seconds)
        a.tryAcquireReadLock("rw").shouldBeNull()
        w.release()
    }

    test("fencing tokens are kept in a counter file and go on growing with new locks objects") {
        val first = locks { fencing(true) }
        first.withLock("f") { it.fencingToken shouldBe 1L }
        first.withLock("f") { it.fencingToken shouldBe 2L }
        first.close()
        Files.readString(dir.resolve("f.fence")).trim() shouldBe "2"
        locks { fencing(true) }.withLock("f") { it.fencingToken shouldBe 3L }
    }

    test("deleting the lock file while it is held cancels the critical section") {
        val started = CompletableDeferred<Unit>()
        val loss = shouldThrow<LockLostException> {
            locks().withLock("doomed", leaseTime = 600.milliseconds) {
                Files.delete(dir.resolve("doomed.lock"))
                started.complete(Unit)
                withTimeout(10.seconds) { while (true) delay(5.milliseconds) }
            }
        }
        started.isCompleted shouldBe true
        loss.reason() shouldBe LockLostException.Reason.NOT_HELD
    }

    test("a deleted lock file is noticed by the node's look at its files, not by a renewal") {
        // A lease of two minutes: its first renewal comes after 40 s, later than the test waits.
        val loss = shouldThrow<LockLostException> {
            locks().withLock("doomed-long", leaseTime = 2.minutes) {
                Files.delete(dir.resolve("doomed-long.lock"))
                withTimeout(30.seconds) { awaitCancellation() }
            }
        }
        loss.reason() shouldBe LockLostException.Reason.NOT_HELD
    }

    test("replacing the lock file (same name, another file) while it is held cancels the critical section") {
        val loss = shouldThrow<LockLostException> {
            locks().withReadLock("swapped", leaseTime = 600.milliseconds) {
                val file = dir.resolve("swapped.rw.lock")
                val other = dir.resolve("other")
                Files.writeString(other, "")
                Files.move(other, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE)
                withTimeout(10.seconds) { while (true) delay(5.milliseconds) }
            }
        }
        loss.reason() shouldBe LockLostException.Reason.NOT_HELD
    }

    test("deleting the lock directory while a lock is held cancels it, and later calls name the missing directory") {
        val locks = locks()
        shouldThrow<LockLostException> {
            locks.withLock("x", leaseTime = 600.milliseconds) {
                dir.toFile().deleteRecursively() shouldBe true
                withTimeout(10.seconds) { while (true) delay(5.milliseconds) }
            }
        }
        val e = shouldThrow<dev.redlock.core.LockNotAcquiredException> { locks.acquire("x", waitTime = 100.milliseconds) }
        e.message shouldContain "is gone"
        e.message shouldContain dir.toRealPathOrSelf().toString()
    }

    test("a directory that does not exist, or a file instead of one, is refused at creation naming the path and what is needed") {
        val missing = dir.resolve("missing")
        shouldThrow<IllegalArgumentException> { FileLocks.create(FileLockConfig.builder(missing).build()) }.message.let {
            it shouldContain missing.toString()
            it shouldContain "does not exist: create it"
        }
        val file = Files.writeString(dir.resolve("plain"), "")
        shouldThrow<IllegalArgumentException> { FileLocks.create(FileLockConfig.builder(file).build()) }.message shouldContain "is not a directory"
    }

    test("a directory this process may not write is refused at creation, naming the permissions needed") {
        val locked = Files.createDirectory(dir.resolve("read-only"))
        locked.toFile().setWritable(false, false) shouldBe true
        try {
            val message = if (System.getProperty("user.name") != "root") {
                shouldThrow<IllegalArgumentException> { FileLocks.create(FileLockConfig.builder(locked).build()) }.message!!
            } else {
                // Root may write any directory. A JVM of root's without the capabilities that bypass
                // file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) is held to them like any user.
                Child(dir, "create", locked.toString(), withoutPermissionBypass = true).use { child ->
                    child.awaitLine().also { it shouldStartWith "REFUSED " }
                }
            }
            message shouldContain locked.toString()
            message shouldContain "needs read, write and execute"
            // The same directory once writable again is taken: the refusal was about the permissions.
            locked.toFile().setWritable(true, false) shouldBe true
            Child(dir, "create", locked.toString(), withoutPermissionBypass = true).use { it.awaitLine() shouldBe "CREATED" }
        } finally {
            locked.toFile().setWritable(true, false)
        }
    }

    test("bad settings are refused at build(), naming the setting, the range and the value") {
        shouldThrow<IllegalArgumentException> { FileLockConfig.builder(dir).leaseTime(Duration.ZERO).build() }.message shouldStartWith "leaseTime"
        shouldThrow<IllegalArgumentException> { FileLockConfig.builder(dir).retryDelay(Duration.ofHours(2)).build() }.message shouldStartWith "retryDelay"
        shouldThrow<IllegalArgumentException> { FileLockConfig.builder(dir).keyPrefix("p".repeat(300)).build() }.message shouldStartWith "keyPrefix"
        shouldThrow<IllegalArgumentException> { FileLockConfig.builder(dir).waitTime(null).build() }.message shouldStartWith "waitTime"
        FileLockConfig.builder(dir).build().retryDelay() shouldBe FileLockConfig.DEFAULT_RETRY_DELAY
    }

    test("a holder frozen (SIGSTOP) past its lease time keeps the file lock until it runs again; then its lease is lost and given up") {
        // What the README's table says: nothing outside the holder expires a file lock.
        Child(dir, "hold", "frozen", leaseMillis = 1_000).use { child ->
            child.awaitLine() shouldBe "HELD"
            val locks = locks()
            child.signal("STOP")
            try {
                delay(2_500) // two and a half lease times
                locks.tryAcquire("frozen").shouldBeNull()
            } finally {
                child.signal("CONT")
            }
            child.awaitLine() shouldBe "LOST"
            locks.acquire("frozen", waitTime = 10.seconds).release()
        }
    }

    test("two JVMs on one file: the other process's lock keeps this one out until it releases, and its death frees it at once") {
        Child(dir, "hold", "shared").use { child ->
            child.awaitLine() shouldBe "HELD"
            val locks = locks()
            locks.tryAcquire("shared").shouldBeNull()
            child.send("release")
            // Noticed by the retry pause: the release is in another process.
            locks.acquire("shared", waitTime = 10.seconds).release()
            child.awaitLine() shouldBe "RELEASED"
        }
        Child(dir, "hold", "crashing").use { child ->
            child.awaitLine() shouldBe "HELD"
            val locks = locks()
            locks.tryAcquire("crashing").shouldBeNull()
            child.kill()
            // The operating system dropped the dead process's lock: no lease time to wait out.
            locks.acquire("crashing", waitTime = 10.seconds).release()
        }
        val lease = locks().acquire("mine")
        Child(dir, "try", "mine").use { it.awaitLine() shouldBe "REFUSED" }
        lease.release()
        Child(dir, "try", "mine").use { it.awaitLine() shouldBe "ACQUIRED" }
    }
})

private fun Path.toRealPathOrSelf(): Path = try { toRealPath() } catch (e: java.io.IOException) { this }

/**
 * A second JVM running [FileLockChild]; destroyed by [close] whatever happened. With
 * [withoutPermissionBypass] it runs without the capabilities that let root ignore file permissions
 * (through util-linux's `setpriv`), where this JVM is root.
 */
private class Child(dir: Path, mode: String, resource: String, leaseMillis: Long = 5_000, withoutPermissionBypass: Boolean = false) :
    AutoCloseable {
    private val process: Process = ProcessBuilder(
        (if (withoutPermissionBypass && System.getProperty("user.name") == "root") {
            listOf("setpriv", "--bounding-set=-dac_override,-dac_read_search")
        } else {
            emptyList()
        }) + listOf(
            File(System.getProperty("java.home"), "bin/java").path, "-cp", System.getProperty("java.class.path"),
            FileLockChild::class.java.name, mode,
        ) + (if (mode == "create") listOf(resource) else listOf(dir.toString(), resource, leaseMillis.toString())),
    ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
    private val out: BufferedReader = process.inputReader()
    private val lines = java.util.concurrent.LinkedBlockingQueue<String>()
    private val reader = Thread({
        try {
            while (true) lines.put(out.readLine() ?: break)
        } catch (e: java.io.IOException) {
            // The process was killed: its output ends.
        }
        lines.put(EOF)
    }, "file-lock-child-reader").apply { isDaemon = true; start() }

    /** The child's next line; fails if it ends or says nothing for 30 s (a hang guard). */
    fun awaitLine(): String {
        val line = lines.poll(30, TimeUnit.SECONDS) ?: throw AssertionError("the child JVM said nothing for 30 s")
        if (line == EOF) throw AssertionError("the child JVM ended (exit ${process.waitFor()}) without the expected line")
        return line
    }

    fun send(line: String) {
        process.outputStream.write((line + "\n").toByteArray())
        process.outputStream.flush()
    }

    fun kill() {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS) shouldBe true
    }

    /** Sends SIGSTOP or SIGCONT ([name] without "SIG") to the child. */
    fun signal(name: String) {
        val kill = ProcessBuilder("kill", "-$name", process.pid().toString()).redirectErrorStream(true).start()
        kill.waitFor(10, TimeUnit.SECONDS) shouldBe true
        kill.exitValue() shouldBe 0
    }

    override fun close() {
        // SIGKILL ends a stopped process too.
        process.destroyForcibly()
        process.waitFor(10, TimeUnit.SECONDS) shouldNotBe false
        reader.join(1000)
    }

    companion object {
        const val EOF = "\u0000EOF"
    }
}

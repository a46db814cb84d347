package dev.redlock.file

import java.nio.file.Path
import java.time.Duration
import kotlinx.coroutines.runBlocking

/**
 * The other process of [FileLocksTest]'s two-JVM tests: `hold DIR RESOURCE [LEASE_MS]` takes the lock,
 * prints HELD and keeps it until a line "release" arrives on its standard input,
 * then prints RELEASED, or LOST when the lease was lost meanwhile; `try DIR RESOURCE` makes one attempt and prints ACQUIRED or REFUSED;
 * `create DIR` only creates the locks and prints CREATED, or REFUSED and the message of the refusal.
 */
object FileLockChild {
    @JvmStatic
    fun main(args: Array<String>) {
        if (args[0] == "create") {
            try {
                FileLocks.create(FileLockConfig.builder(Path.of(args[1])).build()).close()
                println("CREATED")
            } catch (e: IllegalArgumentException) {
                println("REFUSED " + e.message?.replace('\n', ' '))
            }
            System.out.flush()
            return
        }
        val (mode, dir, resource) = args
        val lease = args.getOrNull(3)?.let { Duration.ofMillis(it.toLong()) } ?: Duration.ofSeconds(5)
        val config = FileLockConfig.builder(Path.of(dir)).leaseTime(lease).retryDelay(Duration.ofMillis(20)).build()
        FileLocks.create(config).use { locks ->
            runBlocking {
                when (mode) {
                    "hold" -> try {
                        locks.withLock(resource) {
                            println("HELD")
                            System.out.flush()
                            // Polls for input instead of blocking in a read, so that a loss can cancel
                            // the block (a blocked read of standard input cannot be interrupted).
                            while (true) {
                                if (System.`in`.available() == 0) {
                                    kotlinx.coroutines.delay(20)
                                    continue
                                }
                                val line = readlnOrNull()
                                if (line == null || line == "release") break
                            }
                        }
                        println("RELEASED")
                    } catch (e: dev.redlock.core.LockLostException) {
                        println("LOST")
                    }
                    "try" -> println(if (locks.tryAcquire(resource)?.also { it.release() } != null) "ACQUIRED" else "REFUSED")
                    else -> error("unknown mode $mode")
                }
            }
        }
        System.out.flush()
    }
}

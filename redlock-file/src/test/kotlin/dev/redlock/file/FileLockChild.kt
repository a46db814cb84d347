package dev.redlock.file

import java.nio.file.Path
import java.time.Duration
import kotlinx.coroutines.runBlocking

/**
 * The other process of [FileLocksTest]'s two-JVM tests: `hold DIR RESOURCE` takes the lock, prints
 * HELD and keeps it until a line "release" arrives on its standard input (or the input closes),
 * then prints RELEASED; `try DIR RESOURCE` makes one attempt and prints ACQUIRED or REFUSED.
 */
object FileLockChild {
    @JvmStatic
    fun main(args: Array<String>) {
        val (mode, dir, resource) = args
        val config = FileLockConfig.builder(Path.of(dir)).leaseTime(Duration.ofSeconds(5)).retryDelay(Duration.ofMillis(20)).build()
        FileLocks.create(config).use { locks ->
            runBlocking {
                when (mode) {
                    "hold" -> locks.withLock(resource) {
                        println("HELD")
                        System.out.flush()
                        while (true) {
                            val line = kotlinx.coroutines.withContext(kotlinx.coroutines.Dispatchers.IO) { readlnOrNull() }
                            if (line == null || line == "release") break
                        }
                    }.also { println("RELEASED") }
                    "try" -> println(if (locks.tryAcquire(resource)?.also { it.release() } != null) "ACQUIRED" else "REFUSED")
                    else -> error("unknown mode $mode")
                }
            }
        }
        System.out.flush()
    }
}

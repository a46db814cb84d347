// The README's backends sample in Kotlin, compiled and run by ReadmeSamplesTest. README.md shows
// the region verbatim; change both together.
package dev.redlock.examples.readme

import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.Redlock
import dev.redlock.file.FileLockConfig
import dev.redlock.file.FileLocks
import java.nio.file.Path

/** The stock the sample's shop reserves from; the sample only names it. */
interface Stock {
    /** Takes [count] units of [sku] if there are that many; runs under the sku's lock. */
    suspend fun take(sku: String, count: Int): Boolean
}

// region backends
// Application code, written once against the DistributedLocks interface:
class Shop(private val locks: DistributedLocks, private val stock: Stock) {
    suspend fun reserve(sku: String, count: Int): Boolean =
        locks.withLock("stock-$sku") { stock.take(sku, count) }
}

// Redis masters (Redlock), or lock files between the processes of one machine:
fun redisLocks(masters: List<String>): DistributedLocks =
    Redlock(RedlockConfig.builder().masters(masters).build())

fun fileLocks(directory: Path): DistributedLocks =
    FileLocks.create(FileLockConfig.builder(directory).build())
// endregion

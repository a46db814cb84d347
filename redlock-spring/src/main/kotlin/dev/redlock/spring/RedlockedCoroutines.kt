@file:JvmName("RedlockedCoroutines")

package dev.redlock.spring

import dev.redlock.coroutines.Lease
import dev.redlock.spring.internal.RedlockedLeaseElement
import kotlinx.coroutines.currentCoroutineContext

/**
 * The lease of the [Redlocked] `suspend` function this coroutine runs in: for its fencing token,
 * its validity ([Lease.remaining], to bound I/O) and [Lease.awaitLost].
 *
 * ```
 * @Redlocked("ledger", fencing = true)
 * suspend fun post(entry: Entry) {
 *     ledger.write(entry, redlockedLease().fencingToken!!)
 * }
 * ```
 *
 * Coroutines the function starts inside its own scope see it too. Not a suspension point.
 *
 * @throws IllegalStateException outside a [Redlocked] suspend function
 */
public suspend fun redlockedLease(): Lease =
    redlockedLeaseOrNull()
        ?: throw IllegalStateException(
            "no @Redlocked suspend function runs in this coroutine: redlockedLease() works inside its body",
        )

/** The lease of the [Redlocked] `suspend` function this coroutine runs in, or null outside one. Not a suspension point. */
public suspend fun redlockedLeaseOrNull(): Lease? = currentCoroutineContext()[RedlockedLeaseElement]?.lease

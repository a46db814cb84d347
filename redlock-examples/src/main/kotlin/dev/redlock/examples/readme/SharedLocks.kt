// The README's reader-writer lock and semaphore sample in Kotlin, compiled and run by
// ReadmeSamplesTest. README.md shows the region verbatim; change both together.
package dev.redlock.examples.readme

import dev.redlock.coroutines.Redlock

/** The work each lock of [sharedLocks] protects; the sample only names it. */
interface Catalog {
    /** Reads the catalog; runs under a read lock. */
    suspend fun render()

    /** Rewrites the catalog; runs under the write lock. */
    suspend fun rebuild()

    /** Renders a PDF; runs holding one of 4 permits. */
    suspend fun renderPdf()
}

/** Takes a read lock, the write lock and a semaphore permit in turn. */
@Suppress("UNUSED_ANONYMOUS_PARAMETER")
suspend fun Catalog.sharedLocks(redlock: Redlock) {
    // region shared-locks
    redlock.withReadLock("catalog") { lease -> render() }          // many readers at once
    redlock.withWriteLock("catalog") { lease -> rebuild() }        // one writer, no reader
    redlock.withPermit("pdf-workers", permits = 4) { lease -> renderPdf() } // at most 4 holders
    // endregion
}

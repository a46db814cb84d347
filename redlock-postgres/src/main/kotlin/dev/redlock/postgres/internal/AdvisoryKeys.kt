package dev.redlock.postgres.internal

import java.nio.ByteBuffer
import java.security.MessageDigest

/**
 * How lock keys become PostgreSQL advisory lock keys.
 *
 * A lock key (`keyPrefix + resource`) is hashed with SHA-256 to a 64-bit key, with its family in
 * front, so a mutex, a reader-writer lock and a semaphore of the same name are three locks. Two
 * names with the same 64-bit hash share one advisory lock: safe (they exclude each other) but
 * slower, since holders of one wait for holders of the other. With a few million names in use
 * at once, the chance that any two collide stays below 1 in a million (the birthday bound, n²/2⁶⁵).
 *
 * A semaphore of name N with P permits uses P slot keys (one advisory lock per permit) and, to
 * tell callers with another number of permits, a marker in the two-int key space
 * (`pg_advisory_lock_shared(int4, int4)`), whose first half is a 32-bit hash of N and whose second
 * half is P; the bigint and the two-int key spaces never meet (`pg_locks.objsubid` 1 and 2).
 */
internal object AdvisoryKeys {
    const val MUTEX: String = "m"
    const val READ_WRITE: String = "rw"
    const val SEMAPHORE: String = "s"

    /** The advisory key of [family]'s lock [key]. */
    fun lock(family: String, key: String): Long = hash64("$family\u0000$key")

    /** The advisory key of permit slot [slot] of the semaphore [key]. */
    fun permitSlot(key: String, slot: Int): Long = hash64("$SEMAPHORE\u0000$key\u0000$slot")

    /** The first half of the semaphore [key]'s permit-count marker (two-int key space). */
    fun permitMarker(key: String): Int = ByteBuffer.wrap(digest("${SEMAPHORE}p\u0000$key")).int

    private fun hash64(text: String): Long = ByteBuffer.wrap(digest(text)).long

    private fun digest(text: String): ByteArray = MessageDigest.getInstance("SHA-256").digest(text.toByteArray(Charsets.UTF_8))
}

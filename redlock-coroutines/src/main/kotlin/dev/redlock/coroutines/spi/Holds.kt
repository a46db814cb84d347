package dev.redlock.coroutines.spi

import dev.redlock.coroutines.InternalRedlockApi

/**
 * Which lock a backend keeps: lock keys of different families never lock each other, even with
 * the same name (a mutex on "a", the reader-writer lock "a" and the semaphore "a" are three locks).
 *
 * @suppress Internal API (backend SPI): hidden from the API documentation.
 */
@InternalRedlockApi
public enum class LockFamily {
    /** Mutexes: one holder per key; a lease may hold several keys at once (all or nothing). */
    MUTEX,

    /** Reader-writer locks: any number of readers, or one writer. */
    READ_WRITE,

    /** Semaphores: up to a number of permit holders. */
    SEMAPHORE,
}

/**
 * What a lease holds: a mutex, either side of a reader-writer lock, or one permit of a semaphore.
 *
 * @property family the family whose lock this mode takes
 * @suppress Internal API (backend SPI): hidden from the API documentation.
 */
@InternalRedlockApi
public enum class LockMode(public val family: LockFamily) {
    /** A mutex on one or several keys. */
    MUTEX(LockFamily.MUTEX),

    /** The read side of a reader-writer lock: shared with other readers, excludes a writer. */
    READ(LockFamily.READ_WRITE),

    /** The write side of a reader-writer lock: excludes other writers and every reader. */
    WRITE(LockFamily.READ_WRITE),

    /** One permit of a semaphore. */
    PERMIT(LockFamily.SEMAPHORE),
}

/**
 * One lease as a backend sees it: its mode, its lock keys and its holder's token.
 *
 * A lock key is the user's resource name with the key prefix in front (`keyPrefix + resource`),
 * never containing the NUL character; [keys] has one per resource, several only for [LockMode.MUTEX]
 * (a lease on several resources holds all of them or none). The [token] is 128 random bits as 22
 * URL-safe base64 characters (`A-Z a-z 0-9 - _`), fresh for every acquisition: it tells this lease
 * from every other holder, also of the same process. It is a secret of its holder: show at most
 * its first 4 characters in messages. Two instances are equal when mode, keys and token are.
 *
 * @property mode what the lease holds
 * @property keys its lock keys, in the order the caller named the resources
 * @property token the holder's token
 * @suppress Internal API (backend SPI): hidden from the API documentation.
 */
@InternalRedlockApi
public data class HeldLease(
    public val mode: LockMode,
    public val keys: List<String>,
    public val token: String,
) {
    /** Describes the lease with its token shortened to 4 characters. */
    override fun toString(): String = "HeldLease($mode $keys, token ${token.take(4)}…)"
}

/**
 * One attempt to take a lease, as a backend must answer it: at once, all or nothing, without
 * waiting for the lock (waiting is the engine's: it retries on a release notice or after a pause).
 *
 * @property lease the lease asked for (its mode, keys and token)
 * @property leaseMillis how long the hold lasts unless extended, in milliseconds (at least 1):
 *   the node gives it up by itself after that long (the base class does it)
 * @property fencing whether the grant must carry a fencing number ([LockMode.MUTEX] and
 *   [LockMode.WRITE] only): larger than every fencing number any earlier holder of any of the keys
 *   was granted, durably (it survives a restart of the store)
 * @property permits the semaphore's number of permits for [LockMode.PERMIT] (at least 1); 0 otherwise
 * @property writerPriority for [LockMode.WRITE]: whether a writer kept out by readers should keep
 *   new readers out until it gets in or gives up. A backend may ignore it (and document that it
 *   does not support writer priority); readers then never wait for a waiting writer.
 * @suppress Internal API (backend SPI): hidden from the API documentation.
 */
@InternalRedlockApi
public class AcquireRequest(
    public val lease: HeldLease,
    public val leaseMillis: Long,
    public val fencing: Boolean,
    public val permits: Int,
    public val writerPriority: Boolean,
) {
    /** What the lease holds. */
    public val mode: LockMode get() = lease.mode

    /** Its lock keys. */
    public val keys: List<String> get() = lease.keys

    /** The holder's token. */
    public val token: String get() = lease.token

    /** Describes the request for messages and logs, with the token shortened. */
    override fun toString(): String =
        "AcquireRequest(${lease.mode} ${lease.keys}, token ${lease.token.take(4)}…, ${leaseMillis}ms" +
            (if (fencing) ", fencing" else "") + (if (permits > 0) ", $permits permits" else "") + ")"
}

/**
 * A backend's answer to an [AcquireRequest].
 *
 * @suppress Internal API (backend SPI): hidden from the API documentation.
 */
@InternalRedlockApi
public sealed class AcquireResult {
    /**
     * The lease is held now, with every key of the request.
     *
     * @property fence the fencing number when the request asked for one, else null
     */
    @InternalRedlockApi
    public class Granted(public val fence: Long? = null) : AcquireResult() {
        /** Describes the grant. */
        override fun toString(): String = if (fence == null) "Granted" else "Granted(fence $fence)"
    }

    /**
     * Another holder has (one of) the keys; nothing was taken.
     *
     * @property holderRemainingMillis how long the other holder's hold lasts at most unless
     *   extended, when the backend knows it (the engine then retries right after it), else null
     *   (the engine retries on a release notice or after its jittered retry delay)
     */
    @InternalRedlockApi
    public class Refused(public val holderRemainingMillis: Long? = null) : AcquireResult() {
        /** Describes the refusal. */
        override fun toString(): String = "Refused(${holderRemainingMillis ?: "?"} ms)"
    }

    /**
     * A [LockMode.PERMIT] request whose number of permits differs from the one the semaphore's
     * current holders use: the engine fails the call with an [IllegalArgumentException] naming both.
     *
     * @property holdersPermits the number of permits the current holders use
     */
    @InternalRedlockApi
    public class PermitsDiffer(public val holdersPermits: Int) : AcquireResult() {
        /** Describes the disagreement. */
        override fun toString(): String = "PermitsDiffer($holdersPermits)"
    }
}

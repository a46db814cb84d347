@file:OptIn(InternalRedlockApi::class)

package dev.redlock.file

import dev.redlock.core.RedlockMetrics
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.spi.BackendSettings
import java.nio.file.Path
import java.time.Duration

/**
 * The settings of [FileLocks]: the lock directory, and the timing every lock of it uses unless a
 * call says otherwise. Immutable; built with [builder], which validates every value.
 *
 * ```java
 * FileLockConfig config = FileLockConfig.builder(Path.of("/var/lock/my-app"))
 *     .leaseTime(Duration.ofSeconds(30))
 *     .build();
 * ```
 */
public class FileLockConfig private constructor(
    private val directory: Path,
    internal val settings: BackendSettings,
) {
    /** The directory the lock files live in. */
    public fun directory(): Path = directory

    /** How long a lease lasts unless renewed (default 10 s). */
    public fun leaseTime(): Duration = settings.leaseTime

    /** How long a call waits for a lock by default (default 10 s). */
    public fun waitTime(): Duration = settings.waitTime

    /** The pause between attempts while another process holds the lock (default 50 ms, jittered). */
    public fun retryDelay(): Duration = settings.retryDelay

    /** Whether locks and write locks carry a fencing token unless a call says otherwise (default false). */
    public fun fencing(): Boolean = settings.fencing

    /** What is put in front of every resource name before it becomes a file name (default empty). */
    public fun keyPrefix(): String = settings.keyPrefix

    /** Describes the settings for logs. */
    override fun toString(): String = "FileLockConfig(directory=$directory, $settings)"

    /** The defaults and the builder. */
    public companion object {
        /** The default pause between attempts while another process holds a lock. */
        @JvmField
        public val DEFAULT_RETRY_DELAY: Duration = Duration.ofMillis(50)

        /**
         * Starts a builder for locks in [directory], every other setting at its default.
         *
         * @param directory an existing directory that this process may read and write; it is
         *   checked when the locks are created ([FileLocks.create])
         * @return a new builder
         */
        @JvmStatic
        public fun builder(directory: Path): Builder = Builder(directory)
    }

    /** Builds a [FileLockConfig]. Not thread-safe; each setter replaces the previous value. */
    public class Builder internal constructor(private val directory: Path?) {
        private var leaseTime: Duration? = dev.redlock.core.RedlockConfig.DEFAULT_LEASE_TIME
        private var waitTime: Duration? = dev.redlock.core.RedlockConfig.DEFAULT_WAIT_TIME
        private var retryDelay: Duration? = DEFAULT_RETRY_DELAY
        private var nodeTimeout: Duration? = null
        private var fencing = false
        private var keyPrefix: String? = ""
        private var metrics: RedlockMetrics? = RedlockMetrics.NONE

        /**
         * Sets how long a lease lasts unless renewed: a holder that stops renewing (a hung
         * process) keeps others out this long at most. A process that dies frees its locks at
         * once (the operating system drops its file locks). Default 10 s; 10 ms to 1 day.
         */
        public fun leaseTime(leaseTime: Duration?): Builder = apply { this.leaseTime = leaseTime }

        /** Sets how long a call waits for a lock by default. Default 10 s; 0 (one attempt) to 1 day. */
        public fun waitTime(waitTime: Duration?): Builder = apply { this.waitTime = waitTime }

        /**
         * Sets the pause between attempts while another process holds the lock, jittered between
         * half and one and a half times. A waiter in this process is woken at once by a release in
         * this process; a release by another process is noticed within this pause. Default 50 ms;
         * 1 ms to 1 min.
         */
        public fun retryDelay(retryDelay: Duration?): Builder = apply { this.retryDelay = retryDelay }

        /**
         * Sets the bound on each file operation. Default: 5 % of the lease time, at least 20 ms;
         * when set, every lease time must be at least three times this value.
         */
        public fun nodeTimeout(nodeTimeout: Duration?): Builder = apply { this.nodeTimeout = nodeTimeout }

        /**
         * Sets whether locks and write locks carry a fencing token unless a call says otherwise:
         * a number kept in a counter file next to the lock file (`<name>.fence`), raised under the
         * lock and written durably (fsync and an atomic rename) before it is handed out. Deleting
         * the counter files starts the tokens again from 1. Default false.
         */
        public fun fencing(fencing: Boolean): Builder = apply { this.fencing = fencing }

        /** Sets what is put in front of every resource name before it becomes a file name. Default empty; at most 256 characters. */
        public fun keyPrefix(keyPrefix: String?): Builder = apply { this.keyPrefix = keyPrefix }

        /** Sets where measurements go (acquisitions, waiting, holding, renewals, losses). Default [RedlockMetrics.NONE]. */
        public fun metrics(metrics: RedlockMetrics?): Builder = apply { this.metrics = metrics }

        /**
         * Validates every setting and builds the configuration. Does not touch the file system:
         * [FileLocks.create] checks the directory.
         *
         * @throws IllegalArgumentException naming the first bad setting, what is allowed and the value given
         */
        public fun build(): FileLockConfig {
            require(directory != null) { "directory must be the path of the lock directory, but was null" }
            val settings = BackendSettings(
                leaseTime = leaseTime ?: throw IllegalArgumentException("leaseTime must be a duration, but was null"),
                waitTime = waitTime ?: throw IllegalArgumentException("waitTime must be a duration, but was null"),
                retryDelay = retryDelay ?: throw IllegalArgumentException("retryDelay must be a duration, but was null"),
                nodeTimeout = nodeTimeout,
                fencing = fencing,
                keyPrefix = keyPrefix ?: throw IllegalArgumentException("keyPrefix must be a string of at most 256 characters, but was null"),
                metrics = metrics ?: throw IllegalArgumentException("metrics must not be null; use RedlockMetrics.NONE to record nothing"),
            )
            return FileLockConfig(directory, settings)
        }
    }
}

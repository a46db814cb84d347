package dev.redlock.coroutines.internal

import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.Checks
import dev.redlock.core.internal.ConfigInternals
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.toJavaDuration
import kotlin.time.toKotlinDuration

/**
 * The timing of one lock call: the config's defaults with the caller's overrides, validated.
 *
 * @property lease the lease time
 * @property wait how long the call may wait for the lock
 * @property nodeTimeout the bound on each command to a master
 * @property drift the clock drift allowance subtracted from every validity
 */
internal class Timing private constructor(
    val lease: Duration,
    val wait: Duration,
    val nodeTimeout: java.time.Duration,
    val drift: Duration,
) {
    val leaseMillis: Long = lease.inWholeMilliseconds.coerceAtLeast(1)

    /** How often a renewed lease is extended: every third of its lease time. */
    val renewInterval: Duration = lease / 3

    /**
     * How much before the end of its validity a lease with no successful renewal is declared lost:
     * the timer that declares it may be late by a few milliseconds on a busy machine, and the
     * declaration must come by the end of the validity, never after.
     */
    val expiryLead: Duration = minOf(MAX_EXPIRY_LEAD, lease / 50)

    /** The longest an acquisition may take past its wait: one attempt's node timeout. */
    val nodeTimeoutKt: Duration = nodeTimeout.toKotlinDuration()

    companion object {
        val MAX_EXPIRY_LEAD: Duration = 10.milliseconds

        /** The timing of calls that override nothing. */
        fun of(config: RedlockConfig): Timing {
            val lease = config.leaseTime()
            return Timing(
                lease.toKotlinDuration(),
                config.waitTime().toKotlinDuration(),
                ConfigInternals.nodeTimeoutFor(config, lease),
                ConfigInternals.driftFor(config, lease).toKotlinDuration(),
            )
        }

        /**
         * The timing of a call with [leaseTime] and [waitTime] overrides (null: the config's).
         *
         * @throws IllegalArgumentException for a duration out of range, a lease that leaves no
         *   room for the node timeout or the drift, or one that the restart guard does not cover
         */
        fun of(config: RedlockConfig, leaseTime: Duration?, waitTime: Duration?, defaults: Timing): Timing {
            if (leaseTime == null && waitTime == null) return defaults
            val wait =
                if (waitTime == null) defaults.wait
                else Checks.waitTime("waitTime", waitTime.checkedJava("waitTime")).toKotlinDuration()
            if (leaseTime == null) return Timing(defaults.lease, wait, defaults.nodeTimeout, defaults.drift)
            val lease = Checks.leaseTime("leaseTime", leaseTime.checkedJava("leaseTime"))
            val nodeTimeout = ConfigInternals.nodeTimeoutFor(config, lease)
            if (ConfigInternals.hasExplicitNodeTimeout(config)) {
                require(nodeTimeout <= lease.dividedBy(3)) {
                    "leaseTime must be at least three times the configured nodeTimeout (${Checks.show(nodeTimeout)}), " +
                        "so that a renewal is over before the next one is due, but was ${Checks.show(lease)}"
                }
            }
            val drift = ConfigInternals.driftFor(config, lease)
            require(drift < lease) {
                "leaseTime must be longer than its clock drift allowance (${Checks.show(drift)}), but was ${Checks.show(lease)}"
            }
            val guard = config.restartGuard()
            require(guard.isZero || lease <= guard) {
                "leaseTime must be at most the restartGuard (${Checks.show(guard)}), but was ${Checks.show(lease)}: a " +
                    "master that restarted empty counts again once it has been up that long, and a lease longer than " +
                    "that could then be granted a second time; raise RedlockConfig.restartGuard to at least the " +
                    "longest lease any client of these masters uses"
            }
            return Timing(lease.toKotlinDuration(), wait, nodeTimeout, drift.toKotlinDuration())
        }

        private fun Duration.checkedJava(setting: String): java.time.Duration {
            require(isFinite() && !isNegative()) { "$setting must be a finite, non-negative duration, but was $this" }
            return toJavaDuration()
        }
    }
}

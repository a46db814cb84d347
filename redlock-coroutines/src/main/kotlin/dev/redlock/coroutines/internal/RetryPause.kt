package dev.redlock.coroutines.internal

import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds

/** The most a retry at the refusing holder's expiry is spread by: the key is gone then, so come at once. */
internal val HINT_JITTER_MAX: Duration = 5.milliseconds

/**
 * How long to pause before the next attempt: the earliest of the refusing holder's remaining
 * time (plus a little jitter, at most a tenth of the retry delay and [HINT_JITTER_MAX], so that
 * waiters of several processes do not all arrive at the same instant, yet the lock is taken right
 * after the key expires) and the retry delay jittered between half and one and a half times,
 * never past the end of the wait.
 */
internal fun retryPause(
    retryDelay: Duration,
    holderRemaining: Duration?,
    remainingWait: Duration,
    random: Random,
): Duration {
    val jittered = retryDelay * random.nextDouble(0.5, 1.5)
    val spread = minOf(retryDelay * 0.1, HINT_JITTER_MAX)
    val hinted = if (holderRemaining != null) holderRemaining + spread * random.nextDouble() else Duration.INFINITE
    return minOf(jittered, hinted, remainingWait).coerceAtLeast(Duration.ZERO)
}

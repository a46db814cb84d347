package dev.redlock.coroutines.internal

import kotlin.random.Random
import kotlin.time.Duration

/**
 * How long to pause before the next attempt: the earliest of the refusing holder's remaining
 * time (plus a little jitter, so that waiters do not all arrive at the same instant) and the
 * retry delay jittered between half and one and a half times, never past the end of the wait.
 */
internal fun retryPause(
    retryDelay: Duration,
    holderRemaining: Duration?,
    remainingWait: Duration,
    random: Random,
): Duration {
    val jittered = retryDelay * random.nextDouble(0.5, 1.5)
    val hinted = if (holderRemaining != null) holderRemaining + retryDelay * random.nextDouble(0.0, 0.1) else Duration.INFINITE
    return minOf(jittered, hinted, remainingWait).coerceAtLeast(Duration.ZERO)
}

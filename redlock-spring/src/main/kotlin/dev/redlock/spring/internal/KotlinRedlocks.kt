package dev.redlock.spring.internal

import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.Redlock

/**
 * Creates the Kotlin [Redlock] for Java code: its constructor's default time source is not
 * visible from Java (no `@JvmOverloads`).
 *
 * @suppress Internal API of redlock-spring.
 */
public object KotlinRedlocks {
    /** A new Redlock over the masters of [config], on the monotonic clock. */
    @JvmStatic
    public fun create(config: RedlockConfig): Redlock = Redlock(config)
}

package dev.redlock.examples.readme

import dev.redlock.core.RedlockConfig
import dev.redlock.core.micrometer.MicrometerRedlockMetrics
import dev.redlock.coroutines.Redlock
import io.micrometer.core.instrument.MeterRegistry

/** The README's metrics example: a Redlock whose measurements go to a Micrometer registry. */
fun meteredRedlock(masters: List<String>, registry: MeterRegistry): Redlock {
    // region metrics
    val config = RedlockConfig.builder()
        .masters(masters)
        .metrics(MicrometerRedlockMetrics.create(registry)) // micrometer-core on your class path
        .build()
    val redlock = Redlock(config)
    // endregion
    return redlock
}

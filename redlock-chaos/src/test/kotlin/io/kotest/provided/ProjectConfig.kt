package io.kotest.provided

import dev.redlock.chaos.quietLogs
import io.kotest.core.config.AbstractProjectConfig
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/** Hang guards for every test of this module, and quiet logs: every loss is a library WARNING. */
class ProjectConfig : AbstractProjectConfig() {
    override val timeout: Duration = 120.seconds
    override val invocationTimeout: Duration = 120.seconds

    init {
        quietLogs()
    }
}

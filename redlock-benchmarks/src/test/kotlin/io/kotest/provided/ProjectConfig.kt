package io.kotest.provided

import io.kotest.core.config.AbstractProjectConfig
import kotlin.time.Duration
import kotlin.time.Duration.Companion.minutes

/** Hang guard: the smoke run takes well under a minute; a hung run fails instead of stalling the build. */
class ProjectConfig : AbstractProjectConfig() {
    override val timeout: Duration = 3.minutes
    override val invocationTimeout: Duration = 3.minutes
}

package io.kotest.provided

import io.kotest.core.config.AbstractProjectConfig
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/** Hang guards for every test of this module: a hung test fails instead of stalling the build. */
class ProjectConfig : AbstractProjectConfig() {
    override val timeout: Duration = 60.seconds
    override val invocationTimeout: Duration = 60.seconds

    init {
        // Creation stacks are costly; the dump of suspended stacks is what a hang needs.
        kotlinx.coroutines.debug.DebugProbes.enableCreationStackTraces = false
        kotlinx.coroutines.debug.DebugProbes.install()
    }
}

package dev.redlock.testing

import java.nio.file.Path

/** What the machine offers for running masters; the real one is [SystemProbe], tests pass fakes. */
internal interface BackendProbe {
    /**
     * The `redis-server` a local fleet would run.
     *
     * @throws RedisFleetException naming everything that was checked, when there is none.
     */
    fun localBinary(): Path

    /** Null when a Docker engine can be used through Testcontainers, else why not. */
    fun dockerUnavailableReason(): String?
}

/** The outcome of [selectBackend]: what to start the masters with. */
internal sealed interface SelectedBackend {
    class Local(val binary: Path) : SelectedBackend

    object Containers : SelectedBackend
}

/**
 * Chooses how to run the masters. [RedisFleet.Backend.LOCAL] asks only the local probe and
 * [RedisFleet.Backend.CONTAINERS] only the Docker probe; [RedisFleet.Backend.AUTO] asks the local
 * probe first and Docker only when there is no local binary, so a machine with a `redis-server`
 * never touches Testcontainers.
 */
internal fun selectBackend(requested: RedisFleet.Backend, probe: BackendProbe): SelectedBackend =
    when (requested) {
        RedisFleet.Backend.LOCAL -> SelectedBackend.Local(probe.localBinary())
        RedisFleet.Backend.CONTAINERS -> {
            val reason = probe.dockerUnavailableReason()
            if (reason != null) {
                throw RedisFleetException(
                    "backend CONTAINERS needs a Docker engine reachable through Testcontainers, but $reason. " +
                        "Start Docker, or use backend LOCAL or AUTO to run redis-server processes."
                )
            }
            SelectedBackend.Containers
        }
        RedisFleet.Backend.AUTO -> {
            val local =
                try {
                    probe.localBinary()
                } catch (e: RedisFleetException) {
                    val reason = probe.dockerUnavailableReason()
                    if (reason == null) return SelectedBackend.Containers
                    throw RedisFleetException(
                        "No way to run Redis masters: (1) local: ${e.message} (2) Docker: $reason. " +
                            "Either make a redis-server available as described in (1), or run a Docker engine " +
                            "and add the test dependency ${ContainerSupport.ARTIFACT}.",
                        e,
                    )
                }
            SelectedBackend.Local(local)
        }
    }

/** The probe of this JVM: its environment, `PATH`, platform and Docker engine. */
internal class SystemProbe(private val explicitBinary: Path?) : BackendProbe {
    override fun localBinary(): Path = RedisServerBinary.resolve(explicitBinary)

    override fun dockerUnavailableReason(): String? = ContainerSupport.unavailableReason()
}

/**
 * Whether the container backend can be used, without loading a Testcontainers class unless
 * Testcontainers is on the class path: [DockerProbe] is the only class of this file that refers to
 * one, and it is touched only after the class-presence check.
 */
internal object ContainerSupport {
    const val ARTIFACT: String = "org.testcontainers:testcontainers"
    private const val FACTORY_CLASS = "org.testcontainers.DockerClientFactory"

    /** Asked once per JVM: Testcontainers' own check can take seconds when no engine answers. */
    private val reason: String? by lazy {
        if (!onClassPath()) {
            "Testcontainers is not on the class path (add the test dependency $ARTIFACT)"
        } else {
            DockerProbe.unavailableReason()
        }
    }

    fun onClassPath(): Boolean =
        try {
            Class.forName(FACTORY_CLASS, false, ContainerSupport::class.java.classLoader)
            true
        } catch (_: ClassNotFoundException) {
            false
        } catch (_: LinkageError) {
            false
        }

    fun unavailableReason(): String? = reason
}

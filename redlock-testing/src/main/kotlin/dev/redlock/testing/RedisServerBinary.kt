package dev.redlock.testing

import java.io.File
import java.io.IOException
import java.io.InputStream
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.nio.file.StandardCopyOption
import java.util.Locale

/**
 * Finds the `redis-server` to run: an explicit path, else `$REDLOCK_REDIS_SERVER`, else
 * `redis-server` on `PATH`, else the binary bundled in the `com.github.codemonstur:embedded-redis`
 * jar, extracted once per JVM.
 */
internal object RedisServerBinary {
    const val ENV_VAR: String = "REDLOCK_REDIS_SERVER"

    private const val HOW_TO_SUPPLY: String =
        "Install redis-server on PATH, set the environment variable $ENV_VAR to a redis-server binary, " +
            "or call RedisFleet.builder().redisServer(path)."

    /** Bundled binaries by "os-arch", as named inside embedded-redis 1.4.3. */
    private val BUNDLED: Map<String, String> =
        mapOf(
            "linux-amd64" to "redis-server-6.2.6-v5-linux-amd64",
            "linux-arm64" to "redis-server-6.2.7-linux-arm64",
            "linux-386" to "redis-server-6.2.7-linux-386",
            "darwin-amd64" to "redis-server-6.2.6-v5-darwin-amd64",
            "darwin-arm64" to "redis-server-6.2.6-v5-darwin-arm64",
        )

    private val extracted = HashMap<String, Path>()

    /** Resolves with this JVM's environment, `PATH`, OS and architecture. */
    fun resolve(explicit: Path?): Path =
        resolve(explicit, System::getenv, System.getProperty("os.name"), System.getProperty("os.arch"))

    /** Resolves with the given environment and platform (tests pass fakes). */
    fun resolve(explicit: Path?, env: (String) -> String?, osName: String, osArch: String): Path {
        if (explicit != null) return checkExecutable(explicit, "RedisFleet.builder().redisServer(...)")
        env(ENV_VAR)?.takeIf { it.isNotBlank() }?.let { return checkExecutable(Paths.get(it), "\$$ENV_VAR") }
        val onPath = findOnPath(env("PATH"))
        if (onPath != null) return onPath
        val platform = platform(osName, osArch)
        val resource =
            BUNDLED[platform]
                ?: throw RedisFleetException(
                    "No redis-server found: \$$ENV_VAR is not set, there is no redis-server on PATH, and " +
                        "embedded-redis bundles no binary for os.name='$osName', os.arch='$osArch' " +
                        "(bundled platforms: ${BUNDLED.keys.joinToString()}). $HOW_TO_SUPPLY"
                )
        return extract(resource)
    }

    /** The bundled binary for this machine, extracted; for tests that need a known binary. */
    fun bundled(): Path {
        val platform = platform(System.getProperty("os.name"), System.getProperty("os.arch"))
        val resource = BUNDLED[platform] ?: throw RedisFleetException("no bundled redis-server for $platform")
        return extract(resource)
    }

    private fun platform(osName: String, osArch: String): String {
        val os = osName.lowercase(Locale.ROOT)
        val osPart =
            when {
                os.startsWith("linux") -> "linux"
                os.contains("mac") || os.contains("darwin") -> "darwin"
                else -> os.replace(' ', '_')
            }
        val archPart =
            when (osArch.lowercase(Locale.ROOT)) {
                "amd64", "x86_64", "x64" -> "amd64"
                "aarch64", "arm64" -> "arm64"
                "x86", "i386", "i486", "i586", "i686" -> "386"
                else -> osArch.lowercase(Locale.ROOT)
            }
        return "$osPart-$archPart"
    }

    private fun findOnPath(path: String?): Path? {
        if (path.isNullOrEmpty()) return null
        for (dir in path.split(File.pathSeparator)) {
            if (dir.isEmpty()) continue
            val candidate =
                try {
                    Paths.get(dir, "redis-server")
                } catch (_: RuntimeException) {
                    continue // an unparsable PATH entry is skipped, as a shell would
                }
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) return candidate
        }
        return null
    }

    private fun checkExecutable(path: Path, source: String): Path {
        if (!Files.isRegularFile(path)) {
            throw RedisFleetException("redis-server from $source does not exist or is not a file: $path. $HOW_TO_SUPPLY")
        }
        if (!Files.isExecutable(path)) {
            throw RedisFleetException("redis-server from $source is not executable: $path. $HOW_TO_SUPPLY")
        }
        return path
    }

    @Synchronized
    private fun extract(resource: String): Path {
        extracted[resource]?.let { if (Files.isExecutable(it)) return it }
        val stream =
            RedisServerBinary::class.java.classLoader.getResourceAsStream(resource)
                ?: throw RedisFleetException(
                    "No redis-server found: \$$ENV_VAR is not set, there is no redis-server on PATH, and the " +
                        "class-path resource '$resource' is missing (it ships in com.github.codemonstur:embedded-redis; " +
                        "is that jar on the class path?). $HOW_TO_SUPPLY"
                )
        val file = stream.use { input -> copyToTempDir(resource, input) }
        extracted[resource] = file
        return file
    }

    private fun copyToTempDir(resource: String, input: InputStream): Path {
        try {
            val dir = Files.createTempDirectory("redlock-redis-server-")
            val file = dir.resolve(resource)
            // deleteOnExit runs in reverse order of registration: the file first, then its directory.
            dir.toFile().deleteOnExit()
            file.toFile().deleteOnExit()
            Files.copy(input, file, StandardCopyOption.REPLACE_EXISTING)
            if (!file.toFile().setExecutable(true, true) || !Files.isExecutable(file)) {
                throw RedisFleetException(
                    "Extracted $resource to $file but cannot make it executable (is the temp directory " +
                        "mounted noexec?). $HOW_TO_SUPPLY"
                )
            }
            return file
        } catch (e: IOException) {
            throw RedisFleetException("Cannot extract the bundled $resource to a temp directory: $e. $HOW_TO_SUPPLY", e)
        }
    }
}

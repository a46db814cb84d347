package dev.redlock.abi

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.jar.JarFile
import org.jetbrains.kotlin.abi.tools.AbiFilters
import org.jetbrains.kotlin.abi.tools.AbiTools

/**
 * The public API of every published module, dumped from its compiled classes (Kotlin metadata
 * read, so Kotlin's `internal` declarations are not API), and compared with the dump checked in
 * under `api/`: any change to a public signature fails the build until the dump is updated in the
 * same commit (`mvn -pl redlock-abi -am verify -Dabi.update`, then commit `api/`). Internal
 * packages and declarations marked `@InternalRedlockApi` are left out.
 */
class AbiTest : FunSpec({
    val root: Path = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().parent
    // `-Dabi.update` on the command line sets it to "true"; unset, Maven passes it on empty.
    val update = System.getProperty("abi.update") == "true"
    val tools = AbiTools.getInstance(AbiTest::class.java.classLoader)
    val filters = AbiFilters(
        emptySet(),
        // Internal packages, and the companion of an internal class (the filter below sees the class only).
        setOf("dev.redlock.**.internal.**", "dev.redlock.coroutines.LockType.Companion"),
        emptySet(),
        setOf("dev.redlock.coroutines.InternalRedlockApi"),
    )

    /** Published module → one class compiled into it (to find its classes on the class path). */
    val modules = linkedMapOf(
        "redlock-core" to "dev.redlock.core.RedlockConfig",
        "redlock-coroutines" to "dev.redlock.coroutines.Redlock",
        "redlock-java-facade" to "dev.redlock.java.AsyncRedlock",
        "redlock-file" to "dev.redlock.file.FileLocks",
        "redlock-testing" to "dev.redlock.testing.RedisFleet",
        "redlock-junit5" to "dev.redlock.junit5.RedlockTest",
        "redlock-kotest" to "dev.redlock.kotest.RedisFleetExtension",
        "redlock-spring" to "dev.redlock.spring.Redlocked",
        "redlock-postgres" to "dev.redlock.postgres.PostgresLocks",
    )

    for ((module, anchor) in modules) {
        test("$module: the public API is the one in api/$module.api") {
            val location = File(Class.forName(anchor).protectionDomain.codeSource.location.toURI())
            val classes = classFiles(location)
            val dump = StringBuilder().also { tools.printJvmDump(it, classes, filters) }.toString()
            val file = root.resolve("api/$module.api")
            if (update) {
                Files.createDirectories(file.parent)
                Files.writeString(file, dump)
            }
            val expected = if (Files.exists(file)) Files.readString(file) else "(no api/$module.api yet)"
            withClue(
                "The public API of $module changed. If that is intended, run " +
                    "`mvn -pl redlock-abi -am verify -Dabi.update` and commit api/$module.api with the change.\n" +
                    firstDifference(expected, dump),
            ) {
                dump shouldBe expected
            }
        }
    }
})

/** The class files of a module: under its classes directory, or in its jar (extracted). */
private fun classFiles(location: File): List<File> {
    if (location.isDirectory) return location.walk().filter { it.isFile && it.name.endsWith(".class") }.sortedBy { it.path }.toList()
    val dir = Files.createTempDirectory("abi").toFile().apply { deleteOnExit() }
    JarFile(location).use { jar ->
        for (entry in jar.entries()) {
            if (!entry.name.endsWith(".class")) continue
            val out = File(dir, entry.name)
            out.parentFile.mkdirs()
            jar.getInputStream(entry).use { input -> out.outputStream().use { input.copyTo(it) } }
        }
    }
    return dir.walk().filter { it.isFile }.sortedBy { it.path }.toList()
}

private fun firstDifference(expected: String, actual: String): String {
    val e = expected.lines()
    val a = actual.lines()
    val i = (0 until maxOf(e.size, a.size)).firstOrNull { e.getOrNull(it) != a.getOrNull(it) } ?: return ""
    return "First difference at line ${i + 1}:\n  api file: ${e.getOrNull(i) ?: "(end)"}\n  compiled: ${a.getOrNull(i) ?: "(end)"}"
}

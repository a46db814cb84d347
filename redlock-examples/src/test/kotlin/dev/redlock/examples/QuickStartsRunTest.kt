package dev.redlock.examples

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit

/**
 * The README's quick starts run as a user runs them: each in a JVM of its own, its `main` on a
 * thread group of its own as `mvn exec:java` does. Each must print exactly what the README shows
 * after it, and end, threads included, without hanging (a hang guard bounds the wait; how long the
 * threads took to end is printed, never asserted).
 */
class QuickStartsRunTest : FunSpec({
    val root: Path = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().parent
    val readme = Files.readString(root.resolve("README.md"))

    /** The ```text block that follows the sample marker [marker] in the README. */
    fun expectedOutput(marker: String): List<String> {
        val at = readme.indexOf("<!-- sample: $marker")
        check(at >= 0) { "README.md has no sample $marker" }
        val fence = "```text\n"
        val start = readme.indexOf(fence, at) + fence.length
        return readme.substring(start, readme.indexOf("```", start)).lines().filter { it.isNotEmpty() }
    }

    fun run(mainClass: String): Pair<Int, List<String>> {
        val classpath = System.getProperty("surefire.test.class.path") ?: System.getProperty("java.class.path")
        val java = Path.of(System.getProperty("java.home"), "bin", "java").toString()
        val process = ProcessBuilder(java, "-cp", classpath, SampleLauncher::class.java.name, mainClass)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        try {
            val out = process.inputStream.bufferedReader().readLines()
            check(process.waitFor(120, TimeUnit.SECONDS)) { "$mainClass did not end within 120 s (a hang guard)" }
            return process.exitValue() to out
        } finally {
            process.destroyForcibly()
        }
    }

    test("the Kotlin quick start prints what the README shows, and ends with every thread it started") {
        val (exit, out) = run("dev.redlock.examples.readme.QuickStartKt")
        withClue("exit code (2: main threw, 3: threads left behind)") { exit shouldBe 0 }
        out shouldBe expectedOutput("redlock-examples/src/main/kotlin/dev/redlock/examples/readme/QuickStart.kt")
    }

    test("the Java quick start prints what the README shows, and ends with every thread it started") {
        val (exit, out) = run("com.example.QuickStart")
        withClue("exit code (2: main threw, 3: threads left behind)") { exit shouldBe 0 }
        out shouldBe expectedOutput("redlock-examples/src/main/java/com/example/QuickStart.java")
    }
})

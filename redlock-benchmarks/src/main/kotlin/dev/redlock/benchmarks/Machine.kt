package dev.redlock.benchmarks

import java.lang.management.ManagementFactory
import java.nio.file.Files
import java.nio.file.Path
import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter
import java.util.Properties
import java.util.concurrent.TimeUnit

/** Where a run took place: enough to tell whether two runs can be compared. */
data class Machine(
    val date: String,
    val cores: Int,
    val cpu: String,
    val memory: String,
    val os: String,
    val jdk: String,
    val loadAtStart: Double,
    val redisVersion: String,
    val redissonVersion: String,
    val lettuceVersion: String,
    val commit: String,
) {
    companion object {
        fun describe(root: Path, redisVersion: String): Machine {
            val os = ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean
            return Machine(
                date = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'").format(Instant.now().atOffset(ZoneOffset.UTC)),
                cores = Runtime.getRuntime().availableProcessors(),
                cpu = cpuModel(),
                memory = "${os.totalMemorySize / (1L shl 30)} GiB of memory, max heap ${Runtime.getRuntime().maxMemory() / (1L shl 20)} MiB",
                os = "${System.getProperty("os.name")} ${System.getProperty("os.version")} ${System.getProperty("os.arch")}",
                jdk = "${System.getProperty("java.vm.name")} ${System.getProperty("java.runtime.version")} (${System.getProperty("java.vendor")})",
                loadAtStart = loadAverage(),
                redisVersion = redisVersion,
                redissonVersion = mavenVersion("org.redisson", "redisson"),
                lettuceVersion = mavenVersion("io.lettuce", "lettuce-core"),
                commit = gitCommit(root),
            )
        }

        fun loadAverage(): Double = ManagementFactory.getOperatingSystemMXBean().systemLoadAverage

        private fun cpuModel(): String =
            runCatching {
                Files.readAllLines(Path.of("/proc/cpuinfo")).firstOrNull { it.startsWith("model name") }?.substringAfter(':')?.trim()
            }.getOrNull() ?: System.getProperty("os.arch")

        private fun mavenVersion(group: String, artifact: String): String =
            runCatching {
                Machine::class.java.classLoader.getResourceAsStream("META-INF/maven/$group/$artifact/pom.properties")!!.use {
                    Properties().apply { load(it) }.getProperty("version")
                }
            }.getOrNull() ?: "unknown"

        /** The commit measured, marked when the work tree had changes. */
        private fun gitCommit(root: Path): String =
            runCatching {
                val commit = git(root, "rev-parse", "--short", "HEAD").trim()
                val dirty = git(root, "status", "--porcelain", "--untracked-files=no").isNotBlank()
                if (dirty) "$commit with uncommitted changes" else commit
            }.getOrNull()?.takeIf { it.isNotBlank() } ?: "unknown commit"

        private fun git(root: Path, vararg args: String): String {
            val process = ProcessBuilder(listOf("git", "-C", root.toString()) + args).redirectErrorStream(true).start()
            val output = process.inputStream.bufferedReader().readText()
            check(process.waitFor(10, TimeUnit.SECONDS) && process.exitValue() == 0) { output }
            return output
        }
    }
}

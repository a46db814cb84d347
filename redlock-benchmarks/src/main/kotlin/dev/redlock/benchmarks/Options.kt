package dev.redlock.benchmarks

import java.nio.file.Path
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

val USAGE: String = """
    Usage (from the repository root):
      mvn -q -pl redlock-benchmarks -am package -DskipTests -Dbench [-Dexec.args="OPTIONS"]

    Starts 5 local Redis masters and runs every scenario against this library, Redisson and a raw
    Lettuce baseline, one after another on the same masters, then writes a Markdown report.
    A full run takes about 30 minutes (scenarios 6 to 8: about 11; 10, on cluster masters it starts itself: about 5)
    on 2 cores; run it on an otherwise idle machine.

    Options:
      --quick          a smoke run of about a minute with small counts and short phases
      --only 1,3       run only these scenarios (1 to 11; 11: the backends)
      --out PATH       where to write the report (relative paths: from the repository root).
                       Default: BENCHMARKS.md at the repository root for a full run of every
                       scenario; redlock-benchmarks/target/BENCHMARKS-quick.md or
                       BENCHMARKS-partial.md for a --quick or --only run, so that a smoke run
                       never overwrites the published figures
      --root PATH      the repository root (set by the Maven profile)
      --tiny           the smoke test's mode: a few hundred operations per scenario
      -h, --help       show this help
""".trimIndent()

/** How long and how big each scenario runs: the full run, `--quick`, or the smoke test's `--tiny`. */
data class Profile(
    val name: String,
    /** Before any scenario, each implementation runs this long at N = 1 and N = 5, alone and contended, so the JIT has compiled all three before any is measured. */
    val jitWarmup: Duration,
    /** Warm-up of each measured phase (not recorded). */
    val warmup: Duration,
    /** Measured part of each phase. */
    val measure: Duration,
    /** Scenario 2: numbers of contenders on the hot resource. */
    val contenders: List<Int>,
    /** Scenario 2 across JVMs: numbers of contenders (each run starts [JVMS] worker JVMs). */
    val crossContenders: List<Int>,
    /** Scenario 3: concurrent acquirers and the number of distinct resources they pick from. */
    val acquirers: Int,
    val resources: Int,
    /** Scenario 4: locks held at once for N = 1 and for N = 5 (0: N = 5 not run), how long, and their lease time. */
    val heldLocks: Int,
    val heldLocksN5: Int,
    val hold: Duration,
    val holdLease: Duration,
    /** Scenario 5: the round trip added to one master of five. */
    val slowBy: Duration,
    /** Scenario 6: the lease of the locks an administrator deletes (renewed every third of it). */
    val lossLease: Duration,
    /** Scenario 6, DEL: locks held at once in a round, each deleted at its own moment of the renewal cycle, and rounds per subject and N. */
    val lossHolders: Int,
    val lossDelRounds: Int,
    /** Scenario 6, FLUSHALL: rounds (one lock, one FLUSHALL each) per N, with tracking, without, and for Redisson. */
    val lossFlushRounds: Int,
    val lossFlushRoundsSlow: Int,
    val lossFlushRoundsRedisson: Int,
    /** Scenario 7: the lease of the holder that is killed, and holders killed per subject and N. */
    val crashLease: Duration,
    val crashSamples: Int,
    /** Scenario 8: windows per variant (with and without tracking, alternating), in both parts. */
    val costWindows: Int,
    /** Scenario 8, uncontended part: the measured part of each window (after [warmup]). */
    val costMeasure: Duration,
    /** Scenario 8, held part: locks held at N = 1 and their lease (a window lasts three renewal rounds). */
    val costLocks: Int,
    val costLease: Duration,
    /** Scenario 10: rounds, each measuring every implementation on one server, a 1-shard and a 3-shard cluster master. */
    val clusterRounds: Int,
) {
    companion object {
        val FULL = Profile(
            name = "full",
            jitWarmup = 2500.milliseconds,
            warmup = 2.seconds,
            measure = 8.seconds,
            contenders = listOf(8, 64),
            crossContenders = listOf(8, 64),
            acquirers = 64,
            resources = 10_000,
            heldLocks = 100_000,
            heldLocksN5 = 10_000,
            hold = 60.seconds,
            holdLease = 30.seconds,
            slowBy = 20.milliseconds,
            lossLease = 6.seconds,
            lossHolders = 40,
            lossDelRounds = 2,
            lossFlushRounds = 20,
            lossFlushRoundsSlow = 8,
            lossFlushRoundsRedisson = 4,
            crashLease = 2.seconds,
            crashSamples = 8,
            costWindows = 2,
            costMeasure = 5.seconds,
            costLocks = 20_000,
            costLease = 15.seconds,
            clusterRounds = 2,
        )
        val QUICK = FULL.copy(
            name = "quick",
            jitWarmup = 400.milliseconds,
            warmup = 300.milliseconds,
            measure = 1.seconds,
            heldLocks = 5_000,
            heldLocksN5 = 0,
            // Renewed every 2 s: two rounds in the hold. A shorter lease would make its 5 % node
            // timeout so short that a loaded machine (and the full collections that read the heap)
            // could lose locks, which is not what this scenario is about.
            hold = 5.seconds,
            holdLease = 6.seconds,
            lossLease = 3.seconds,
            lossHolders = 10,
            lossDelRounds = 1,
            lossFlushRounds = 5,
            lossFlushRoundsSlow = 2,
            lossFlushRoundsRedisson = 1,
            crashSamples = 2,
            costWindows = 1,
            costMeasure = 1.seconds,
            costLocks = 2_000,
            costLease = 6.seconds,
            clusterRounds = 1,
        )
        val TINY = QUICK.copy(
            name = "tiny",
            jitWarmup = 100.milliseconds,
            warmup = 150.milliseconds,
            measure = 500.milliseconds,
            heldLocks = 1_000,
            // Each run across JVMs starts 4 of them: one contender count shows the harness works.
            crossContenders = listOf(8),
            // One renewal round (at 2 s) within the hold.
            hold = 3.seconds,
            lossHolders = 3,
            lossFlushRounds = 2,
            lossFlushRoundsSlow = 1,
            crashSamples = 1,
            costMeasure = 500.milliseconds,
            costLocks = 500,
        )
    }
}

/** What the command line asked for. */
data class Options(
    val profile: Profile = Profile.FULL,
    val scenarios: Set<Int> = ALL_SCENARIOS,
    val root: Path = Path.of("").toAbsolutePath(),
    val out: Path? = null,
    val help: Boolean = false,
) {
    /** The report's path: [out] if given, else a default that a smoke run cannot confuse with the published figures. */
    val output: Path
        get() = when {
            out != null -> root.resolve(out).normalize()
            profile == Profile.FULL && scenarios == ALL_SCENARIOS -> root.resolve("BENCHMARKS.md")
            profile == Profile.FULL -> root.resolve("redlock-benchmarks/target/BENCHMARKS-partial.md")
            else -> root.resolve("redlock-benchmarks/target/BENCHMARKS-${profile.name}.md")
        }

    companion object {
        val ALL_SCENARIOS: Set<Int> = (1..11).toSortedSet()

        /** Parses the command line; `--name value` and `--name=value` are both accepted. */
        fun parse(args: Array<String>): Options {
            var options = Options()
            var i = 0
            while (i < args.size) {
                val arg = args[i++]
                if (arg.isBlank()) continue
                val name = arg.substringBefore('=')
                val inline = if ('=' in arg) arg.substringAfter('=') else null
                fun value(): String = inline ?: args.getOrNull(i++) ?: throw UsageException("$name needs a value")
                fun flag() {
                    if (inline != null) throw UsageException("$name takes no value, but was given '$inline'")
                }
                options = when (name) {
                    "-h", "--help" -> options.copy(help = true)
                    "--quick" -> { flag(); options.copy(profile = Profile.QUICK) }
                    "--tiny" -> { flag(); options.copy(profile = Profile.TINY) }
                    "--only" -> options.copy(scenarios = parseScenarios(value()))
                    "--out" -> options.copy(out = Path.of(value().ifBlank { throw UsageException("--out needs a path") }))
                    "--root" -> options.copy(root = Path.of(value()).toAbsolutePath().normalize())
                    else -> throw UsageException("unknown option '$arg'; allowed: --quick, --only 1,3, --out PATH, --root PATH, --tiny, --help")
                }
            }
            return options
        }

        private fun parseScenarios(text: String): Set<Int> {
            val numbers = text.split(',').map { it.trim() }.filter { it.isNotEmpty() }.map {
                it.toIntOrNull()?.takeIf { n -> n in ALL_SCENARIOS }
                    ?: throw UsageException("--only expects scenario numbers ${ALL_SCENARIOS.joinToString(", ")} separated by commas, like 1,3, but was '$text'")
            }
            if (numbers.isEmpty()) throw UsageException("--only expects at least one scenario number (${ALL_SCENARIOS.joinToString(", ")}), but was '$text'")
            return numbers.toSortedSet()
        }
    }
}

/** A command line that cannot be run; the message says what is wrong with it. */
class UsageException(message: String) : RuntimeException(message)

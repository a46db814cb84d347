package dev.redlock.benchmarks

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.nio.file.Path

class OptionsTest : FunSpec({
    val root = Path.of("/repo")

    test("a full run of every scenario writes BENCHMARKS.md at the repository root") {
        val options = Options.parse(arrayOf("--root", "/repo"))
        options.profile shouldBe Profile.FULL
        options.scenarios shouldBe setOf(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
        options.output shouldBe root.resolve("BENCHMARKS.md")
    }

    test("quick and partial runs write under target unless --out says otherwise") {
        Options.parse(arrayOf("--root=/repo", "--quick")).output shouldBe root.resolve("redlock-benchmarks/target/BENCHMARKS-quick.md")
        Options.parse(arrayOf("--root=/repo", "--only", "1,3")).output shouldBe root.resolve("redlock-benchmarks/target/BENCHMARKS-partial.md")
        val chosen = Options.parse(arrayOf("--root", "/repo", "--quick", "--only", " 3, 1 ", "--out", "docs/b.md"))
        chosen.scenarios shouldBe setOf(1, 3)
        chosen.output shouldBe root.resolve("docs/b.md")
    }

    test("the command shown in the report repeats the reader's options, not the profile's plumbing") {
        shownArgs(arrayOf("--root", "/repo", "--quick", "", "--root=/x", "--only", "1,3")) shouldBe listOf("--quick", "--only", "1,3")
        commandLine(emptyList()) shouldBe "mvn -q -pl redlock-benchmarks -am package -DskipTests -Dbench"
        commandLine(listOf("--quick", "--only", "1,3")) shouldBe
            "mvn -q -pl redlock-benchmarks -am package -DskipTests -Dbench -Dexec.args=\"--quick --only 1,3\""
    }

    test("bad options are refused with a message that names them and what is allowed") {
        shouldThrow<UsageException> { Options.parse(arrayOf("--only", "12")) }.message shouldContain "1, 2, 3"
        shouldThrow<UsageException> { Options.parse(arrayOf("--only")) }.message shouldBe "--only needs a value"
        shouldThrow<UsageException> { Options.parse(arrayOf("--quick=yes")) }.message shouldContain "takes no value"
        shouldThrow<UsageException> { Options.parse(arrayOf("--fast")) }.message shouldContain "allowed: --quick"
    }
})

package dev.redlock.testing

import io.kotest.assertions.withClue
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainAll
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import java.nio.file.Files
import java.nio.file.Path

/**
 * The README's table of servers ("Servers tested") against the server this run has: its row must
 * exist, and every claim in it must be what the server answers. CI runs this once per server of
 * the matrix, so each row is checked on its own server.
 */
@Tags("compat")
class ServerMatrixTest :
    FunSpec({
        val root: Path = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().parent
        val table = ServerTable.parse(Files.readString(root.resolve("README.md")))
        val fleet = RedisFleet.builder().backend(RedisFleet.Backend.LOCAL).start()
        afterSpec { fleet.close() }

        test("the README's table has a row for this server, and every column is one this test can check") {
            table.row(fleet.serverName, fleet.serverVersion) shouldNotBe null
            PROBES.keys shouldContainAll table.featureColumns
            table.featureColumns.toSet() shouldBe PROBES.keys
        }

        test("each claim of this server's row is what the server answers") {
            val row = table.row(fleet.serverName, fleet.serverVersion)!!
            for (column in table.featureColumns) {
                val claimed = row.getValue(column)
                val actual = if (PROBES.getValue(column)(fleet)) "yes" else "no"
                withClue("README, ${fleet.serverName} ${fleet.serverVersion}, column '$column'") { actual shouldBe claimed }
            }
        }

        test("the table is read as written: header, rows and yes/no cells") {
            val sample =
                """
                |### Servers tested
                |
                || server | where the tests get it | `SPUBLISH` |
                || --- | --- | --- |
                || Redis 6.2 | bundled | no |
                || Valkey 8.1 | fetched | yes |
                |
                |after
                """.trimMargin()
            val parsed = ServerTable.parse(sample)
            parsed.featureColumns shouldBe listOf("`SPUBLISH`")
            parsed.row("Redis", "6.2.11")!!["`SPUBLISH`"] shouldBe "no"
            parsed.row("Valkey", "8.1.1")!!["`SPUBLISH`"] shouldBe "yes"
            parsed.row("Redis", "7.0.15") shouldBe null
        }
    })

/** Whether the server has a feature, asked with commands that fail where it does not. */
private val PROBES: Map<String, (RedisFleet) -> Boolean> =
    mapOf(
        "sharded pub/sub (`SPUBLISH`)" to { fleet -> succeeds { fleet.command(0, "SPUBLISH", "matrix-probe", "x") } },
        "`CLIENT TRACKING` (`BCAST`, `OPTIN`, `OPTOUT`, `NOLOOP`)" to { fleet ->
            // One connection per command: each turns tracking on for itself only.
            succeeds { fleet.command(0, "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "matrix:", "NOLOOP") } &&
                succeeds { fleet.command(0, "CLIENT", "TRACKING", "ON", "OPTIN") } &&
                succeeds { fleet.command(0, "CLIENT", "TRACKING", "ON", "OPTOUT", "NOLOOP") }
        },
        "ACL selectors" to { fleet ->
            succeeds { fleet.command(0, "ACL", "SETUSER", "matrix-probe", "(~matrix:* +get)") }.also {
                runCatching { fleet.command(0, "ACL", "DELUSER", "matrix-probe") }
            }
        },
        "`CLIENT SETINFO`" to { fleet -> succeeds { fleet.command(0, "CLIENT", "SETINFO", "lib-name", "matrix-probe") } },
        "`SET ... IFEQ`" to { fleet ->
            fleet.command(0, "SET", "matrix:ifeq", "a")
            val ok = succeeds { fleet.command(0, "SET", "matrix:ifeq", "b", "IFEQ", "a") } && fleet.command(0, "GET", "matrix:ifeq") == "b"
            fleet.command(0, "DEL", "matrix:ifeq")
            ok
        },
        "`WAITAOF`" to { fleet -> succeeds { fleet.command(0, "WAITAOF", "0", "0", "0") } },
        "functions (`FUNCTION`)" to { fleet -> succeeds { fleet.command(0, "FUNCTION", "LIST") } },
        "hash field expiry (`HEXPIRE`)" to { fleet ->
            fleet.command(0, "HSET", "matrix:h", "f", "v")
            val ok = succeeds { fleet.command(0, "HEXPIRE", "matrix:h", "60", "FIELDS", "1", "f") }
            fleet.command(0, "DEL", "matrix:h")
            ok
        },
    )

/** True when [call] gets a reply, false when the server answers with an error. */
private fun succeeds(call: () -> Any?): Boolean =
    try {
        call()
        true
    } catch (_: RedisFleetException) {
        false
    }

/** The README's "Servers tested" table: one row per server, cells by column header. */
private class ServerTable(val featureColumns: List<String>, private val rows: Map<String, Map<String, String>>) {
    /** The row of `NAME MAJOR.MINOR` (for example `Redis 7.0`), or null. */
    fun row(name: String, version: String): Map<String, String>? = rows["$name ${version.split('.').take(2).joinToString(".")}"]

    companion object {
        /** The first two columns name the server and where it comes from; every other one is a feature. */
        fun parse(markdown: String): ServerTable {
            val lines = markdown.lines()
            val start = lines.indexOfFirst { it.trim() == "### Servers tested" }
            require(start >= 0) { "README.md has no '### Servers tested' section" }
            val tableLines = lines.drop(start + 1).dropWhile { !it.startsWith("|") }.takeWhile { it.startsWith("|") }
            require(tableLines.size >= 3) { "the '### Servers tested' section has no table" }
            fun cells(line: String) = line.trim().removePrefix("|").removeSuffix("|").split(" | ").map(String::trim)
            val header = cells(tableLines[0])
            val rows =
                tableLines.drop(2).associate { line ->
                    val cells = cells(line)
                    require(cells.size == header.size) { "a row of the servers table has ${cells.size} cells, the header ${header.size}: $line" }
                    cells[0] to header.zip(cells).drop(2).toMap()
                }
            for ((server, row) in rows) {
                for ((column, cell) in row) require(cell == "yes" || cell == "no") { "servers table, $server, '$column': '$cell' is not yes or no" }
            }
            return ServerTable(header.drop(2), rows)
        }
    }
}

package dev.redlock.testing

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.collections.shouldNotContain
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldStartWith
import java.nio.file.Files
import java.nio.file.Paths
import java.sql.SQLException
import kotlin.concurrent.thread

class PostgresServerTest : FunSpec({
    // Started on first use: the compatibility tier (tests tagged compat) builds this spec and runs none of it.
    val started = lazy { PostgresServer.start() }
    val pg by started
    afterSpec { if (started.isInitialized()) pg.close() }

    test("the server accepts the superuser through dataSource() and jdbcUrl(), on loopback") {
        pg.jdbcUrl() shouldBe "jdbc:postgresql://127.0.0.1:${pg.port}/postgres"
        pg.dataSource().connection.use { c ->
            c.createStatement().executeQuery("SELECT current_user, inet_server_addr()::text").use { rs ->
                rs.next()
                rs.getString(1) shouldBe "postgres"
                rs.getString(2) shouldStartWith "127.0.0.1"
            }
        }
        pg.serverVersion.isNotEmpty() shouldBe true
        pg.query("SELECT 1 + 1").single().single() shouldBe 2
    }

    test("a wrong password is refused by the server, with its own message") {
        val e = shouldThrow<SQLException> { pg.dataSource("postgres", "wrong").connection.close() }
        e.message!! shouldContain "password authentication failed"
    }

    test("terminateSession ends a client's session as pg_terminate_backend does; sessions() no longer lists it") {
        pg.dataSource().connection.use { c ->
            val pid = c.createStatement().executeQuery("SELECT pg_backend_pid()").use { it.next(); it.getInt(1) }
            pg.sessions().map { it.pid } shouldContain pid
            pg.terminateSession(pid) shouldBe true
            val e = shouldThrow<SQLException> { c.createStatement().execute("SELECT 1") }
            e.message!!.lowercase() shouldContain "terminat"
            pg.sessions().map { it.pid } shouldNotContain pid
        }
        pg.terminateSession(999_999) shouldBe false
    }

    test("a user made with createUser may connect but not create tables, nor read what is not granted") {
        pg.createUser("limited", "secret")
        pg.execute("CREATE TABLE private_data (x int)")
        pg.dataSource("limited", "secret").connection.use { c ->
            shouldThrow<SQLException> { c.createStatement().execute("CREATE TABLE mine (x int)") }.message!! shouldContain "permission denied"
            shouldThrow<SQLException> { c.createStatement().execute("SELECT * FROM private_data") }.message!! shouldContain "permission denied"
        }
        pg.execute("DROP TABLE private_data")
        shouldThrow<IllegalArgumentException> { pg.createUser("Robert'); DROP", "x") }
    }

    test("a bad statement names the statement and keeps the server's message") {
        val e = shouldThrow<PostgresServerException> { pg.execute("SELEKT 1") }
        e.message!! shouldContain "'SELEKT 1' failed"
        e.message!! shouldContain "syntax error"
    }

    test("kill crashes the server: sessions are cut; restart brings it back on the same port with the data") {
        pg.execute("CREATE TABLE kept (x int)")
        pg.execute("INSERT INTO kept VALUES (7)")
        val port = pg.port
        val c = pg.dataSource().connection
        pg.kill()
        pg.isRunning shouldBe false
        shouldThrow<SQLException> { c.createStatement().execute("SELECT 1") }
        c.close()
        shouldThrow<PostgresServerException> { pg.query("SELECT 1") }.message!! shouldContain "not running"
        pg.restart()
        pg.port shouldBe port
        pg.query("SELECT x FROM kept").single().single() shouldBe 7
        pg.execute("DROP TABLE kept")
    }

    test("restart of a running server ends every session and keeps the port") {
        val c = pg.dataSource().connection
        pg.restart()
        shouldThrow<SQLException> { c.createStatement().execute("SELECT 1") }
        c.close()
        pg.query("SELECT 1").single().single() shouldBe 1
    }

    test("pause freezes the server: a statement with a network timeout times out; resume lets it answer again") {
        pg.dataSource().connection.use { c ->
            pg.pause()
            try {
                pg.isPaused shouldBe true
                c.setNetworkTimeout({ thread { it.run() } }, 300)
                shouldThrow<SQLException> { c.createStatement().execute("SELECT 1") }
            } finally {
                pg.resume()
            }
        }
        pg.isPaused shouldBe false
        pg.query("SELECT 1").single().single() shouldBe 1
    }

    test("a bin directory without the binaries is refused with a message naming what is missing") {
        val e = shouldThrow<PostgresServerException> { PostgresServer.builder().binDirectory(Paths.get("/nonexistent")).start() }
        e.message!! shouldContain "initdb from PostgresServer.builder().binDirectory(...) is missing or not executable: /nonexistent/initdb"
    }

    test("settings that the server owns are refused by the builder") {
        shouldThrow<IllegalArgumentException> { PostgresServer.builder().setting("port", "1") }.message!! shouldContain "port"
    }

    test("the installed PostgreSQL (Debian's /usr/lib/postgresql) serves as well, when present")
        .config(enabled = Files.isDirectory(Paths.get("/usr/lib/postgresql"))) {
            PostgresServer.builder().binaries(PostgresServer.Binaries.INSTALLED).start().use { installed ->
                installed.binarySource shouldContain "installed"
                installed.query("SELECT 1").single().single() shouldBe 1
            }
        }

    test("close stops every process of the server and deletes its directory") {
        val other = PostgresServer.start()
        val dir = Paths.get(other.query("SHOW data_directory").single().single() as String).parent
        other.dataSource().connection.use { c ->
            val backend = c.createStatement().executeQuery("SELECT pg_backend_pid()").use { it.next(); it.getLong(1) }
            other.close()
            ProcessHandle.of(backend).map { it.isAlive }.orElse(false) shouldBe false
        }
        other.isRunning shouldBe false
        Files.exists(dir) shouldBe false
        shouldThrow<IllegalStateException> { other.query("SELECT 1") }
        other.close()
        other.sessionsOrEmpty().shouldBeEmpty()
    }
})

private fun PostgresServer.sessionsOrEmpty(): List<PostgresServer.Session> =
    try {
        sessions()
    } catch (_: IllegalStateException) {
        emptyList()
    }

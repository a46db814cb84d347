package dev.redlock.kotest

import dev.redlock.testing.PostgresServer
import io.kotest.core.annotation.EnabledIf
import io.kotest.core.extensions.install
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.util.concurrent.CopyOnWriteArrayList

// Specs with a PostgreSQL server, as users write them, run one at a time by PostgresExtensionTest,
// which then checks what the extension did. They record what they were handed in RecordedServers.

/** What the PostgreSQL case specs were handed. */
object RecordedServers {
    val servers: MutableList<PostgresServer> = CopyOnWriteArrayList()

    fun record(server: PostgresServer) {
        if (servers.none { it === server }) servers += server
    }
}

@EnabledIf(HarnessOnly::class)
class PostgresKillCase :
    FunSpec({
        val postgres = install(PostgresExtension()) { server { setting("work_mem", "5MB") } }

        test("first kills the server") {
            RecordedServers.record(postgres.server)
            postgres.server.query("SHOW work_mem").single().single() shouldBe "5MB"
            postgres.server.kill()
        }

        test("then finds it running again") {
            RecordedServers.record(postgres.server)
            postgres.dataSource().connection.use { it.createStatement().execute("SELECT 1") }
        }
    })

@EnabledIf(HarnessOnly::class)
class PostgresFailingCase :
    FunSpec({
        val postgres = install(PostgresExtension())

        test("fails on purpose") {
            RecordedServers.record(postgres.server)
            throw AssertionError("this test fails on purpose")
        }
    })

@EnabledIf(HarnessOnly::class)
class PostgresUnusedCase :
    FunSpec({
        install(PostgresExtension())

        test("does not touch the server") {}
    })

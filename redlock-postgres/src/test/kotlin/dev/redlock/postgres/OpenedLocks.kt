package dev.redlock.postgres

import dev.redlock.coroutines.DistributedLocks
import dev.redlock.testing.PostgresServer
import io.kotest.matchers.shouldBe
import javax.sql.DataSource

/**
 * The `PostgresLocks` a spec opened over [pg]: [closeAllAndCheck] (after each test) closes them
 * and checks that every lease was released with its session, leaving no advisory lock behind.
 */
internal class OpenedLocks(private val pg: PostgresServer) {
    private val opened = ArrayList<DistributedLocks>()

    fun open(dataSource: DataSource = pg.dataSource(), configure: PostgresLockConfig.Builder.() -> Unit = {}): DistributedLocks =
        PostgresLocks.create(PostgresLockConfig.builder(dataSource).apply(configure).build()).also { opened += it }

    fun closeAllAndCheck() {
        opened.forEach { it.close() }
        opened.clear()
        pg.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").single().single() shouldBe 0L
    }
}

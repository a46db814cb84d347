package dev.redlock.postgres

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterFailureException
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.testing.PostgresServer
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeInstanceOf
import java.lang.reflect.InvocationTargetException
import java.lang.reflect.Proxy
import java.sql.Connection
import java.time.Duration
import java.util.concurrent.atomic.AtomicInteger
import javax.sql.DataSource
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout

/** What only the PostgreSQL backend does: sessions, the server's own expiry, NOTIFY, its errors. */
class PostgresLocksTest : FunSpec({
    val pg = PostgresServer.start()
    afterSpec { pg.close() }

    val opened = OpenedLocks(pg)
    fun locks(dataSource: DataSource = pg.dataSource(), configure: PostgresLockConfig.Builder.() -> Unit = {}): DistributedLocks =
        opened.open(dataSource, configure)

    afterEach { opened.closeAllAndCheck() }

    test("two DistributedLocks over two data sources exclude each other") {
        val a = locks()
        val b = locks()
        val inside = AtomicInteger()
        val overlaps = AtomicInteger()
        coroutineScope {
            repeat(8) { i ->
                launch {
                    val locks = if (i % 2 == 0) a else b
                    repeat(5) {
                        locks.withLock("shared", waitTime = 20.seconds) {
                            if (inside.incrementAndGet() != 1) overlaps.incrementAndGet()
                            delay(2)
                            inside.decrementAndGet()
                        }
                    }
                }
            }
        }
        overlaps.get() shouldBe 0
    }

    test("pg_terminate_backend of the holder's session cancels the block with LockLostException") {
        val locks = locks { leaseTime(Duration.ofMillis(900)) }
        val entered = CompletableDeferred<Unit>()
        coroutineScope {
            val section = async {
                shouldThrow<LockLostException> {
                    locks.withLock("victim") {
                        entered.complete(Unit)
                        awaitCancellation()
                    }
                }
            }
            entered.await()
            val holders = pg.query("SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory'").map { (it[0] as Number).toInt() }
            holders shouldHaveSize 1
            pg.terminateSession(holders.single()) shouldBe true
            val lost = withTimeout(5.seconds) { section.await() }
            lost.message.shouldNotBeNull()
        }
        // The lock is free again for others.
        locks().tryAcquire("victim").shouldNotBeNull().release()
    }

    test("a terminated holder's session is noticed by the node's session check, not by a renewal") {
        // A lease of two minutes: the first renewal (and its check) comes after 40 s, later than the
        // test waits; only the node's periodic look at pg_stat_activity can end the block in time.
        val locks = locks { leaseTime(Duration.ofMinutes(2)) }
        val entered = CompletableDeferred<Unit>()
        coroutineScope {
            val section = async {
                shouldThrow<LockLostException> {
                    locks.withLock("long-lease") {
                        entered.complete(Unit)
                        awaitCancellation()
                    }
                }
            }
            entered.await()
            val holder = pg.query("SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory'").map { (it[0] as Number).toInt() }.single()
            pg.terminateSession(holder) shouldBe true
            val lost = withTimeout(30.seconds) { section.await() }
            lost.reason() shouldBe LockLostException.Reason.NOT_HELD
        }
        locks().tryAcquire("long-lease").shouldNotBeNull().release()
    }

    test("a lease from acquire() that is never extended is given up after its lease time") {
        val a = locks()
        val b = locks()
        a.acquire("forgotten", leaseTime = 400.milliseconds)
        b.tryAcquire("forgotten") shouldBe null
        b.acquire("forgotten", waitTime = 5.seconds).release()
    }

    // A waiter whose retry pause (30 to 90 s) is far longer than its wait: without a notice it tries
    // again only when its wait time ends, and by then a third holder has the lock.
    suspend fun waitThroughRelease(holder: DistributedLocks, waiter: DistributedLocks, third: DistributedLocks): Boolean {
        val lease = holder.acquire("notified")
        return coroutineScope {
            val waiting = async { runCatching { waiter.acquire("notified", waitTime = 6.seconds) } }
            delay(1_000) // the waiter made its first attempt and listens (a second leaves room for a loaded machine)
            lease.release()
            delay(2_000)
            val late = third.tryAcquire("notified", leaseTime = 10.seconds)
            val got = waiting.await()
            got.getOrNull()?.release()
            late?.release()
            (got.isSuccess && late == null).also { if (!it) got.exceptionOrNull()?.shouldBeInstanceOf<LockNotAcquiredException>() }
        }
    }

    test("a waiter in another DistributedLocks is woken by the release's NOTIFY, not by its retry pause") {
        waitThroughRelease(locks(), locks { retryDelay(Duration.ofSeconds(60)) }, locks()) shouldBe true
    }

    test("the same waiter does not get in when the release is announced on another channel (so the check above can fail)") {
        waitThroughRelease(locks { notifyChannel("elsewhere") }, locks { retryDelay(Duration.ofSeconds(60)) }, locks()) shouldBe false
    }

    test("fencing tokens grow across two DistributedLocks, from the counter table") {
        val a = locks { fencing(true) }
        val b = locks { fencing(true) }
        val first = a.withLock("fenced") { it.fencingToken!! }
        val second = b.withLock("fenced") { it.fencingToken!! }
        second shouldBeGreaterThan first
    }

    test("a wrong password is refused at create, naming the user") {
        pg.createUser("lockuser", "right")
        val e = shouldThrow<MasterFailureException> { locks(pg.dataSource("lockuser", "wrong")) }
        e.kind() shouldBe MasterFailureException.Kind.AUTHENTICATION
        e.message!! shouldContain "password authentication failed for user \"lockuser\""
    }

    test("a fencing table the user may not create is refused at create, saying what to run") {
        pg.createUser("nofence", "pw")
        val e = shouldThrow<MasterFailureException> { locks(pg.dataSource("nofence", "pw")) { fencing(true); fencingTable("nofence_table") } }
        e.kind() shouldBe MasterFailureException.Kind.PERMISSION
        e.message!! shouldContain "creating the fencing table nofence_table failed: ERROR: permission denied for schema public"
        e.message!! shouldContain "CREATE TABLE nofence_table (name text PRIMARY KEY, value bigint NOT NULL); GRANT SELECT, INSERT, UPDATE ON nofence_table"
        // Without fencing the same user locks fine: advisory locks need no table.
        locks(pg.dataSource("nofence", "pw")).withLock("plain") { it.fencingToken } shouldBe null
    }

    test("an unreachable database: create succeeds, each lock call fails naming the refused connection") {
        val closedPort = java.net.ServerSocket(0).use { it.localPort }
        val ds = org.postgresql.ds.PGSimpleDataSource().apply {
            serverNames = arrayOf("127.0.0.1")
            portNumbers = intArrayOf(closedPort)
            user = "postgres"
            connectTimeout = 2
        }
        val locks = locks(ds) { waitTime(Duration.ofMillis(500)) }
        val e = shouldThrow<LockNotAcquiredException> { locks.acquire("nowhere") }
        e.message!! shouldContain "postgresql://127.0.0.1:$closedPort/"
        e.message!! shouldContain "Connection to 127.0.0.1:$closedPort refused"
    }

    test("a data source that does not keep its session between statements (a pooler in transaction mode) is refused") {
        val e = shouldThrow<MasterFailureException> { locks(SessionSwitching(pg.dataSource())) }
        e.kind() shouldBe MasterFailureException.Kind.PERMISSION
        e.message!! shouldContain "do not keep one PostgreSQL session from one statement to the next"
        e.message!! shouldContain "PgBouncer"
    }

    test("bad settings are refused at build(), naming the setting") {
        shouldThrow<IllegalArgumentException> { PostgresLockConfig.builder(pg.dataSource()).fencingTable("x; DROP TABLE y").build() }
            .message!! shouldContain "fencingTable expected to be a plain SQL identifier"
        shouldThrow<IllegalArgumentException> { PostgresLockConfig.builder(pg.dataSource()).leaseTime(Duration.ZERO).build() }
            .message!! shouldContain "leaseTime"
    }
})

/**
 * Hands each statement to the other of two sessions, as PgBouncer in transaction mode may: what
 * one autocommit statement takes, the next one does not see.
 */
private class SessionSwitching(private val real: DataSource) : DataSource by real {
    override fun getConnection(): Connection {
        val sessions = listOf(real.connection, real.connection)
        var next = 0
        return Proxy.newProxyInstance(javaClass.classLoader, arrayOf(Connection::class.java)) { _, method, args ->
            val target =
                when (method.name) {
                    "createStatement", "prepareStatement" -> sessions[next++ % 2]
                    else -> sessions[0]
                }
            if (method.name == "close" || method.name == "abort") sessions[1].let { s -> runCatching { s.close() } }
            try {
                method.invoke(target, *(args ?: emptyArray()))
            } catch (e: InvocationTargetException) {
                throw e.targetException
            }
        } as Connection
    }
}

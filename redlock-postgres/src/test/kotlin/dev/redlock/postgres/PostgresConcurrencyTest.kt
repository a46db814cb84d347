package dev.redlock.postgres

import dev.redlock.core.LockLostException
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.Lease
import dev.redlock.postgres.internal.AdvisoryKeys
import dev.redlock.testing.PostgresServer
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.lang.reflect.InvocationTargetException
import java.lang.reflect.Proxy
import java.sql.Connection
import java.sql.PreparedStatement
import java.time.Duration
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import javax.sql.DataSource
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout

/**
 * Database calls of different leases at the same time ([PostgresLockConfig.concurrency]): a stalled
 * statement holds up only its own lease's calls, exclusion holds under a burst of every kind, and a
 * lost session still cancels its block while other leases are held on other threads.
 */
class PostgresConcurrencyTest : FunSpec({
    // The burst below holds up to about a hundred sessions at once (readers share a lock, each with its own session).
    val pg = PostgresServer.builder().setting("max_connections", "300").start()
    afterSpec { pg.close() }

    val opened = OpenedLocks(pg)
    fun locks(dataSource: DataSource = pg.dataSource(), configure: PostgresLockConfig.Builder.() -> Unit = {}): DistributedLocks =
        opened.open(dataSource, configure)

    afterEach { opened.closeAllAndCheck() }

    /**
     * Holds the fencing counter row of mutex "slow" in an open transaction of another session, so
     * that a fenced attempt on "slow" blocks in its fencing draw (a statement waiting for a row lock);
     * runs [during] (in the scope of that attempt) with the fencing statements in flight, then ends
     * the transaction: the attempt gets its lock and a fencing token; the scope ends when [during]'s
     * children do.
     */
    suspend fun withStalledFenceDraw(table: String, concurrency: Int, during: suspend CoroutineScope.(DistributedLocks, AtomicInteger) -> Unit) {
        pg.execute("CREATE TABLE IF NOT EXISTS $table (name text PRIMARY KEY, value bigint NOT NULL)")
        val watched = StatementWatch(pg.dataSource()) { it.startsWith("INSERT INTO $table") }
        // A long node timeout: the stalled draw must not end by its own bound while the test looks.
        val locks = locks(watched) { fencingTable(table); concurrency(concurrency); leaseTime(Duration.ofSeconds(60)); nodeTimeout(Duration.ofSeconds(20)) }
        val blocker = pg.dataSource().connection
        try {
            blocker.autoCommit = false
            blocker.createStatement().use {
                it.execute("INSERT INTO $table (name, value) VALUES ('${AdvisoryKeys.MUTEX}:redlock:slow', 0) ON CONFLICT (name) DO UPDATE SET value = $table.value")
            }
            coroutineScope {
                val slow = async { locks.tryAcquire("slow", fencing = true) }
                withTimeout(10.seconds) { while (watched.inFlight.get() == 0) delay(5.milliseconds) }
                pg.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO $table%'").single().single() shouldBe 1L
                during(locks, watched.inFlight)
                blocker.rollback()
                // The draw gets the row, the stalled attempt its lock and a fencing token.
                withTimeout(15.seconds) { slow.await() }.shouldNotBeNull().let { lease ->
                    lease.fencingToken.shouldNotBeNull()
                    lease.release()
                }
            }
        } finally {
            runCatching { blocker.rollback() }
            runCatching { blocker.close() }
        }
    }

    test("a statement stalled on one lease's session does not hold up other callers: they acquire while it is still blocked") {
        withStalledFenceDraw("stall_fence", concurrency = 8) { locks, draws ->
            // Sixteen callers on other resources: the first to get its lock shows progress beside the stalled
            // call (a resource's thread is fixed by a hash of its name: several of these differ from "slow"'s).
            val first = CompletableDeferred<Unit>()
            repeat(16) { i -> launch { locks.acquire("other-$i", waitTime = 30.seconds).release(); first.complete(Unit) } }
            withTimeout(10.seconds) { first.await() }
            draws.get() shouldBe 1 // the stalled fencing draw has not returned
        }
    }

    test("with concurrency 1 the same callers wait behind the stalled statement (so the check above can fail)") {
        withStalledFenceDraw("stall_fence_one", concurrency = 1) { locks, draws ->
            val got = AtomicInteger()
            // They get in once the stall ends.
            repeat(4) { i -> launch { locks.acquire("other-$i", waitTime = 60.seconds).release(); got.incrementAndGet() } }
            delay(1_000.milliseconds)
            got.get() shouldBe 0
            draws.get() shouldBe 1
        }
    }

    test("a burst of 200 callers over mutexes, reader-writer locks and semaphores from two DistributedLocks: never an overlap, never a failed call") {
        val a = locks()
        val b = locks()
        val mutexInside = ConcurrentHashMap<String, AtomicInteger>()
        val readers = ConcurrentHashMap<String, AtomicInteger>()
        val writers = ConcurrentHashMap<String, AtomicInteger>()
        val permits = ConcurrentHashMap<String, AtomicInteger>()
        val violations = Collections.synchronizedList(ArrayList<String>())
        fun counter(map: ConcurrentHashMap<String, AtomicInteger>, key: String) = map.computeIfAbsent(key) { AtomicInteger() }
        coroutineScope {
            repeat(200) { i ->
                launch {
                    val locks = if (i % 2 == 0) a else b
                    repeat(3) { round ->
                        when ((i + round) % 4) {
                            0, 1 -> {
                                val r = "m${(i + round) % 20}"
                                locks.withLock(r, waitTime = 60.seconds) {
                                    if (counter(mutexInside, r).incrementAndGet() != 1) violations += "two holders of mutex $r"
                                    delay(1.milliseconds)
                                    counter(mutexInside, r).decrementAndGet()
                                }
                            }
                            2 -> {
                                val r = "rw${i % 5}"
                                if (i % 3 == 0) {
                                    locks.withWriteLock(r, waitTime = 60.seconds, writerPriority = false) {
                                        if (counter(writers, r).incrementAndGet() != 1) violations += "two writers of $r"
                                        if (counter(readers, r).get() != 0) violations += "a writer of $r with readers inside"
                                        delay(1.milliseconds)
                                        counter(writers, r).decrementAndGet()
                                    }
                                } else {
                                    locks.withReadLock(r, waitTime = 60.seconds) {
                                        counter(readers, r).incrementAndGet()
                                        if (counter(writers, r).get() != 0) violations += "a reader of $r with a writer inside"
                                        delay(1.milliseconds)
                                        counter(readers, r).decrementAndGet()
                                    }
                                }
                            }
                            else -> {
                                val r = "sem${i % 3}"
                                locks.withPermit(r, 3, waitTime = 60.seconds) {
                                    if (counter(permits, r).incrementAndGet() > 3) violations += "more than 3 holders of semaphore $r"
                                    delay(1.milliseconds)
                                    counter(permits, r).decrementAndGet()
                                }
                            }
                        }
                    }
                }
            }
        }
        violations.shouldBeEmpty()
    }

    test("pg_terminate_backend of one holder's session cancels its block, while holders on other threads keep their locks") {
        val locks = locks { leaseTime(Duration.ofSeconds(3)) }
        val entered = AtomicInteger()
        val leases = Collections.synchronizedList(ArrayList<Lease>())
        val finish = CompletableDeferred<Unit>()
        coroutineScope {
            val others = (1..12).map { i ->
                async {
                    locks.withLock("kept-$i") { lease ->
                        leases += lease
                        entered.incrementAndGet()
                        finish.await()
                        lease.isValid
                    }
                }
            }
            val victim = async {
                shouldThrow<LockLostException> {
                    locks.withLock("victim") {
                        entered.incrementAndGet()
                        awaitCancellation()
                    }
                }
            }
            withTimeout(10.seconds) { while (entered.get() < 13) delay(5.milliseconds) }
            val key = AdvisoryKeys.lock(AdvisoryKeys.MUTEX, "redlock:victim")
            val pids = pg.query(
                "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted " +
                    "AND ((classid::bigint << 32) | objid::bigint) = $key",
            ).map { (it[0] as Number).toInt() }
            pids shouldHaveSize 1
            pg.terminateSession(pids.single()) shouldBe true
            val lost = withTimeout(10.seconds) { victim.await() }
            lost.reason() shouldBe LockLostException.Reason.NOT_HELD
            // The others are still held: each extends (a statement on its own session) and is valid after a renewal's time.
            leases.forEach { it.extend() }
            delay(1_500.milliseconds)
            finish.complete(Unit)
            others.awaitAll().forEach { it shouldBe true }
        }
        locks.tryAcquire("victim").shouldNotBeNull().release()
    }

    test("concurrency out of range is refused at build(), naming the setting, the range and the value") {
        shouldThrow<IllegalArgumentException> { PostgresLockConfig.builder(pg.dataSource()).concurrency(0).build() }
            .message shouldBe "concurrency must be between 1 and 64, but was 0"
        shouldThrow<IllegalArgumentException> { PostgresLockConfig.builder(pg.dataSource()).concurrency(65).build() }
            .message!! shouldContain "but was 65"
        PostgresLockConfig.builder(pg.dataSource()).build().concurrency shouldBe PostgresLockConfig.DEFAULT_CONCURRENCY
    }
})

/**
 * A data source whose connections count the prepared statements matching [watch] that are running
 * now ([inFlight]): entered `execute*` and not yet returned on the calling thread.
 */
private class StatementWatch(private val real: DataSource, private val watch: (String) -> Boolean) : DataSource by real {
    val inFlight = AtomicInteger()

    override fun getConnection(): Connection = wrap(real.connection)

    private fun wrap(connection: Connection): Connection =
        Proxy.newProxyInstance(javaClass.classLoader, arrayOf(Connection::class.java)) { _, method, args ->
            val result = invoke(connection, method, args)
            if (method.name == "prepareStatement" && watch(args[0] as String)) counting(result as PreparedStatement) else result
        } as Connection

    private fun counting(statement: PreparedStatement): PreparedStatement =
        Proxy.newProxyInstance(javaClass.classLoader, arrayOf(PreparedStatement::class.java)) { _, method, args ->
            if (method.name.startsWith("execute")) {
                inFlight.incrementAndGet()
                try {
                    invoke(statement, method, args)
                } finally {
                    inFlight.decrementAndGet()
                }
            } else {
                invoke(statement, method, args)
            }
        } as PreparedStatement

    private fun invoke(target: Any, method: java.lang.reflect.Method, args: Array<Any?>?): Any? =
        try {
            method.invoke(target, *(args ?: emptyArray()))
        } catch (e: InvocationTargetException) {
            throw e.targetException
        }
}

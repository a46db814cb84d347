package dev.redlock.postgres

import dev.redlock.core.MasterFailureException
import dev.redlock.postgres.internal.AdvisoryKeys
import dev.redlock.postgres.internal.AdvisoryStore
import dev.redlock.postgres.internal.Attempt
import dev.redlock.postgres.internal.HoldMode
import dev.redlock.postgres.internal.ReleaseNotices
import dev.redlock.testing.PostgresServer
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeInstanceOf
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * The PostgreSQL mechanics below the engine, against a real server: what one attempt, a renewal
 * check and a release do to advisory locks, sessions and the fencing table.
 */
class AdvisoryStoreTest : FunSpec({
    val pg = PostgresServer.start()
    afterSpec { pg.close() }

    val stores = ArrayList<AdvisoryStore>()
    fun store(table: String = "redlock_fence", user: String? = null, password: String? = null): AdvisoryStore {
        val ds = if (user == null) pg.dataSource() else pg.dataSource(user, password!!)
        return AdvisoryStore(ds, "postgresql://127.0.0.1:${pg.port}/postgres", table, "redlock_release").also { stores += it }
    }
    afterEach {
        stores.forEach { it.close() }
        stores.clear()
        // Nothing of a test outlives it: every advisory lock ended with its session.
        pg.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").single().single() shouldBe 0L
    }

    fun AdvisoryStore.mutex(vararg keys: String, token: String, fencing: Boolean = false, lease: Long = 10_000) =
        acquire(HoldMode.MUTEX, AdvisoryKeys.MUTEX, keys.toList(), token, lease, fencing, 0, 2_000)

    test("a mutex held through one DataSource refuses another until released; all or nothing on several keys") {
        val a = store()
        val b = store()
        a.mutex("redlock:x", token = "A").shouldBeInstanceOf<Attempt.Granted>()
        b.mutex("redlock:y", "redlock:x", token = "B") shouldBe Attempt.Refused
        // B took nothing: y is free for a third holder.
        val c = store()
        c.mutex("redlock:y", token = "C").shouldBeInstanceOf<Attempt.Granted>()
        c.release("C", AdvisoryKeys.MUTEX, listOf("redlock:y"), null, 2_000) shouldBe true
        a.release("A", AdvisoryKeys.MUTEX, listOf("redlock:x"), null, 2_000) shouldBe true
        a.release("A", AdvisoryKeys.MUTEX, listOf("redlock:x"), null, 2_000) shouldBe false
        b.mutex("redlock:y", "redlock:x", token = "B2").shouldBeInstanceOf<Attempt.Granted>()
        b.release("B2", AdvisoryKeys.MUTEX, listOf("redlock:x"), null, 2_000) shouldBe true
    }

    test("two leases of one store never share a session: the second holder of a key is refused") {
        val a = store()
        a.mutex("redlock:x", token = "A1").shouldBeInstanceOf<Attempt.Granted>()
        a.mutex("redlock:x", token = "A2") shouldBe Attempt.Refused
        a.sessionPid("A1") shouldBe a.sessionPid("A1")
        a.release("A1", AdvisoryKeys.MUTEX, listOf("redlock:x"), null, 2_000)
    }

    test("readers share a reader-writer lock; a writer excludes readers and readers exclude a writer") {
        val a = store()
        val b = store()
        fun read(s: AdvisoryStore, token: String) = s.acquire(HoldMode.READ, AdvisoryKeys.READ_WRITE, listOf("redlock:rw"), token, 10_000, false, 0, 2_000)
        fun write(s: AdvisoryStore, token: String) = s.acquire(HoldMode.WRITE, AdvisoryKeys.READ_WRITE, listOf("redlock:rw"), token, 10_000, false, 0, 2_000)
        read(a, "R1").shouldBeInstanceOf<Attempt.Granted>()
        read(b, "R2").shouldBeInstanceOf<Attempt.Granted>()
        write(b, "W") shouldBe Attempt.Refused
        a.release("R1", AdvisoryKeys.READ_WRITE, listOf("redlock:rw"), null, 2_000)
        b.release("R2", AdvisoryKeys.READ_WRITE, listOf("redlock:rw"), null, 2_000)
        write(b, "W").shouldBeInstanceOf<Attempt.Granted>()
        read(a, "R3") shouldBe Attempt.Refused
        // A mutex of the same name is another lock.
        a.mutex("redlock:rw", token = "M").shouldBeInstanceOf<Attempt.Granted>()
    }

    test("a semaphore admits as many holders as it has permits, and tells a caller with another number") {
        val s = List(3) { store() }
        fun permit(i: Int, token: String, permits: Int = 2) =
            s[i].acquire(HoldMode.PERMIT, "s", listOf("redlock:sem"), token, 10_000, false, permits, 2_000)
        permit(0, "P1").shouldBeInstanceOf<Attempt.Granted>()
        permit(1, "P2").shouldBeInstanceOf<Attempt.Granted>()
        permit(2, "P3") shouldBe Attempt.Refused
        val differ = permit(2, "P4", permits = 5)
        differ.shouldBeInstanceOf<Attempt.PermitsDiffer>().holdersPermits shouldBe 2
        s[0].release("P1", "s", listOf("redlock:sem"), null, 2_000)
        permit(2, "P3").shouldBeInstanceOf<Attempt.Granted>()
    }

    test("fencing numbers grow per resource, and a lease on several resources leaves the largest on each") {
        val a = store()
        val first = a.mutex("redlock:f1", token = "F1", fencing = true).shouldBeInstanceOf<Attempt.Granted>().fence!!
        a.release("F1", AdvisoryKeys.MUTEX, listOf("redlock:f1"), null, 2_000)
        val second = a.mutex("redlock:f1", token = "F2", fencing = true).shouldBeInstanceOf<Attempt.Granted>().fence!!
        (second > first) shouldBe true
        a.release("F2", AdvisoryKeys.MUTEX, listOf("redlock:f1"), null, 2_000)
        val both = a.mutex("redlock:f2", "redlock:f1", token = "F3", fencing = true).shouldBeInstanceOf<Attempt.Granted>().fence!!
        both shouldBe second + 1
        a.release("F3", AdvisoryKeys.MUTEX, listOf("redlock:f1"), null, 2_000)
        val onlyF2 = a.mutex("redlock:f2", token = "F4", fencing = true).shouldBeInstanceOf<Attempt.Granted>().fence!!
        onlyF2 shouldBe both + 1
        a.release("F4", AdvisoryKeys.MUTEX, listOf("redlock:f2"), null, 2_000)
    }

    test("a session ended by pg_terminate_backend ends the hold: the renewal check answers not held") {
        val a = store()
        a.mutex("redlock:t", token = "T").shouldBeInstanceOf<Attempt.Granted>()
        a.extend("T", 10_000, 2_000) shouldBe true
        pg.terminateSession(a.sessionPid("T")!!) shouldBe true
        a.extend("T", 10_000, 2_000) shouldBe false
        a.heldCount shouldBe 0
        store().mutex("redlock:t", token = "U").shouldBeInstanceOf<Attempt.Granted>()
    }

    test("a hold not renewed within its lease time is ended by the server itself (idle_session_timeout)") {
        val a = store()
        a.mutex("redlock:idle", token = "I", lease = 300).shouldBeInstanceOf<Attempt.Granted>()
        val b = store()
        b.mutex("redlock:idle", token = "J") shouldBe Attempt.Refused
        var granted = false
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5)
        while (!granted && System.nanoTime() < deadline) {
            granted = b.mutex("redlock:idle", token = "J") is Attempt.Granted
            if (!granted) Thread.sleep(50)
        }
        granted shouldBe true
        a.extend("I", 300, 2_000) shouldBe false
    }

    test("a release announces itself on the channel to listeners in other sessions") {
        val heard = LinkedBlockingQueue<Triple<String, String, String>>()
        val notices = ReleaseNotices(pg.dataSource(), "pg", "redlock_release") { f, k, n -> heard.add(Triple(f, k, n)) }
        try {
            notices.watch(AdvisoryKeys.MUTEX, "redlock:n")
            notices.isListening(5_000) shouldBe true
            val a = store()
            a.mutex("redlock:n", token = "N").shouldBeInstanceOf<Attempt.Granted>()
            a.mutex("redlock:other", token = "O").shouldBeInstanceOf<Attempt.Granted>()
            a.release("O", AdvisoryKeys.MUTEX, listOf("redlock:other"), "id-0", 2_000)
            a.release("N", AdvisoryKeys.MUTEX, listOf("redlock:n"), "id-1", 2_000)
            heard.poll(5, TimeUnit.SECONDS) shouldBe Triple(AdvisoryKeys.MUTEX, "redlock:n", "id-1")
        } finally {
            notices.close()
        }
    }

    test("a wrong password, an unreachable server and a fencing table without permission are each named") {
        pg.createUser("locker", "right")
        val wrong = shouldThrow<MasterFailureException> { store(user = "locker", password = "wrong").open(2_000, false) }
        wrong.kind() shouldBe MasterFailureException.Kind.AUTHENTICATION
        wrong.message!! shouldContain "password authentication failed for user \"locker\""

        // The user may not create the table in schema public...
        val create = shouldThrow<MasterFailureException> { store(table = "locker_fence", user = "locker", password = "right").open(2_000, true) }
        create.kind() shouldBe MasterFailureException.Kind.PERMISSION
        create.message!! shouldContain "creating the fencing table locker_fence failed: ERROR: permission denied for schema public"
        create.message!! shouldContain "GRANT SELECT, INSERT, UPDATE ON locker_fence"

        // ...nor write a table an administrator made without granting it.
        pg.execute("CREATE TABLE admin_fence (name text PRIMARY KEY, value bigint NOT NULL)")
        pg.execute("GRANT SELECT ON admin_fence TO locker")
        val write = shouldThrow<MasterFailureException> { store(table = "admin_fence", user = "locker", password = "right").open(2_000, true) }
        write.kind() shouldBe MasterFailureException.Kind.PERMISSION
        write.message!! shouldContain "the fencing table admin_fence exists, but user locker lacks INSERT, UPDATE on it"
        pg.execute("GRANT INSERT, UPDATE ON admin_fence TO locker")
        store(table = "admin_fence", user = "locker", password = "right").open(2_000, true)

        val closedPort = java.net.ServerSocket(0).use { it.localPort }
        val unreachable = org.postgresql.ds.PGSimpleDataSource().apply {
            serverNames = arrayOf("127.0.0.1")
            portNumbers = intArrayOf(closedPort)
            user = "postgres"
            connectTimeout = 2
        }
        val down = shouldThrow<MasterFailureException> { AdvisoryStore(unreachable, "postgresql://127.0.0.1:$closedPort/postgres", "t", "c").open(2_000, false) }
        down.kind() shouldBe MasterFailureException.Kind.UNREACHABLE
        down.message!! shouldContain "Connection to 127.0.0.1:$closedPort refused"
        pg.execute("DROP TABLE admin_fence")
    }
})

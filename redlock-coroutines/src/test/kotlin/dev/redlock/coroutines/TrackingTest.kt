package dev.redlock.coroutines

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.LockMath
import dev.redlock.testing.RedisFleet
import dev.redlock.testing.TcpProxy
import io.lettuce.core.ClientOptions
import io.lettuce.core.RedisClient
import io.lettuce.core.RedisURI
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.time.Duration as JavaDuration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlinx.coroutines.supervisorScope

/**
 * Loss and release pushed by the server (CLIENT TRACKING): a held key that changes is checked at
 * once, a waited-for key that changes wakes its waiters; a hint, never proof. Times are measured
 * and printed, and asserted only against the renewal interval they must beat (generously).
 */
@Tags("compat")
@OptIn(InternalRedlockApi::class)
class TrackingTest : FunSpec({
    val fleet = sharedFleet(5)

    for (n in listOf(1, 3, 5)) {
        test("N=$n: keys deleted on a majority cancel the block within a round trip, not at the next renewal") {
            // A 6 s lease: the next renewal would come 2 s after the acquisition.
            fleet.redlock(n) { leaseTime(JavaDuration.ofSeconds(6)) }.use { redlock ->
                val inside = CompletableDeferred<Lease>()
                supervisorScope {
                    val holder = async { redlock.withRedlock("tracked") { lease -> inside.complete(lease); awaitCancellation() } }
                    val lease = inside.await()
                    eventually(what = "every master holds the key and tracks it") {
                        (0 until n).all { fleet.keys(it).isNotEmpty() } && redlock.engine.masters.nodes.all { it.tracking() }
                    }
                    delay(100.milliseconds) // the key was read again after the acquisition
                    val deleted = TimeSource.Monotonic.markNow()
                    for (i in 0 until LockMath.quorum(n)) fleet.command(i, "DEL", "redlock:tracked")
                    val loss = shouldThrow<LockLostException> { awaitOrDump(holder) }
                    val declared = lease.times().lossDeclaredAt!!
                    val took = deleted.elapsedNow() - declared.elapsedNow()
                    println("tracking N=$n: a DEL on a majority to the loss declared: $took")
                    loss.reason() shouldBe LockLostException.Reason.NOT_HELD
                    withClue("declared $took after the DEL; the next renewal was due about 2 s after the acquisition") {
                        (took < 1.seconds) shouldBe true
                    }
                }
            }
        }
    }

    test("a key deleted on a minority is checked and the lease stays held") {
        fleet.redlock(3) { leaseTime(JavaDuration.ofSeconds(6)) }.use { redlock ->
            val lease = redlock.acquire("minority")
            eventually(what = "tracked on every master") { redlock.engine.masters.nodes.all { it.tracking() } && (0 until 3).all { fleet.keys(it).isNotEmpty() } }
            val checksBefore = fleet.commandCalls(1, "evalsha")
            fleet.command(0, "DEL", "redlock:minority")
            // The invalidation makes the engine check the lease on every master at once.
            eventually(what = "the lease was checked") { fleet.commandCalls(1, "evalsha") > checksBefore }
            delay(200.milliseconds)
            lease.isValid shouldBe true
            lease.state.value shouldBe LeaseState.HELD
            lease.release()
        }
    }

    test("spurious invalidations lose nothing: our own renewals, and a tracking table that overflows") {
        fleet.redlock(3) { leaseTime(JavaDuration.ofMillis(600)) }.use { redlock ->
            // A table of one key: every other key read pushes the tracked one out, with an invalidation.
            for (i in 0 until 3) fleet.command(i, "CONFIG", "SET", "tracking-table-max-keys", "1")
            try {
                val result = redlock.withRedlock("spurious-a") { a ->
                    redlock.withRedlock("spurious-b") { b ->
                        repeat(10) {
                            delay(200.milliseconds) // renewals of both, each invalidating the other's tracking
                            a.isValid shouldBe true
                            b.isValid shouldBe true
                        }
                        "held throughout"
                    }
                }
                result shouldBe "held throughout"
            } finally {
                for (i in 0 until 3) fleet.command(i, "CONFIG", "SET", "tracking-table-max-keys", "0")
            }
        }
    }

    test("thousands of tracked leases renewed in full batches stay held and tracked, and a key deleted after the renewals still loses its lease") {
        // Before Redis 7.0, each read command a script runs makes the server track every key the
        // script was given: an extend script that read each key on its own took about a second for a
        // full batch of 2048 keys on Redis 6.2, past the node timeout (150 ms here), and lost them all.
        fleet.redlock(1) { leaseTime(JavaDuration.ofSeconds(3)) }.use { redlock ->
            val count = 3000
            val held = java.util.concurrent.atomic.AtomicInteger()
            val leases = java.util.concurrent.ConcurrentHashMap<Int, Lease>()
            val done = CompletableDeferred<Unit>()
            supervisorScope {
                val blocks = (0 until count).map { i ->
                    async {
                        redlock.withRedlock("batch-$i") { lease ->
                            leases[i] = lease
                            held.incrementAndGet()
                            done.await()
                        }
                    }
                }
                eventually(what = "every block holds its lock") { held.get() == count }
                val pexpires = fleet.commandCalls(0, "pexpire")
                // Renewed every second: at least two full rounds in 3.5 s, with room for rounds that
                // a loaded machine starts late.
                delay(3_500.milliseconds)
                withClue("every key renewed twice by batches that read the keys with MGET") {
                    (fleet.commandCalls(0, "pexpire") - pexpires >= 2L * count) shouldBe true
                }
                leases.values.all { it.state.value == LeaseState.HELD } shouldBe true
                val tracked = (fleet.command(0, "INFO", "stats") as String).lineSequence()
                    .first { it.startsWith("tracking_total_keys:") }.substringAfter(':').trim().toLong()
                // A renewal's own writes drop its keys from the tracking table: only the read after
                // them keeps the keys tracked between rounds.
                withClue("keys tracked between renewal rounds: $tracked") { (tracked >= count) shouldBe true }
                val deleted = TimeSource.Monotonic.markNow()
                fleet.command(0, "DEL", "redlock:batch-7")
                shouldThrow<LockLostException> { awaitOrDump(blocks[7]) }
                println("tracking: a DEL after $count leases' renewals to the loss declared: ${deleted.elapsedNow() - leases.getValue(7).times().lossDeclaredAt!!.elapsedNow()}")
                done.complete(Unit)
                blocks.filterIndexed { i, _ -> i != 7 }.forEach { awaitOrDump(it) }
            }
        }
    }

    test("tracking turned off and on (the connections that receive pushes killed and reopened): every lease is checked, none lost") {
        // A 60 s lease: no renewal (every 20 s) comes within the test, so every script call on the
        // masters after the kill is the check.
        fleet.redlock(3) { leaseTime(JavaDuration.ofSeconds(60)) }.use { redlock ->
            val lease = redlock.acquire("retracked")
            eventually(what = "tracked on every master") { redlock.engine.masters.nodes.all { it.tracking() } }
            val checksBefore = (0 until 3).sumOf { fleet.commandCalls(it, "evalsha") }
            // Kills the connection each master redirects its invalidations to (redir= in CLIENT LIST).
            for (i in 0 until 3) {
                val redirects = clientList(fleet, i).mapNotNull { it["redir"]?.toLong()?.takeIf { id -> id > 0 } }
                redirects.size shouldBe 1
                fleet.command(i, "CLIENT", "KILL", "ID", redirects.single().toString())
            }
            eventually(what = "tracking is on again and the lease was checked") {
                redlock.engine.masters.nodes.all { it.tracking() } && (0 until 3).sumOf { fleet.commandCalls(it, "evalsha") } > checksBefore
            }
            lease.state.value shouldBe LeaseState.HELD
            lease.isValid shouldBe true
            lease.release()
        }
    }

    test("a waiter takes the lock when the holder's key expires, long before the holder's lease would have said") {
        fleet.redlock(3) { leaseTime(JavaDuration.ofSeconds(30)).retryDelay(JavaDuration.ofSeconds(30)) }.use { holderSide ->
            fleet.redlock(3) { leaseTime(JavaDuration.ofSeconds(30)).retryDelay(JavaDuration.ofSeconds(30)).waitTime(JavaDuration.ofSeconds(60)) }.use { waiterSide ->
                // A holder that "crashed": it never releases, and its keys expire sooner than the
                // 30 s its lease told the waiter (an administrator shortened them).
                holderSide.acquire("crashed")
                eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it).isNotEmpty() } }
                supervisorScope {
                    val waiter = async { waiterSide.acquire("crashed") }
                    eventually(what = "the waiter waits, tracking the key") { waiterSide.engine.rooms.size == 1 && waiterSide.engine.masters.nodes.all { it.tracking() } }
                    delay(100.milliseconds)
                    val expires = TimeSource.Monotonic.markNow() + 500.milliseconds
                    for (i in 0 until 3) fleet.command(i, "PEXPIRE", "redlock:crashed", "500")
                    val lease = awaitOrDump(waiter, limit = 20.seconds)
                    val after = -expires.elapsedNow()
                    println("tracking: a waiter took an expired holder's lock ${-after} after the expiry")
                    lease.isValid shouldBe true
                    lease.release()
                }
            }
        }
    }

    test("a push that arrives while the check of an earlier push is under way is checked too, not dropped") {
        // Three masters behind proxies, a 30 s lease (renewed at 10 s). DEL on master 0 starts a check;
        // its call to master 2 is held up in the proxy, so the check waits for that master's answer to
        // make a quorum; meanwhile master 1, which already answered "held", has its key deleted too. Its
        // push arrives while the check is under way; the check ends with masters 1 and 2 confirming, and
        // only a check after that push finds the lease gone from a majority.
        val proxies = (0 until 3).map { TcpProxy.start("127.0.0.1", fleet.port(it)) }
        try {
            val config = RedlockConfig.builder().masters(proxies.map { it.uri() }).leaseTime(JavaDuration.ofSeconds(30))
                .nodeTimeout(JavaDuration.ofSeconds(3)).build()
            Redlock(config).use { redlock ->
                val lease = redlock.acquire("raced")
                eventually(what = "every master holds the key and tracks it") {
                    redlock.engine.masters.nodes.all { it.tracking() } && (0 until 3).all { fleet.keys(it).isNotEmpty() }
                }
                val extend = dev.redlock.core.internal.Script.EXTEND.sha()
                val held = proxies[2].onNextCommand({ it.isEvalSha(extend) }) { Thread.sleep(1_000) }
                val checksOn1 = fleet.commandCalls(1, "evalsha")
                val checksOn2 = fleet.commandCalls(2, "evalsha")
                val deleted = TimeSource.Monotonic.markNow()
                fleet.command(0, "DEL", "redlock:raced")
                eventually(limit = 5.seconds, what = "master 1 answered the check") { fleet.commandCalls(1, "evalsha") > checksOn1 }
                fleet.command(1, "DEL", "redlock:raced")
                withClue("master 2 has not answered the check yet: the second push comes while it is under way") {
                    held.isFired shouldBe true
                    fleet.commandCalls(2, "evalsha") shouldBe checksOn2
                }
                eventually(limit = 5.seconds, what = "the lease is lost long before its renewal") { lease.state.value == LeaseState.LOST }
                println("tracking: a second push during a check to the loss declared: ${deleted.elapsedNow()}")
                lease.awaitLost().reason() shouldBe LockLostException.Reason.NOT_HELD
                lease.release()
            }
        } finally {
            proxies.forEach { it.close() }
        }
    }

    test("connections that drop put the lease at risk at once; back, with the key still there, it is held again") {
        val proxies = (0 until 3).map { TcpProxy.start("127.0.0.1", fleet.port(it)) }
        try {
            val config = RedlockConfig.builder().masters(proxies.map { it.uri() }).leaseTime(JavaDuration.ofSeconds(6)).build()
            Redlock(config).use { redlock ->
                val lease = redlock.acquire("dropped")
                eventually(what = "tracked everywhere") { redlock.engine.masters.nodes.all { it.tracking() } }
                proxies[0].resetConnections()
                proxies[1].resetConnections()
                eventually(what = "the lease is at risk") { lease.state.value == LeaseState.AT_RISK }
                eventually(what = "reconnected, checked, held again") { lease.state.value == LeaseState.HELD }
                lease.isValid shouldBe true
                // Released once every master is back (a release sent to a reconnecting master fails
                // there, and its key waits for its expiry).
                eventually(what = "every master tracks again") { redlock.engine.masters.nodes.all { it.tracking() } }
                lease.release()
            }
        } finally {
            proxies.forEach { it.close() }
        }
    }

    test("keys deleted one master after the other, the second while the check of the first waits for a slow master: lost once that check is over, not at the next renewal") {
        val proxies = (0 until 3).map { TcpProxy.start("127.0.0.1", fleet.port(it)) }
        try {
            // A 6 s lease (node timeout 300 ms): the next renewal would come 2 s after the acquisition.
            val config = RedlockConfig.builder().masters(proxies.map { it.uri() }).leaseTime(JavaDuration.ofSeconds(6)).build()
            Redlock(config).use { redlock ->
                val inside = CompletableDeferred<Lease>()
                supervisorScope {
                    val holder = async { redlock.withRedlock("one-by-one") { lease -> inside.complete(lease); awaitCancellation() } }
                    val lease = inside.await()
                    eventually(what = "every master holds the key and tracks it") {
                        (0 until 3).all { fleet.keys(it).isNotEmpty() } && redlock.engine.masters.nodes.all { it.tracking() }
                    }
                    delay(100.milliseconds)
                    // Master 2 answers slowly: the check the first deletion causes waits for it (master 1 alone says "held").
                    proxies[2].latency = JavaDuration.ofMillis(100)
                    val check = proxies[1].onNextCommand({ it.isEvalSha(dev.redlock.core.internal.Script.EXTEND.sha()) }) { }
                    fleet.command(0, "DEL", "redlock:one-by-one")
                    check.fired.get(5, java.util.concurrent.TimeUnit.SECONDS)
                    // That check has read the key on master 1; it goes now, while the check still waits for master 2.
                    delay(10.milliseconds)
                    val deleted = TimeSource.Monotonic.markNow()
                    fleet.command(1, "DEL", "redlock:one-by-one")
                    val loss = shouldThrow<LockLostException> { awaitOrDump(holder) }
                    val took = deleted.elapsedNow() - lease.times().lossDeclaredAt!!.elapsedNow()
                    println("tracking: the second DEL (a majority now) to the loss declared, while a check was in flight: $took")
                    loss.reason() shouldBe LockLostException.Reason.NOT_HELD
                    withClue("declared $took after the second DEL; the next renewal was due about 2 s after the acquisition") {
                        (took < 1.seconds) shouldBe true
                    }
                }
            }
        } finally {
            proxies.forEach { it.close() }
        }
    }

    test("masters killed while a lease is held put it at risk at once; back empty, the check finds it gone") {
        fleet.redlock(3) { leaseTime(JavaDuration.ofSeconds(6)) }.use { redlock ->
            val lease = redlock.acquire("killed")
            eventually(what = "tracked everywhere") { redlock.engine.masters.nodes.all { it.tracking() } && (0 until 3).all { fleet.keys(it).isNotEmpty() } }
            fleet.kill(0)
            fleet.kill(1)
            // Long before the 6 s lease's validity or a renewal: the dropped connections say it.
            eventually(what = "the lease is at risk") { lease.state.value == LeaseState.AT_RISK }
            lease.isValid shouldBe true
            fleet.restart(0)
            fleet.restart(1)
            // Restarted without their data: the check after tracking is set up again finds the key
            // on one master of three.
            eventually(what = "the lease is lost") { lease.state.value == LeaseState.LOST }
            lease.awaitLost().reason() shouldBe LockLostException.Reason.NOT_HELD
            lease.release()
        }
    }

    test("keyTracking(false): nothing is tracked; keys deleted on a majority are found at the next renewal") {
        fleet.redlock(3) { leaseTime(JavaDuration.ofSeconds(6)).keyTracking(false) }.use { redlock ->
            val inside = CompletableDeferred<Lease>()
            supervisorScope {
                val holder = async { redlock.withRedlock("untracked") { lease -> inside.complete(lease); awaitCancellation() } }
                val lease = inside.await()
                eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it).isNotEmpty() } }
                redlock.engine.masters.nodes.none { it.tracking() } shouldBe true
                (0 until 3).forEach { i -> trackingClients(fleet, i) shouldBe 0 }
                for (i in 0 until 2) fleet.command(i, "DEL", "redlock:untracked")
                // Nothing pushed: the block runs on until the renewal, due 2 s after the acquisition.
                delay(300.milliseconds)
                lease.state.value shouldBe LeaseState.HELD
                shouldThrow<LockLostException> { awaitOrDump(holder) }.reason() shouldBe LockLostException.Reason.NOT_HELD
            }
        }
    }

    context("where tracking is not there, everything works as before, and the log says so once per master") {
        suspend fun worksWithout(redlock: Redlock, logs: CapturedLogs, masters: Int, reason: String) {
            eventually(what = "every master said why it does not track") {
                logs.lines(java.util.logging.Level.INFO).count { "does not push changes" in it } >= masters
            }
            val told = logs.lines(java.util.logging.Level.INFO).filter { "does not push changes" in it }
            withClue(told) {
                told.size shouldBe masters
                told.all { reason in it } shouldBe true
            }
            redlock.engine.masters.nodes.none { it.tracking() } shouldBe true
            // Locks, renewals and hand-over by release notice work as without tracking.
            supervisorScope {
                val entered = CompletableDeferred<Unit>()
                val first = async {
                    redlock.withRedlock("fallback", leaseTime = 600.milliseconds) { lease ->
                        entered.complete(Unit)
                        delay(700.milliseconds) // renewed at least once
                        lease.isValid
                    }
                }
                entered.await()
                val second = async { redlock.acquire("fallback", leaseTime = 600.milliseconds) }
                awaitOrDump(first) shouldBe true
                awaitOrDump(second).release()
            }
        }

        test("HELLO 3 refused: the connection speaks RESP2") {
            RedisFleet.builder().masters(1).serverArgs("--rename-command", "HELLO", "").start().use { fallback ->
                captureLogs().use { logs ->
                    fallback.redlock().use { redlock -> worksWithout(redlock, logs, 1, "RESP2") }
                }
            }
        }

        test("CLIENT renamed away") {
            RedisFleet.builder().masters(1).serverArgs("--rename-command", "CLIENT", "").start().use { fallback ->
                captureLogs().use { logs ->
                    fallback.redlock().use { redlock -> worksWithout(redlock, logs, 1, "CLIENT ID was refused") }
                }
            }
        }

        test("an ACL user without the tracking rules (the README's rules less +client|id +client|tracking)") {
            val readme = ReadmeAclRules.fromReadme()
            val rules = readme.forServer(fleet.serverName, fleet.serverVersion) - setOf("+client|id", "+client|tracking")
            try {
                for (m in 0 until 3) fleet.command(m, "ACL", "SETUSER", "untracked", "on", ">untracked-pw", *rules.toTypedArray()) shouldBe "OK"
                val uris = (0 until 3).map { "redis://untracked:untracked-pw@127.0.0.1:${fleet.port(it)}" }
                captureLogs().use { logs ->
                    Redlock(RedlockConfig.builder().masters(uris).build()).use { redlock -> worksWithout(redlock, logs, 3, "CLIENT ID was refused (NOPERM") }
                }
            } finally {
                for (m in 0 until 3) fleet.command(m, "ACL", "DELUSER", "untracked")
            }
        }

        test("a connection the user opened") {
            val client = RedisClient.create()
            try {
                client.options = ClientOptions.builder().disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS).build()
                val connections = (0 until 3).map { client.connect(RedisURI.create(fleet.uri(it))) }
                val config = RedlockConfig.builder().apply { connections.forEach { master(it) } }.build()
                captureLogs().use { logs ->
                    Redlock(config).use { redlock -> worksWithout(redlock, logs, 3, "a connection you opened") }
                }
                (0 until 3).forEach { i -> trackingClients(fleet, i) shouldBe 0 }
                connections.forEach { it.close() }
            } finally {
                client.shutdown()
            }
        }
    }
})

/** Master [index]'s clients, each as its CLIENT LIST fields. */
private fun clientList(fleet: RedisFleet, index: Int): List<Map<String, String>> =
    (fleet.command(index, "CLIENT", "LIST") as String).lines().filter(String::isNotBlank).map { line ->
        line.trim().split(' ').associate { it.substringBefore('=') to it.substringAfter('=', "") }
    }

/** How many clients of master [index] have tracking on (flag `t` in CLIENT LIST). */
private fun trackingClients(fleet: RedisFleet, index: Int): Int = clientList(fleet, index).count { 't' in it["flags"].orEmpty() }

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeStrictlyIncreasing
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay

/** A store that keeps the largest fencing token it has seen and refuses writes with a smaller one. */
private class FencedStore {
    private var highest = Long.MIN_VALUE
    val accepted = ArrayList<Long>()

    @Synchronized
    fun write(token: Long): Boolean {
        if (token < highest) return false
        highest = token
        accepted += token
        return true
    }
}

/** Fencing tokens across masters: every later holder of a resource gets a larger token. */
@Tags("compat")
class FencingTest : FunSpec({
    val fleet = sharedFleet(5)

    for (n in listOf(1, 3, 5)) {
        test("tokens grow with every successive holder, across clients, losses and a master restarted empty, with $n master(s)") {
            val clients = List(3) { fleet.redlock(n) { fencing(true) } }
            try {
                val tokens = Collections.synchronizedList(ArrayList<Long>())
                val sections = AtomicInteger()
                val losses = AtomicInteger()
                coroutineScope {
                    clients.flatMap { redlock ->
                        List(3) {
                            async {
                                while (sections.get() < 1_000) {
                                    try {
                                        redlock.withRedlock("fenced", leaseTime = 2_000.milliseconds) { lease ->
                                            val number = sections.incrementAndGet()
                                            tokens += lease.fencingToken.shouldNotBeNull()
                                            when {
                                                // Now and then the holder loses its lease mid-way: its
                                                // keys vanish from every master.
                                                number % 97 == 0 -> {
                                                    eventually(what = "all masters hold the key") { (0 until n).all { fleet.keys(it, "redlock:fenced").isNotEmpty() } }
                                                    for (m in 0 until n) fleet.command(m, "DEL", "redlock:fenced")
                                                    lease.extend()
                                                }
                                                // And a master crashes and comes back at once without its
                                                // data (its counters gone) between two holders.
                                                number % 250 == 0 && n > 1 -> {
                                                    fleet.kill(n - 1)
                                                    fleet.restart(n - 1)
                                                }
                                            }
                                        }
                                    } catch (e: LockLostException) {
                                        losses.incrementAndGet()
                                    }
                                }
                            }
                        }
                    }.awaitAll()
                }
                // Sections never overlap, so the list is in holder order.
                tokens.size shouldBeGreaterThan 999
                tokens.shouldBeStrictlyIncreasing()
                losses.get() shouldBeGreaterThan 0
            } finally {
                clients.forEach { it.close() }
                for (m in 0 until n) fleet.command(m, "DEL", "redlock:fenced\u0000fence")
            }
        }
    }

    test("a stale holder's write is refused by a store that checks the token") {
        val store = FencedStore()
        fleet.redlock(3) { fencing(true) }.use { redlock ->
            // The first holder takes a lease it does not renew, then stalls past its validity.
            val stale = redlock.acquire("ledger", leaseTime = 300.milliseconds)
            val staleToken = stale.fencingToken.shouldNotBeNull()
            delay(600.milliseconds)
            stale.isValid shouldBe false
            // Meanwhile another holder takes the lock and writes.
            val fresh = redlock.acquire("ledger")
            val freshToken = fresh.fencingToken.shouldNotBeNull()
            freshToken shouldBeGreaterThan staleToken
            store.write(freshToken) shouldBe true
            // The stale holder wakes up and tries its late write: refused.
            store.write(staleToken) shouldBe false
            store.accepted shouldBe listOf(freshToken)
            fresh.release()
            shouldThrow<LockLostException> { stale.extend() }
            stale.release()
        }
        for (m in 0 until 3) fleet.command(m, "DEL", "redlock:ledger\u0000fence")
    }

    test("without fencing a lease has no token, and no counter is kept") {
        fleet.redlock(3).use { redlock ->
            redlock.withRedlock("plain") { lease -> lease.fencingToken shouldBe null }
            fleet.keyCount() shouldBe 0
            redlock.withRedlock("plain", fencing = true) { lease -> lease.fencingToken.shouldNotBeNull() }
        }
        // The counters stay (without expiry) on the masters that confirmed the token.
        (0 until 3).count { fleet.keys(it, "redlock:plain\u0000fence").isNotEmpty() } shouldBeGreaterThan 1
        for (m in 0 until 3) fleet.command(m, "DEL", "redlock:plain\u0000fence")
    }
})

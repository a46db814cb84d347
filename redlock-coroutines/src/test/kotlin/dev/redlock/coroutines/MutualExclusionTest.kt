package dev.redlock.coroutines

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.yield

class MutualExclusionTest : FunSpec({
    val fleet = sharedFleet(5)

    for (n in listOf(1, 3, 5)) {
        test("coroutines of several Redlock instances never overlap on one resource with $n master(s)") {
            val clients = List(3) { fleet.redlock(n) }
            try {
                val inside = AtomicInteger()
                val overlaps = AtomicInteger()
                val sections = AtomicInteger()
                var counter = 0 // deliberately unsynchronised: lost updates reveal overlaps too
                coroutineScope {
                    for (client in clients) {
                        repeat(6) {
                            launch(Dispatchers.Default) {
                                repeat(12) {
                                    client.withRedlock("shared") {
                                        if (inside.incrementAndGet() != 1) overlaps.incrementAndGet()
                                        val seen = counter
                                        yield()
                                        counter = seen + 1
                                        inside.decrementAndGet()
                                        sections.incrementAndGet()
                                    }
                                }
                            }
                        }
                    }
                }
                overlaps.get() shouldBe 0
                sections.get() shouldBe 3 * 6 * 12
                counter shouldBe 3 * 6 * 12
            } finally {
                clients.forEach { it.close() }
            }
        }
    }

    test("different resources are locked independently") {
        fleet.redlock(3).use { redlock ->
            redlock.withRedlock("a") {
                val b = redlock.tryAcquire("b")
                (b != null) shouldBe true
                b!!.release()
                redlock.tryAcquire("a") shouldBe null
            }
        }
    }
})

package dev.redlock.testing

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeSameInstanceAs

/**
 * Extra, without Redis: the free-port retry shared by local and container masters. (Every fleet
 * start in the other specs goes through it on its first try.)
 */
class PortRetryTest : FunSpec({
    class Taken(message: String) : Exception(message)

    test("a port taken in between is given back and another one is tried; the master keeps the one that worked") {
        val seen = ArrayList<Int>()
        var tries = 0
        PortReservations.startOnFreePort<Taken>(5, { seen += it }, { port ->
            if (++tries < 3) throw Taken("port $port taken")
        }) { RedisFleetException("unexpected") }
        // Three ports tried, each failed try reset to 0, the last one kept.
        seen.filter { it != 0 } shouldHaveSize 3
        seen.filter { it != 0 }.toSet() shouldHaveSize 3
        seen.count { it == 0 } shouldBe 2
        seen.last() shouldBe seen.filter { it != 0 }.last()
        // The failed ports went back to the pool; the kept one is still reserved.
        PortReservations.release(seen.last())
    }

    test("after the last attempt the caller's error carries the last failure; other failures pass through at once") {
        var tries = 0
        val e = shouldThrow<RedisFleetException> {
            PortReservations.startOnFreePort<Taken>(4, {}, { port -> tries++; throw Taken("port $port taken") }) { last ->
                RedisFleetException("no free port in 4 attempts; last: ${last?.message}", last)
            }
        }
        tries shouldBe 4
        (e.cause is Taken) shouldBe true

        val other = IllegalStateException("the binary crashed")
        tries = 0
        shouldThrow<IllegalStateException> {
            PortReservations.startOnFreePort<Taken>(4, {}, { tries++; throw other }) { RedisFleetException("unexpected") }
        } shouldBeSameInstanceAs other
        tries shouldBe 1
    }
})

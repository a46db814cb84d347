package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockMetrics
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.netty.util.concurrent.FastThreadLocalThread
import java.lang.ref.WeakReference
import java.time.Duration as JavaDuration
import java.util.Collections
import kotlin.time.Duration.Companion.hours
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.launch

/**
 * What runs where: the user's metrics never on an I/O thread or the timer, and the timer keeps no
 * memory of leases that ended.
 */
@OptIn(InternalRedlockApi::class)
class EngineThreadsTest : FunSpec({
    val fleet = sharedFleet(3)

    test("a slow metrics sink is never called on a Redis I/O thread or the Redlock's timer") {
        val threads = Collections.synchronizedList(ArrayList<String>())
        val failures = Collections.synchronizedList(ArrayList<String>())
        val slow = object : RedlockMetrics {
            fun seen() {
                val t = Thread.currentThread()
                if (t is FastThreadLocalThread || t.name.endsWith("-timer")) threads += t.name
                Thread.sleep(20) // a slow sink: it must not hold up anyone's I/O
            }
            override fun acquisition(type: String, outcome: RedlockMetrics.Outcome, latency: JavaDuration, waited: JavaDuration) = seen()
            override fun renewal(type: String, extended: Boolean) = seen()
            override fun loss(type: String, reason: LockLostException.Reason) = seen()
            override fun leaseEnded(type: String, held: JavaDuration, lost: Boolean) = seen()
            override fun masterFailure(master: String, operation: String, kind: MasterFailureException.Kind) {
                failures += master
                seen()
            }
        }
        fleet.kill(2) // every call to it fails, on the I/O threads: reported through the metrics
        fleet.redlock(3) { metrics(slow) }.use { redlock ->
            repeat(20) { redlock.withRedlock("metered") { } }
        }
        eventually(what = "master failures reported") { failures.isNotEmpty() }
        failures.size shouldBeGreaterThan 0
        withClue("metrics called on $threads") { threads.shouldBeEmpty() }
    }

    test("leases that ended leave no trace on the timer, even with a day-long lease") {
        fleet.redlock(3) { leaseTime(JavaDuration.ofHours(24)).restartGuard(JavaDuration.ofHours(24)) }.use { redlock ->
            val refs = ArrayList<WeakReference<Lease>>()
            repeat(300) { i ->
                val lease = redlock.acquire("day:$i", leaseTime = 24.hours)
                // On the timer without renewal, as the Java facade's acquire(autoRenew false) does.
                val guard = launch(start = CoroutineStart.UNDISPATCHED) { lease.guard(renew = false) }
                lease.release()
                guard.join()
                refs += WeakReference(lease)
            }
            eventually(what = "every ended lease is collected") {
                System.gc()
                refs.count { it.get() != null } == 0
            }
            refs.count { it.get() != null } shouldBe 0
        }
    }
})

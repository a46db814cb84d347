package dev.redlock.coroutines.internal

import dev.redlock.core.LockLostException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockMetrics
import dev.redlock.core.internal.Checks
import dev.redlock.core.internal.LockNode
import java.util.concurrent.Executor
import java.util.concurrent.RejectedExecutionException
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicIntegerArray
import java.util.concurrent.atomic.AtomicLong
import kotlin.time.Duration
import kotlin.time.toJavaDuration
import org.slf4j.Logger
import org.slf4j.LoggerFactory

/**
 * What one Redlock tells the outside world: its logs (SLF4J, logger `dev.redlock.coroutines.Redlock`)
 * and its measurements ([RedlockMetrics], from the config).
 *
 * Logging policy: losses, master failures, master restarts, duplicate masters and failed renewals
 * at WARN, once per event (a master that keeps failing is reported when it starts failing and, at
 * INFO, when it answers again; the failures in between are at DEBUG); every attempt, acquisition
 * and renewal batch at DEBUG. Nothing logged or measured carries a token (holders are shown by
 * [dev.redlock.core.internal.Tokens.redact] at most) or a password (masters are named by
 * [LockNode.name], `host:port`).
 *
 * The metrics are the user's code: they are never called on a Redis client's I/O thread or on the
 * Redlock's timer (a slow metrics sink must not delay every master's replies or a loss). Events
 * seen there are handed to the work pool, at most [MAX_QUEUED_METRICS] at a time; beyond that they
 * are counted as dropped and reported at WARN.
 */
internal class Observer(private val nodes: List<LockNode>, private val metrics: RedlockMetrics, private val offload: Executor) {
    /** Per master: 1 while its last call failed (it has been reported), else 0. */
    private val failing = AtomicIntegerArray(nodes.size)
    private val queued = AtomicInteger()
    private val dropped = AtomicLong()

    val debug: Boolean get() = LOG.isDebugEnabled

    fun acquisition(kind: LockKind, resources: List<String>, outcome: RedlockMetrics.Outcome, latency: Duration, waited: Duration) {
        if (LOG.isDebugEnabled) {
            LOG.debug("Redlock {} {} on {} in {} (waited {})", kind.what, outcome.tag(), resources, show(latency), show(waited))
        }
        record { acquisition(kind.type, outcome, latency.toJavaDuration(), waited.toJavaDuration()) }
    }

    fun attempt(kind: LockKind, resources: List<String>, attempt: Acquisition.Attempt, quorum: Int, elapsed: Duration) {
        if (!LOG.isDebugEnabled) return
        LOG.debug(
            "Redlock attempt for the {} on {}: {} of {} masters granted (quorum {}), {} refused, {} not counted (restart guard), {} failed, {} not awaited: {} after {}",
            kind.what, resources, attempt.granting, nodes.size, quorum,
            if (attempt.contended || attempt.otherPermits != null) "some" else "none",
            attempt.guarded, attempt.failures.size, nodes.size - attempt.answered,
            if (attempt.granted) "granted" else if (attempt.contended) "contended" else "not granted", show(elapsed),
        )
    }

    fun leaseEnded(lease: RedlockLease, held: Duration, lost: Boolean) {
        if (LOG.isDebugEnabled) LOG.debug("Redlock {} on {} {} after {}", lease.kind.what, lease.resources, if (lost) "lost" else "released", show(held))
        record { leaseEnded(lease.kind.type, held.toJavaDuration(), lost) }
    }

    fun renewal(lease: RedlockLease, failure: Throwable?, remaining: Duration) {
        if (failure != null && failure !is IllegalStateException && failure !is LockLostException) {
            LOG.warn("Redlock could not renew the {} on {} ({}); it stays valid for {} and renewal goes on", lease.kind.what, lease.resources, failure.message, show(remaining))
        }
        if (failure !is IllegalStateException) record { renewal(lease.kind.type, failure == null) }
    }

    fun renewalBatch(leases: Int, keys: Int, elapsed: Duration) {
        if (LOG.isDebugEnabled) LOG.debug("Redlock extended {} lease(s), {} key(s), with one call per master, decided in {}", leases, keys, show(elapsed))
    }

    /**
     * A lease was lost after being held for [held]: logged and measured, from the work pool when
     * found on the timer (a burst of losses must not delay the next deadline by its logging).
     */
    fun loss(lease: RedlockLease, loss: LockLostException, held: Duration) {
        val report = {
            if (loss.reason() == LockLostException.Reason.CLOSED) LOG.info("Redlock {} on {} ended by close()", lease.kind.what, lease.resources)
            else LOG.warn("Redlock lost the {} on {}: {}", lease.kind.what, lease.resources, loss.message)
            record { loss(lease.kind.type, loss.reason()) }
            leaseEnded(lease, held, lost = true)
        }
        if (!EngineThreads.onIoOrTimerThread()) {
            report()
            return
        }
        try {
            offload.execute(report)
        } catch (e: RejectedExecutionException) {
            report() // closing: the work pool is gone, and so is the timer's next deadline
        }
    }

    /** A master answered a call: if it was failing, it is back. */
    fun answered(node: Int) {
        if (failing.get(node) == 1 && failing.compareAndSet(node, 1, 0)) {
            LOG.info("Redlock master {} answers again", nodes[node].name())
        }
    }

    /** A master failed one call of [operation] (acquire, extend, release). */
    fun failed(node: Int, operation: String, failure: MasterFailureException) {
        if (failure.kind() == MasterFailureException.Kind.DUPLICATE) return // reported once, by duplicate()
        if (failing.compareAndSet(node, 0, 1)) {
            LOG.warn(
                "Redlock master {} failed ({} {}); locks keep working while a quorum of the {} masters answers",
                nodes[node].name(), operation, failure.message, nodes.size,
            )
        } else if (LOG.isDebugEnabled) {
            LOG.debug("Redlock master {} failed again ({} {})", nodes[node].name(), operation, failure.message)
        }
        record { masterFailure(failure.master(), operation, failure.kind()) }
    }

    /** Master [node] was found to be the same server as the earlier master [same]. */
    fun duplicate(node: Int, same: Int, serverId: String) {
        LOG.warn(
            "Redlock masters[{}] ({}) and masters[{}] ({}) are the same server (run_id {}): its votes count once, so " +
                "the configured {} masters tolerate fewer failures than they seem to; list each server once",
            same, nodes[same].name(), node, nodes[node].name(), serverId.take(8), nodes.size,
        )
    }

    /**
     * A master was found to have started empty or lost its data; its votes wait [left] (on a
     * cluster master, those in hash slot [slot], unless it is -1).
     */
    fun restarted(node: Int, left: Duration, slot: Int = -1) {
        if (slot >= 0) {
            LOG.warn(
                "Redlock cluster master {}: the primary serving hash slot {} started empty, lost its data or was promoted less than restartGuard ago: it may have forgotten locks it granted, so its votes in that slot are not counted for {}",
                nodes[node].name(), slot, show(left),
            )
        } else {
            LOG.warn(
                "Redlock master {} started empty or lost its data less than restartGuard ago: it may have forgotten locks it granted, so its votes are not counted for {}",
                nodes[node].name(), show(left),
            )
        }
        record { masterRestart(nodes[node].name()) }
    }

    fun releaseFailed(keys: List<String>, node: Int, cause: Throwable, lease: Duration, warn: Boolean) {
        val message = "Redlock could not release {} on {} ({}); the keys there expire within {}"
        if (warn) LOG.warn(message, keys, nodes[node].name(), cause.message, show(lease))
        else if (LOG.isDebugEnabled) LOG.debug(message, keys, nodes[node].name(), cause.message, show(lease))
    }

    /**
     * Calls the metrics, never breaking a lock call (a throwing implementation is logged and
     * ignored), and never on an I/O or timer thread.
     */
    private fun record(call: RedlockMetrics.() -> Unit) {
        if (metrics === RedlockMetrics.NONE) return
        if (!EngineThreads.onIoOrTimerThread()) {
            invoke(call)
            return
        }
        if (queued.incrementAndGet() > MAX_QUEUED_METRICS) {
            queued.decrementAndGet()
            if (dropped.getAndIncrement() % DROP_REPORT_EVERY == 0L) {
                LOG.warn("Redlock's metrics ({}) fall behind: {} event(s) dropped so far", metrics, dropped.get())
            }
            return
        }
        try {
            offload.execute {
                queued.decrementAndGet()
                invoke(call)
            }
        } catch (e: RejectedExecutionException) {
            queued.decrementAndGet() // closing: nothing more is measured
        }
    }

    private fun invoke(call: RedlockMetrics.() -> Unit) {
        try {
            metrics.call()
        } catch (e: Exception) {
            LOG.warn("Redlock's metrics ({}) threw; the lock is not affected", metrics, e)
        }
    }

    companion object {
        val LOG: Logger = LoggerFactory.getLogger("dev.redlock.coroutines.Redlock")
        const val MAX_QUEUED_METRICS = 10_000
        private const val DROP_REPORT_EVERY = 10_000L

        fun show(d: Duration): String = Checks.show(d.toJavaDuration())
    }
}

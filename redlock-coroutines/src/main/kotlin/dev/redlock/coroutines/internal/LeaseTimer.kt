package dev.redlock.coroutines.internal

import dev.redlock.core.LockLostException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.internal.Keys
import dev.redlock.core.internal.LockMath
import java.util.PriorityQueue
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.Duration.Companion.nanoseconds
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.DisposableHandle
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeoutOrNull

/**
 * The renewals and validity deadlines of all the guarded leases of one engine (inside a critical
 * section, and the Java facade's leases), on one timer.
 *
 * Two promises, kept apart:
 * - **Deadlines are enforced by the clock, never by I/O.** Every guarded lease always has a tick at
 *   its deadline (its validity less [Timing.expiryLead], or the end of its maximum hold), also while
 *   a renewal of it is in flight: a renewal that hangs on a paused master cannot delay the loss.
 *   The timer runs on a dispatcher of its own (one thread that runs nothing else), declares the
 *   loss there, and so cancels the block there.
 * - **Renewals are coalesced.** Every renewed lease is due every third of its lease time. When the
 *   earliest is due, every renewed lease due within the next half interval is renewed with it
 *   (renewing early only resets the expiry to the full lease time), so leases fall into cohorts and
 *   a round costs one extend script per master per [MAX_KEYS_PER_CALL] keys. Each lease's own
 *   answers decide for it alone. After a failed renewal a lease is retried sooner, while it lasts.
 *
 * The queue holds immutable [Tick]s; rescheduling an entry adds a new tick and makes its older ones
 * stale (skipped when they come up, and dropped in bulk when they outnumber the live entries), so
 * an entry whose lease ended never keeps memory until a far-off deadline.
 */
internal class LeaseTimer(
    private val engine: Engine,
    private val dispatcher: CoroutineDispatcher,
    private val workScope: CoroutineScope,
) {
    private val lock = Any()
    private val origin: ComparableTimeMark = engine.timeSource.markNow()
    private val queue = PriorityQueue<Tick>(compareBy(Tick::due))
    /** Rung when a tick earlier than the one the loop sleeps until is queued; internal for the model-checking tests, which play the loop. */
    internal val doorbell = Channel<Unit>(Channel.CONFLATED)

    /** Registered entries not yet disposed; guarded by [lock]. */
    private var live = 0

    /** The due time the loop sleeps until (or is about to); guarded by [lock]. */
    private var nextWake = Long.MAX_VALUE
    private var started = false

    /** One moment an entry must be looked at; stale once its entry was rescheduled ([seq] moved on). */
    private class Tick(val due: Long, val entry: Entry, val seq: Int)

    /**
     * One guarded lease on the timer, and its handle: disposing it takes the lease off the timer.
     * [onLoss] is called once if the lease is lost while registered (attached to the lease's end by
     * the lease itself).
     */
    inner class Entry(val lease: RedlockLease, val renew: Boolean, private val onLoss: ((LockLostException) -> Unit)?) :
        (Throwable?) -> Unit, DisposableHandle {
        /** Guarded by the timer's lock. */
        var seq = 0
        var renewing = false

        @Volatile
        var active = true

        @Volatile
        var watch: DisposableHandle? = null

        override fun invoke(cause: Throwable?) {
            lease.loss?.let { onLoss?.invoke(it) }
        }

        override fun dispose() {
            watch?.dispose()
            unregister(this)
        }
    }

    /** Puts [lease] on the timer: renewed if [renew], in any case declared lost when its deadline passes. */
    fun register(lease: RedlockLease, renew: Boolean, onLoss: ((LockLostException) -> Unit)?): Entry {
        val entry = Entry(lease, renew, onLoss)
        synchronized(lock) {
            live++
            schedule(entry)
        }
        return entry
    }

    fun unregister(entry: Entry) {
        synchronized(lock) {
            if (!entry.active) return
            entry.active = false
            live--
            compactIfStale()
        }
    }

    private fun nanos(mark: ComparableTimeMark): Long = (mark - origin).inWholeNanoseconds

    private fun now(): Long = origin.elapsedNow().inWholeNanoseconds

    /** Queues [entry]'s next tick; drops it when its lease is no longer held. Call under [lock]. */
    private fun schedule(entry: Entry) {
        val lease = entry.lease
        if (!entry.active || !lease.isHeld) return
        val deadline = nanos(lease.deadline)
        val due = when {
            !entry.renew || entry.renewing -> deadline
            lease.renewalFailure == null -> minOf(nanos(lease.renewedAt) + lease.timing.renewInterval.inWholeNanoseconds, deadline)
            else -> minOf(now() + retryAfterFailure(lease).inWholeNanoseconds, deadline)
        }
        queue.add(Tick(due, entry, ++entry.seq))
        if (!started) {
            started = true
            workScope.launch(dispatcher) { run() }
        }
        if (due < nextWake) {
            nextWake = due
            doorbell.trySend(Unit)
        }
    }

    /** One tick as [inspect] shows it: when it is due (ns from the timer's origin), its entry, and whether it is the entry's current one. */
    class QueuedTick(val due: Long, val entry: Entry, val current: Boolean)

    /**
     * The queue and the number of live entries, read together under the lock. Changes nothing; for
     * the model-checking tests, which check the timer's invariants on it.
     */
    fun inspect(): Pair<List<QueuedTick>, Int> =
        synchronized(lock) { queue.map { QueuedTick(it.due, it.entry, it.seq == it.entry.seq) } to live }

    private fun retryAfterFailure(lease: RedlockLease): Duration =
        minOf(engine.config.retryDelay().toKotlinDuration(), lease.timing.renewInterval, lease.remaining / 3)

    private suspend fun run() {
        while (true) {
            val wait = try {
                tick()
            } catch (e: CancellationException) {
                throw e
            } catch (e: Throwable) {
                // Never let the timer die: every guarded lease depends on it.
                Observer.LOG.error("Redlock's lease timer failed; it carries on", e)
                RETRY_AFTER_ERROR
            }
            if (wait > Duration.ZERO) withTimeoutOrNull(wait) { doorbell.receive() }
        }
    }

    /**
     * Handles everything due now; returns how long until the next thing is due. The loop's step;
     * internal for the model-checking tests, which run it as the timer's thread.
     */
    internal fun tick(): Duration {
        val now = now()
        val expired = ArrayList<RedlockLease>()
        val renew = ArrayList<Entry>()
        synchronized(lock) {
            while (true) {
                val head = queue.peek() ?: break
                val entry = head.entry
                if (head.seq != entry.seq || !entry.active) {
                    queue.poll()
                    continue
                }
                val renewal = entry.renew && !entry.renewing
                val slack = if (renewal) entry.lease.timing.renewInterval.inWholeNanoseconds / 2 else 0L
                if (head.due > now + slack) break
                queue.poll()
                val lease = entry.lease
                when {
                    !lease.isHeld -> Unit
                    nanos(lease.deadline) <= now -> expired += lease
                    renewal && !renewedRecently(lease, now) -> {
                        entry.renewing = true
                        renew += entry
                        schedule(entry) // the deadline's tick, kept while the renewal is in flight
                    }
                    else -> schedule(entry)
                }
            }
            nextWake = queue.peek()?.due ?: Long.MAX_VALUE
        }
        for (lease in expired) lease.checkDeadlines()
        if (renew.isNotEmpty()) startRenewals(renew)
        val next = synchronized(lock) { nextWake }
        return if (next == Long.MAX_VALUE) Duration.INFINITE else (next - now()).nanoseconds
    }

    private fun renewedRecently(lease: RedlockLease, now: Long): Boolean =
        lease.renewalFailure == null && nanos(lease.renewedAt) + lease.timing.renewInterval.inWholeNanoseconds / 2 > now

    /** Renews [entries] in chunks that share an extend call, on the work pool; reschedules each when done. */
    private fun startRenewals(entries: List<Entry>) {
        for (chunk in chunks(entries)) {
            workScope.launch {
                try {
                    extendAll(chunk.map { it.lease })
                } finally {
                    renewalsEnded(chunk)
                }
            }
        }
    }

    /** The renewal of [chunk] ended, however it went: each entry goes back on the timer at its next due time. */
    internal fun renewalsEnded(chunk: List<Entry>) {
        synchronized(lock) {
            for (entry in chunk) {
                entry.renewing = false
                schedule(entry)
            }
        }
    }

    /**
     * Drops stale ticks once they outnumber the live entries (or nothing is live any more): memory
     * stays proportional to what is held, whatever the due times of leases that ended.
     */
    private fun compactIfStale() {
        if (queue.size > 2 * live + COMPACT_SLACK || (live == 0 && queue.isNotEmpty())) {
            queue.removeIf { it.seq != it.entry.seq || !it.entry.active }
        }
    }

    /**
     * Entries that can share one extend call (same lease time, node timeout, extend script and
     * quorum), at most [MAX_KEYS_PER_CALL] keys each.
     */
    private fun chunks(entries: List<Entry>): List<List<Entry>> {
        val chunks = ArrayList<List<Entry>>()
        // A cluster master runs one script on one slot's primary: leases of different slots go in
        // different calls, so that a shard that is down fails only the renewals of its own slots.
        val cluster = engine.masters.nodes.any { it.cluster() }
        val groups = entries.groupBy {
            val slot = if (cluster) Keys.slot(Keys.onCluster(it.lease.extendKeys[0])) else -1
            BatchKey(it.lease.timing.leaseMillis, it.lease.timing.nodeTimeout, it.lease.kind.extendScript.name(), it.lease.quorum, slot)
        }
        for (group in groups.values) {
            var current = ArrayList<Entry>()
            var keys = 0
            for (entry in group) {
                val size = entry.lease.extendKeys.size
                if (current.isNotEmpty() && keys + size > MAX_KEYS_PER_CALL) {
                    chunks += current
                    current = ArrayList()
                    keys = 0
                }
                current += entry
                keys += size
            }
            if (current.isNotEmpty()) chunks += current
        }
        return chunks
    }

    /**
     * Extends [leases] (all with the same lease time, node timeout, kind of extend and quorum) with
     * one extend script per master, and applies each lease's own outcome. Returns per lease null
     * when it was extended, else why not ([LockLostException], `LockNotExtendedException`, or
     * [IllegalStateException] for a released lease). Decided as soon as every lease is decided:
     * extended on a quorum, or a quorum out of reach; a slower master is then not waited for.
     * Bounded by the node timeout.
     */
    suspend fun extendAll(leases: List<RedlockLease>): List<Throwable?> {
        val start = engine.timeSource.markNow()
        val call = extendCall(leases, leases[0].timing.leaseMillis.toString())
        engine.observer.renewalBatch(leases.size, call.keys, start.elapsedNow())
        return leases.mapIndexed { i, lease -> lease.extended(start, call.tally.confirmed[i], call.tally.notHeld[i], call.tally.failures) }
    }

    /**
     * Checks [leases] (all of one kind of extend and quorum) on every master without renewing them
     * (the extend script with a lease time of 0 only reads), and applies each lease's outcome: lost
     * when a quorum no longer holds it. Bounded by the node timeout. For invalidations: a hint that
     * a held key changed, never a proof.
     */
    suspend fun checkAll(leases: List<RedlockLease>) {
        val tally = extendCall(leases, "0").tally
        leases.forEachIndexed { i, lease -> lease.checked(tally.confirmed[i], tally.notHeld[i], tally.failures) }
    }

    private class ExtendCall(val tally: Tally, val keys: Int)

    /**
     * One extend script call for [leases] on every master, with [leaseArg] as the lease time ("0"
     * only checks): decided as soon as every lease is, all answers counted otherwise.
     */
    private suspend fun extendCall(leases: List<RedlockLease>, leaseArg: String): ExtendCall {
        val masters = engine.masters
        val first = leases[0]
        val keys = ArrayList<String>(leases.size)
        val args = ArrayList<String>(leases.size * 2 + 1)
        args += leaseArg
        for (lease in leases) {
            keys.addAll(lease.extendKeys)
            args += lease.extendKeys.size.toString()
            args += lease.token
        }
        val keyArray = keys.toTypedArray()
        val argArray = args.toTypedArray()
        val gathered = fanOut(masters, first.quorum, { held: BooleanArray -> held.all { it } }, engine.extendAnswers) { node ->
            node.extend(first.kind.extendScript, keyArray, argArray, first.timing.nodeTimeout)
        }
        // One slot per call wherever a master is a cluster (see the batches): its restart guard is that slot's.
        val slot = Keys.slot(Keys.onCluster(first.extendKeys[0]))
        var tally = Tally(gathered.answers, leases.size, slot)
        if (!tally.decided(masters.size, first.quorum) && gathered.answers.size < masters.size) {
            tally = Tally(gathered.all(), leases.size, slot)
        }
        return ExtendCall(tally, keyArray.size)
    }

    /** What leases must share to be renewed by one call. */
    private data class BatchKey(val leaseMillis: Long, val nodeTimeout: java.time.Duration, val script: String, val quorum: Int, val slot: Int)

    /** Per lease, how many masters confirmed and how many no longer hold it; the failed masters. */
    private inner class Tally(answers: List<Answer<BooleanArray>>, size: Int, slot: Int) {
        val confirmed = IntArray(size)
        val notHeld = IntArray(size)
        val failures = ArrayList<MasterFailureException>()

        init {
            for (answer in answers.sortedBy { it.node }) {
                val held = answer.value
                if (held == null) {
                    failures += answer.failure as MasterFailureException
                    continue
                }
                // A master under the restart guard may confirm, but is not counted.
                val counted = !engine.masters.isGuarded(answer.node, slot)
                for (i in 0 until size) if (!held[i]) notHeld[i]++ else if (counted) confirmed[i]++
            }
        }

        fun decided(n: Int, quorum: Int): Boolean =
            confirmed.indices.all { confirmed[it] >= quorum || LockMath.quorumImpossible(n, quorum, notHeld[it]) }
    }

    internal companion object {
        /** The most keys one extend call carries: bounds how long one script keeps a master busy (about a millisecond). */
        const val MAX_KEYS_PER_CALL = 2048

        private const val COMPACT_SLACK = 64

        val RETRY_AFTER_ERROR: Duration = Duration.parse("100ms")
    }
}

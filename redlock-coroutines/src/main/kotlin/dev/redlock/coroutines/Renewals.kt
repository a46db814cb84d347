package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.internal.LockMath
import java.util.PriorityQueue
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.Duration.Companion.nanoseconds
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeoutOrNull

/**
 * The renewals and expiry watches of all the leases of one [Redlock] that are renewed or guarded
 * (inside [withRedlock], or the Java facade's leases), on one timer.
 *
 * Every renewed lease is due every third of its lease time. When the earliest is due, every
 * renewed lease due within the next half interval is renewed with it (renewing early is harmless:
 * it only resets the expiry to the full lease time), so leases fall into cohorts and a round costs
 * one extend script per master per [MAX_KEYS_PER_CALL] keys, not one per lease. Each lease's own
 * answers still decide for it alone: a lease gone from a quorum is lost, the others are extended.
 * After a failed renewal a lease is retried sooner, while its validity lasts; a lease whose
 * validity runs out without a renewal is declared lost when it runs out, which cancels its block.
 *
 * The timer runs on the Redlock's own scope (on [kotlinx.coroutines.Dispatchers.Default]), so a
 * busy caller thread cannot delay renewals or loss detection. A lease takes part from [register]
 * until [unregister], which the guard of each critical section calls in its `finally`: renewal
 * stays scoped to the critical section.
 */
internal class Renewals(private val redlock: Redlock) {
    private val lock = Any()
    private val origin: ComparableTimeMark = redlock.timeSource.markNow()
    private val queue = PriorityQueue<Entry>(compareBy(Entry::due))
    private val doorbell = Channel<Unit>(Channel.CONFLATED)
    private val started = java.util.concurrent.atomic.AtomicBoolean()

    /**
     * Entries scheduled since the timer last ran: taking part costs a lock-free append, and an
     * entry unregistered before the timer next runs (a short critical section) never reaches the
     * priority queue at all.
     */
    private val pending = java.util.concurrent.ConcurrentLinkedQueue<Entry>()

    /** The earliest due among [pending], so that the timer never sleeps past it. */
    private val pendingEarliest = java.util.concurrent.atomic.AtomicLong(Long.MAX_VALUE)

    /** The due time the timer sleeps until; a registration due earlier wakes it. */
    @Volatile
    private var sleepingUntil = Long.MAX_VALUE

    /** One lease on the timer; [active] until unregistered (removed lazily when it comes up). */
    class Entry(val lease: RedlockLease, val renew: Boolean) {
        @Volatile
        var active = true
        var due = 0L
    }

    /**
     * An entry that also watches its lease for loss and is its own handle: one object per guarded
     * lease rather than an entry, a completion handler and a handle (this is held per lock).
     */
    class Guard(lease: RedlockLease, renew: Boolean, private val onLoss: (LockLostException) -> Unit) :
        (Throwable?) -> Unit, kotlinx.coroutines.DisposableHandle {
        val entry = Entry(lease, renew)

        @Volatile
        var watch: kotlinx.coroutines.DisposableHandle? = null

        override fun invoke(cause: Throwable?) {
            entry.lease.lostException?.let(onLoss)
        }

        override fun dispose() {
            watch?.dispose()
            entry.active = false
        }
    }

    /** Puts [lease] on the timer: renewed if [renew], in any case declared lost when its validity runs out. */
    fun register(lease: RedlockLease, renew: Boolean): Entry = Entry(lease, renew).also(::schedule)

    /** Like [register], with [Guard.invoke] to be attached to the lease's end by the caller. */
    fun register(guard: Guard): Guard = guard.also { schedule(it.entry) }

    fun unregister(entry: Entry) {
        entry.active = false
    }

    private fun nanos(mark: ComparableTimeMark): Long = (mark - origin).inWholeNanoseconds

    private fun now(): Long = origin.elapsedNow().inWholeNanoseconds

    /** Queues [entry] for its next action; drops it when its lease is no longer held. */
    private fun schedule(entry: Entry) {
        val lease = entry.lease
        if (!entry.active || !lease.isHeldState) return
        val deadline = nanos(lease.nextDeadline)
        val due = when {
            !entry.renew -> deadline
            lease.lastRenewalFailure == null -> minOf(nanos(lease.renewedAtMark) + lease.timing.renewInterval.inWholeNanoseconds, deadline)
            else -> minOf(now() + retryAfterFailure(lease).inWholeNanoseconds, deadline)
        }
        entry.due = due
        pending.add(entry)
        pendingEarliest.accumulateAndGet(due, ::minOf)
        if (started.compareAndSet(false, true)) redlock.scope.launch { run() }
        if (due < sleepingUntil) doorbell.trySend(Unit)
    }

    private fun retryAfterFailure(lease: RedlockLease): Duration =
        minOf(redlock.config.retryDelay().toKotlinDuration(), lease.timing.renewInterval, lease.remaining / 3)

    private suspend fun run() {
        while (true) {
            val wait = try {
                tick()
            } catch (e: CancellationException) {
                throw e
            } catch (e: Throwable) {
                // Never let the timer die: every guarded lease depends on it.
                Redlock.LOG.error("Redlock's renewal timer failed; it carries on", e)
                RETRY_AFTER_ERROR
            }
            if (wait > Duration.ZERO) withTimeoutOrNull(wait) { doorbell.receive() }
        }
    }

    /** Handles everything due now; returns how long until the next thing is due. */
    private fun tick(): Duration {
        val now = now()
        val due = ArrayList<Entry>()
        val expired = ArrayList<Entry>()
        synchronized(lock) {
            pendingEarliest.set(Long.MAX_VALUE)
            while (true) {
                val next = pending.poll() ?: break
                if (next.active) queue.add(next)
            }
            while (true) {
                val head = queue.peek() ?: break
                val slack = if (head.renew) head.lease.timing.renewInterval.inWholeNanoseconds / 2 else 0L
                if (head.due > now + slack) break
                queue.poll()
                if (!head.active || !head.lease.isHeldState) continue
                if (nanos(head.lease.nextDeadline) <= now) expired += head else due += head
            }
        }
        for (entry in expired) entry.lease.checkDeadlines()
        val renew = ArrayList<RedlockLease>()
        for (entry in due) {
            val lease = entry.lease
            val renewedRecently = lease.lastRenewalFailure == null &&
                nanos(lease.renewedAtMark) + lease.timing.renewInterval.inWholeNanoseconds / 2 > now
            if (!entry.renew || renewedRecently) schedule(entry) else renew += lease
        }
        if (renew.isNotEmpty()) {
            val entries = due.filter { it.renew }.associateBy { it.lease }
            for (chunk in chunks(renew)) {
                redlock.scope.launch {
                    try {
                        extendAll(chunk)
                    } finally {
                        for (lease in chunk) entries[lease]?.let(::schedule)
                    }
                }
            }
        }
        synchronized(lock) {
            sleepingUntil = minOf(queue.peek()?.due ?: Long.MAX_VALUE, pendingEarliest.get())
            return if (sleepingUntil == Long.MAX_VALUE) Duration.INFINITE else (sleepingUntil - now()).nanoseconds
        }
    }

    /**
     * Leases that can share one extend call (same lease time, node timeout, extend script and
     * quorum), at most [MAX_KEYS_PER_CALL] keys each.
     */
    private fun chunks(leases: List<RedlockLease>): List<List<RedlockLease>> {
        val chunks = ArrayList<List<RedlockLease>>()
        for (group in leases.groupBy { BatchKey(it.timing.leaseMillis, it.timing.nodeTimeout, it.kind.extendScript.name(), it.quorum) }.values) {
            var current = ArrayList<RedlockLease>()
            var keys = 0
            for (lease in group) {
                if (current.isNotEmpty() && keys + lease.extendKeys.size > MAX_KEYS_PER_CALL) {
                    chunks += current
                    current = ArrayList()
                    keys = 0
                }
                current += lease
                keys += lease.extendKeys.size
            }
            if (current.isNotEmpty()) chunks += current
        }
        return chunks
    }

    /**
     * Extends [leases] (all with the same lease time, node timeout, kind of extend and quorum) with one extend script per
     * master, and applies each lease's own outcome. Returns per lease null when it was extended,
     * else why not ([LockLostException], `LockNotExtendedException`, or [IllegalStateException]
     * for a released lease). Decided as soon as every lease is decided: extended on a quorum, or
     * a quorum out of reach; a slower master is then not waited for.
     */
    suspend fun extendAll(leases: List<RedlockLease>): List<Throwable?> {
        val nodes = redlock.nodes
        val timing = leases[0].timing
        val kind = leases[0].kind
        val quorum = leases[0].quorum
        val keys = ArrayList<String>(leases.size)
        val args = arrayOfNulls<String>(leases.size * 2)
        leases.forEachIndexed { i, lease ->
            keys.addAll(lease.extendKeys)
            args[2 * i] = lease.extendKeys.size.toString()
            args[2 * i + 1] = lease.token
        }
        @Suppress("UNCHECKED_CAST")
        val leaseArgs = args as Array<String>
        val keyArray = keys.toTypedArray()
        val start = redlock.timeSource.markNow()
        val gathered = fanOut(nodes, quorum, { held: BooleanArray -> held.all { it } }, redlock.extendAnswers) { node ->
            kind.extend(node, keyArray, leaseArgs, timing.leaseMillis, timing.nodeTimeout)
        }
        var tally = Tally(gathered.answers, leases.size)
        if (!tally.decided(nodes.size, quorum) && gathered.answers.size < nodes.size) {
            tally = Tally(gathered.all(), leases.size)
        }
        redlock.observer.renewalBatch(leases.size, keyArray.size, start.elapsedNow())
        return leases.mapIndexed { i, lease -> lease.extended(start, tally.confirmed[i], tally.notHeld[i], tally.failures) }
    }

    /** What leases must share to be renewed by one call. */
    private data class BatchKey(val leaseMillis: Long, val nodeTimeout: java.time.Duration, val script: String, val quorum: Int)

    /** Per lease, how many masters confirmed and how many no longer hold it; the failed masters. */
    private inner class Tally(answers: List<Answer<BooleanArray>>, size: Int) {
        val confirmed = IntArray(size)
        val notHeld = IntArray(size)
        val failures = ArrayList<MasterFailureException>()

        init {
            for (answer in answers.sortedBy { it.node }) {
                val held = answer.value
                if (held == null) {
                    failures += answer.failure!!.asMasterFailure(redlock.nodes[answer.node])
                    continue
                }
                // A master under the restart guard may confirm, but is not counted.
                val counted = !redlock.isGuarded(answer.node)
                for (i in 0 until size) if (!held[i]) notHeld[i]++ else if (counted) confirmed[i]++
            }
        }

        fun decided(n: Int, quorum: Int): Boolean =
            confirmed.indices.all { confirmed[it] >= quorum || LockMath.quorumImpossible(n, quorum, notHeld[it]) }
    }

    internal companion object {
        /** The most keys one extend call carries: bounds how long one script keeps a master busy (about a millisecond). */
        const val MAX_KEYS_PER_CALL = 2048

        val RETRY_AFTER_ERROR: Duration = Duration.parse("100ms")
    }
}

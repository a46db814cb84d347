package dev.redlock.chaos

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong

/**
 * How a critical section ended, as its client saw it.
 * - [COMPLETED]: `withRedlock` returned the block's result.
 * - [LOST]: `withRedlock` threw `LockLostException`.
 * - [FAILED]: `withRedlock` threw something else after the block had started.
 * - [DIED]: the client process was killed (SIGKILL) while the section ran.
 * - [UNFINISHED]: the run ended before the client reported the outcome (a hang guard; never expected).
 * - [REFUSED]: never a section's; what a client's call returns when the library refused it at the call.
 */
enum class Outcome { COMPLETED, LOST, FAILED, DIED, UNFINISHED, REFUSED }

/**
 * One critical section, from its holder's point of view. All times are `System.nanoTime()` readings,
 * which on Linux come from the system-wide CLOCK_MONOTONIC, so readings from child JVMs compare with
 * the parent's.
 *
 * @property start when the block began (the lock was granted just before)
 * @property end when the block stopped running (its `finally` began): finished, cancelled, or (for
 *   [Outcome.DIED]) killed
 * @property validUntil the exact end of the lease's validity when the block stopped, from the
 *   library's own figure (`Lease.times()`), converted to real time for a client whose clock runs at
 *   another rate; for a section that never reported its end, the last figure it reported
 * @property bodyCompleted whether the block ran all its steps, that is, was not cancelled
 * @property lossReason `LockLostException.reason` for [Outcome.LOST]
 * @property lossDeclaredAt the exact moment the library declared the lease lost (`Lease.times()`),
 *   or null if it never did
 * @property guarded whether the section ran under `withRedlock`, which promises to cancel it on loss
 *   (false for a lease from `acquire` that the caller watches itself)
 * @property requestedLease the per-call lease time the section asked for, in nanoseconds; 0 when it
 *   used the config's lease time
 * @property grantValidUntil the validity the grant itself gave (the first figure, at the block's
 *   start): `validity start = grantValidUntil - lease + drift` is when the winning attempt began
 */
data class Section(
    val id: String,
    val client: String,
    val resource: String,
    val start: Long,
    val end: Long,
    val validUntil: Long,
    val bodyCompleted: Boolean,
    val outcome: Outcome,
    val lossReason: String? = null,
    val lossDeclaredAt: Long? = null,
    val guarded: Boolean = true,
    /** The lease's fencing token, when the section ran with fencing. */
    val fence: Long? = null,
    val requestedLease: Long = 0,
    /** The lease's validity when the block began, before any renewal: the grant's own figure. */
    val grantValidUntil: Long = validUntil,
) {
    /**
     * The end of the span over which the holder held the lock as far as it could tell: the block
     * stopped, the validity ended, or the library declared the loss, whichever came first.
     */
    val believedEnd: Long
        get() = minOf(end, validUntil, lossDeclaredAt ?: Long.MAX_VALUE)

    /** Whether [end] is when the block stopped on its own terms (not a kill, not the run's end). */
    val endKnown: Boolean
        get() = outcome == Outcome.COMPLETED || outcome == Outcome.LOST || outcome == Outcome.FAILED

    /**
     * How long the block ran, uninformed, past its validity: `min(end, loss declared) - validUntil`.
     * Zero or negative when the block stopped, or was told, in time; any positive value is a missed
     * loss (unless the holder was frozen).
     */
    val overrunNanos: Long
        get() = minOf(end, lossDeclaredAt ?: end) - validUntil

    /**
     * How long the block kept running after the library declared the loss (the cancellation's own
     * latency), or null when no loss was declared while the block ran.
     */
    val cancelLatencyNanos: Long?
        get() = lossDeclaredAt?.takeIf { it <= end }?.let { end - it }
}

/** Where a client reports its sections as they happen; implemented by [History] and by a child's stdout. */
interface SectionSink {
    /** The block of section [id] began at [start]; [validUntil] is the lease's validity then; [requestedLease] as in [Section]. */
    fun begin(id: String, client: String, resource: String, start: Long, validUntil: Long, requestedLease: Long = 0)

    /** The lease's validity while the block runs (a later figure; the exact final one comes with [ended]). */
    fun valid(id: String, validUntil: Long)

    /** The block stopped at [end]; [validUntil] and [lossDeclaredAt] are the lease's exact figures then. */
    fun ended(id: String, end: Long, bodyCompleted: Boolean, validUntil: Long, lossDeclaredAt: Long?)

    /** How `withRedlock` ended; [lossDeclaredAt] as read after it returned or threw (used if [ended] had none). */
    fun outcome(id: String, outcome: Outcome, lossReason: String?, lossDeclaredAt: Long?)

    /** An acquisition that did not get the lock; [kind] is `contended`, `failed`, `closed`, `refused` or `error`. */
    fun notAcquired(client: String, kind: String)

    /** The fencing token of section [id]'s lease. */
    fun fence(id: String, token: Long)
}

/**
 * A `close()` of one client's `Redlock` while it was running sections and had waiters: what the
 * fault saw, for the [Checker] to judge with the sections of [client].
 *
 * @property start when `close()` was called
 * @property end when `close()` returned
 * @property waiters how each call that was waiting for a lock of that client at `close()` ended:
 *   the exception's simple class name (`acquired` if it got the lock), and when
 * @property callAfter how a call made on the closed `Redlock` after `close()` returned ended
 *   (simple class name, or `acquired`)
 * @property keysLeft lock keys of the client's probe section still on a running master when
 *   `close()` returned (nobody else uses that resource)
 * @property probeSection the id of the section the fault itself ran on that client
 */
data class CloseRecord(
    val client: String,
    val start: Long,
    val end: Long,
    val waiters: List<Pair<String, Long>>,
    val callAfter: String,
    val keysLeft: Int,
    val probeSection: String,
)

/**
 * A lock key that nobody holds: found on [master] [at] a moment when the only client of [resource]
 * had no lease on it and had nothing left in flight (say, a reloaded acquire that ran after its
 * own release). [pttlMillis] is how long the key had left.
 */
data class OrphanKey(val master: Int, val resource: String, val at: Long, val pttlMillis: Long, val note: String)

/**
 * An administrator's deletion of lock keys on some masters, as the fault saw it: `DEL` of one held
 * lock's keys ([resource]), or `FLUSHALL` ([resource] null: every key, the boot marker of the
 * restart guard included).
 *
 * @property masters the masters it deleted on; a majority of [of] or a minority
 * @property start just before the first command was sent
 * @property at just before the command that completed the deletion on [masters] was sent: [start],
 *   unless the commands were spread out ([timing] `split`); the moment the lock was gone
 * @property end when the last command was answered
 * @property timing when it struck: `random` (somewhere in the probe's section), `renewal` (exactly
 *   when the probe's next renewal passed on its way to one of [masters]), `split` (one master
 *   first, the others exactly after the extend call that followed had read them there, while the
 *   masters left alone answered slowly)
 * @property probeSection the section the fault ran for its victim (a resource nobody else uses)
 * @property probeTracked whether the probe's client ran with key tracking
 * @property note what happened, for the report
 */
data class Deletion(
    val kind: FaultKind,
    val masters: List<Int>,
    val of: Int,
    val start: Long,
    val at: Long,
    val end: Long,
    val timing: String,
    val resource: String?,
    val probeSection: String,
    val probeTracked: Boolean,
    val note: String = "",
) {
    /** Whether the lock keys were deleted on a majority of the masters: every lease holding them has lost its quorum. */
    val majority: Boolean
        get() = masters.size >= of / 2 + 1
}

/** Something a client process went through that the checker needs: frozen (SIGSTOP) or killed. */
data class ClientEvent(val client: String, val kind: Kind, val start: Long, val end: Long) {
    enum class Kind { FROZEN, KILLED }
}

/**
 * Every section, fault and client event of one run. Thread-safe: clients in this JVM report from
 * their own threads, child clients from their reader threads.
 */
class History : SectionSink {
    private class Open(
        val id: String,
        val client: String,
        val resource: String,
        val start: Long,
        @Volatile var validUntil: Long,
        val guarded: Boolean,
        val requestedLease: Long,
    ) {
        val grantValidUntil: Long = validUntil

        @Volatile var end: Long = -1

        @Volatile var bodyCompleted = false

        @Volatile var fence: Long? = null

        @Volatile var lossDeclaredAt: Long? = null
    }

    private val open = ConcurrentHashMap<String, Open>()
    private val done = ConcurrentLinkedQueue<Section>()
    private val faultEvents = ConcurrentLinkedQueue<FaultEvent>()
    private val clientEvents = ConcurrentLinkedQueue<ClientEvent>()
    private val closes = ConcurrentLinkedQueue<CloseRecord>()
    private val orphans = ConcurrentLinkedQueue<OrphanKey>()
    private val deletions = ConcurrentLinkedQueue<Deletion>()
    private val untracked = ConcurrentHashMap.newKeySet<String>()
    private val notAcquired = ConcurrentHashMap<String, AtomicLong>()
    private val begunCount = AtomicInteger()

    /** How many sections began, from every client. */
    val begun: Int
        get() = begunCount.get()

    override fun begin(id: String, client: String, resource: String, start: Long, validUntil: Long, requestedLease: Long) {
        begunCount.incrementAndGet()
        open[id] = Open(id, client, resource, start, validUntil, guarded = true, requestedLease = requestedLease)
    }

    /** Like [begin], for a section that does not run under `withRedlock` (see [Section.guarded]). */
    fun beginUnguarded(id: String, client: String, resource: String, start: Long, validUntil: Long) {
        begunCount.incrementAndGet()
        open[id] = Open(id, client, resource, start, validUntil, guarded = false, requestedLease = 0)
    }

    override fun valid(id: String, validUntil: Long) {
        val section = open[id] ?: return
        if (section.end < 0) section.validUntil = validUntil
    }

    override fun fence(id: String, token: Long) {
        open[id]?.fence = token
    }

    override fun ended(id: String, end: Long, bodyCompleted: Boolean, validUntil: Long, lossDeclaredAt: Long?) {
        val section = open[id] ?: return
        section.validUntil = validUntil
        section.lossDeclaredAt = lossDeclaredAt
        section.bodyCompleted = bodyCompleted
        section.end = end
    }

    override fun outcome(id: String, outcome: Outcome, lossReason: String?, lossDeclaredAt: Long?) {
        val section = open.remove(id) ?: return
        val end = if (section.end >= 0) section.end else System.nanoTime()
        done += Section(section.id, section.client, section.resource, section.start, end, section.validUntil,
            section.bodyCompleted, outcome, lossReason, section.lossDeclaredAt ?: lossDeclaredAt, section.guarded, section.fence,
            section.requestedLease, section.grantValidUntil)
    }

    override fun notAcquired(client: String, kind: String) {
        notAcquired.computeIfAbsent(kind) { AtomicLong() }.incrementAndGet()
    }

    /** Closes the open sections of [client], killed at [at]: it ran no further than that. */
    fun clientDied(client: String, at: Long) {
        for (section in open.values.filter { it.client == client }) {
            if (section.end < 0) section.end = at
            outcome(section.id, Outcome.DIED, null, null)
        }
    }

    /** The open section of [client], if it is inside one: resource and start. */
    fun openSectionOf(client: String): Pair<String, Long>? =
        open.values.firstOrNull { it.client == client && it.end < 0 }?.let { it.resource to it.start }

    /** The validity section [id] reported last while its block runs, or null once it stopped (or before it began). */
    fun validUntilOf(id: String): Long? = open[id]?.takeIf { it.end < 0 }?.validUntil

    /** Whether section [id] has begun and its block is still running. */
    fun isRunning(id: String): Boolean = open[id]?.let { it.end < 0 } ?: false

    /** The sections whose block is running now that asked for a lease of at least [atLeast] nanoseconds: id, client and start. */
    fun runningWithLease(atLeast: Long): List<Triple<String, String, Long>> =
        open.values.filter { it.end < 0 && it.requestedLease >= atLeast }.map { Triple(it.id, it.client, it.start) }

    fun record(event: FaultEvent) {
        faultEvents += event
    }

    fun record(event: ClientEvent) {
        clientEvents += event
    }

    fun record(close: CloseRecord) {
        closes += close
    }

    fun record(orphan: OrphanKey) {
        orphans += orphan
    }

    fun record(deletion: Deletion) {
        deletions += deletion
    }

    /** Client [client] runs with key tracking [on] or off (a client never recorded is taken to track). */
    fun tracking(client: String, on: Boolean) {
        if (on) untracked -= client else untracked += client
    }

    /** The clients that run with key tracking off. */
    fun untrackedClients(): Set<String> = untracked.toSet()

    /** Marks every section still open as [Outcome.UNFINISHED]; called once the run is over. */
    fun closeOpen() {
        for (id in open.keys.toList()) outcome(id, Outcome.UNFINISHED, null, null)
    }

    fun sections(): List<Section> = done.sortedBy { it.start }

    fun faults(): List<FaultEvent> = faultEvents.sortedBy { it.start }

    fun clientEvents(): List<ClientEvent> = clientEvents.sortedBy { it.start }

    fun closes(): List<CloseRecord> = closes.sortedBy { it.start }

    fun orphans(): List<OrphanKey> = orphans.sortedBy { it.at }

    fun deletions(): List<Deletion> = deletions.sortedBy { it.start }

    /** How many calls were refused at the call (`IllegalArgumentException` before any wait), from every client. */
    val refusals: Long
        get() = notAcquired["refused"]?.get() ?: 0L

    fun notAcquiredCounts(): Map<String, Long> = notAcquired.mapValues { it.value.get() }.toSortedMap()
}

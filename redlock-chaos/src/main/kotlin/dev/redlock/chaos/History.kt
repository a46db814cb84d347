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
 */
enum class Outcome { COMPLETED, LOST, FAILED, DIED, UNFINISHED }

/**
 * One critical section, from its holder's point of view. All times are `System.nanoTime()` readings,
 * which on Linux come from the system-wide CLOCK_MONOTONIC, so readings from child JVMs compare with
 * the parent's.
 *
 * @property start when the block began (the lock was granted just before)
 * @property end when the block stopped running: finished, cancelled, or (for [Outcome.DIED]) killed
 * @property validUntil until when the holder believed its lease valid: the latest `now + remaining`
 *   it sampled while `remaining` was positive (at the start, after every step, at the end), with
 *   `remaining` converted to real time for a client whose clock runs at another rate
 * @property bodyCompleted whether the block ran all its steps, that is, was not cancelled
 * @property lossReason `LockLostException.reason` for [Outcome.LOST]
 * @property lossDeclaredAt when the library declared the loss (`Lease.awaitLost()` returned)
 * @property guarded whether the section ran under `withRedlock`, which promises to cancel it on loss
 *   (false for a lease from `acquire` that the caller watches itself)
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
) {
    /** The end of the span over which the holder believed its lease valid while it ran. */
    val believedEnd: Long
        get() = minOf(end, validUntil)
}

/** Where a client reports its sections as they happen; implemented by [History] and by a child's stdout. */
interface SectionSink {
    fun begin(id: String, client: String, resource: String, start: Long, validUntil: Long)

    fun valid(id: String, validUntil: Long)

    fun ended(id: String, end: Long, bodyCompleted: Boolean)

    fun outcome(id: String, outcome: Outcome, lossReason: String?, lossDeclaredAt: Long?)

    /** An acquisition that did not get the lock; [kind] is `contended`, `failed` or `error`. */
    fun notAcquired(client: String, kind: String)

    /** The fencing token of section [id]'s lease. */
    fun fence(id: String, token: Long)
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
    ) {
        @Volatile var end: Long = -1

        @Volatile var bodyCompleted = false

        @Volatile var fence: Long? = null
    }

    private val open = ConcurrentHashMap<String, Open>()
    private val done = ConcurrentLinkedQueue<Section>()
    private val faultEvents = ConcurrentLinkedQueue<FaultEvent>()
    private val clientEvents = ConcurrentLinkedQueue<ClientEvent>()
    private val notAcquired = ConcurrentHashMap<String, AtomicLong>()
    private val begunCount = AtomicInteger()

    /** How many sections began, from every client. */
    val begun: Int
        get() = begunCount.get()

    override fun begin(id: String, client: String, resource: String, start: Long, validUntil: Long) {
        begunCount.incrementAndGet()
        open[id] = Open(id, client, resource, start, maxOf(start, validUntil), guarded = true)
    }

    /** Like [begin], for a section that does not run under `withRedlock` (see [Section.guarded]). */
    fun beginUnguarded(id: String, client: String, resource: String, start: Long, validUntil: Long) {
        begunCount.incrementAndGet()
        open[id] = Open(id, client, resource, start, maxOf(start, validUntil), guarded = false)
    }

    override fun valid(id: String, validUntil: Long) {
        val section = open[id] ?: return
        if (validUntil > section.validUntil) section.validUntil = validUntil
    }

    override fun fence(id: String, token: Long) {
        open[id]?.fence = token
    }

    override fun ended(id: String, end: Long, bodyCompleted: Boolean) {
        val section = open[id] ?: return
        section.end = end
        section.bodyCompleted = bodyCompleted
    }

    override fun outcome(id: String, outcome: Outcome, lossReason: String?, lossDeclaredAt: Long?) {
        val section = open.remove(id) ?: return
        val end = if (section.end >= 0) section.end else System.nanoTime()
        done += Section(section.id, section.client, section.resource, section.start, end, section.validUntil,
            section.bodyCompleted, outcome, lossReason, lossDeclaredAt, section.guarded, section.fence)
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

    fun record(event: FaultEvent) {
        faultEvents += event
    }

    fun record(event: ClientEvent) {
        clientEvents += event
    }

    /** Marks every section still open as [Outcome.UNFINISHED]; called once the run is over. */
    fun closeOpen() {
        for (id in open.keys.toList()) outcome(id, Outcome.UNFINISHED, null, null)
    }

    fun sections(): List<Section> = done.sortedBy { it.start }

    fun faults(): List<FaultEvent> = faultEvents.sortedBy { it.start }

    fun clientEvents(): List<ClientEvent> = clientEvents.sortedBy { it.start }

    fun notAcquiredCounts(): Map<String, Long> = notAcquired.mapValues { it.value.get() }.toSortedMap()
}

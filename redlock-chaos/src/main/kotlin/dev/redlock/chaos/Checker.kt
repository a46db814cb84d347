package dev.redlock.chaos

import java.util.Locale

/**
 * Two sections on the same resource that overlapped while both holders held the lock as far as
 * they could tell (see [Section.believedEnd]): a mutual-exclusion (safety) violation.
 *
 * @property overlapStart when the overlap began
 * @property overlapNanos how long both believed they held the lock
 * @property keyLossBefore the latest fault that destroyed lock keys on a master (restart at once,
 *   FLUSHALL, eviction...) between the earlier section's start and the overlap, if any: what broke
 */
data class Violation(
    val first: Section,
    val second: Section,
    val overlapStart: Long,
    val overlapNanos: Long,
    val keyLossBefore: FaultEvent?,
) {
    fun describe(origin: Long): String =
        "resource '${first.resource}': ${first.id} (${first.client}) held it over " +
            "${span(first.start, first.believedEnd, origin)}, ${second.id} (${second.client}) over " +
            "${span(second.start, second.believedEnd, origin)}: both for ${ms(overlapNanos)}" +
            (keyLossBefore?.let { " after ${it.kind} on ${it.target} at ${ms(it.start - origin)}" } ?: "")
}

/**
 * A guarded section whose block ran past its validity before it stopped or was told: its
 * [overrunNanos] ([Section.overrunNanos]) is positive, by however little.
 */
data class MissedLoss(val section: Section, val overrunNanos: Long)

/**
 * A section whose holder was frozen (SIGSTOP) across the end of its validity, and how long its
 * block ran after the process was continued before it stopped: the pause the library cannot see
 * (the "long GC pause" pitfall), reported apart from [MissedLoss].
 */
data class PausedOverrun(val section: Section, val frozen: ClientEvent, val afterResumeNanos: Long, val bodyCompleted: Boolean)

/** How long after its holder died or froze a resource was acquired again, against what the lease left. */
data class Reacquire(val event: ClientEvent, val resource: String, val delayNanos: Long?, val leaseLeftNanos: Long)

/** How long after a fault ended a section next started anywhere. */
data class Recovery(val fault: FaultEvent, val nanos: Long)

/**
 * A `close()` judged against the sections of its client: [running] are the sections whose block
 * was running when `close()` was called; [problems] says, one line each, what did not go as
 * `close()` promises (every running section told `LockLostException(CLOSED)` by the time `close()`
 * returns, waiters and later calls failed with `RedlockClosedException`, the keys released).
 */
class CloseReport(val record: CloseRecord, val running: List<Section>, val problems: List<String>) {
    /** For each running section: from the call of `close()` to the moment its block stopped. */
    val sectionStops: List<Long>
        get() = running.map { it.end - record.start }

    /** For each waiter: from the call of `close()` to the moment its call ended. */
    val waiterEnds: List<Long>
        get() = record.waiters.map { it.second - record.start }
}

/**
 * A lease whose keys a [Deletion] took from a majority of the masters: it held the lock when the
 * deletion came (its block began before the first command was sent, and it still held the lock,
 * as far as it could tell, when the deletion was complete), so its quorum was gone for good.
 *
 * @property tracked whether its client ran with key tracking
 * @property probe whether it is the fault's own probe section (always long enough to be told)
 */
class Victim(val section: Section, val deletion: Deletion, val tracked: Boolean, val probe: Boolean) {
    /** From the deletion (just before the command that completed it was sent) to the declared loss; null if none was declared. */
    val declaredAfter: Long?
        get() = section.lossDeclaredAt?.let { it - deletion.at }

    /**
     * The detection delay: from the deletion's last command answered (the administrator's
     * acknowledgement) to the declared NOT_HELD loss; null if no such loss was declared. Negative
     * when the holder was told before the administrator had read the answer.
     */
    val detectedAfter: Long?
        get() = section.lossDeclaredAt?.takeIf { section.lossReason == "NOT_HELD" }?.let { it - deletion.end }

    /** From the deletion to the moment the block stopped, when it stopped because of the loss (cancelled); else null. */
    val stoppedAfter: Long?
        get() = if (section.outcome == Outcome.LOST && section.lossDeclaredAt != null) section.end - deletion.at else null

    /** Whether the block ended on its own, before anything told it of the loss. */
    val endedUninformed: Boolean
        get() = section.lossDeclaredAt == null && section.outcome == Outcome.COMPLETED
}

/**
 * A [Deletion] judged: the leases it took ([victims], on a majority), and what did not go as promised
 * ([problems], one line each): on a majority, the probe's lease declared lost because a quorum no
 * longer holds it (NOT_HELD) and its block cancelled; no lease renewed by a call that began after
 * its keys were gone; after `FLUSHALL`, no lease granted on votes the restart guard does not allow
 * yet; on a minority, the probe's lease not lost, and renewed after the deletion.
 */
class DeletionReport(val record: Deletion, val victims: List<Victim>, val problems: List<String>, val judged: Boolean = true)

/**
 * What the [Checker] found in one history.
 *
 * @property overruns [Section.overrunNanos] of every guarded section that reached the end of its
 *   validity (its loss declared as EXPIRED, or any positive overrun), holders frozen at that moment
 *   apart: negative when the loss was declared ahead of the validity's end
 * @property cancelLatencies for each section (not frozen) whose block still ran when the loss was
 *   declared: from the declaration until the block stopped. Reported, never counted as overrun.
 * @property detectionDelays for each loss declared as "no longer held": from the fault that
 *   destroyed the keys until the holder declared the loss
 * @property longestStallNanos the longest time between two consecutive section starts
 */
class CheckReport(
    val sections: List<Section>,
    val faults: List<FaultEvent>,
    val violations: List<Violation>,
    val missedLosses: List<MissedLoss>,
    val pausedOverruns: List<PausedOverrun>,
    val overruns: List<Long>,
    val cancelLatencies: List<Long>,
    val detectionDelays: List<Long>,
    val reacquires: List<Reacquire>,
    val recoveries: List<Recovery>,
    val longestStallNanos: Long,
    /** Pairs (earlier, later) of holders of one resource whose fencing tokens do not grow. */
    val fenceInversions: List<Pair<Section, Section>> = emptyList(),
    val closes: List<CloseReport> = emptyList(),
    val orphans: List<OrphanKey> = emptyList(),
    val deletions: List<DeletionReport> = emptyList(),
) {
    /** Every problem the deletion faults found. */
    val deletionProblems: List<String>
        get() = deletions.flatMap { d -> d.problems.map { "${d.record.kind} on masters ${d.record.masters} (${d.record.timing}): $it" } }

    /**
     * The detection delays ([Victim.detectedAfter]) of the leases that deletions on a majority took,
     * by fault kind and whether the holder ran with key tracking; deletions not judged (another
     * fault overlapped) are left out.
     */
    val detectionByKind: Map<Pair<FaultKind, Boolean>, List<Long>>
        get() = deletions.filter { it.judged }.flatMap { d -> d.victims.mapNotNull { v -> v.detectedAfter?.let { (d.record.kind to v.tracked) to it } } }
            .groupBy({ it.first }, { it.second })

    /** The sections whose block took longest to stop after the loss was declared, slowest first. */
    val slowestCancels: List<Pair<Section, Long>>
        get() {
            val frozen = pausedOverruns.map(PausedOverrun::section).toSet()
            return sections.filter { it !in frozen }.mapNotNull { s -> s.cancelLatencyNanos?.let { s to it } }.sortedByDescending { it.second }
        }

    /** Every problem the `close()` faults found, with the client. */
    val closeProblems: List<String>
        get() = closes.flatMap { c -> c.problems.map { "close of ${c.record.client}: $it" } }

    val outcomes: Map<Outcome, Int> = sections.groupingBy { it.outcome }.eachCount().toSortedMap()

    /** A few lines for logs and assertion messages; [origin] is the run's start. */
    fun summary(origin: Long): String = buildString {
        append("${sections.size} sections ${outcomes}, ${faults.size} faults ${faults.groupingBy { it.kind }.eachCount()}")
        append(", ${violations.size} violation(s), ${missedLosses.size} missed loss(es)")
        if (pausedOverruns.isNotEmpty()) append(", ${pausedOverruns.size} paused overrun(s)")
        append(", ${fenceInversions.size} fencing inversion(s)")
        if (closes.isNotEmpty()) append(", ${closes.size} close(s) with ${closeProblems.size} problem(s)")
        if (orphans.isNotEmpty()) append(", ${orphans.size} ORPHAN KEY(S)")
        if (deletions.isNotEmpty()) append(", ${deletions.size} deletion(s) with ${deletionProblems.size} problem(s)")
        for (f in faults.filter { it.kind in FaultKind.EDGES }) {
            append("\n  fault ${f.kind} on ${f.target} at ${ms(f.start - origin)}: ${f.note}")
        }
        append("\n  overrun past validity (sections that reached its end), p50 / p99 / max: ${distribution(overruns)}")
        append("\n  cancellation latency (loss declared -> block stopped), p50 / p99 / max: ${distribution(cancelLatencies)}")
        for ((a, b) in fenceInversions.take(3)) {
            append("\n  FENCING INVERSION on '${a.resource}': ${a.id} token ${a.fence} then ${b.id} token ${b.fence}")
        }
        for (v in violations.take(5)) append("\n  VIOLATION ").append(v.describe(origin))
        for (m in missedLosses.sortedByDescending { it.overrunNanos }.take(5)) {
            val s = m.section
            append("\n  MISSED LOSS ${s.id} (${s.client}) on '${s.resource}': ${s.outcome}${s.lossReason?.let { " $it" } ?: ""}, ")
            append("validity ended ${ms(s.validUntil - origin)}, loss declared ${s.lossDeclaredAt?.let { ms(it - origin) } ?: "never"}, ")
            append("block stopped ${ms(s.end - origin)}: ran ${ms(m.overrunNanos)} past its validity, uninformed")
        }
        for ((s, nanos) in slowestCancels.filter { it.second > SLOW_CANCEL_NANOS }.take(3)) {
            append("\n  slow cancel: ${s.id} (${s.client}) on '${s.resource}', ${s.lossReason}: block stopped ${ms(nanos)} after the loss was declared")
        }
        for (c in closes) {
            append("\n  close of ${c.record.client} at ${ms(c.record.start - origin)} (returned after ${ms(c.record.end - c.record.start)}): ")
            append("${c.running.size} running section(s) ${c.running.map { "${it.outcome}${it.lossReason?.let { r -> "/$r" } ?: ""}" }}, ")
            append("stopped ${c.sectionStops.map { ms(it) }} after close(); waiters ${c.record.waiters.map { "${it.first} after ${ms(it.second - c.record.start)}" }}; ")
            append("call after close: ${c.record.callAfter}; keys left ${c.record.keysLeft}")
            for (p in c.problems) append("\n    CLOSE PROBLEM: $p")
        }
        for (d in deletions) {
            val r = d.record
            append("\n  ${r.kind} on masters ${r.masters} of ${r.of} at ${ms(r.at - origin)} (${r.timing}, probe ${if (r.probeTracked) "tracking" else "no tracking"}): ")
            if (r.majority) append("${d.victims.size} lease(s) taken; ")
            if (d.victims.isNotEmpty()) append(d.victims.joinToString { v ->
                "${v.section.id}${if (v.tracked) "" else " (untracked)"} " +
                    (v.declaredAfter?.let { "lost ${v.section.lossReason} after ${ms(it)} (${v.detectedAfter?.let(::ms) ?: "-"} after the last answer), stopped after ${v.stoppedAfter?.let(::ms) ?: "-"}" }
                        ?: "${v.section.outcome} uninformed ${ms(v.section.end - r.at)} after")
            }).append("; ")
            if (!d.judged) append("not judged: another fault overlapped the probe's section; ")
            append("[${r.note}]")
            for (p in d.problems) append("\n    DELETION PROBLEM: $p")
        }
        for ((key, delays) in detectionByKind.entries.sortedBy { it.key.first.ordinal * 2 + if (it.key.second) 0 else 1 }) {
            append("\n  detection after ${key.first} (last answer to NOT_HELD declared), ${if (key.second) "tracking" else "no tracking"}: ${distribution(delays)}")
        }
        for (o in orphans.take(5)) {
            append("\n  ORPHAN KEY on master ${o.master}: '${o.resource}' held by nobody at ${ms(o.at - origin)}, ${o.pttlMillis} ms left (${o.note})")
        }
    }
}

/**
 * Checks a history of critical sections for mutual exclusion and for losses the library missed,
 * and measures liveness. Pure: it looks only at the recorded times, which are the library's own
 * exact figures (`Lease.times()`), so no margin is allowed anywhere: a guarded block that stopped
 * (or was told) even a microsecond after its validity ended is a [MissedLoss], unless its holder
 * was frozen (SIGSTOP) at that moment. How long the block took to stop once told is the
 * cancellation latency, measured apart and never counted as overrun.
 */
class Checker(private val timing: Timing = Timing()) {

    fun check(
        sections: List<Section>,
        faults: List<FaultEvent> = emptyList(),
        clientEvents: List<ClientEvent> = emptyList(),
        closes: List<CloseRecord> = emptyList(),
        orphans: List<OrphanKey> = emptyList(),
        deletions: List<Deletion> = emptyList(),
        untracked: Set<String> = emptySet(),
    ): CheckReport {
        val sorted = sections.sortedBy { it.start }
        val frozen = clientEvents.filter { it.kind == ClientEvent.Kind.FROZEN }
        val keyLosses = faults.filter { it.kind.keyLoss }.sortedBy { it.start }

        val violations = findOverlaps(sorted, keyLosses)

        val missed = ArrayList<MissedLoss>()
        val paused = ArrayList<PausedOverrun>()
        val overruns = ArrayList<Long>()
        val cancel = ArrayList<Long>()
        for (s in sorted) {
            if (!s.endKnown) continue
            val overrun = s.overrunNanos
            // Frozen when its validity ran out: the overrun is the pause's, not the library's.
            val freeze = frozen.firstOrNull { it.client == s.client && it.start <= s.validUntil && it.end >= s.validUntil && it.start < s.end }
            if (freeze != null && overrun > 0) {
                paused += PausedOverrun(s, freeze, s.end - freeze.end, s.bodyCompleted)
                continue
            }
            s.cancelLatencyNanos?.let { cancel += it }
            if (!s.guarded) continue
            if (overrun > 0) missed += MissedLoss(s, overrun)
            if (overrun > 0 || s.lossReason == LOSS_EXPIRED) overruns += overrun
        }

        val detection = sorted.filter { it.outcome == Outcome.LOST && it.lossReason == "NOT_HELD" && it.lossDeclaredAt != null }
            .mapNotNull { s ->
                val onset = keyLosses.lastOrNull { it.start >= s.start && it.start <= s.lossDeclaredAt!! } ?: return@mapNotNull null
                s.lossDeclaredAt!! - onset.start
            }

        val reacquires = clientEvents.mapNotNull { e ->
            val held = sorted.firstOrNull { it.client == e.client && it.start <= e.start && it.end >= e.start } ?: return@mapNotNull null
            // A freeze shorter than what the lease had left is only a hiccup: nobody could take over.
            if (e.kind == ClientEvent.Kind.FROZEN && e.end < held.validUntil) return@mapNotNull null
            val next = sorted.firstOrNull { it.resource == held.resource && it.client != e.client && it.start > e.start }
            Reacquire(e, held.resource, next?.let { it.start - e.start }, maxOf(0L, held.validUntil - e.start))
        }

        val starts = sorted.map { it.start }
        val recoveries = faults.mapNotNull { f ->
            val next = starts.firstOrNull { it > f.end } ?: return@mapNotNull null
            Recovery(f, next - f.end)
        }
        val stall = starts.zipWithNext { a, b -> b - a }.maxOrNull() ?: 0L

        return CheckReport(
            sorted, faults.sortedBy { it.start }, violations, missed, paused, overruns, cancel, detection, reacquires, recoveries, stall,
            fenceInversions(sorted), closes.sortedBy { it.start }.map { judgeClose(it, sorted) }, orphans.sortedBy { it.at },
            deletions.sortedBy { it.start }.map { judgeDeletion(it, sorted, faults, untracked) },
        )
    }

    private fun leaseNanos(s: Section): Long = if (s.requestedLease > 0) s.requestedLease else timing.lease.inWholeNanoseconds

    /** When the call that set validity [validUntil] of [s]'s lease began: `validUntil - lease + drift`. */
    private fun validityStart(s: Section, validUntil: Long): Long = validUntil - leaseNanos(s) + timing.driftNanos(leaseNanos(s))

    /** When the attempt that won [s]'s lease began. */
    fun attemptStart(s: Section): Long = validityStart(s, s.grantValidUntil)

    /** When the last successful call on [s]'s lease (its grant, or its last renewal) began. */
    fun lastRenewalStart(s: Section): Long = validityStart(s, s.validUntil)

    /** What a deletion promises for the leases it took and for the grants after it; see [DeletionReport]. */
    private fun judgeDeletion(d: Deletion, sorted: List<Section>, faults: List<FaultEvent>, untracked: Set<String>): DeletionReport {
        val problems = ArrayList<String>()
        // Held when the first command went out, and still held (as far as its holder could tell) once the deletion was complete.
        val held = sorted.filter { s ->
            (d.resource == null || s.resource == d.resource) && s.start <= d.start && s.believedEnd > d.at && s.outcome != Outcome.UNFINISHED
        }
        val probe = held.firstOrNull { it.id == d.probeSection }
        if (probe == null) {
            val ran = sorted.firstOrNull { it.id == d.probeSection }
            problems += "its probe section ${d.probeSection} did not hold the lock through the deletion (" +
                (ran?.let { "${it.outcome}${it.lossReason?.let { r -> " $r" } ?: ""}, began ${ms(it.start - d.start)} from the first command" } ?: "never began") +
                "): the fault tested nothing"
        }
        // Another fault over the probe's span may take a lease legitimately (a master killed besides): then not judged.
        val others = faults.filter { f -> f.kind !in FaultKind.ADMIN && probe != null && f.start <= probe.end && f.end >= probe.start }
        if (!d.majority) {
            if (probe != null) {
                if (others.isNotEmpty()) return DeletionReport(d, emptyList(), emptyList(), judged = false)
                if (probe.lossDeclaredAt != null || probe.outcome != Outcome.COMPLETED) {
                    problems += "the probe's lease was ${probe.outcome}${probe.lossReason?.let { " ($it)" } ?: ""} " +
                        "${probe.lossDeclaredAt?.let { "declared lost ${ms(it - d.at)} after the deletion " } ?: ""}though a quorum still held it"
                } else if (lastRenewalStart(probe) <= d.end) {
                    problems += "the probe's lease was not renewed after the deletion: the fault tested nothing"
                }
            }
            return DeletionReport(d, emptyList(), problems)
        }
        val victims = held.map { Victim(it, d, it.client !in untracked, it.id == d.probeSection) }
        for (v in victims) {
            val s = v.section
            // An extend never re-creates a key: a renewal that began after the keys were gone cannot have reached a quorum.
            val renewedAt = lastRenewalStart(s)
            if (renewedAt > d.end) {
                problems += "${s.id} (${s.client}) was renewed by a call that began ${ms(renewedAt - d.end)} after its keys were gone from a majority"
            }
        }
        if (probe != null && others.isEmpty()) {
            when {
                probe.outcome != Outcome.LOST || probe.lossDeclaredAt == null ->
                    problems += "the probe's lease was not declared lost: ${probe.outcome}, block stopped ${ms(probe.end - d.at)} after the deletion, uninformed"
                probe.lossReason != LOSS_NOT_HELD ->
                    problems += "the probe's lease was declared lost as ${probe.lossReason}, ${ms(probe.lossDeclaredAt - d.at)} after the deletion: " +
                        "no check or renewal found the keys gone first"
            }
        }
        if (d.kind == FaultKind.FLUSHALL_MAJORITY && timing.guard > kotlin.time.Duration.ZERO) {
            // Every grant needs a flushed master's vote, and such a vote counts once its new boot marker is a guard old.
            // The marker holds whole milliseconds of the server's clock: it may read up to 1 ms older than it is.
            val allowed = d.start + timing.guard.inWholeNanoseconds - MARKER_RESOLUTION_NANOS
            for (s in sorted) {
                if (attemptStart(s) >= d.end && s.start < allowed) {
                    problems += "${s.id} (${s.client}) on '${s.resource}' was granted ${ms(s.start - d.start)} after the first FLUSHALL, on an attempt " +
                        "begun after the flush, ${ms(allowed - s.start)} before the restart guard (${timing.guard}) allowed any grant"
                }
            }
        }
        return DeletionReport(d, victims, problems)
    }

    /** What `close()` promises for the sections, waiters and keys of its client; see [CloseReport]. */
    private fun judgeClose(c: CloseRecord, sorted: List<Section>): CloseReport {
        val running = sorted.filter { it.client == c.client && it.start <= c.start && it.end >= c.start }
        val problems = ArrayList<String>()
        if (running.none { it.id == c.probeSection }) problems += "its probe section ${c.probeSection} was not running at close(): the fault tested nothing"
        for (s in running) {
            val declared = s.lossDeclaredAt
            when {
                s.outcome == Outcome.UNFINISHED -> problems += "section ${s.id} never ended"
                s.outcome == Outcome.FAILED -> problems += "section ${s.id} ended with ${s.lossReason} instead of LockLostException(CLOSED)"
                s.outcome == Outcome.LOST && s.lossReason != "CLOSED" && (declared == null || declared >= c.start) ->
                    problems += "section ${s.id} ended with LockLostException(${s.lossReason}) instead of CLOSED"
                s.outcome == Outcome.COMPLETED && declared != null && declared <= s.end ->
                    problems += "withRedlock of section ${s.id} returned normally though the loss was declared while its block ran"
            }
            if (s.end > c.end && (declared == null || declared > c.end)) {
                problems += "section ${s.id}'s block ran on ${ms(s.end - c.end)} after close() returned, not told by then " +
                    "(loss declared ${declared?.let { "${ms(it - c.end)} after close() returned" } ?: "never"}, ${s.outcome})"
            }
        }
        for ((what, at) in c.waiters) {
            if (what != CLOSED_EXCEPTION) problems += "a waiter ended with $what ${ms(at - c.start)} after close() was called, not RedlockClosedException"
        }
        if (c.callAfter != CLOSED_EXCEPTION) problems += "a call on the closed Redlock ended with ${c.callAfter}, not RedlockClosedException"
        if (c.keysLeft > 0) problems += "${c.keysLeft} lock key(s) of its probe section still on the masters when close() returned"
        return CloseReport(c, running, problems)
    }

    /**
     * The fencing property: of two holders of a resource, the later one's token is larger. Holders
     * are taken in the order their blocks started (a block starts right after its grant, and a
     * later grant comes after the earlier lease ended or was lost); each token must exceed every
     * token before it on that resource.
     */
    private fun fenceInversions(sorted: List<Section>): List<Pair<Section, Section>> {
        val found = ArrayList<Pair<Section, Section>>()
        for ((_, onResource) in sorted.filter { it.fence != null }.groupBy { it.resource }) {
            var highest: Section? = null
            for (s in onResource) {
                if (highest != null && s.fence!! <= highest.fence!!) found += highest to s
                if (highest == null || s.fence!! > highest.fence!!) highest = s
            }
        }
        return found
    }

    /** Sweeps each resource's sections in start order against those still held (see [Section.believedEnd]). */
    private fun findOverlaps(sorted: List<Section>, keyLosses: List<FaultEvent>): List<Violation> {
        val found = ArrayList<Violation>()
        for ((_, onResource) in sorted.groupBy { it.resource }) {
            val active = ArrayList<Section>()
            for (s in onResource) {
                active.removeAll { it.believedEnd <= s.start }
                for (a in active) {
                    val from = maxOf(a.start, s.start)
                    val to = minOf(a.believedEnd, s.believedEnd)
                    if (to > from) {
                        val cause = keyLosses.lastOrNull { it.start >= a.start - LOOKBACK_NANOS && it.start <= from }
                        found += Violation(a, s, from, to - from, cause)
                    }
                }
                if (s.believedEnd > s.start) active += s
            }
        }
        return found.sortedBy { it.overlapStart }
    }

    private companion object {
        /** The earlier holder's keys were set while it acquired, shortly before its block started. */
        const val LOOKBACK_NANOS = 1_000_000_000L
        const val LOSS_EXPIRED = "EXPIRED"
        const val CLOSED_EXCEPTION = "RedlockClosedException"
        const val LOSS_NOT_HELD = "NOT_HELD"

        /** The boot marker's resolution: whole milliseconds of the server's clock. */
        const val MARKER_RESOLUTION_NANOS = 1_000_000L
    }
}

private const val SLOW_CANCEL_NANOS = 50_000_000L

internal fun ms(nanos: Long): String = when {
    // Overruns of a fraction of a millisecond are the point now: show them.
    nanos != 0L && Math.abs(nanos) < 1_000_000 -> String.format(Locale.ROOT, "%.3f ms", nanos / 1e6)
    else -> String.format(Locale.ROOT, "%.1f ms", nanos / 1e6)
}

internal fun span(from: Long, to: Long, origin: Long): String =
    String.format(Locale.ROOT, "[%.1f, %.1f] ms", (from - origin) / 1e6, (to - origin) / 1e6)

/** `p50 / p99 / max (n=...)` of [values] in milliseconds, or `- (none)`. */
fun distribution(values: List<Long>, p99: Boolean = true): String {
    if (values.isEmpty()) return "- (none)"
    val parts = listOfNotNull(percentile(values, 50.0), if (p99) percentile(values, 99.0) else null, values.max())
    return parts.joinToString(" / ") { ms(it) } + " (n=${values.size})"
}

/** The [p]-th percentile (0..100) of [values] by nearest rank; null for none. */
fun percentile(values: List<Long>, p: Double): Long? {
    if (values.isEmpty()) return null
    val sorted = values.sorted()
    val rank = Math.ceil(p / 100.0 * sorted.size).toInt().coerceIn(1, sorted.size)
    return sorted[rank - 1]
}

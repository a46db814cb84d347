package dev.redlock.chaos

import java.util.Locale

/**
 * Two sections on the same resource that overlapped while both holders believed their leases
 * valid: a mutual-exclusion (safety) violation.
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
        "resource '${first.resource}': ${first.id} (${first.client}) believed valid over " +
            "${span(first.start, first.believedEnd, origin)}, ${second.id} (${second.client}) over " +
            "${span(second.start, second.believedEnd, origin)}: both for ${ms(overlapNanos)}" +
            (keyLossBefore?.let { " after ${it.kind} on ${it.target} at ${ms(it.start - origin)}" } ?: "")
}

/** A section whose block ran all its steps past the end of its believed validity, uninformed. */
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
 * What the [Checker] found in one history.
 *
 * @property cancelLatencies for each lost section (not frozen): from the moment the lease stopped
 *   being valid to its holder (the earlier of its believed validity and the declared loss) until the
 *   block stopped running
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
    val cancelLatencies: List<Long>,
    val detectionDelays: List<Long>,
    val reacquires: List<Reacquire>,
    val recoveries: List<Recovery>,
    val longestStallNanos: Long,
    /** Pairs (earlier, later) of holders of one resource whose fencing tokens do not grow. */
    val fenceInversions: List<Pair<Section, Section>> = emptyList(),
) {
    /** The lost sections whose block took longest to stop after the loss, slowest first. */
    val slowestCancels: List<Pair<Section, Long>>
        get() = sections.filter { it.outcome == Outcome.LOST && it !in pausedOverruns.map(PausedOverrun::section) }
            .map { it to (it.end - minOf(it.validUntil, it.lossDeclaredAt ?: it.validUntil)) }
            .sortedByDescending { it.second }

    val outcomes: Map<Outcome, Int> = sections.groupingBy { it.outcome }.eachCount().toSortedMap()

    /** A few lines for logs and assertion messages; [origin] is the run's start. */
    fun summary(origin: Long): String = buildString {
        append("${sections.size} sections ${outcomes}, ${faults.size} faults ${faults.groupingBy { it.kind }.eachCount()}")
        append(", ${violations.size} violation(s), ${missedLosses.size} missed loss(es)")
        if (pausedOverruns.isNotEmpty()) append(", ${pausedOverruns.size} paused overrun(s)")
        append(", ${fenceInversions.size} fencing inversion(s)")
        for ((a, b) in fenceInversions.take(3)) {
            append("\n  FENCING INVERSION on '${a.resource}': ${a.id} token ${a.fence} then ${b.id} token ${b.fence}")
        }
        for (v in violations.take(5)) append("\n  VIOLATION ").append(v.describe(origin))
        for ((s, nanos) in slowestCancels.filter { it.second > SLOW_CANCEL_NANOS }.take(3)) {
            append("\n  slow cancel: ${s.id} (${s.client}) on '${s.resource}', ${s.lossReason}: block stopped ${ms(nanos)} after the loss ")
            append("(validity ${ms(s.validUntil - origin)}, declared ${s.lossDeclaredAt?.let { ms(it - origin) } ?: "-"}, end ${ms(s.end - origin)})")
        }
        for (m in missedLosses.take(5)) {
            append("\n  MISSED LOSS ${m.section.id} (${m.section.client}) on '${m.section.resource}': ran ")
            append("${ms(m.overrunNanos)} past its validity, uninformed")
        }
    }
}

/**
 * Checks a history of critical sections for mutual exclusion and for losses the library missed,
 * and measures liveness. Pure: it looks only at the recorded times.
 *
 * @param cancelGraceNanos how far past its validity a block may finish its last step before that
 *   counts as a missed loss: the guard that cancels the block and the block's own timer can fall due
 *   together, and either may run first (cooperative cancellation, on threads that a loaded machine
 *   may not schedule at once). Every overrun is still measured; the default is 50 ms.
 */
class Checker(private val cancelGraceNanos: Long = 50_000_000) {

    fun check(
        sections: List<Section>,
        faults: List<FaultEvent> = emptyList(),
        clientEvents: List<ClientEvent> = emptyList(),
    ): CheckReport {
        val sorted = sections.sortedBy { it.start }
        val frozen = clientEvents.filter { it.kind == ClientEvent.Kind.FROZEN }
        val keyLosses = faults.filter { it.kind.keyLoss }.sortedBy { it.start }

        val violations = findOverlaps(sorted, keyLosses)

        val missed = ArrayList<MissedLoss>()
        val paused = ArrayList<PausedOverrun>()
        val cancel = ArrayList<Long>()
        for (s in sorted) {
            // Frozen when its validity ran out: the overrun is the pause's, not the library's.
            val freeze = frozen.firstOrNull { it.client == s.client && it.start <= s.validUntil + cancelGraceNanos && it.end >= s.validUntil && it.start < s.end }
            if (freeze != null && s.end > s.validUntil) {
                paused += PausedOverrun(s, freeze, s.end - freeze.end, s.bodyCompleted)
                continue
            }
            if (s.guarded && s.bodyCompleted && s.end > s.validUntil + cancelGraceNanos) missed += MissedLoss(s, s.end - s.validUntil)
            if (s.outcome == Outcome.LOST) {
                val lostAt = minOf(s.validUntil, s.lossDeclaredAt ?: s.validUntil)
                cancel += maxOf(0L, s.end - lostAt)
            }
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
            sorted, faults.sortedBy { it.start }, violations, missed, paused, cancel, detection, reacquires, recoveries, stall,
            fenceInversions(sorted),
        )
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

    /** Sweeps each resource's sections in start order against those still believed valid. */
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
    }
}

private const val SLOW_CANCEL_NANOS = 50_000_000L

internal fun ms(nanos: Long): String = String.format(Locale.ROOT, "%.1f ms", nanos / 1e6)

internal fun span(from: Long, to: Long, origin: Long): String =
    String.format(Locale.ROOT, "[%.1f, %.1f] ms", (from - origin) / 1e6, (to - origin) / 1e6)

/** The [p]-th percentile (0..100) of [values] by nearest rank; null for none. */
fun percentile(values: List<Long>, p: Double): Long? {
    if (values.isEmpty()) return null
    val sorted = values.sorted()
    val rank = Math.ceil(p / 100.0 * sorted.size).toInt().coerceIn(1, sorted.size)
    return sorted[rank - 1]
}

package dev.redlock.coroutines.internal

import dev.redlock.core.MasterFailureException
import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.LockNode
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicIntegerArray
import java.util.concurrent.atomic.AtomicReferenceArray
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.TimeSource

/**
 * The engine's view of its masters: which answers count. A master that is the same server as an
 * earlier one (same run id, another spelling of its address) never counts; a master that started
 * empty or lost its data does not count for the restart guard's period. On a Redis Cluster master
 * the guard is kept per hash slot (each slot has its own boot marker, dated by the primary serving
 * it): a shard primary that restarted empty or was promoted holds back the votes of its own slots
 * only, and the other shards' votes keep counting.
 *
 * @param guardMillis the restart guard in ms (0: off)
 */
internal class Masters(
    val nodes: List<LockNode>,
    private val observer: Observer,
    private val timeSource: TimeSource.WithComparableMarks,
    val guardMillis: Long,
) {
    val size: Int get() = nodes.size

    /** Per master, the earlier master it was found to be (for good: aliasing does not go away), or -1. */
    private val duplicates = AtomicIntegerArray(nodes.size).also { a -> for (i in 0 until a.length()) a.set(i, -1) }

    /** Per master, until when its votes are not counted (it started empty or lost its data). */
    private val guardedUntil = AtomicReferenceArray<ComparableTimeMark?>(nodes.size)

    /** Per cluster master (null for the others), per hash slot, until when its votes in that slot are not counted. */
    private val slotsGuardedUntil: List<ConcurrentHashMap<Int, ComparableTimeMark>?> =
        nodes.map { if (it.cluster()) ConcurrentHashMap() else null }

    /**
     * The earlier master that master [i] is the same server as, or -1. Decided once both have told
     * their server's run id; from then on for good.
     */
    fun duplicateOf(i: Int): Int {
        val known = duplicates.get(i)
        if (known >= 0 || i == 0) return known
        val id = nodes[i].serverId() ?: return -1
        for (j in 0 until i) {
            if (nodes[j].serverId() == id) {
                if (duplicates.compareAndSet(i, -1, j)) observer.duplicate(i, j, id)
                return j
            }
        }
        return -1
    }

    /** Master [i]'s answer as it counts: its value, its failure, or a `DUPLICATE` failure. */
    fun <R> answer(i: Int, value: R?, e: Throwable?): Answer<R> {
        val same = duplicateOf(i)
        if (same >= 0) {
            return Answer(i, null, MasterFailureException(
                nodes[i].name(), MasterFailureException.Kind.DUPLICATE,
                "the same server as masters[$same] (${nodes[same].name()}); not counted a second time", null,
            ))
        }
        return if (e == null) Answer(i, value, null) else Answer(i, null, unwrap(e).asMasterFailure(nodes[i]))
    }

    /**
     * Whether master [i]'s votes are not counted now, by the restart guard: all of them, or on a
     * cluster master those in hash slot [slot] (-1: none in particular).
     */
    fun isGuarded(i: Int, slot: Int = -1): Boolean {
        if (guardedUntil.get(i)?.hasNotPassedNow() == true) return true
        if (slot < 0) return false
        val slots = slotsGuardedUntil[i] ?: return false
        val until = slots[slot] ?: return false
        if (until.hasNotPassedNow()) return true
        slots.remove(slot, until)
        return false
    }

    /** How much longer a reply's master stays guarded, or null when its vote counts. */
    fun guardLeft(reply: AcquireReply): Duration? {
        val age = reply.bootAgeMillis()
        return if (guardMillis > 0 && age in 0 until guardMillis) (guardMillis - age).milliseconds else null
    }

    /**
     * Master [i] said its data dates from less than the guard ago: its votes wait [left]; on a
     * cluster master, those in hash slot [slot] only (the marker read was that slot's), unless
     * [slot] is -1.
     */
    fun guard(i: Int, left: Duration, slot: Int = -1) {
        val slots = slotsGuardedUntil[i]
        if (slots != null && slot >= 0) {
            if (!isGuarded(i, slot)) observer.restarted(i, left, slot)
            slots[slot] = timeSource.markNow() + left
            return
        }
        if (!isGuarded(i)) observer.restarted(i, left)
        guardedUntil.set(i, timeSource.markNow() + left)
    }
}

internal fun Throwable.asMasterFailure(node: LockNode): MasterFailureException =
    this as? MasterFailureException
        ?: MasterFailureException(node.name(), MasterFailureException.Kind.ERROR, message ?: javaClass.simpleName, this)

package dev.redlock.coroutines.internal

import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.Script
import io.kotest.core.spec.style.FunSpec
import java.time.Duration as JavaDuration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CopyOnWriteArrayList
import org.jetbrains.lincheck.datastructures.DSLScenarioBuilder
import org.jetbrains.lincheck.datastructures.IntGen
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions
import org.jetbrains.lincheck.datastructures.Operation
import org.jetbrains.lincheck.datastructures.Param
import org.jetbrains.lincheck.datastructures.Validate
import org.jetbrains.lincheck.datastructures.forClasses

/**
 * The wait rooms ([WaitRooms]) under concurrent joins, leaves, attempts, release notices, local
 * releases and key changes pushed by several masters: Lincheck's model checker runs random
 * concurrent scenarios of [WaitRoomsScenario]'s operations (and a few written out) on real rooms
 * over three masters, and checks that every outcome (what each waiter takes from its doorbell,
 * whether it may attempt) is one that [WaitRoomsModel], a sequential statement of the rules,
 * allows for some order of the same operations. After each run every waiter left leaves, and no
 * room and no subscription may remain.
 *
 * Each waiter is used by one coroutine (an acquisition), so its operations run on one thread
 * (Lincheck's non-parallel groups); the pushes of the masters come in on their I/O threads.
 */
class WaitRoomsLincheckTest : FunSpec({

    test("every concurrent run of joins, leaves, attempts, notices and changes matches the rooms' rules run in some order, in model checking").config(timeout = MODEL_CHECKING_BOUND, invocationTimeout = MODEL_CHECKING_BOUND) {
        withEngineLogsOff {
            ModelCheckingOptions()
                .lenientHangDetection()
                .iterations(6 * lincheckScale)
                .invocationsPerIteration(40)
                .threads(3)
                .actorsPerThread(3)
                .actorsBefore(3)
                .actorsAfter(2)
                .sequentialSpecification(WaitRoomsModel::class.java)
                .addCustomScenario(changesFromMasters)
                .addCustomScenario(quorumOfChangesDuringAttempt)
                .addCustomScenario(leaveWhileReleased)
                .addCustomScenario(queueBehindWhileHeadLeaves)
                // The doorbell (a coroutine channel): each call one atomic step.
                .addGuarantee(forClasses { it.startsWith("kotlinx.coroutines.") }.allMethods().treatAsAtomic())
                // The JDK's concurrent map (the rooms by key, the masters' subscriptions): each call one atomic step.
                .addGuarantee(forClasses(java.util.concurrent.ConcurrentHashMap::class.java.name).allMethods().treatAsAtomic())
                // Logging: no shared state of the rooms.
                .addGuarantee(forClasses { it.startsWith("dev.redlock.core.") || it == Observer::class.java.name }.allMethods().ignore())
                .check(WaitRoomsScenario::class.java)
        }
    }
})

/*
 * Three masters, quorum 2. Keys a and b; a waiter waits for a, for b, or for both; waiting for one
 * key exclusively queues it, else it watches. Release ids r0..r2 (fewer than the eight a room
 * remembers). Pushes of one release (its notice and its invalidation) pair when they come within
 * 50 ms; the clock moves by [WaitRoomsScenario.later], 100 ms at a time.
 */
private const val MASTERS = 3
private const val QUORUM = 2
private const val LATER_MS = 100L
private const val PAIRED_MS = 50L
private val KEYS = listOf("a", "b")
private val KEY_SETS = listOf(listOf("a"), listOf("b"), listOf("a", "b"))

/**
 * A master as the rooms see it: its release notices come from the test, and it counts its
 * subscriptions per key, which must alternate (subscribed at most once, never ended twice).
 */
internal class RoomsNode(private val index: Int, private val violations: MutableList<String>) : LockNode {
    @Volatile
    var listener: LockNode.ReleaseListener? = null

    /** Per key, whether this master is subscribed to its notices now. */
    val subscribed = java.util.concurrent.ConcurrentHashMap<String, Boolean>()

    override fun name() = "m$index"
    override fun serverId(): String? = null
    override fun warmUp(timeout: JavaDuration): CompletableFuture<Void> = CompletableFuture.completedFuture(null)
    override fun acquire(script: Script, keys: Array<String>, args: Array<String>, timeout: JavaDuration): CompletableFuture<AcquireReply> = unused()
    override fun extend(script: Script, keys: Array<String>, args: Array<String>, timeout: JavaDuration): CompletableFuture<BooleanArray> = unused()
    override fun release(script: Script, keys: Array<String>, args: Array<String>, timeout: JavaDuration): CompletableFuture<Long> = unused()
    override fun confirmFence(keys: Array<String>, token: String, fence: Long, timeout: JavaDuration): CompletableFuture<Boolean> = unused()
    override fun probe(timeout: JavaDuration): CompletableFuture<Long> = unused()
    override fun onRelease(listener: LockNode.ReleaseListener) {
        this.listener = listener
    }

    /** Confirmed at once, so a new room's waiters are woken to look again as it is made. */
    override fun watch(key: String, timeout: JavaDuration): CompletableFuture<Void> {
        if (subscribed.put(key, true) == true) violations += "m$index: subscribed to $key twice"
        return CompletableFuture.completedFuture(null)
    }

    override fun unwatch(key: String, timeout: JavaDuration): CompletableFuture<Void> {
        if (subscribed.put(key, false) != true) violations += "m$index: ended a subscription to $key it did not have"
        return CompletableFuture.completedFuture(null)
    }

    override fun onTracking(listener: LockNode.TrackingListener) {}
    override fun tracking(): Boolean = true
    override fun connected(): Boolean = true
    override fun close() {}

    private fun <T> unused(): CompletableFuture<T> = CompletableFuture.failedFuture(UnsupportedOperationException("not used by the wait rooms"))
}

/**
 * The operations on one set of rooms over three masters, with two waiter slots: each slot holds at
 * most one waiter at a time, as one acquisition does (queue or join, attempt, wait, leave).
 * Lincheck creates one of these per run.
 */
@Param(name = "keys", gen = IntGen::class, conf = "0:2")
@Param(name = "key", gen = IntGen::class, conf = "0:1")
@Param(name = "master", gen = IntGen::class, conf = "0:2")
@Param(name = "release", gen = IntGen::class, conf = "0:2")
class WaitRoomsScenario {
    private val violations = CopyOnWriteArrayList<String>()
    private val clock = ManualClock()
    private val nodes = List(MASTERS) { RoomsNode(it, violations) }
    private val rooms = WaitRooms(nodes, JavaDuration.ofSeconds(1), clock)
    private val slots = arrayOfNulls<WaitRooms.Waiter>(2)

    private fun keys(choice: Int) = KEY_SETS[choice].toTypedArray()

    /** An acquisition starts: it queues behind the waiters of its key, or is told to attempt at once. */
    private fun enter(slot: Int, keys: Int, exclusive: Boolean): String {
        if (slots[slot] != null) return "busy"
        val w = rooms.queueIfWaited(keys(keys), exclusive, QUORUM) ?: return "attempt"
        slots[slot] = w
        return "queued"
    }

    /** After an attempt that failed: it joins the rooms of its keys (if not already queued). */
    private fun join(slot: Int, keys: Int, exclusive: Boolean) {
        if (slots[slot] == null) slots[slot] = rooms.join(keys(keys), exclusive, QUORUM)
    }

    private fun attempting(slot: Int) {
        slots[slot]?.let { rooms.attempting(it) }
    }

    private fun take(slot: Int): String = slots[slot]?.take()?.name ?: "no waiter"

    private fun mayAttempt(slot: Int): Boolean? = slots[slot]?.let { rooms.mayAttempt(it) }

    private fun leave(slot: Int, acquired: Boolean) {
        slots[slot]?.let { rooms.leave(it, acquired) }
        slots[slot] = null
    }

    @Operation(nonParallelGroup = "w0")
    fun enter0(@Param(name = "keys") keys: Int, exclusive: Boolean) = enter(0, keys, exclusive)

    @Operation(nonParallelGroup = "w0")
    fun join0(@Param(name = "keys") keys: Int, exclusive: Boolean) = join(0, keys, exclusive)

    @Operation(nonParallelGroup = "w0")
    fun attempting0() = attempting(0)

    @Operation(nonParallelGroup = "w0")
    fun take0() = take(0)

    @Operation(nonParallelGroup = "w0")
    fun mayAttempt0() = mayAttempt(0)

    @Operation(nonParallelGroup = "w0")
    fun leave0(acquired: Boolean) = leave(0, acquired)

    @Operation(nonParallelGroup = "w1")
    fun enter1(@Param(name = "keys") keys: Int, exclusive: Boolean) = enter(1, keys, exclusive)

    @Operation(nonParallelGroup = "w1")
    fun join1(@Param(name = "keys") keys: Int, exclusive: Boolean) = join(1, keys, exclusive)

    @Operation(nonParallelGroup = "w1")
    fun attempting1() = attempting(1)

    @Operation(nonParallelGroup = "w1")
    fun take1() = take(1)

    @Operation(nonParallelGroup = "w1")
    fun mayAttempt1() = mayAttempt(1)

    @Operation(nonParallelGroup = "w1")
    fun leave1(acquired: Boolean) = leave(1, acquired)

    /** A master's release notice (the release script's publish), on its I/O thread. */
    @Operation(nonParallelGroup = "pushes")
    fun notice(@Param(name = "master") master: Int, @Param(name = "key") key: Int, @Param(name = "release") release: Int) {
        nodes[master].listener!!.released(KEYS[key], "r$release")
    }

    /** A master's invalidation of some keys (a release, an expiry, a write by another client), on its I/O thread. */
    @Operation(nonParallelGroup = "pushes")
    fun changed(@Param(name = "master") master: Int, @Param(name = "keys") keys: Int) = rooms.changed(master, KEY_SETS[keys])

    /** A master may have lost track of any key (tracking set up again, its table flushed). */
    @Operation(nonParallelGroup = "pushes")
    fun changedAll(@Param(name = "master") master: Int) = rooms.changed(master, null)

    /** Time passes between pushes: what follows pairs with nothing before. */
    @Operation(nonParallelGroup = "pushes")
    fun later() = clock.advance(LATER_MS)

    /** A lease of this process released [key], before Redis echoes the notice. */
    @Operation
    fun released(@Param(name = "key") key: Int, @Param(name = "release") release: Int) = rooms.released(KEYS[key], "r$release")

    /** The Redlock closes. */
    @Operation
    fun closeAll() = rooms.closeAll()

    /**
     * After the run: nothing went wrong with the subscriptions; each master is subscribed exactly
     * to the keys that have a room; once every waiter left, no room and no subscription remains.
     */
    @Validate
    fun noLeaks() {
        check(violations.isEmpty()) { violations.joinToString("; ") }
        val withRoom = roomKeys()
        for (node in nodes) {
            val on = node.subscribed.filterValues { it }.keys
            check(on == withRoom) { "${node.name()} is subscribed to $on, but the rooms are $withRoom" }
        }
        for (slot in slots.indices) leave(slot, false)
        check(violations.isEmpty()) { violations.joinToString("; ") }
        check(rooms.size == 0) { "every waiter left, but rooms remain for ${roomKeys()}" }
        for (node in nodes) {
            val on = node.subscribed.filterValues { it }.keys
            check(on.isEmpty()) { "every waiter left, but ${node.name()} is still subscribed to $on" }
        }
    }

    @Suppress("UNCHECKED_CAST")
    private fun roomKeys(): Set<String> =
        (WaitRooms::class.java.getDeclaredField("rooms").apply { isAccessible = true }.get(rooms) as Map<String, *>).keys.toSet()
}

/**
 * Changes pushed by the masters one after the other, read by a queued head and by a waiter for both
 * keys: each is woken once two masters said so, not before (the random scenarios rarely leave a
 * waiter without another reason to wake while its changes add up).
 */
private val changesFromMasters = DSLScenarioBuilder().apply {
    initial {
        actor(WaitRoomsScenario::join0, 0, true)
        actor(WaitRoomsScenario::join1, 2, false)
        actor(WaitRoomsScenario::take0) // what the new rooms' subscriptions woke
        actor(WaitRoomsScenario::take1)
    }
    parallel {
        thread { actor(WaitRoomsScenario::take0); actor(WaitRoomsScenario::take0) }
        thread { actor(WaitRoomsScenario::take1); actor(WaitRoomsScenario::take1) }
        thread { actor(WaitRoomsScenario::changed, 1, 2); actor(WaitRoomsScenario::later); actor(WaitRoomsScenario::changed, 2, 0); actor(WaitRoomsScenario::changed, 2, 1) }
    }
    post { actor(WaitRoomsScenario::take0); actor(WaitRoomsScenario::take1) }
}.buildScenario()

/**
 * A waiter about to attempt while masters say its key changed: the changes counted before the
 * attempt must not add up with those after it, and one that lands during it may count.
 */
private val quorumOfChangesDuringAttempt = DSLScenarioBuilder().apply {
    initial { actor(WaitRoomsScenario::join0, 0, true); actor(WaitRoomsScenario::take0) }
    parallel {
        thread { actor(WaitRoomsScenario::take0); actor(WaitRoomsScenario::attempting0); actor(WaitRoomsScenario::take0) }
        thread { actor(WaitRoomsScenario::changed, 1, 0); actor(WaitRoomsScenario::changed, 2, 0); actor(WaitRoomsScenario::later); actor(WaitRoomsScenario::changed, 0, 0) }
    }
    post { actor(WaitRoomsScenario::take0) }
}.buildScenario()

/** The head leaves without the lock while a release of its key lands: the next in line must not miss it. */
private val leaveWhileReleased = DSLScenarioBuilder().apply {
    initial { actor(WaitRoomsScenario::join0, 0, true); actor(WaitRoomsScenario::enter1, 0, true); actor(WaitRoomsScenario::take0) }
    parallel {
        thread { actor(WaitRoomsScenario::leave0, false) }
        thread { actor(WaitRoomsScenario::mayAttempt1); actor(WaitRoomsScenario::take1) }
        thread { actor(WaitRoomsScenario::released, 0, 1); actor(WaitRoomsScenario::notice, 0, 0, 1) }
    }
    post { actor(WaitRoomsScenario::take1) }
}.buildScenario()

/** A newcomer queues while the only waiter leaves, and a waiter for both keys comes and goes. */
private val queueBehindWhileHeadLeaves = DSLScenarioBuilder().apply {
    initial { actor(WaitRoomsScenario::join0, 0, true) }
    parallel {
        thread { actor(WaitRoomsScenario::leave0, true); actor(WaitRoomsScenario::join0, 2, false) }
        thread { actor(WaitRoomsScenario::enter1, 0, true); actor(WaitRoomsScenario::join1, 0, true); actor(WaitRoomsScenario::take1) }
        thread { actor(WaitRoomsScenario::changed, 0, 2); actor(WaitRoomsScenario::changed, 1, 2); actor(WaitRoomsScenario::later) }
    }
}.buildScenario()

/**
 * The rules of the wait rooms, written down sequentially: what each operation returns and does
 * when the operations run one at a time.
 *
 * - A key has a room while a waiter waits for it; a waiter for one key, exclusively, queues in it
 *   (served first come, first served), any other watches it. A new room is subscribed on every
 *   master, and once subscribed its waiters look again (the head and the watchers are woken).
 * - A newcomer for one key, exclusively, queues behind the queue of its key when there is one, and
 *   otherwise attempts at once.
 * - The first notice of a release (a local release, or a master's notice) wakes the head and the
 *   watchers. The same release heard again wakes the watchers and, if it still heads the queue,
 *   the head that the first woke; an older release heard again wakes nobody.
 * - A change of a key on a master counts for the head and the watchers; a waiter is woken once a
 *   quorum of masters counted since its last attempt began. A master that may have lost track of
 *   every key wakes every room as a new subscription does.
 * - A notice and an invalidation of the same key on the same master within 50 ms are one release:
 *   the second never wakes anyone the first did not (an invalidation after a notice is ignored; a
 *   notice after an invalidation that woke its key only names the release).
 * - A waiter that is about to attempt forgets what woke it and what changes it counted.
 * - A head that leaves passes its turn on: the next in line is told to try (it left without the
 *   lock) or promoted (it took the lock; the next release will wake it).
 * - Closing wakes every waiter with CLOSED, for good, also those that come later.
 * - A waiter takes what woke it: CLOSED before RELEASED before PROMOTED; CLOSED stays.
 */
class WaitRoomsModel {
    private class W(val id: Int, val keys: List<String>, val queued: Boolean) {
        val signals = HashSet<String>()
        val changed = HashSet<Int>()
        fun ring(signal: String) {
            signals += signal
        }
    }

    private class Room {
        val queue = ArrayList<W>()
        val watchers = ArrayList<W>()
        val seen = HashSet<String>()
        var latest: String? = null
        var latestHead: W? = null
        val isEmpty get() = queue.isEmpty() && watchers.isEmpty()
    }

    private class Push(val keys: List<String>, val notice: Boolean, val at: Long, val woke: Set<String>)

    private val rooms = HashMap<String, Room>()
    private val slots = arrayOfNulls<W>(2)
    private val lastPush = arrayOfNulls<Push>(MASTERS)
    private var closed = false
    private var now = 0L
    private var ids = 0

    private fun wake(room: Room, release: String?, echo: Boolean = false) {
        if (release != null && release in room.seen) {
            if (release != room.latest || echo) return
            room.latestHead?.takeIf { room.queue.firstOrNull() === it }?.ring("RELEASED")
        } else {
            if (release != null) {
                room.seen += release
                room.latest = release
            }
            if (echo) return
            room.latestHead = room.queue.firstOrNull()?.also { it.ring("RELEASED") }
        }
        room.watchers.forEach { it.ring("RELEASED") }
    }

    /** Counts a change on [master] for [w]; whether that woke it. */
    private fun count(w: W, master: Int): Boolean {
        w.changed += master
        if (w.changed.size < QUORUM) return false
        w.ring("RELEASED")
        return true
    }

    private fun enter(slot: Int, keys: Int, exclusive: Boolean): String {
        if (slots[slot] != null) return "busy"
        val k = KEY_SETS[keys]
        val room = rooms[k[0]]
        if (k.size != 1 || !exclusive || room == null || room.queue.isEmpty()) return "attempt"
        val w = W(ids++, k, true)
        room.queue += w
        if (closed) w.ring("CLOSED")
        slots[slot] = w
        return "queued"
    }

    private fun join(slot: Int, keys: Int, exclusive: Boolean) {
        if (slots[slot] != null) return
        val k = KEY_SETS[keys]
        val w = W(ids++, k, k.size == 1 && exclusive)
        slots[slot] = w
        if (closed) {
            w.ring("CLOSED") // not in any room
            return
        }
        val fresh = ArrayList<Room>()
        for (key in k) {
            val room = rooms.getOrPut(key) { Room().also { fresh += it } }
            if (w.queued) room.queue += w else room.watchers += w
        }
        fresh.forEach { wake(it, null) } // subscribed: look again
    }

    private fun attempting(slot: Int) {
        val w = slots[slot] ?: return
        w.changed.clear()
        w.signals.retainAll(setOf("CLOSED"))
    }

    private fun take(slot: Int): String {
        val w = slots[slot] ?: return "no waiter"
        val s = w.signals
        val taken = when {
            "CLOSED" in s -> "CLOSED"
            "RELEASED" in s -> "RELEASED"
            "PROMOTED" in s -> "PROMOTED"
            else -> "NONE"
        }
        s.clear()
        if (taken == "CLOSED") s += "CLOSED"
        return taken
    }

    private fun mayAttempt(slot: Int): Boolean? {
        val w = slots[slot] ?: return null
        return !w.queued || rooms[w.keys[0]]?.queue?.firstOrNull() === w
    }

    private fun leave(slot: Int, acquired: Boolean) {
        val w = slots[slot] ?: return
        slots[slot] = null
        for (key in w.keys) {
            val room = rooms[key] ?: continue
            if (w.queued) {
                val wasHead = room.queue.firstOrNull() === w
                room.queue.remove(w)
                if (wasHead) room.queue.firstOrNull()?.ring(if (acquired) "PROMOTED" else "RELEASED")
            } else {
                room.watchers.remove(w)
            }
            if (room.isEmpty) rooms.remove(key)
        }
    }

    fun enter0(keys: Int, exclusive: Boolean) = enter(0, keys, exclusive)
    fun join0(keys: Int, exclusive: Boolean) = join(0, keys, exclusive)
    fun attempting0() = attempting(0)
    fun take0() = take(0)
    fun mayAttempt0() = mayAttempt(0)
    fun leave0(acquired: Boolean) = leave(0, acquired)
    fun enter1(keys: Int, exclusive: Boolean) = enter(1, keys, exclusive)
    fun join1(keys: Int, exclusive: Boolean) = join(1, keys, exclusive)
    fun attempting1() = attempting(1)
    fun take1() = take(1)
    fun mayAttempt1() = mayAttempt(1)
    fun leave1(acquired: Boolean) = leave(1, acquired)

    /** The unpaired push of [master] that a push of [key] of the other sort completes, if any. */
    private fun partner(master: Int, key: String, notice: Boolean): Push? =
        lastPush[master]?.takeIf { it.notice != notice && now - it.at <= PAIRED_MS && key in it.keys }

    fun notice(master: Int, key: Int, release: Int) {
        val k = KEYS[key]
        val partner = partner(master, k, notice = true)
        lastPush[master] = if (partner != null) null else Push(listOf(k), true, now, emptySet())
        rooms[k]?.let { wake(it, "r$release", echo = partner != null && k in partner.woke) }
    }

    fun changed(master: Int, keys: Int) {
        val k = KEY_SETS[keys]
        val paired = lastPush[master]?.takeIf { it.notice }?.keys?.single()?.takeIf { it in k && partner(master, it, notice = false) != null }
        val woke = HashSet<String>()
        for (key in k) {
            if (key == paired) continue
            val room = rooms[key] ?: continue
            var rang = false
            room.queue.firstOrNull()?.let { if (count(it, master)) { rang = true; room.latestHead = it } }
            for (w in room.watchers) rang = count(w, master) or rang
            if (rang) woke += key
        }
        lastPush[master] = if (paired != null) null else Push(k, false, now, woke)
    }

    fun changedAll(master: Int) {
        lastPush[master] = null
        rooms.values.forEach { wake(it, null) }
    }

    fun later() {
        now += LATER_MS
    }

    fun released(key: Int, release: Int) {
        rooms[KEYS[key]]?.let { wake(it, "r$release") }
    }

    fun closeAll() {
        closed = true
        for (room in rooms.values) {
            room.queue.forEach { it.ring("CLOSED") }
            room.watchers.forEach { it.ring("CLOSED") }
        }
    }

    private fun describe(): List<Any?> = listOf(
        closed, now,
        slots.map { w -> w?.let { listOf(it.keys, it.queued, it.signals.sorted(), it.changed.sorted()) } },
        rooms.entries.sortedBy { it.key }.map { (k, r) ->
            listOf(k, r.queue.map { slots.indexOf(it) }, r.watchers.map { slots.indexOf(it) }, r.seen.sorted(), r.latest, r.queue.indexOf(r.latestHead))
        },
        lastPush.map { p -> p?.let { listOf(it.keys, it.notice, it.at, it.woke.sorted()) } },
    )

    override fun equals(other: Any?): Boolean = other is WaitRoomsModel && describe() == other.describe()

    override fun hashCode(): Int = describe().hashCode()
}

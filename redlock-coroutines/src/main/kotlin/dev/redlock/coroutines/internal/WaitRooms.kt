package dev.redlock.coroutines.internal

import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.LockNode
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.TimeSource
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.withTimeoutOrNull

/**
 * The waiters of one Redlock, per lock key: who is woken when a lock is released.
 *
 * A key has a room while someone in this process waits for it. The room subscribes to the key's
 * release notices on every master (one subscription per key, however many wait; removed with the
 * room), and holds:
 * - a queue of the waiters for that key alone, served one at a time: a release wakes the head of
 *   the queue only, the others wait for their turn without sending anything to the masters (no
 *   thundering herd, and no polling by waiters that could not win anyway);
 * - the waiters for several keys at once, which are woken by a release of any of their keys (they
 *   cannot queue behind one key without blocking the waiters of that key on another), and the
 *   waiters of shared kinds (readers, semaphore permits), all woken by every release: one release
 *   can let several of them in.
 *
 * A release in this process wakes the head at once ([released] from the releasing lease), before
 * Redis echoes the notice; the notices of the same release from every master are recognised by its
 * release id and never wake a waiter the first one did not wake (see [Room.wake]). Waiting stays bounded by the fallbacks of the acquire loop (the
 * refusing holder's remaining time, the jittered retry delay): a notice lost while a subscription
 * was being set up or a master was unreachable costs at most one fallback period.
 *
 * [timeSource] only tells how close together two pushes came (see [lastPush]); the model-checking
 * test drives it by hand, so that every run is replayable.
 */
internal class WaitRooms(
    private val nodes: List<LockNode>,
    private val timeout: java.time.Duration,
    timeSource: TimeSource = TimeSource.Monotonic,
) {
    private val origin = timeSource.markNow()

    /** Nanoseconds since this was made, on [origin]'s clock. */
    private fun nanoTime(): Long = origin.elapsedNow().inWholeNanoseconds

    private val rooms = ConcurrentHashMap<String, Room>()
    private val lock = Any()

    /**
     * Per master, the last push not yet paired: a release notice or an invalidation. A release by
     * another process shows up as both (when a waiter here read the key, the server tracks it for
     * us), one right after the other on the same connection, in either order by server version: the
     * second of the pair must not wake anyone again. Only a push within [PAIRED] of the first pairs
     * with it, so that a push that had no partner never silences a later one.
     */
    private val lastPush = arrayOfNulls<Push>(nodes.size)

    /**
     * A push of [keys] ([notice]: a release notice of its one key), heard at [at] (nanoTime); for
     * an invalidation, the keys whose waiters it woke ([woke]).
     */
    private class Push(val keys: List<String>?, val notice: Boolean, val at: Long, val woke: Set<String> = emptySet())

    /** The unpaired push of [master] that [notice] or an invalidation of [key] completes, consumed; or null. */
    private fun partner(master: Int, key: String, notice: Boolean, now: Long): Push? {
        val last = lastPush[master] ?: return null
        if (last.notice == notice || now - last.at > PAIRED || last.keys?.contains(key) != true) return null
        return last
    }

    init {
        nodes.forEachIndexed { i, node -> node.onRelease { key, releaseId -> noticed(i, key, releaseId) } }
    }

    /** What woke a waiter. */
    enum class Signal { NONE, TIMEOUT, RELEASED, PROMOTED, CLOSED }

    @Volatile
    private var closed = false

    /**
     * A hand-off under way to a waiter: the hand-off script sent to every master, one call each, from
     * [start], a moment taken before the first was sent (the new lease's validity counts from it).
     */
    class HandOff(val start: ComparableTimeMark, val calls: List<CompletableFuture<AcquireReply>>)

    /** One acquisition waiting for [keys]; [queued] when it waits in its key's queue (exclusive, one key). */
    class Waiter(val keys: Array<String>, val queued: Boolean, private val quorum: Int) {
        private val flags = AtomicInteger()
        private val doorbell = Channel<Unit>(Channel.CONFLATED)

        /** While the waiter takes a hand-off: sends the hand-off calls, given the old token. Guarded by this waiter's monitor. */
        private var offer: ((String) -> HandOff)? = null

        /** The hand-off taken and not yet collected by the waiter. Guarded by this waiter's monitor. */
        private var handed: HandOff? = null

        /** Whether an offer is open (for tests). */
        val offering: Boolean get() = synchronized(this) { offer != null }

        /** The waiter is about to wait and would take a hand-off: [issue] sends its calls. */
        fun offer(issue: (String) -> HandOff) = synchronized(this) { offer = issue }

        /**
         * Ends the offer; returns the hand-off taken meanwhile, if any. Its calls were all sent before
         * this returns (they were sent under the same monitor), so whatever the waiter sends next on a
         * master (its clean-up) reaches the master after them.
         */
        fun withdraw(): HandOff? = synchronized(this) {
            offer = null
            handed.also { handed = null }
        }

        /** Takes the offer for the lease of token [old]: sends the hand-off calls and wakes the waiter; null if none is open. */
        fun takeOffer(old: String): HandOff? {
            val taken = synchronized(this) {
                val issue = offer ?: return null
                offer = null
                issue(old).also { handed = it }
            }
            ring(Signal.RELEASED)
            return taken
        }

        /** The masters that said one of [keys] changed since this waiter's last attempt began. */
        private val changed = java.util.BitSet()

        /**
         * Master [master] says a key changed. Rings only once [quorum] masters have: a change on
         * fewer (a contender's clean-up on a minority, one master's expiry before the others') cannot
         * have freed the lock, and waking on it would send contenders into attempts that fail and
         * clean up, waking each other at network speed. Called under the rooms' lock.
         */
        fun changedOn(master: Int): Boolean {
            changed.set(master)
            if (changed.cardinality() < quorum) return false
            ring(Signal.RELEASED)
            return true
        }

        fun ring(signal: Signal) {
            flags.getAndUpdate { it or (1 shl signal.ordinal) }
            doorbell.trySend(Unit)
        }

        /** Takes the pending signal: closing first, then a release, then a promotion. */
        fun take(): Signal {
            val f = flags.getAndSet(0)
            return when {
                f and (1 shl Signal.CLOSED.ordinal) != 0 -> Signal.CLOSED.also { flags.set(1 shl Signal.CLOSED.ordinal) }
                f and (1 shl Signal.RELEASED.ordinal) != 0 -> Signal.RELEASED
                f and (1 shl Signal.PROMOTED.ordinal) != 0 -> Signal.PROMOTED
                else -> Signal.NONE
            }
        }

        /** Forgets signals and changes that an attempt about to start makes moot (not closing). */
        fun clear(lock: Any) {
            synchronized(lock) { changed.clear() }
            flags.getAndUpdate { it and (1 shl Signal.CLOSED.ordinal) }
            doorbell.tryReceive()
        }

        /** Suspends until signalled or until [pause] has passed. Cancellable. */
        suspend fun await(pause: Duration): Signal {
            take().let { if (it != Signal.NONE) return it }
            if (pause > Duration.ZERO) withTimeoutOrNull(pause) { doorbell.receive() }
            return take().takeIf { it != Signal.NONE } ?: Signal.TIMEOUT
        }
    }

    private class Room(val key: String) {
        val queue = ArrayDeque<Waiter>()
        val watchers = ArrayList<Waiter>(2)
        private val seen = arrayOfNulls<String>(8)
        private var next = 0
        private var latest: String? = null
        private var latestHead: Waiter? = null

        val isEmpty: Boolean get() = queue.isEmpty() && watchers.isEmpty()

        /**
         * A release was announced: the first notice of a release wakes the head of the queue and the
         * watchers. The same release heard again (from another master, or from Redis after this
         * process's hand-over) wakes again only those it woke, and only while the head is still
         * waiting: each master runs the release when its own command arrives, so the attempt the
         * first notice started may have reached another master before the release did; it then
         * fails, and the later notice is what tells the waiter to look again. A head that won has
         * left, so a late notice never sends its successor into a hopeless attempt. Null
         * [releaseId]: not a notice (subscriptions settled), wakes as a first notice does.
         */
        fun wake(releaseId: String?, echo: Boolean = false) {
            if (releaseId != null && seen.contains(releaseId)) {
                if (releaseId != latest || echo) return
                latestHead?.takeIf { queue.firstOrNull() === it }?.ring(Signal.RELEASED)
            } else {
                if (releaseId != null) {
                    seen[next] = releaseId
                    next = (next + 1) % seen.size
                    latest = releaseId
                }
                // An echo (the notice of a release whose invalidation, just before, woke the head)
                // only names the release: the head it woke is the one this release woke.
                if (echo) return
                latestHead = queue.firstOrNull()?.also { it.ring(Signal.RELEASED) }
            }
            for (w in watchers) w.ring(Signal.RELEASED)
        }

        /** Master [master] says the key changed: the head and the watchers count it; whether anyone was woken. */
        fun changedOn(master: Int): Boolean {
            var rang = false
            queue.firstOrNull()?.let { if (it.changedOn(master)) { rang = true; latestHead = it } }
            for (w in watchers) rang = w.changedOn(master) or rang
            return rang
        }
    }

    /**
     * Queues a newcomer for a single key behind the waiters already queued there, so that it does
     * not overtake them; null when nobody in this process waits for the key (the newcomer then
     * tries at once).
     */
    fun queueIfWaited(keys: Array<String>, exclusive: Boolean, quorum: Int): Waiter? {
        if (keys.size != 1 || !exclusive || rooms[keys[0]] == null) return null
        synchronized(lock) {
            val room = rooms[keys[0]] ?: return null
            if (room.queue.isEmpty()) return null
            return Waiter(keys, true, quorum).also { room.queue.addLast(it); if (closed) it.ring(Signal.CLOSED) }
        }
    }

    /** Registers [keys] as waited for, subscribing to the notices of keys nobody waited for yet. */
    fun join(keys: Array<String>, exclusive: Boolean, quorum: Int): Waiter {
        val waiter = Waiter(keys, keys.size == 1 && exclusive, quorum)
        if (closed) return waiter.also { it.ring(Signal.CLOSED) }
        // Subscriptions change under the lock, so that the masters see them in the order the
        // rooms came and went (a room removed and re-created at once must end up subscribed).
        synchronized(lock) {
            if (closed) return waiter.also { it.ring(Signal.CLOSED) }
            var fresh: ArrayList<Room>? = null
            for (key in keys) {
                val room = rooms[key] ?: Room(key).also { rooms[key] = it; (fresh ?: ArrayList<Room>(keys.size).also { f -> fresh = f }) += it }
                if (waiter.queued) room.queue.addLast(waiter) else room.watchers += waiter
            }
            // Only once the rooms are in the map and the waiter in them: a subscription may be
            // confirmed before its handlers are attached, and its wake-up then runs right here.
            fresh?.forEach(::subscribe)
        }
        return waiter
    }

    /** [waiter] is about to attempt: what woke it, and the changes it counted, are moot now. */
    fun attempting(waiter: Waiter) = waiter.clear(lock)

    /** Whether [waiter] may try now: it heads its queue, or is not queued. */
    fun mayAttempt(waiter: Waiter): Boolean {
        if (!waiter.queued) return true
        synchronized(lock) { return rooms[waiter.keys[0]]?.queue?.firstOrNull() === waiter }
    }

    /**
     * Removes [waiter]. If it headed a queue, the next in line becomes the head: told it may try
     * at once when [waiter] leaves without the lock (a release it was woken for is passed on), or
     * only promoted when [waiter] took the lock (the next release will wake it).
     */
    fun leave(waiter: Waiter, acquired: Boolean) {
        synchronized(lock) {
            for (key in waiter.keys) {
                val room = rooms[key] ?: continue
                if (waiter.queued) {
                    val wasHead = room.queue.firstOrNull() === waiter
                    room.queue.remove(waiter)
                    if (wasHead) room.queue.firstOrNull()?.ring(if (acquired) Signal.PROMOTED else Signal.RELEASED)
                } else {
                    room.watchers.remove(waiter)
                }
                if (room.isEmpty) {
                    rooms.remove(key)
                    for (node in nodes) node.unwatch(key, timeout).whenComplete { _, e -> if (e != null) subscriptionFailed("end the subscription to", key, node, e) }
                }
            }
        }
    }

    /** Wakes every waiter with [Signal.CLOSED], now and for good (the Redlock is closing). */
    fun closeAll() {
        synchronized(lock) {
            closed = true
            for (room in rooms.values) {
                for (w in room.queue) w.ring(Signal.CLOSED)
                for (w in room.watchers) w.ring(Signal.CLOSED)
            }
        }
    }

    /**
     * A lease of this process with token [old] on [key] alone is being released: if the head of the
     * key's queue offers to take a hand-off ([Waiter.offer]), sends the hand-off calls and wakes it
     * (it collects the outcome), and returns them; else null (release as usual).
     */
    fun handOff(key: String, old: String): HandOff? {
        if (closed) return null
        val head = synchronized(lock) { rooms[key]?.queue?.firstOrNull() } ?: return null
        return head.takeOffer(old)
    }

    /** A release of [key] by a lease of this process, [releaseId] its id: its waiters need not wait for the notices. */
    fun released(key: String, releaseId: String) {
        if (rooms[key] == null) return
        synchronized(lock) {
            rooms[key]?.wake(releaseId)
        }
    }

    /** Master [master] announced a release of [key]. On the node's I/O thread, in the order pushed. */
    private fun noticed(master: Int, key: String, releaseId: String) {
        val now = nanoTime()
        synchronized(lock) {
            val partner = partner(master, key, notice = true, now)
            // The invalidation of this very release came first (Redis 6.2 pushes it before the
            // script's notice): if it woke the waiters, the notice only names the release.
            val echo = partner != null && key in partner.woke
            lastPush[master] = if (partner != null) null else Push(listOf(key), notice = true, now)
            rooms[key]?.wake(releaseId, echo)
        }
    }

    /**
     * Master [master] says [keys] changed (deleted, expired, written by another client), or, when
     * null, that any key may have: their waiters look again at once, whoever changed them. On the
     * node's I/O thread, in the order pushed.
     */
    fun changed(master: Int, keys: List<String>?) {
        val now = nanoTime()
        synchronized(lock) {
            if (keys == null) {
                // The master may have lost track of any key: everyone looks again.
                lastPush[master] = null
                for (room in rooms.values) room.wake(null)
                return
            }
            // The invalidation that follows a release notice (Redis 7 and later push it after the
            // script's notice): that notice woke the waiters already.
            val paired = lastPush[master]?.takeIf { it.notice }?.keys?.single()
                ?.takeIf { it in keys && partner(master, it, notice = false, now) != null }
            var woke: MutableSet<String>? = null
            for (key in keys) {
                if (key != paired && rooms[key]?.changedOn(master) == true) (woke ?: HashSet<String>().also { woke = it }) += key
            }
            lastPush[master] = if (paired != null) null else Push(keys, notice = false, now, woke ?: emptySet())
        }
    }

    /**
     * Subscribes a new room on every master. A release may have slipped by between the attempt
     * that made the caller wait and the subscription: once the subscriptions are in, the room's
     * waiters are woken once to look again. Called under the lock.
     */
    private fun subscribe(room: Room) {
        val calls = nodes.map { node ->
            node.watch(room.key, timeout).handle { _, e -> if (e != null) subscriptionFailed("subscribe to", room.key, node, e) }
        }
        CompletableFuture.allOf(*calls.toTypedArray()).whenComplete { _, _ ->
            synchronized(lock) { if (rooms[room.key] === room) room.wake(null) }
        }
    }

    /** Expected while a master is down; waiters then fall back to timers, so DEBUG, not a warning. */
    private fun subscriptionFailed(what: String, key: String, node: LockNode, e: Throwable) {
        if (Observer.LOG.isDebugEnabled) {
            Observer.LOG.debug(
                "Redlock could not {} the release notices of {} on {} ({}); waiters fall back to the holder's lease time and the retry delay",
                what, key, node.name(), e.message,
            )
        }
    }

    private companion object {
        /** How close together (ns) the notice and the invalidation of one release arrive, at most. */
        const val PAIRED = 50_000_000L
    }

    /** How many keys have a room (for tests). */
    val size: Int get() = rooms.size

    /** Whether the head of [key]'s queue offers to take a hand-off now (for tests). */
    fun offering(key: String): Boolean = synchronized(lock) { rooms[key]?.queue?.firstOrNull()?.offering == true }

    /** How many waiters are queued for [key] alone (for tests). */
    fun queued(key: String): Int = synchronized(lock) { rooms[key]?.queue?.size ?: 0 }
}

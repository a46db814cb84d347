package dev.redlock.chaos

/**
 * The faults the suite injects. [breaksAssumptions] marks those that violate the Redlock
 * assumptions (keys persist on a master for their time to live; a crashed master stays down for
 * one lease time; clocks run at about the same rate): under them the checker may legitimately
 * find overlaps, and the suite reports them apart from the runs where the assumptions hold.
 * [keyLoss] marks faults that destroy lock keys on a master, from which a loss can be timed.
 */
enum class FaultKind(val label: String, val breaksAssumptions: Boolean, val keyLoss: Boolean = false) {
    KILL_RESTART_AFTER_LEASE("kill -9 a master, restart it (empty) after more than one lease time", false, keyLoss = true),
    RESTART_EMPTY_AT_ONCE("kill -9 a master and restart it at once with its data gone", true, keyLoss = true),
    PAUSE_MASTER("SIGSTOP a master, SIGCONT it later", false),
    LATENCY("proxy adds latency (up to several node timeouts) between some clients and a master", false),
    BLACK_HOLE("proxy black-holes a master for some clients, then resets the connections and heals", false),
    RESET("proxy resets every connection between some clients and a master", false),
    PAUSED_HOLDER("a lock holder's JVM frozen (SIGSTOP) for longer than the lease, then continued", false),
    HOLDER_CRASH("a lock holder's JVM killed (kill -9) while it holds a lock", false),
    SCRIPT_FLUSH("SCRIPT FLUSH on a master", false),
    FLUSHALL("FLUSHALL on a master", true, keyLoss = true),
    EVICTION("lock keys evicted on a master under maxmemory with allkeys-lru", true, keyLoss = true),
    SLOW_CLOCK("a client whose clock runs at 0.9x real time", true),

    // Faults aimed at the edges: they start at the moment that matters (TcpProxy.onNextCommand).
    RENEWAL_LATENCY("proxy latency (up to a few node timeouts) that starts exactly when a renewal is sent to some masters", false),
    RENEWAL_BLACK_HOLE("a black hole that starts exactly when a renewal is sent to some masters, then reset and healed", false),
    CLOSE_CLIENT("close() of a client's Redlock in the middle of its sections and of its waits", false),
    SCRIPT_FLUSH_PAUSED_MASTER("SCRIPT FLUSH on a master, SIGSTOP of it exactly when an acquire's script reload reaches it, SIGCONT later", false),
    SCRIPT_FLUSH_SLOW_MASTER("SCRIPT FLUSH on a master, proxy latency (beyond the node timeout) to it from an acquire's script reload on", false),
    /**
     * Restarting masters at once breaks the assumption that a crashed master stays down for a
     * lease; the restart guard stands in for it, and the library promises that no lease outlasts
     * the guard (rule 15), so under this fault it must keep mutual exclusion.
     */
    RESTART_GUARDED_LONG_LEASE(
        "a majority of masters restarted at once (empty) just after a client was granted a per-call lease longer than the restart guard",
        false, keyLoss = true,
    ),

    // An administrator's deletions, aimed at a probe section held on a resource nobody else uses.
    /**
     * `DEL` of a held lock's key on one master: a minority where N > 1, so the lease keeps its
     * quorum and must not be lost; with one master it is the majority, and the lease must be lost.
     */
    ADMIN_DEL_ONE("an administrator's DEL of a held lock's key on one master", false, keyLoss = true),
    /** `DEL` of a held lock's key on the largest minority (N - quorum masters): the lease keeps its quorum and must not be lost. */
    ADMIN_DEL_MINORITY("an administrator's DEL of a held lock's key on the largest minority of masters", false, keyLoss = true),
    /**
     * `DEL` of a held lock's key on a bare majority: the lock is gone, and any client could take it
     * at once, before its holder can be told, so in general it breaks mutual exclusion. The suite
     * aims it at a resource nobody else uses (it keeps the assumptions as injected, and the checker
     * allows no overlap): the holder must be told (NOT_HELD) and its block cancelled.
     */
    ADMIN_DEL_MAJORITY("an administrator's DEL of a held lock's key on a majority of masters", false, keyLoss = true),
    /**
     * `FLUSHALL` on a bare majority: every lease is gone, and the boot markers with it, so the restart
     * guard keeps the flushed masters' votes out for its length; no new holder before that.
     */
    FLUSHALL_MAJORITY("FLUSHALL on a majority of masters at once (every lease lost; the restart guard holds new grants back)", false, keyLoss = true),
    ;

    companion object {
        /** Every fault that keeps the Redlock assumptions. */
        val SAFE: List<FaultKind> = entries.filter { !it.breaksAssumptions }

        /** The faults a scheduled run can inject (the slow clock is a property of a client, not an event). */
        val SCHEDULABLE: List<FaultKind> = entries.filter { it != SLOW_CLOCK }

        /** The faults aimed at the edges (a renewal in flight, close(), a script reload, a lease beyond the guard). */
        val EDGES: List<FaultKind> =
            listOf(RENEWAL_LATENCY, RENEWAL_BLACK_HOLE, CLOSE_CLIENT, SCRIPT_FLUSH_PAUSED_MASTER, SCRIPT_FLUSH_SLOW_MASTER, RESTART_GUARDED_LONG_LEASE)

        /** An administrator's deletions of lock keys, whose detection delay the suite measures. */
        val ADMIN: List<FaultKind> = listOf(ADMIN_DEL_ONE, ADMIN_DEL_MINORITY, ADMIN_DEL_MAJORITY, FLUSHALL_MAJORITY)
    }
}

/**
 * One injected fault: what, on which target, and over which span (`System.nanoTime()`); an instant
 * fault has `start == end`. [note] says what it did, for the report and for replaying a failure.
 */
data class FaultEvent(val kind: FaultKind, val target: String, val start: Long, val end: Long, val note: String = "")

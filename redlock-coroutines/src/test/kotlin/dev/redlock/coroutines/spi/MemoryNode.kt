@file:OptIn(InternalRedlockApi::class)

package dev.redlock.coroutines.spi

import dev.redlock.core.MasterFailureException
import dev.redlock.coroutines.InternalRedlockApi
import java.time.Duration
import java.util.concurrent.CopyOnWriteArrayList

/**
 * A store of holds in memory, shared by the [MemoryNode]s of several "processes" (each with its
 * own DistributedLocks): the smallest backend the SPI allows, a reference for real ones. Every
 * method is synchronized on the store.
 */
class MemoryStore {
    val mutexes = HashMap<String, String>()
    val writers = HashMap<String, String>()
    val readers = HashMap<String, MutableSet<String>>()
    val permits = HashMap<String, Pair<Int, MutableSet<String>>>()
    val fences = HashMap<Pair<LockFamily, String>, Long>()
    val nodes = CopyOnWriteArrayList<MemoryNode>()

    /** Whether nothing is held (what every test ends with). */
    @Synchronized
    fun empty(): Boolean = mutexes.isEmpty() && writers.isEmpty() && readers.isEmpty() && permits.isEmpty()

    /** Forgets every hold of [key] behind its holders' backs, as deleting a lock file would. */
    @Synchronized
    fun drop(key: String) {
        mutexes.remove(key)
        writers.remove(key)
        readers.remove(key)
        permits.remove(key)
    }
}

/** A node over a [MemoryStore]; [failing] makes every operation fail as an unreachable store would. */
open class MemoryNode(private val store: MemoryStore, name: String = "memory", stripes: Int = 1) : BackendNode(name, "memory-store@" + System.identityHashCode(store), stripes) {
    @Volatile
    var failing = false

    private val watched = HashSet<Pair<LockFamily, String>>()

    init {
        store.nodes += this
    }

    private fun up() {
        if (failing) throw MasterFailureException(name(), MasterFailureException.Kind.UNREACHABLE, "the memory store is switched off", null)
    }

    override fun openStore(timeout: Duration) = up()

    override fun acquireHold(request: AcquireRequest, timeout: Duration): AcquireResult = synchronized(store) {
        up()
        val token = request.token
        val key = request.keys[0]
        when (request.mode) {
            LockMode.MUTEX -> {
                if (request.keys.any { store.mutexes[it].let { h -> h != null && h != token } }) return AcquireResult.Refused()
                request.keys.forEach { store.mutexes[it] = token }
                AcquireResult.Granted(if (request.fencing) nextFence(LockFamily.MUTEX, request.keys) else null)
            }
            LockMode.READ -> {
                if (store.writers[key].let { it != null && it != token }) return AcquireResult.Refused()
                store.readers.getOrPut(key) { HashSet() } += token
                AcquireResult.Granted()
            }
            LockMode.WRITE -> {
                if (store.writers[key].let { it != null && it != token } || !store.readers[key].isNullOrEmpty()) return AcquireResult.Refused()
                store.writers[key] = token
                AcquireResult.Granted(if (request.fencing) nextFence(LockFamily.READ_WRITE, listOf(key)) else null)
            }
            LockMode.PERMIT -> {
                val (n, holders) = store.permits[key] ?: (request.permits to HashSet())
                if (n != request.permits) return AcquireResult.PermitsDiffer(n)
                if (token !in holders && holders.size >= n) return AcquireResult.Refused()
                holders += token
                store.permits[key] = n to holders
                AcquireResult.Granted()
            }
        }
    }

    private fun nextFence(family: LockFamily, keys: List<String>): Long {
        val next = keys.maxOf { store.fences[family to it] ?: 0L } + 1
        keys.forEach { store.fences[family to it] = next }
        return next
    }

    private fun held(lease: HeldLease): Boolean = when (lease.mode) {
        LockMode.MUTEX -> lease.keys.all { store.mutexes[it] == lease.token }
        LockMode.READ -> store.readers[lease.keys[0]]?.contains(lease.token) == true
        LockMode.WRITE -> store.writers[lease.keys[0]] == lease.token
        LockMode.PERMIT -> store.permits[lease.keys[0]]?.second?.contains(lease.token) == true
    }

    override fun extendHolds(leases: List<HeldLease>, leaseMillis: Long, timeout: Duration): BooleanArray = synchronized(store) {
        up()
        BooleanArray(leases.size) { held(leases[it]) }
    }

    override fun releaseHold(lease: HeldLease, final: Boolean, notice: String?, timeout: Duration): Boolean {
        val released = synchronized(store) {
            up()
            if (!held(lease)) return false
            val key = lease.keys[0]
            when (lease.mode) {
                LockMode.MUTEX -> lease.keys.forEach { store.mutexes.remove(it) }
                LockMode.READ -> store.readers[key]!!.let { it -= lease.token; if (it.isEmpty()) store.readers.remove(key) }
                LockMode.WRITE -> store.writers.remove(key)
                LockMode.PERMIT -> store.permits[key]!!.second.let { it -= lease.token; if (it.isEmpty()) store.permits.remove(key) }
            }
            true
        }
        if (notice != null) {
            for (node in store.nodes) for (key in lease.keys) node.noticed(lease.mode.family, key, notice)
        }
        return released
    }

    private fun noticed(family: LockFamily, key: String, notice: String) {
        if (synchronized(watched) { (family to key) in watched }) releaseNoticed(family, key, notice)
    }

    override fun confirmFencing(lease: HeldLease, fence: Long, timeout: Duration): Boolean = synchronized(store) {
        up()
        held(lease) && lease.keys.all { (store.fences[lease.mode.family to it] ?: 0) >= fence }
    }

    override fun checkStore(timeout: Duration) = up()

    override fun watchReleases(family: LockFamily, key: String, timeout: Duration) {
        synchronized(watched) { watched += family to key }
    }

    override fun unwatchReleases(family: LockFamily, key: String, timeout: Duration) {
        synchronized(watched) { watched -= family to key }
    }

    override fun closeStore() {
        store.nodes -= this
    }
}

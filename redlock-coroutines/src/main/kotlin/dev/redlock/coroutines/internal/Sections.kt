package dev.redlock.coroutines.internal

import dev.redlock.core.LockLostException
import dev.redlock.coroutines.Lease
import java.util.concurrent.atomic.AtomicReference
import kotlin.coroutines.AbstractCoroutineContextElement
import kotlin.coroutines.CoroutineContext
import kotlin.time.Duration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.cancel
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.isActive
import kotlinx.coroutines.withContext

/**
 * The locks a critical section holds, in its coroutine context (and so in its children's): a call
 * that would wait for a lock its own section holds fails at once instead of waiting for itself.
 */
internal class HeldLocks(
    private val engine: Engine,
    private val family: String,
    private val resources: List<String>,
    private val outer: HeldLocks?,
) : AbstractCoroutineContextElement(Key), (LockLostException) -> Unit {
    companion object Key : CoroutineContext.Key<HeldLocks>

    /** The section's scope, cancelled on loss (this element is the lease's loss handler too: one object less per section). */
    @Volatile
    var section: CoroutineScope? = null

    override fun invoke(loss: LockLostException) {
        section?.cancel(LeaseLostCancellation(loss))
    }

    /** Throws when a lock of [kind] on [wanted] is held by this section or one around it. */
    fun refuseNested(engine: Engine, kind: LockKind, wanted: Array<out String>, call: String) {
        var next: HeldLocks? = this
        while (next != null) {
            val held: HeldLocks = next
            if (held.engine === engine && held.family == kind.family) {
                val both = wanted.filter { it in held.resources }
                check(both.isEmpty()) {
                    "$call on $both was called inside a critical section that already holds the ${kind.what} on " +
                        "${held.resources} (same Redlock, same coroutine or one of its children): it would wait for " +
                        "itself until its wait time ran out. Redlock locks are not reentrant: use the lease the section " +
                        "already holds, or lock another resource"
                }
            }
            next = held.outer
        }
    }
}

/**
 * Fails at once when the calling coroutine's own critical section holds what a call that waits
 * ([waitTime], null: the config's) asks for. A call that makes a single attempt cannot wait for
 * itself: it is not refused, and finds the lock held.
 */
internal suspend fun Engine.refuseNested(kind: LockKind, resources: Array<out String>, waitTime: Duration?, call: String) {
    if ((waitTime ?: defaults.wait) <= Duration.ZERO) return
    currentCoroutineContext()[HeldLocks]?.refuseNested(this, kind, resources, call)
}

/**
 * Runs [block] while holding a lease of [kind] on [resources]: the one implementation behind
 * `withRedlock`, `withReadLock`, `withWriteLock`, `withPermit` and the Java facade's sections.
 *
 * The lease is on the engine's timer from the start of the block to its end: renewed if [renew]
 * (with the other leases due at the same time, on the engine's own threads, so a busy caller
 * cannot delay it), and on loss the block's scope is cancelled from the thread that found the
 * loss; then the loss is thrown here. No coroutine per lease: a held lock costs little. The block's
 * result stands only if the lease was held all along. The lease is released on every exit path.
 */
internal suspend fun <T> Engine.runSection(
    kind: LockKind,
    resources: Array<out String>,
    leaseTime: Duration?,
    waitTime: Duration?,
    renew: Boolean,
    fencing: Boolean?,
    call: String,
    block: suspend CoroutineScope.(Lease) -> T,
): T = onCallerSafeThread {
    refuseNested(kind, resources, waitTime, call)
    val lease = acquire(resources, leaseTime, waitTime, once = false, fencing, kind)!!
    try {
        val outer = currentCoroutineContext()[HeldLocks]
        val result = try {
            val held = HeldLocks(this, kind.family, lease.resources, outer)
            withContext(held) {
                held.section = this
                val guard = lease.guard(renew, held)
                try {
                    // Never start the block on a lease already past its deadline (a slow grant):
                    // checking declares the loss, and the guard above cancels this scope.
                    lease.checkDeadlines()?.let { throw LeaseLostCancellation(it) }
                    block(this, lease)
                } finally {
                    guard.dispose()
                }
            }
        } catch (e: Throwable) {
            val loss = lease.loss
            // A loss is told to a caller that is still active. So is close(): it declares every lease
            // lost (CLOSED) before anything it owns cancels the callers (the Java facade cancels its
            // calls then), so a caller cancelled after that is told the first cause.
            if (loss != null && (currentCoroutineContext().isActive || loss.reason() == LockLostException.Reason.CLOSED)) {
                if (e is CancellationException) throw loss
                e.addSuppressed(loss)
            }
            throw e
        }
        // The block finished: its result stands only if the lease was held all along. A block that
        // never suspended may have run past the validity without the timer getting a chance to run.
        if (!lease.isValid) lease.loss?.let { throw it }
        result
    } finally {
        lease.release() // not cancellable
    }
}

/**
 * Acquires a lease of [kind] that the caller manages (`acquire`, `tryAcquire` and their forms):
 * waits unless [once]; null only when [once] found the lock held by another holder.
 *
 * A caller without a dispatcher acquires on the work pool (`onCallerSafeThread`), and the hop back
 * is cancellable: cancelled just as its lease was granted, the caller would get the cancellation
 * and never see the lease, which would hold the lock for nobody until its lease time ran out. Such
 * a lease is released (awaited, as [Lease.release] is) before the cancellation propagates.
 */
internal suspend fun Engine.acquireFor(
    kind: LockKind,
    resources: Array<out String>,
    leaseTime: Duration?,
    waitTime: Duration?,
    once: Boolean,
    fencing: Boolean?,
    call: String,
): RedlockLease? {
    val granted = AtomicReference<RedlockLease?>()
    try {
        return onCallerSafeThread {
            refuseNested(kind, resources, if (once) Duration.ZERO else waitTime, call)
            acquire(resources, leaseTime, if (once) Duration.ZERO else waitTime, once, fencing, kind).also(granted::set)
        }
    } catch (e: CancellationException) {
        granted.get()?.let { withContext(NonCancellable) { it.release() } }
        throw e
    }
}

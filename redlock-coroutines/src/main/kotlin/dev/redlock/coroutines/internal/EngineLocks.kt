package dev.redlock.coroutines.internal

import dev.redlock.core.MasterStatus
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.Lease
import kotlin.time.Duration
import kotlinx.coroutines.CoroutineScope

/**
 * [DistributedLocks] over one engine, whatever its nodes are (Redis masters, or one backend node):
 * every call is one of the engine's two kind-generic paths, [runSection] and [acquireFor].
 */
internal class EngineLocks(val engine: Engine) : DistributedLocks {
    override suspend fun <T> withLock(
        vararg resources: String,
        leaseTime: Duration?,
        waitTime: Duration?,
        fencing: Boolean?,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T = engine.runSection(LockKind.Mutex, resources, leaseTime, waitTime, renew = true, fencing, "withLock", block)

    override suspend fun acquire(vararg resources: String, leaseTime: Duration?, waitTime: Duration?, fencing: Boolean?): Lease =
        engine.acquireFor(LockKind.Mutex, resources, leaseTime, waitTime, once = false, fencing, "acquire")!!

    override suspend fun tryAcquire(vararg resources: String, leaseTime: Duration?, fencing: Boolean?): Lease? =
        engine.acquireFor(LockKind.Mutex, resources, leaseTime, null, once = true, fencing, "tryAcquire")

    override suspend fun <T> withReadLock(
        resource: String,
        leaseTime: Duration?,
        waitTime: Duration?,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T = engine.runSection(LockKind.Read, arrayOf(resource), leaseTime, waitTime, renew = true, fencing = false, "withReadLock", block)

    override suspend fun acquireReadLock(resource: String, leaseTime: Duration?, waitTime: Duration?): Lease =
        engine.acquireFor(LockKind.Read, arrayOf(resource), leaseTime, waitTime, once = false, fencing = false, "acquireReadLock")!!

    override suspend fun tryAcquireReadLock(resource: String, leaseTime: Duration?): Lease? =
        engine.acquireFor(LockKind.Read, arrayOf(resource), leaseTime, null, once = true, fencing = false, "tryAcquireReadLock")

    override suspend fun <T> withWriteLock(
        resource: String,
        leaseTime: Duration?,
        waitTime: Duration?,
        writerPriority: Boolean,
        fencing: Boolean?,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T = engine.runSection(LockKind.Write.of(writerPriority), arrayOf(resource), leaseTime, waitTime, renew = true, fencing, "withWriteLock", block)

    override suspend fun acquireWriteLock(
        resource: String,
        leaseTime: Duration?,
        waitTime: Duration?,
        writerPriority: Boolean,
        fencing: Boolean?,
    ): Lease = engine.acquireFor(LockKind.Write.of(writerPriority), arrayOf(resource), leaseTime, waitTime, once = false, fencing, "acquireWriteLock")!!

    override suspend fun tryAcquireWriteLock(resource: String, leaseTime: Duration?, fencing: Boolean?): Lease? =
        engine.acquireFor(LockKind.Write.of(false), arrayOf(resource), leaseTime, null, once = true, fencing, "tryAcquireWriteLock")

    override suspend fun <T> withPermit(
        resource: String,
        permits: Int,
        leaseTime: Duration?,
        waitTime: Duration?,
        block: suspend CoroutineScope.(Lease) -> T,
    ): T = engine.runSection(LockKind.Permit.of(permits), arrayOf(resource), leaseTime, waitTime, renew = true, fencing = false, "withPermit", block)

    override suspend fun acquirePermit(resource: String, permits: Int, leaseTime: Duration?, waitTime: Duration?): Lease =
        engine.acquireFor(LockKind.Permit.of(permits), arrayOf(resource), leaseTime, waitTime, once = false, fencing = false, "acquirePermit")!!

    override suspend fun tryAcquirePermit(resource: String, permits: Int, leaseTime: Duration?): Lease? =
        engine.acquireFor(LockKind.Permit.of(permits), arrayOf(resource), leaseTime, null, once = true, fencing = false, "tryAcquirePermit")

    override suspend fun checkMasters(): List<MasterStatus> = engine.onCallerSafeThread { engine.checkMasters() }

    override fun close() {
        engine.close()
    }

    /** Describes the locks for logs: the node they run over and the default lease time. */
    override fun toString(): String =
        "DistributedLocks(${engine.masters.nodes.joinToString { it.name() }}, ${engine.config.leaseTime()} lease)"
}

package dev.redlock.coroutines.internal

import io.netty.util.concurrent.FastThreadLocalThread
import java.util.concurrent.Executor
import java.util.concurrent.ForkJoinPool
import java.util.concurrent.ForkJoinWorkerThread
import java.util.concurrent.ScheduledThreadPoolExecutor
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.asCoroutineDispatcher

/**
 * The threads one Redlock owns, shut down by its `close()` so that nothing of it lingers:
 * - the timer, one thread for the leases' deadlines and renewals, and nothing else: no I/O, no
 *   user code and no logging can hold it up (what it finds is reported from the work pool);
 * - the timeouts, one thread that bounds every command to a master (a command that times out
 *   completes there, with whatever depends on it);
 * - the work pool, for the library's own coroutines (renewal calls, the Java facade's calls) and
 *   for callers that have no dispatcher of their own (they would otherwise be resumed on the
 *   Redis client's I/O threads).
 * Both are daemon threads.
 */
internal class EngineThreads : AutoCloseable {
    private val id = COUNT.incrementAndGet()

    val timer: ScheduledThreadPoolExecutor = ScheduledThreadPoolExecutor(1) { task ->
        Thread({ onTimer.set(true); task.run() }, "redlock-$id-timer").apply { isDaemon = true }
    }.apply {
        removeOnCancelPolicy = true
        setExecuteExistingDelayedTasksAfterShutdownPolicy(false)
    }

    private val work = ForkJoinPool(
        maxOf(2, Runtime.getRuntime().availableProcessors()),
        { pool -> object : ForkJoinWorkerThread(pool) {}.apply { name = "redlock-$id-worker-$poolIndex"; isDaemon = true } },
        null,
        true,
    )

    /** Bounds every command to a master; kept apart from [timer] so that a burst of timeouts cannot delay a deadline. */
    val timeouts: ScheduledThreadPoolExecutor = ScheduledThreadPoolExecutor(1) { task ->
        Thread({ onTimer.set(true); task.run() }, "redlock-$id-timeouts").apply { isDaemon = true }
    }.apply {
        removeOnCancelPolicy = true
        setExecuteExistingDelayedTasksAfterShutdownPolicy(false)
    }

    val timerDispatcher: CoroutineDispatcher = timer.asCoroutineDispatcher()
    val workDispatcher: CoroutineDispatcher = work.asCoroutineDispatcher()
    val workExecutor: Executor get() = work

    /** Whether the calling thread is one of these threads. */
    fun isOwnThread(): Boolean {
        val t = Thread.currentThread()
        return (onTimer.get() && t.name.startsWith("redlock-$id-")) || (t is ForkJoinWorkerThread && t.pool === work)
    }

    /**
     * Stops both; waits (bounded) for them to end unless called on one of them, which then ends
     * once its current task is done.
     */
    override fun close() {
        timer.shutdownNow()
        timeouts.shutdownNow()
        work.shutdown()
        if (!isOwnThread()) {
            timer.awaitTermination(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS)
            timeouts.awaitTermination(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS)
            work.awaitTermination(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS)
        }
    }

    companion object {
        private val COUNT = AtomicInteger()
        private const val CLOSE_WAIT_MILLIS = 2_000L

        /** True on the timer thread of every Redlock: it runs only library code. */
        private val onTimer: ThreadLocal<Boolean> = ThreadLocal.withInitial { false }

        /**
         * Marks the calling thread as one that runs only library code and must not wait for the
         * engine's I/O: a backend node's own thread (its `close()` from there only starts the
         * shutdown, since the node's thread is needed to finish it).
         */
        fun markLibraryThread() {
            onTimer.set(true)
        }

        /**
         * Whether the calling thread must never run user code or wait for I/O: a Redis client's
         * I/O thread (Netty's threads are [FastThreadLocalThread]s) or a Redlock's timer.
         */
        fun onIoOrTimerThread(): Boolean {
            val t = Thread.currentThread()
            return t is FastThreadLocalThread || onTimer.get()
        }
    }
}

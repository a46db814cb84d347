package dev.redlock.java.internal

import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionException
import java.util.concurrent.CompletionStage
import java.util.concurrent.Executor
import java.util.concurrent.Future
import java.util.concurrent.RejectedExecutionException
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CopyableThrowable
import kotlinx.coroutines.ExperimentalCoroutinesApi
import kotlinx.coroutines.future.await

/**
 * Carries a failure of the user's action through the engine unchanged.
 *
 * With assertions on, kotlinx.coroutines "recovers stack traces" by re-creating an exception
 * (same type, original as cause) wherever it crosses a coroutine boundary, such as the
 * `coroutineScope` inside `withRedlock`. The facade promises the user's very exception object,
 * so the exception travels inside this carrier, which refuses to be copied, and is unpacked at
 * the facade's boundary. It is not a [CancellationException], so the engine treats it as a
 * failure of the block (and attaches a loss to it as a suppressed exception).
 */
@OptIn(ExperimentalCoroutinesApi::class)
internal class ActionFailure(val original: Throwable) :
    RuntimeException("the action failed", original, true, false), CopyableThrowable<ActionFailure> {
    override fun createCopy(): ActionFailure? = null
}

/** How a stage completed: its value, or its failure with one [CompletionException] taken off. */
private class Settled<T>(val value: T?, val failure: Throwable?)

/**
 * Waits for this stage without letting its failure pass through coroutine machinery: a failure is
 * thrown as an [ActionFailure]. Cancelling the wait cancels the stage.
 */
internal suspend fun <T> CompletionStage<T>.awaitCarried(): T {
    val settled: CompletionStage<Settled<T>> =
        handle { value, failure -> Settled(value, failure?.let(::unwrapCompletion)) }
    val outcome =
        try {
            settled.await()
        } catch (e: CancellationException) {
            cancelStage(this)
            throw e
        }
    outcome.failure?.let { throw ActionFailure(it) }
    @Suppress("UNCHECKED_CAST")
    return outcome.value as T
}

/** Takes one [CompletionException] off, as `CompletableFuture` itself does for `get()`. */
internal fun unwrapCompletion(failure: Throwable): Throwable =
    if (failure is CompletionException && failure.cause != null) failure.cause!! else failure

/** Cancels a user's stage, best effort: a stage that is not a future may not support it. */
internal fun cancelStage(stage: CompletionStage<*>) {
    try {
        val future: Future<*> = stage as? Future<*> ?: stage.toCompletableFuture()
        future.cancel(false)
    } catch (_: UnsupportedOperationException) {
        // A minimal stage cannot be cancelled from outside; it completes on its own.
    }
}

/**
 * Completes [target] on [executor], so that the user's dependent stages never run on the engine's
 * or Lettuce's threads. If the executor refuses (it was shut down), completes on this thread
 * rather than leave the future pending forever. A value that cannot be delivered because the
 * future was completed first (cancelled) is handed to [dropped], to undo it.
 */
internal fun <T> deliver(
    target: CompletableFuture<T>,
    executor: Executor,
    value: T?,
    failure: Throwable?,
    dropped: ((T) -> Unit)? = null,
) {
    val task = Runnable {
        val taken = if (failure == null) target.complete(value) else target.completeExceptionally(failure)
        @Suppress("UNCHECKED_CAST")
        if (!taken && failure == null && dropped != null) dropped(value as T)
    }
    try {
        executor.execute(task)
    } catch (_: RejectedExecutionException) {
        task.run()
    }
}

/** Adds [loss] to [failure]'s suppressed exceptions unless it is there already (or is [failure]). */
internal fun addSuppressedOnce(failure: Throwable, loss: Throwable) {
    if (failure !== loss && failure.suppressed.none { it === loss }) failure.addSuppressed(loss)
}

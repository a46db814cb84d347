package dev.redlock.coroutines.internal

import dev.redlock.core.internal.Failures
import dev.redlock.core.internal.LockNode
import java.util.concurrent.CompletableFuture
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.future.await
import kotlinx.coroutines.suspendCancellableCoroutine

/** One master's answer in a fan-out: a value or the failure (already a MasterFailureException). */
internal class Answer<R>(val node: Int, val value: R?, val failure: Throwable?)

/**
 * Sends one call to every master at once and gathers the answers until the outcome is decided:
 * `quorum` masters said yes, or so many said anything else that a quorum is out of reach.
 *
 * Every call is issued before the first suspension, so all masters see the request at the same
 * time. Masters still silent when the outcome is decided are left to their own (bounded) calls:
 * their answer is not needed, and the caller treats them as "possibly applied" for cleanup. Each
 * call is bounded by its node timeout, so the gathering ends within one node timeout.
 * Cancellation of the caller cancels the gathering at once; the calls already sent stay sent.
 *
 * A master that is the same server as an earlier one ([Masters.duplicateOf]) answers with a
 * `DUPLICATE` failure instead of its value: one server never makes two votes. [observe] sees every
 * answer, also those after the outcome was decided, on the thread the answer arrives on (an I/O
 * or timer thread: it must not block or call user code).
 */
internal suspend fun <R> fanOut(
    masters: Masters,
    quorum: Int,
    isYes: (R) -> Boolean,
    observe: ((Answer<R>) -> Unit)? = null,
    call: (LockNode) -> CompletableFuture<R>,
): Gathered<R> {
    val nodes = masters.nodes
    val calls = ArrayList<CompletableFuture<R>>(nodes.size)
    for (node in nodes) calls += call(node)
    return gather(masters, quorum, isYes, observe, calls)
}

/**
 * Gathers the answers of [calls], one per master, already sent (see [fanOut]) until the outcome is
 * decided. Cancellation of the caller cancels the gathering; the calls stay sent.
 */
internal suspend fun <R> gather(
    masters: Masters,
    quorum: Int,
    isYes: (R) -> Boolean,
    observe: ((Answer<R>) -> Unit)?,
    calls: List<CompletableFuture<R>>,
): Gathered<R> {
    val nodes = masters.nodes
    // No coroutine per master: each answer is counted where it arrives, and the caller is resumed
    // once, when the outcome is decided (one dispatch per fan-out, not one per master).
    val tally = Tally(nodes.size, quorum, isYes)
    val answers = suspendCancellableCoroutine { cont ->
        calls.forEachIndexed { i, sent ->
            sent.whenComplete { value, e ->
                val answer = masters.answer(i, value, e)
                observe?.invoke(answer)
                tally.add(answer)?.let { decided -> cont.resume(decided) { _, _, _ -> } }
            }
        }
    }
    return Gathered(masters, answers, calls)
}

/** Counts the answers of one fan-out; hands out the deciding list once. Thread-safe. */
private class Tally<R>(private val size: Int, private val quorum: Int, private val isYes: (R) -> Boolean) {
    private val answers = ArrayList<Answer<R>>(size)
    private var yes = 0
    private var decided = false

    @Synchronized
    fun add(answer: Answer<R>): List<Answer<R>>? {
        if (decided) return null
        answers += answer
        if (answer.failure == null && isYes(answer.value!!)) yes++
        if (answers.size < size && yes < quorum && answers.size - yes <= size - quorum) return null
        decided = true
        // Not copied: once decided, nothing is added any more.
        return answers
    }
}

/** The answers that decided a fan-out, and every call sent (to collect the late answers if needed). */
internal class Gathered<R>(private val masters: Masters, val answers: List<Answer<R>>, private val calls: List<CompletableFuture<R>>) {
    /** All answers: the deciding ones plus those of the masters that were still silent, each bounded by its call. */
    suspend fun all(): List<Answer<R>> {
        if (answers.size == calls.size) return answers
        val answered = answers.mapTo(HashSet()) { it.node }
        val late = calls.indices.filter { it !in answered }.map { i ->
            try {
                masters.answer(i, calls[i].awaitQuietly(), null)
            } catch (e: CancellationException) {
                throw e
            } catch (e: Throwable) {
                masters.answer<R>(i, null, e)
            }
        }
        return answers + late
    }
}

/**
 * Awaits a future whatever happens to the caller meanwhile (as under `NonCancellable`, without
 * switching contexts): resumed through the caller's dispatcher; the future's failure is thrown
 * unwrapped.
 */
internal suspend fun <T> CompletableFuture<T>.awaitUncancellable(): T {
    if (isDone) {
        try {
            return join()
        } catch (e: java.util.concurrent.CompletionException) {
            throw unwrap(e)
        }
    }
    return kotlin.coroutines.suspendCoroutine { cont ->
        whenComplete { v, e -> if (e == null) cont.resumeWith(Result.success(v)) else cont.resumeWith(Result.failure(unwrap(e))) }
    }
}

/** Awaits a future without letting the caller's cancellation cancel it. */
internal suspend fun <T> CompletableFuture<T>.awaitQuietly(): T = thenApply { it }.await()

internal fun unwrap(e: Throwable): Throwable = Failures.unwrap(e)

package dev.redlock.coroutines

import dev.redlock.core.internal.LockNode
import java.util.concurrent.CompletableFuture
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.suspendCancellableCoroutine

/** One master's answer in a fan-out: a value or the failure (already a MasterFailureException). */
internal class Answer<R>(val node: Int, val value: R?, val failure: Throwable?)

/**
 * Sends one call to every master at once and gathers the answers until the outcome is decided:
 * `quorum` masters said yes, or so many said anything else that a quorum is out of reach.
 *
 * Every call is issued before the first suspension, so all masters see the request at the same
 * time. Masters still silent when the outcome is decided are left to their own (bounded) calls:
 * their answer is not needed, and the caller treats them as "possibly applied" for cleanup.
 * Cancellation of the caller cancels the gathering at once; the calls already sent stay sent.
 * [observe] sees every answer, including those that arrive after the outcome was decided.
 */
internal suspend fun <R> fanOut(
    nodes: List<LockNode>,
    quorum: Int,
    isYes: (R) -> Boolean,
    observe: ((Answer<R>) -> Unit)? = null,
    call: (LockNode) -> CompletableFuture<R>,
): Gathered<R> {
    val calls = ArrayList<CompletableFuture<R>>(nodes.size)
    for (node in nodes) calls += call(node)
    // No coroutine per master: each answer is counted where it arrives, and the caller is resumed
    // once, when the outcome is decided (one thread hop per fan-out, not one per master).
    val tally = Tally(nodes.size, quorum, isYes)
    val answers = suspendCancellableCoroutine { cont ->
        calls.forEachIndexed { i, sent ->
            sent.whenComplete { value, e ->
                val answer = if (e == null) Answer(i, value, null) else Answer<R>(i, null, unwrap(e))
                // Every answer, also those that come after the outcome was decided.
                observe?.invoke(answer)
                tally.add(answer)?.let { decided -> cont.resume(decided) { _, _, _ -> } }
            }
        }
    }
    return Gathered(answers, calls)
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
        return ArrayList(answers)
    }
}

private fun unwrap(e: Throwable): Throwable =
    if ((e is java.util.concurrent.CompletionException || e is java.util.concurrent.ExecutionException) && e.cause != null) e.cause!! else e

/** The answers that decided a fan-out, and every call sent (to collect the late answers if needed). */
internal class Gathered<R>(val answers: List<Answer<R>>, private val calls: List<CompletableFuture<R>>) {
    /** All answers: the deciding ones plus those of the masters that were still silent, each bounded by its call. */
    suspend fun all(): List<Answer<R>> {
        if (answers.size == calls.size) return answers
        val answered = answers.mapTo(HashSet()) { it.node }
        val late = calls.indices.filter { it !in answered }.map { i ->
            try {
                Answer(i, calls[i].awaitQuietly(), null)
            } catch (e: CancellationException) {
                throw e
            } catch (e: Throwable) {
                Answer<R>(i, null, e)
            }
        }
        return answers + late
    }
}

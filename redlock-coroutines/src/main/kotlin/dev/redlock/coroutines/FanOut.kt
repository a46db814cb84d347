package dev.redlock.coroutines

import dev.redlock.core.internal.LockNode
import java.util.concurrent.CompletableFuture
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.cancelChildren
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch

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
 */
internal suspend fun <R> fanOut(
    nodes: List<LockNode>,
    quorum: Int,
    isYes: (R) -> Boolean,
    call: (LockNode) -> CompletableFuture<R>,
): Gathered<R> = coroutineScope {
    val inbox = Channel<Answer<R>>(nodes.size)
    val calls = ArrayList<CompletableFuture<R>>(nodes.size)
    nodes.forEachIndexed { i, node ->
        val sent = call(node)
        calls += sent
        launch(start = CoroutineStart.UNDISPATCHED) {
            val answer =
                try {
                    Answer(i, sent.awaitQuietly(), null)
                } catch (e: CancellationException) {
                    throw e
                } catch (e: Throwable) {
                    Answer<R>(i, null, e)
                }
            inbox.send(answer)
        }
    }
    val answers = ArrayList<Answer<R>>(nodes.size)
    var yes = 0
    while (answers.size < nodes.size && yes < quorum && answers.size - yes <= nodes.size - quorum) {
        val answer = inbox.receive()
        answers += answer
        if (answer.failure == null && isYes(answer.value!!)) yes++
    }
    coroutineContext.cancelChildren()
    Gathered(answers, calls)
}

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

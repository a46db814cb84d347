package dev.redlock.spring.internal

import kotlin.coroutines.Continuation
import kotlin.coroutines.CoroutineContext
import kotlinx.coroutines.Job
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.reactor.awaitSingleOrNull
import kotlinx.coroutines.reactor.mono
import org.aopalliance.intercept.MethodInvocation
import reactor.core.publisher.Mono

/** The Mono side of [SuspendingSections], loaded only when kotlinx-coroutines-reactor is present. */
internal object ReactorSections {
    /** The interceptor's answer: a Mono of [section], run in the caller's context (less its job, as Spring does). */
    fun monoOf(callerContext: CoroutineContext, section: suspend () -> Any?): Mono<Any> =
        mono(callerContext.minusKey(Job)) { section() }

    /**
     * Calls the target, which Spring runs as a Mono in the context of the continuation found in the
     * arguments: that continuation carries this coroutine's context (the lease), and is never resumed.
     */
    suspend fun awaitTarget(invocation: MethodInvocation): Any? {
        val context = currentCoroutineContext()
        val args = invocation.arguments
        args[args.size - 1] = Continuation<Any?>(context) { }
        val result = invocation.proceed()
        return (result as Mono<*>).awaitSingleOrNull()
    }
}

package dev.redlock.spring.internal

import dev.redlock.coroutines.Lease
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import kotlin.coroutines.AbstractCoroutineContextElement
import kotlin.coroutines.Continuation
import kotlin.coroutines.CoroutineContext
import kotlin.coroutines.intrinsics.startCoroutineUninterceptedOrReturn
import kotlin.coroutines.intrinsics.suspendCoroutineUninterceptedOrReturn
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.withContext
import org.aopalliance.intercept.MethodInvocation
import org.springframework.util.ClassUtils

/** The lease of a `@Redlocked` suspend function, in its coroutine context. */
internal class RedlockedLeaseElement(val lease: Lease) : AbstractCoroutineContextElement(RedlockedLeaseElement) {
    companion object Key : CoroutineContext.Key<RedlockedLeaseElement>
}

/**
 * `@Redlocked` for Kotlin suspend functions: the call runs inside [withRedlock], so loss cancels it
 * and the caller gets `LockLostException`.
 *
 * Spring AOP hands suspend functions to interceptors in one of two ways. Without
 * kotlinx-coroutines-reactor, as plain methods whose last argument is the caller's continuation:
 * the interceptor returns the value or `COROUTINE_SUSPENDED`. With it, the target call returns a
 * `Mono` (run in a coroutine whose context is that of the continuation in the arguments) and the
 * proxy awaits whatever the interceptor returns: the interceptor returns a `Mono`.
 *
 * @suppress Internal API of redlock-spring.
 */
public object SuspendingSections {
    /** Whether Spring AOP converts suspend functions to Monos: the same test as Spring's proxies make. */
    private val reactorBridge: Boolean =
        ClassUtils.isPresent("kotlinx.coroutines.reactor.MonoKt", org.springframework.aop.support.AopUtils::class.java.classLoader)

    /**
     * Calls the suspend function of [invocation] under a lock on [resources]; what Spring AOP expects
     * back from an interceptor (see the class comment).
     */
    @JvmStatic
    public fun invoke(
        invocation: MethodInvocation,
        redlock: Redlock,
        resources: Array<String>,
        leaseTime: java.time.Duration?,
        waitTime: java.time.Duration?,
        fencing: Boolean?,
    ): Any? {
        val args = invocation.arguments
        @Suppress("UNCHECKED_CAST")
        val caller = args[args.size - 1] as Continuation<Any?>
        val section: suspend () -> Any? = {
            redlock.withRedlock(
                *resources,
                leaseTime = leaseTime?.toKotlinDuration(),
                waitTime = waitTime?.toKotlinDuration(),
                fencing = fencing,
            ) { lease ->
                withContext(RedlockedLeaseElement(lease)) { callTarget(invocation) }
            }
        }
        return if (reactorBridge) ReactorSections.monoOf(caller.context, section) else section.startCoroutineUninterceptedOrReturn(caller)
    }

    private suspend fun callTarget(invocation: MethodInvocation): Any? {
        if (reactorBridge) return ReactorSections.awaitTarget(invocation)
        return suspendCoroutineUninterceptedOrReturn { continuation ->
            val args = invocation.arguments
            args[args.size - 1] = continuation
            invocation.proceed()
        }
    }
}

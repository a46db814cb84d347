package dev.redlock.spring;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.springframework.core.annotation.AliasFor;

/**
 * Runs the annotated bean method while holding a Redlock on the resources it names, renewed while
 * the method runs and released when it ends.
 *
 * <pre>{@code
 * @Redlocked("orders:#{#order.id}")
 * public Receipt charge(Order order) { ... }
 * }</pre>
 *
 * <p>Resource names are templates: text with {@code #{...}} SpEL expressions over the method's
 * arguments ({@code #order}, {@code #p0}, {@code #a0}), the {@code #root.method}, {@code
 * #root.args} and {@code #root.target}, and beans ({@code @beanName}); {@code ${...}} property
 * placeholders are resolved first. Several names lock all of them as one lock.
 *
 * <p>Three kinds of methods, each stopped on loss the way it can be:
 *
 * <ul>
 *   <li><b>Blocking methods</b> run on the calling thread. If the lease is lost while the method
 *       runs, that thread is interrupted (so {@code Thread.sleep}, {@code wait}, {@code
 *       lockInterruptibly} and interruptible I/O stop at once; code that never checks keeps
 *       running), and when the method returns or throws, the caller gets {@link
 *       dev.redlock.core.LockLostException} (the method's own exception, if any, suppressed in
 *       it). An interrupt the library made is cleared before the call returns.
 *   <li><b>Methods returning {@link java.util.concurrent.CompletableFuture} or {@link
 *       java.util.concurrent.CompletionStage}</b> are called on the Redlock's callback pool once
 *       the lock is held; the lock is held until the stage they return completes. On loss that
 *       stage is cancelled and the future the caller got fails at once with {@code
 *       LockLostException}. Cancelling the caller's future cancels the method's stage and releases.
 *   <li><b>Kotlin {@code suspend} functions</b> run inside {@code withRedlock}: on loss the
 *       function is cancelled at its next suspension point and the caller gets {@code
 *       LockLostException}; cancelling the caller cancels the function and releases.
 * </ul>
 *
 * <p>Inside the method, {@link RedlockedLease#current()} (blocking and future methods, on the
 * thread that called it) or {@code redlockedLease()} (suspend functions) gives the lease, for its
 * fencing token. Locks are not reentrant: an annotated method that calls another for the same
 * resource fails at once with {@link IllegalStateException} (the same thread or coroutine) or
 * waits for itself until the wait time runs out ({@code LockNotAcquiredException}).
 *
 * <p>Only calls through the Spring proxy are locked: a call from the bean to its own method is
 * not. Methods returning other asynchronous types ({@code Future}, Reactor's {@code Mono}) fail
 * with {@link IllegalStateException} when called.
 */
@Target({ElementType.METHOD, ElementType.ANNOTATION_TYPE})
@Retention(RetentionPolicy.RUNTIME)
@Documented
public @interface Redlocked {

  /**
   * The resources to lock, as templates (see the class comment). Same as {@link #resources()}.
   *
   * @return the resource templates
   */
  @AliasFor("resources")
  String[] value() default {};

  /**
   * The resources to lock, as templates (see the class comment). Same as {@link #value()}.
   *
   * @return the resource templates
   */
  @AliasFor("value")
  String[] resources() default {};

  /**
   * The lease time, as {@code 30s}, {@code 500ms}, {@code 2m} or ISO-8601 {@code PT30S}, or a
   * {@code ${...}} placeholder for one. Empty (the default): {@code redlock.lease-time}.
   *
   * @return the lease time, or empty
   */
  String leaseTime() default "";

  /**
   * How long to wait for the lock before the call fails with {@link
   * dev.redlock.core.LockNotAcquiredException}, in the same forms as {@link #leaseTime()}; {@code
   * 0s} makes one attempt. Empty (the default): {@code redlock.wait-time}.
   *
   * @return the wait time, or empty
   */
  String waitTime() default "";

  /**
   * Whether the lease carries a fencing token ({@code lease.fencingToken()}), at the cost of a
   * second round trip at acquisition. {@code false} (the default) leaves it to {@code
   * redlock.fencing}.
   *
   * @return {@code true} to draw a fencing token
   */
  boolean fencing() default false;
}

package dev.redlock.spring;

import dev.redlock.coroutines.Redlock;
import dev.redlock.java.AsyncRedlock;
import java.lang.reflect.Method;
import java.util.Objects;
import java.util.function.Supplier;
import org.aopalliance.aop.Advice;
import org.springframework.aop.Pointcut;
import org.springframework.aop.support.AbstractPointcutAdvisor;
import org.springframework.aop.support.AopUtils;
import org.springframework.aop.support.StaticMethodMatcherPointcut;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.BeanFactoryAware;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.AnnotatedElementUtils;

/**
 * The Spring AOP advisor that runs {@link Redlocked} methods under their lock. Spring Boot's
 * auto-configuration registers one; an application without Boot declares it as a bean (with an
 * auto-proxy creator, for example through {@code @EnableAspectJAutoProxy}):
 *
 * <pre>{@code
 * @Bean
 * static RedlockedAdvisor redlockedAdvisor(ObjectProvider<AsyncRedlock> async, ObjectProvider<Redlock> redlock) {
 *   return new RedlockedAdvisor(async::getObject, redlock::getObject);
 * }
 * }</pre>
 *
 * <p>Its order is {@link #DEFAULT_ORDER} ({@code setOrder} changes it): the lock is taken outside
 * a {@code @Transactional} transaction on the same method and released after it commits.
 *
 * <p>The Redlocks are looked up at the first annotated call, not when the advisor is created (it
 * is created early, with the infrastructure); the Kotlin {@link Redlock} only when a {@code
 * suspend} function is called. Thread-safe.
 */
public final class RedlockedAdvisor extends AbstractPointcutAdvisor implements BeanFactoryAware {
  private static final long serialVersionUID = 1L;

  /**
   * The advisor's default order: before (outside) advice of the default order, such as
   * {@code @Transactional}'s, so that a transaction on the same method commits while the lock is
   * still held.
   */
  public static final int DEFAULT_ORDER = Ordered.LOWEST_PRECEDENCE - 1000;

  private final transient RedlockedInterceptor interceptor;

  /** The methods annotated with {@link Redlocked}, on the method or its most specific implementation. */
  private final transient Pointcut pointcut =
      new StaticMethodMatcherPointcut() {
        @Override
        public boolean matches(Method method, Class<?> targetClass) {
          return AnnotatedElementUtils.hasAnnotation(method, Redlocked.class)
              || AnnotatedElementUtils.hasAnnotation(
                  AopUtils.getMostSpecificMethod(method, targetClass), Redlocked.class);
        }
      };

  /**
   * Creates the advisor.
   *
   * @param asyncRedlock gives the Java Redlock that runs blocking and future-returning methods
   * @param redlock gives the Kotlin Redlock that runs {@code suspend} functions
   */
  public RedlockedAdvisor(Supplier<AsyncRedlock> asyncRedlock, Supplier<Redlock> redlock) {
    this.interceptor =
        new RedlockedInterceptor(
            Objects.requireNonNull(asyncRedlock, "asyncRedlock"),
            Objects.requireNonNull(redlock, "redlock"));
    setOrder(DEFAULT_ORDER);
  }

  /**
   * Gives the interceptor the bean factory, for {@code ${...}} placeholders and {@code @bean}
   * references in resource templates and durations.
   *
   * @param beanFactory the bean factory
   */
  @Override
  public void setBeanFactory(BeanFactory beanFactory) {
    interceptor.setBeanFactory(beanFactory);
  }

  /**
   * The methods annotated with {@link Redlocked} (on the method or its most specific
   * implementation).
   *
   * @return the pointcut
   */
  @Override
  public Pointcut getPointcut() {
    return pointcut;
  }

  /**
   * The interceptor that takes the lock around the call.
   *
   * @return the advice
   */
  @Override
  public Advice getAdvice() {
    return interceptor;
  }
}

package dev.redlock.spring;

import dev.redlock.core.LockLostException;
import dev.redlock.coroutines.Redlock;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.java.LockOptions;
import dev.redlock.spring.internal.SuspendingSections;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import org.aopalliance.intercept.MethodInterceptor;
import org.aopalliance.intercept.MethodInvocation;
import org.springframework.aop.support.AopUtils;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.config.ConfigurableBeanFactory;
import org.springframework.boot.convert.DurationStyle;
import org.springframework.context.expression.BeanFactoryResolver;
import org.springframework.context.expression.MethodBasedEvaluationContext;
import org.springframework.core.DefaultParameterNameDiscoverer;
import org.springframework.core.KotlinDetector;
import org.springframework.core.MethodClassKey;
import org.springframework.core.ParameterNameDiscoverer;
import org.springframework.core.annotation.AnnotatedElementUtils;
import org.springframework.expression.Expression;
import org.springframework.expression.common.TemplateParserContext;
import org.springframework.expression.spel.standard.SpelExpressionParser;

/** Runs {@link Redlocked} methods under their lock: one path per kind of method (see the annotation). */
final class RedlockedInterceptor implements MethodInterceptor {
  private static final SpelExpressionParser PARSER = new SpelExpressionParser();
  private static final TemplateParserContext TEMPLATE = new TemplateParserContext();

  private final Supplier<AsyncRedlock> asyncRedlock;
  private final Supplier<Redlock> redlock;
  private final ParameterNameDiscoverer parameterNames = new DefaultParameterNameDiscoverer();
  private final Map<MethodClassKey, Plan> plans = new ConcurrentHashMap<>();
  private volatile BeanFactory beanFactory;

  RedlockedInterceptor(Supplier<AsyncRedlock> asyncRedlock, Supplier<Redlock> redlock) {
    this.asyncRedlock = asyncRedlock;
    this.redlock = redlock;
  }

  void setBeanFactory(BeanFactory beanFactory) {
    this.beanFactory = beanFactory;
  }

  /** How a method is run: its kind and its settings, read from the annotation once. */
  private record Plan(
      Kind kind,
      Method method,
      List<Expression> resources,
      Duration leaseTime,
      Duration waitTime,
      Boolean fencing) {}

  private enum Kind {
    BLOCKING,
    STAGE,
    SUSPEND
  }

  /** What SpEL expressions see as {@code #root}. */
  record Root(Method method, Object[] args, Object target) {}

  @Override
  public Object invoke(MethodInvocation invocation) throws Throwable {
    Class<?> targetClass =
        invocation.getThis() != null ? AopUtils.getTargetClass(invocation.getThis()) : null;
    Method method = invocation.getMethod();
    Plan plan = plans.computeIfAbsent(new MethodClassKey(method, targetClass), k -> plan(method, targetClass));
    String[] resources = resources(plan, invocation);
    return switch (plan.kind) {
      case SUSPEND ->
          SuspendingSections.invoke(
              invocation, redlock.get(), resources, plan.leaseTime, plan.waitTime, plan.fencing);
      case STAGE -> stage(invocation, options(plan, resources));
      case BLOCKING -> blocking(invocation, options(plan, resources));
    };
  }

  private Plan plan(Method method, Class<?> targetClass) {
    Method specific = targetClass != null ? AopUtils.getMostSpecificMethod(method, targetClass) : method;
    Redlocked annotation = AnnotatedElementUtils.findMergedAnnotation(specific, Redlocked.class);
    if (annotation == null) {
      annotation = AnnotatedElementUtils.findMergedAnnotation(method, Redlocked.class);
    }
    String where = "@Redlocked on " + method.getDeclaringClass().getName() + "." + method.getName();
    if (annotation == null || annotation.resources().length == 0) {
      throw new IllegalStateException(where + " must name at least one resource, as @Redlocked(\"orders:#{#order.id}\")");
    }
    Class<?> returns = method.getReturnType();
    Kind kind;
    if (KotlinDetector.isSuspendingFunction(method)) {
      kind = Kind.SUSPEND;
    } else if (CompletionStage.class.isAssignableFrom(returns)
        && returns.isAssignableFrom(CompletableFuture.class)) {
      kind = Kind.STAGE;
    } else if (Future.class.isAssignableFrom(returns)
        || CompletionStage.class.isAssignableFrom(returns)
        || returns.getName().startsWith("org.reactivestreams.")
        || returns.getName().startsWith("reactor.core.publisher.")
        || returns.getName().equals("kotlinx.coroutines.flow.Flow")) {
      throw new IllegalStateException(
          where + " returns " + returns.getName() + ", which it cannot hold the lock for: annotate"
              + " blocking methods, methods returning CompletableFuture or CompletionStage, or Kotlin"
              + " suspend functions");
    } else {
      kind = Kind.BLOCKING;
    }
    List<Expression> resources =
        java.util.Arrays.stream(annotation.resources())
            .map(template -> PARSER.parseExpression(resolvePlaceholders(template), TEMPLATE))
            .toList();
    return new Plan(
        kind,
        method,
        resources,
        duration(where, "leaseTime", annotation.leaseTime()),
        duration(where, "waitTime", annotation.waitTime()),
        annotation.fencing() ? Boolean.TRUE : null);
  }

  private Duration duration(String where, String attribute, String text) {
    String resolved = resolvePlaceholders(text).trim();
    if (resolved.isEmpty()) {
      return null;
    }
    try {
      return DurationStyle.detectAndParse(resolved);
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException(
          where + ": " + attribute + " must be a duration such as 30s, 500ms or PT30S, but was '"
              + resolved + "'", e);
    }
  }

  private String resolvePlaceholders(String text) {
    BeanFactory factory = beanFactory;
    if (factory instanceof ConfigurableBeanFactory configurable && text.contains("${")) {
      String resolved = configurable.resolveEmbeddedValue(text);
      return resolved != null ? resolved : text;
    }
    return text;
  }

  private String[] resources(Plan plan, MethodInvocation invocation) {
    Object[] args = invocation.getArguments();
    MethodBasedEvaluationContext context =
        new MethodBasedEvaluationContext(
            new Root(plan.method, args, invocation.getThis()), plan.method, args, parameterNames);
    BeanFactory factory = beanFactory;
    if (factory != null) {
      context.setBeanResolver(new BeanFactoryResolver(factory));
    }
    String[] names = new String[plan.resources.size()];
    for (int i = 0; i < names.length; i++) {
      Expression expression = plan.resources.get(i);
      String name = expression.getValue(context, String.class);
      if (name == null || name.isBlank()) {
        throw new IllegalArgumentException(
            "@Redlocked resource '" + expression.getExpressionString() + "' of "
                + plan.method.getName() + " must give a non-blank name, but gave '" + name + "'");
      }
      names[i] = name;
    }
    return names;
  }

  private static LockOptions options(Plan plan, String[] resources) {
    LockOptions.Builder options = LockOptions.builder(java.util.Arrays.asList(resources));
    if (plan.leaseTime != null) {
      options.leaseTime(plan.leaseTime);
    }
    if (plan.waitTime != null) {
      options.waitTime(plan.waitTime);
    }
    if (plan.fencing != null) {
      options.fencing(plan.fencing);
    }
    return options.build();
  }

  /** Methods returning a stage: held until the stage completes; loss cancels it (the facade's withLock). */
  private Object stage(MethodInvocation invocation, LockOptions options) {
    return asyncRedlock
        .get()
        .withLock(
            options,
            lease -> {
              LockLease previous = RedlockedLease.enter(lease);
              try {
                @SuppressWarnings("unchecked")
                CompletionStage<Object> stage = (CompletionStage<Object>) invocation.proceed();
                return stage;
              } catch (Throwable t) {
                return CompletableFuture.failedFuture(t);
              } finally {
                RedlockedLease.restore(previous);
              }
            });
  }

  /** Blocking methods: on the calling thread, interrupted on loss; loss reported as LockLostException. */
  private Object blocking(MethodInvocation invocation, LockOptions options) throws Throwable {
    Interrupter interrupter = new Interrupter(Thread.currentThread());
    try {
      return asyncRedlock
          .get()
          .withLockBlocking(
              options,
              lease -> {
                lease.lost().whenComplete((ignored, loss) -> interrupter.interrupt());
                LockLease previous = RedlockedLease.enter(lease);
                try {
                  return invocation.proceed();
                } catch (Throwable t) {
                  throw new Thrown(t);
                } finally {
                  RedlockedLease.restore(previous);
                  interrupter.finish();
                }
              });
    } catch (Thrown thrown) {
      Throwable original = thrown.getCause();
      for (Throwable suppressed : thrown.getSuppressed()) {
        if (suppressed instanceof LockLostException loss) {
          // The lease was lost while the method ran: that is what the caller must learn.
          loss.addSuppressed(original);
          throw loss;
        }
      }
      throw original;
    } catch (InterruptedException e) {
      // Interrupted while waiting for the lock (the attempt's keys are removed).
      if (declares(invocation.getMethod(), InterruptedException.class)) {
        throw e;
      }
      Thread.currentThread().interrupt();
      CancellationException cancelled =
          new CancellationException(
              "interrupted while waiting for the lock on " + options.resources());
      cancelled.initCause(e);
      throw cancelled;
    }
  }

  private static boolean declares(Method method, Class<?> exception) {
    for (Class<?> declared : method.getExceptionTypes()) {
      if (declared.isAssignableFrom(exception)) {
        return true;
      }
    }
    return false;
  }

  /** Carries whatever the method threw through withLockBlocking, which takes checked exceptions only. */
  private static final class Thrown extends Exception {
    private static final long serialVersionUID = 1L;

    Thrown(Throwable cause) {
      super(cause);
    }
  }

  /**
   * Interrupts the method's thread on loss, but only while the method runs there; clears the
   * interrupt it made once the method is over, so the caller's thread is left as it was.
   */
  private static final class Interrupter {
    private final Thread thread;
    private boolean running = true;
    private boolean interrupted;

    Interrupter(Thread thread) {
      this.thread = thread;
    }

    synchronized void interrupt() {
      if (running) {
        interrupted = true;
        thread.interrupt();
      }
    }

    /** On the method's thread, when it is over. */
    synchronized void finish() {
      running = false;
      if (interrupted) {
        Thread.interrupted();
      }
    }
  }
}

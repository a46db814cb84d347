package dev.redlock.junit5;

import dev.redlock.core.RedlockConfig;
import dev.redlock.coroutines.Redlock;
import dev.redlock.testing.RedisFleet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import kotlin.time.TimeSource;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionConfigurationException;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;
import org.junit.platform.commons.support.AnnotationSupport;

/**
 * A JUnit 5 extension that starts a {@link RedisFleet} before all tests of a class, resets it after
 * each test, and stops it after all tests, also when tests fail; it hands the fleet, a {@link
 * RedlockConfig} over it, and {@link Redlock} / {@code AsyncRedlock} instances to tests as
 * parameters, and closes the instances it handed out.
 *
 * <p>Two ways to use it. Declaratively, with {@link RedlockTest @RedlockTest} (or
 * {@code @ExtendWith(RedisFleetExtension.class)} for the defaults):
 *
 * <pre>{@code
 * @RedlockTest(masters = 3)
 * final class InventoryTest {
 *   @Test
 *   void reservesOnce(AsyncRedlock redlock, RedisFleet fleet) { ... }
 * }
 * }</pre>
 *
 * Or programmatically, from a static field, to configure everything:
 *
 * <pre>{@code
 * final class InventoryTest {
 *   @RegisterExtension
 *   static final RedisFleetExtension REDIS =
 *       RedisFleetExtension.builder()
 *           .masters(3)
 *           .redlockConfig(config -> config.leaseTime(Duration.ofSeconds(2)))
 *           .build();
 *
 *   @Test
 *   void reservesOnce(AsyncRedlock redlock) {
 *     REDIS.fleet().kill(0);
 *     ...
 *   }
 * }
 * }</pre>
 *
 * <h2>Lifecycle</h2>
 *
 * <ul>
 *   <li>Before all tests of the class: the fleet starts (see {@link RedisFleet} for how the backend
 *       is chosen). {@code @Nested} classes share the fleet of their enclosing class.
 *   <li>After each test: first every {@code Redlock} and {@code AsyncRedlock} handed out for that
 *       test is closed; then, unless turned off, the fleet is reset: killed masters are restarted,
 *       paused ones resumed, and every key is deleted.
 *   <li>After all tests: the instances handed out for the class are closed, then the fleet.
 * </ul>
 *
 * <h2>Parameters</h2>
 *
 * Constructors, test methods and lifecycle methods can declare {@link RedisFleet}, {@link
 * RedlockConfig}, {@link Redlock} and, when {@code redlock-java-facade} is on the class path,
 * {@code dev.redlock.java.AsyncRedlock}. Each {@code Redlock} or {@code AsyncRedlock} parameter is
 * a new instance with {@link #redlockConfig()}; one asked for by a constructor, a test or an
 * each-method belongs to that test, one asked for by a {@code @BeforeAll} method (or a
 * constructor under {@code @TestInstance(PER_CLASS)}) belongs to the class.
 *
 * <p>The facade is optional: this class refers to it only when an {@code AsyncRedlock} parameter
 * is resolved, so users of the Kotlin engine alone need not have it.
 *
 * <p>Thread-safety: test classes may run in parallel, each with its own fleet. A class whose tests
 * run concurrently shares one fleet between them, and its reset runs after each of them: turn
 * {@code resetAfterEach} off there.
 */
public final class RedisFleetExtension
    implements BeforeAllCallback, AfterEachCallback, AfterAllCallback, ParameterResolver {

  private static final ExtensionContext.Namespace NAMESPACE =
      ExtensionContext.Namespace.create(RedisFleetExtension.class);
  private static final String SCOPE_KEY = "fleet";
  private static final String TEST_HANDOUTS_KEY = "test-handouts";

  /** Null when registered declaratively: the settings then come from {@link RedlockTest}. */
  private final Builder settings;

  /** The scope of the class running now, for {@link #fleet()} and {@link #redlockConfig()}. */
  private volatile FleetScope current;

  /**
   * Creates the extension with the settings of the class's {@link RedlockTest} annotation, or the
   * defaults without one; for {@code @ExtendWith}. Use {@link #builder()} to configure it in code.
   */
  public RedisFleetExtension() {
    this.settings = null;
  }

  private RedisFleetExtension(Builder settings) {
    this.settings = settings.copy();
  }

  /**
   * A builder for an extension registered with {@code @RegisterExtension}.
   *
   * @return a builder with the defaults: one master, {@link RedisFleet.Backend#AUTO}, reset after
   *     each test, the library's default {@link RedlockConfig}
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The fleet of the test class running now.
   *
   * @return the fleet
   * @throws IllegalStateException outside the time between before-all and after-all of a class
   *     (for example when this extension is not registered on a static field)
   */
  public RedisFleet fleet() {
    return requireCurrent().fleet();
  }

  /**
   * The configuration handed-out Redlocks use: the fleet's masters, plus whatever {@link
   * Builder#redlockConfig(Consumer)} set.
   *
   * @return the configuration
   * @throws IllegalStateException as {@link #fleet()} does
   */
  public RedlockConfig redlockConfig() {
    return requireCurrent().config();
  }

  private FleetScope requireCurrent() {
    FleetScope scope = current;
    if (scope == null) {
      throw new IllegalStateException(
          "no Redis fleet is running: the extension starts one before all tests of a class and stops it"
              + " after them; register it with @RegisterExtension on a static field to use fleet() from tests");
    }
    return scope;
  }

  /**
   * Starts the fleet, unless an enclosing class's fleet is already running.
   *
   * @param context the class's context
   */
  @Override
  public void beforeAll(ExtensionContext context) {
    ExtensionContext.Store store = context.getStore(NAMESPACE);
    FleetScope inherited = store.get(SCOPE_KEY, FleetScope.class);
    if (inherited != null) {
      current = inherited;
      return;
    }
    Builder effective = settings != null ? settings : fromAnnotation(context);
    RedisFleet.Builder fleetBuilder =
        RedisFleet.builder().masters(effective.masters).backend(effective.backend);
    effective.fleetOptions.accept(fleetBuilder);
    FleetScope scope =
        new FleetScope(context.getUniqueId(), fleetBuilder.start(), effective.configOptions);
    // Stored so that JUnit closes it even if after-all callbacks are skipped.
    store.put(SCOPE_KEY, scope);
    current = scope;
  }

  /**
   * Closes what was handed out for the test, then resets the fleet unless that is turned off.
   *
   * @param context the test's context
   */
  @Override
  public void afterEach(ExtensionContext context) {
    RuntimeException failure = null;
    Handouts handouts = context.getStore(NAMESPACE).remove(TEST_HANDOUTS_KEY, Handouts.class);
    if (handouts != null) {
      try {
        handouts.close();
      } catch (RuntimeException e) {
        failure = e;
      }
    }
    FleetScope scope = context.getStore(NAMESPACE).get(SCOPE_KEY, FleetScope.class);
    if (scope != null && resetAfterEach(context)) {
      try {
        scope.reset();
      } catch (RuntimeException e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  /**
   * Closes what was handed out for the class and stops the fleet, if this class started it.
   *
   * @param context the class's context
   */
  @Override
  public void afterAll(ExtensionContext context) {
    ExtensionContext.Store store = context.getStore(NAMESPACE);
    FleetScope scope = store.get(SCOPE_KEY, FleetScope.class);
    if (scope == null || !scope.ownedBy(context.getUniqueId())) {
      return;
    }
    store.remove(SCOPE_KEY);
    if (current == scope) {
      current = null;
    }
    scope.close();
  }

  /**
   * Whether the parameter is one this extension provides.
   *
   * @param parameterContext the parameter
   * @param extensionContext the context it is resolved in
   * @return true for {@link RedisFleet}, {@link RedlockConfig}, {@link Redlock} and {@code
   *     AsyncRedlock}
   */
  @Override
  public boolean supportsParameter(
      ParameterContext parameterContext, ExtensionContext extensionContext) {
    Class<?> type = parameterContext.getParameter().getType();
    return type == RedisFleet.class
        || type == RedlockConfig.class
        || type == Redlock.class
        || type.getName().equals(AsyncRedlocks.CLASS_NAME);
  }

  /**
   * Provides the fleet, its configuration, or a new {@code Redlock} / {@code AsyncRedlock}.
   *
   * @param parameterContext the parameter
   * @param extensionContext the context it is resolved in
   * @return the value
   * @throws ParameterResolutionException if no fleet is running for the context
   */
  @Override
  public Object resolveParameter(
      ParameterContext parameterContext, ExtensionContext extensionContext) {
    FleetScope scope = extensionContext.getStore(NAMESPACE).get(SCOPE_KEY, FleetScope.class);
    if (scope == null) {
      throw new ParameterResolutionException(
          "no Redis fleet is running for "
              + extensionContext.getDisplayName()
              + ": the fleet starts before all tests of the class");
    }
    Class<?> type = parameterContext.getParameter().getType();
    if (type == RedisFleet.class) {
      return scope.fleet();
    }
    if (type == RedlockConfig.class) {
      return scope.config();
    }
    Handouts handouts = handoutsFor(extensionContext, scope);
    if (type == Redlock.class) {
      return handouts.add(new Redlock(scope.config(), TimeSource.Monotonic.INSTANCE));
    }
    return handouts.add(AsyncRedlocks.create(scope.config()));
  }

  /**
   * Constructor parameters are resolved in the test's context under the default per-method
   * lifecycle, so that their Redlocks are closed after that test.
   *
   * @param rootContext the root context
   * @return {@link ExtensionContextScope#TEST_METHOD}
   */
  @Override
  public ExtensionContextScope getTestInstantiationExtensionContextScope(
      ExtensionContext rootContext) {
    return ExtensionContextScope.TEST_METHOD;
  }

  private static Handouts handoutsFor(ExtensionContext context, FleetScope scope) {
    if (context.getTestMethod().isEmpty()) {
      return scope.classHandouts();
    }
    return context
        .getStore(NAMESPACE)
        .getOrComputeIfAbsent(TEST_HANDOUTS_KEY, key -> new Handouts(), Handouts.class);
  }

  private boolean resetAfterEach(ExtensionContext context) {
    if (settings != null) {
      return settings.resetAfterEach;
    }
    return findAnnotation(context).map(RedlockTest::resetAfterEach).orElse(true);
  }

  private static Optional<RedlockTest> findAnnotation(ExtensionContext context) {
    Optional<ExtensionContext> current = Optional.of(context);
    while (current.isPresent()) {
      Optional<Class<?>> testClass = current.get().getTestClass();
      if (testClass.isPresent()) {
        Optional<RedlockTest> found =
            AnnotationSupport.findAnnotation(testClass.get(), RedlockTest.class);
        if (found.isPresent()) {
          return found;
        }
      }
      current = current.get().getParent();
    }
    return Optional.empty();
  }

  private static Builder fromAnnotation(ExtensionContext context) {
    Builder builder = new Builder();
    Optional<RedlockTest> annotation = findAnnotation(context);
    if (annotation.isEmpty()) {
      return builder;
    }
    RedlockTest test = annotation.get();
    try {
      builder.masters(test.masters()).backend(test.backend()).resetAfterEach(test.resetAfterEach());
    } catch (IllegalArgumentException e) {
      throw new ExtensionConfigurationException("@RedlockTest: " + e.getMessage(), e);
    }
    String password = test.password();
    List<String> serverArgs = List.of(test.serverArgs());
    String image = test.image();
    builder.fleetOptions(
        fleet -> {
          if (!password.isEmpty()) {
            fleet.password(password);
          }
          fleet.serverArgs(serverArgs.toArray(new String[0])).image(image);
        });
    return builder;
  }

  /**
   * Configures a {@link RedisFleetExtension}; each setter returns this builder. Not thread-safe.
   */
  public static final class Builder {
    private int masters = 1;
    private RedisFleet.Backend backend = RedisFleet.Backend.AUTO;
    private boolean resetAfterEach = true;
    private Consumer<RedisFleet.Builder> fleetOptions = fleet -> {};
    private Consumer<RedlockConfig.Builder> configOptions = config -> {};

    private Builder() {}

    /**
     * The number of masters.
     *
     * @param count 1 to 15; default 1
     * @return this builder
     * @throws IllegalArgumentException if {@code count} is out of range
     */
    public Builder masters(int count) {
      RedisFleet.builder().masters(count); // validates, with the fleet's own message
      this.masters = count;
      return this;
    }

    /**
     * How the masters run.
     *
     * @param backend default {@link RedisFleet.Backend#AUTO}
     * @return this builder
     */
    public Builder backend(RedisFleet.Backend backend) {
      this.backend = Objects.requireNonNull(backend, "backend must not be null");
      return this;
    }

    /**
     * Whether to reset the fleet after each test: restart killed masters, resume paused ones,
     * delete every key.
     *
     * @param reset default {@code true}
     * @return this builder
     */
    public Builder resetAfterEach(boolean reset) {
      this.resetAfterEach = reset;
      return this;
    }

    /**
     * Further fleet settings (password, server arguments, image, command timeout, binary),
     * applied to the {@link RedisFleet.Builder} after {@link #masters} and {@link #backend}.
     *
     * @param options called once per test class, before the fleet starts; replaces options set
     *     before
     * @return this builder
     */
    public Builder fleetOptions(Consumer<RedisFleet.Builder> options) {
      this.fleetOptions = Objects.requireNonNull(options, "fleetOptions must not be null");
      return this;
    }

    /**
     * Settings of the {@link RedlockConfig} handed-out Redlocks use, applied to a builder whose
     * masters are already the fleet's.
     *
     * @param options called once per test class, after the fleet started; replaces options set
     *     before
     * @return this builder
     */
    public Builder redlockConfig(Consumer<RedlockConfig.Builder> options) {
      this.configOptions = Objects.requireNonNull(options, "redlockConfig must not be null");
      return this;
    }

    /**
     * Creates the extension; later changes to this builder do not affect it.
     *
     * @return the extension, for a static {@code @RegisterExtension} field
     */
    public RedisFleetExtension build() {
      return new RedisFleetExtension(this);
    }

    private Builder copy() {
      Builder copy = new Builder();
      copy.masters = masters;
      copy.backend = backend;
      copy.resetAfterEach = resetAfterEach;
      copy.fleetOptions = fleetOptions;
      copy.configOptions = configOptions;
      return copy;
    }
  }
}

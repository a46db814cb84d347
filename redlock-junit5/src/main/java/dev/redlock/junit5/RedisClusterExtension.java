package dev.redlock.junit5;

import dev.redlock.testing.RedisClusterFleet;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
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
 * A JUnit 5 extension that starts a local Redis Cluster ({@link RedisClusterFleet}) before all
 * tests of a class, resets it after each test, and stops it after all tests, also when tests fail;
 * it hands the cluster to tests as a parameter.
 *
 * <p>Declaratively, with {@link RedisClusterTest @RedisClusterTest}, or programmatically from a
 * static field:
 *
 * <pre>{@code
 * @RegisterExtension
 * static final RedisClusterExtension CLUSTER =
 *     RedisClusterExtension.builder()
 *         .shards(3)
 *         .clusterOptions(cluster -> cluster.nodeTimeout(Duration.ofSeconds(1)))
 *         .build();
 * }</pre>
 *
 * <p>Lifecycle: the cluster starts before all tests of the class ({@code @Nested} classes share
 * their enclosing class's); after each test, unless turned off, it is reset ({@link
 * RedisClusterFleet#reset()}); after all tests it is stopped. Roles are not put back by the reset:
 * a shard that a test failed over keeps its new primary, so tests should ask {@link
 * RedisClusterFleet#primary(int)} rather than assume one.
 *
 * <p>Thread-safety: test classes may run in parallel, each with its own cluster; a class whose
 * tests run concurrently must turn {@code resetAfterEach} off.
 */
public final class RedisClusterExtension
    implements BeforeAllCallback, AfterEachCallback, AfterAllCallback, ParameterResolver {

  private static final ExtensionContext.Namespace NAMESPACE =
      ExtensionContext.Namespace.create(RedisClusterExtension.class);
  private static final String SCOPE_KEY = "cluster";

  /** Null when registered declaratively: the settings then come from {@link RedisClusterTest}. */
  private final Builder settings;

  private volatile Scope current;

  /**
   * Creates the extension with the settings of the class's {@link RedisClusterTest} annotation, or
   * the defaults without one; for {@code @ExtendWith}. Use {@link #builder()} to configure it in
   * code.
   */
  public RedisClusterExtension() {
    this.settings = null;
  }

  private RedisClusterExtension(Builder settings) {
    this.settings = settings.copy();
  }

  /**
   * A builder for an extension registered with {@code @RegisterExtension}.
   *
   * @return a builder with the defaults: three shards of a primary and one replica, reset after
   *     each test
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The cluster of the test class running now.
   *
   * @return the cluster
   * @throws IllegalStateException outside the time between before-all and after-all of a class
   */
  public RedisClusterFleet cluster() {
    Scope scope = current;
    if (scope == null) {
      throw new IllegalStateException(
          "no Redis Cluster is running: the extension starts one before all tests of a class and"
              + " stops it after them; register it with @RegisterExtension on a static field to use"
              + " cluster() from tests");
    }
    return scope.cluster;
  }

  /**
   * Starts the cluster, unless an enclosing class's cluster is already running.
   *
   * @param context the class's context
   */
  @Override
  public void beforeAll(ExtensionContext context) {
    ExtensionContext.Store store = context.getStore(NAMESPACE);
    Scope inherited = store.get(SCOPE_KEY, Scope.class);
    if (inherited != null) {
      current = inherited;
      return;
    }
    Builder effective = settings != null ? settings : fromAnnotation(context);
    RedisClusterFleet.Builder builder =
        RedisClusterFleet.builder()
            .shards(effective.shards)
            .replicasPerShard(effective.replicasPerShard);
    effective.clusterOptions.accept(builder);
    Scope scope = new Scope(context.getUniqueId(), builder.start());
    // Stored so that JUnit closes it even if after-all callbacks are skipped.
    store.put(SCOPE_KEY, scope);
    current = scope;
  }

  /**
   * Resets the cluster after a test, unless that is turned off.
   *
   * @param context the test's context
   */
  @Override
  public void afterEach(ExtensionContext context) {
    Scope scope = context.getStore(NAMESPACE).get(SCOPE_KEY, Scope.class);
    if (scope != null && resetAfterEach(context)) {
      scope.cluster.reset();
    }
  }

  /**
   * Stops the cluster, if this class started it.
   *
   * @param context the class's context
   */
  @Override
  public void afterAll(ExtensionContext context) {
    ExtensionContext.Store store = context.getStore(NAMESPACE);
    Scope scope = store.get(SCOPE_KEY, Scope.class);
    if (scope == null || !scope.ownerId.equals(context.getUniqueId())) {
      return;
    }
    store.remove(SCOPE_KEY);
    if (current == scope) {
      current = null;
    }
    scope.close();
  }

  /**
   * Whether the parameter is a {@link RedisClusterFleet}.
   *
   * @param parameterContext the parameter
   * @param extensionContext the context it is resolved in
   * @return true for {@link RedisClusterFleet}
   */
  @Override
  public boolean supportsParameter(
      ParameterContext parameterContext, ExtensionContext extensionContext) {
    return parameterContext.getParameter().getType() == RedisClusterFleet.class;
  }

  /**
   * Provides the class's cluster.
   *
   * @param parameterContext the parameter
   * @param extensionContext the context it is resolved in
   * @return the cluster
   * @throws ParameterResolutionException if no cluster is running for the context
   */
  @Override
  public Object resolveParameter(
      ParameterContext parameterContext, ExtensionContext extensionContext) {
    Scope scope = extensionContext.getStore(NAMESPACE).get(SCOPE_KEY, Scope.class);
    if (scope == null) {
      throw new ParameterResolutionException(
          "no Redis Cluster is running for "
              + extensionContext.getDisplayName()
              + ": the cluster starts before all tests of the class");
    }
    return scope.cluster;
  }

  private boolean resetAfterEach(ExtensionContext context) {
    if (settings != null) {
      return settings.resetAfterEach;
    }
    return findAnnotation(context).map(RedisClusterTest::resetAfterEach).orElse(true);
  }

  private static Optional<RedisClusterTest> findAnnotation(ExtensionContext context) {
    Optional<ExtensionContext> at = Optional.of(context);
    while (at.isPresent()) {
      Optional<Class<?>> testClass = at.get().getTestClass();
      if (testClass.isPresent()) {
        Optional<RedisClusterTest> found =
            AnnotationSupport.findAnnotation(testClass.get(), RedisClusterTest.class);
        if (found.isPresent()) {
          return found;
        }
      }
      at = at.get().getParent();
    }
    return Optional.empty();
  }

  private static Builder fromAnnotation(ExtensionContext context) {
    Builder builder = new Builder();
    Optional<RedisClusterTest> annotation = findAnnotation(context);
    if (annotation.isEmpty()) {
      return builder;
    }
    RedisClusterTest test = annotation.get();
    try {
      return builder
          .shards(test.shards())
          .replicasPerShard(test.replicasPerShard())
          .resetAfterEach(test.resetAfterEach());
    } catch (IllegalArgumentException e) {
      throw new ExtensionConfigurationException("@RedisClusterTest: " + e.getMessage(), e);
    }
  }

  /** The cluster of one test class, closed by JUnit if after-all callbacks do not run. */
  private static final class Scope implements AutoCloseable {
    private final String ownerId;
    private final RedisClusterFleet cluster;

    Scope(String ownerId, RedisClusterFleet cluster) {
      this.ownerId = ownerId;
      this.cluster = cluster;
    }

    @Override
    public void close() {
      cluster.close();
    }
  }

  /**
   * Configures a {@link RedisClusterExtension}; each setter returns this builder. Not thread-safe.
   */
  public static final class Builder {
    private int shards = 3;
    private int replicasPerShard = 1;
    private boolean resetAfterEach = true;
    private Consumer<RedisClusterFleet.Builder> clusterOptions = cluster -> {};

    private Builder() {}

    /**
     * The number of shards.
     *
     * @param count 1 to 8; default 3
     * @return this builder
     * @throws IllegalArgumentException if {@code count} is out of range
     */
    public Builder shards(int count) {
      RedisClusterFleet.builder().shards(count); // validates, with the fleet's own message
      this.shards = count;
      return this;
    }

    /**
     * The number of replicas of each primary.
     *
     * @param count 0 to 3; default 1
     * @return this builder
     * @throws IllegalArgumentException if {@code count} is out of range
     */
    public Builder replicasPerShard(int count) {
      RedisClusterFleet.builder().replicasPerShard(count);
      this.replicasPerShard = count;
      return this;
    }

    /**
     * Whether to reset the cluster after each test ({@link RedisClusterFleet#reset()}).
     *
     * @param reset default {@code true}
     * @return this builder
     */
    public Builder resetAfterEach(boolean reset) {
      this.resetAfterEach = reset;
      return this;
    }

    /**
     * Further cluster settings (node timeout, server arguments, binary, timeouts), applied to the
     * {@link RedisClusterFleet.Builder} after {@link #shards} and {@link #replicasPerShard}.
     *
     * @param options called once per test class, before the cluster starts; replaces options set
     *     before
     * @return this builder
     */
    public Builder clusterOptions(Consumer<RedisClusterFleet.Builder> options) {
      this.clusterOptions = Objects.requireNonNull(options, "clusterOptions must not be null");
      return this;
    }

    /**
     * Creates the extension; later changes to this builder do not affect it.
     *
     * @return the extension, for a static {@code @RegisterExtension} field
     */
    public RedisClusterExtension build() {
      return new RedisClusterExtension(this);
    }

    private Builder copy() {
      Builder copy = new Builder();
      copy.shards = shards;
      copy.replicasPerShard = replicasPerShard;
      copy.resetAfterEach = resetAfterEach;
      copy.clusterOptions = clusterOptions;
      return copy;
    }
  }
}

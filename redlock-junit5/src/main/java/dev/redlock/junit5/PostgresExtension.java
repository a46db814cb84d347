package dev.redlock.junit5;

import dev.redlock.testing.PostgresServer;
import java.util.Objects;
import java.util.function.Consumer;
import javax.sql.DataSource;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * A JUnit 5 extension that starts a local PostgreSQL server ({@link PostgresServer}) before all
 * tests of a class and stops it after all tests, also when tests fail; it hands the server, or a
 * data source for it, to tests as parameters.
 *
 * <p>Declaratively, with {@link PostgresTest @PostgresTest}, or programmatically from a static
 * field:
 *
 * <pre>{@code
 * @RegisterExtension
 * static final PostgresExtension POSTGRES =
 *     PostgresExtension.builder()
 *         .serverOptions(server -> server.setting("max_connections", "300"))
 *         .build();
 * }</pre>
 *
 * <p>Lifecycle: the server starts before all tests of the class ({@code @Nested} classes share
 * their enclosing class's); after each test a server that the test killed is restarted and one it
 * paused is resumed (data and other sessions are left as they are: advisory locks end with the
 * sessions that hold them); after all tests it is stopped and its directory deleted.
 *
 * <p>Thread-safety: test classes may run in parallel, each with its own server.
 */
public final class PostgresExtension
    implements BeforeAllCallback, AfterEachCallback, AfterAllCallback, ParameterResolver {

  private static final ExtensionContext.Namespace NAMESPACE =
      ExtensionContext.Namespace.create(PostgresExtension.class);
  private static final String SCOPE_KEY = "postgres";

  private final Consumer<PostgresServer.Builder> serverOptions;

  private volatile Scope current;

  /**
   * Creates the extension with the default server settings; for {@code @ExtendWith} and {@link
   * PostgresTest}. Use {@link #builder()} to configure it in code.
   */
  public PostgresExtension() {
    this.serverOptions = server -> {};
  }

  private PostgresExtension(Builder settings) {
    this.serverOptions = settings.serverOptions;
  }

  /**
   * A builder for an extension registered with {@code @RegisterExtension}.
   *
   * @return a builder with the defaults of {@link PostgresServer#builder()}
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The server of the test class running now.
   *
   * @return the server
   * @throws IllegalStateException outside the time between before-all and after-all of a class
   */
  public PostgresServer server() {
    Scope scope = current;
    if (scope == null) {
      throw new IllegalStateException(
          "no PostgreSQL server is running: the extension starts one before all tests of a class"
              + " and stops it after them; register it with @RegisterExtension on a static field to"
              + " use server() from tests");
    }
    return scope.server;
  }

  /**
   * Starts the server, unless an enclosing class's server is already running.
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
    PostgresServer.Builder builder = PostgresServer.builder();
    serverOptions.accept(builder);
    Scope scope = new Scope(context.getUniqueId(), builder.start());
    // Stored so that JUnit closes it even if after-all callbacks are skipped.
    store.put(SCOPE_KEY, scope);
    current = scope;
  }

  /**
   * Brings the server back after a test that killed or paused it.
   *
   * @param context the test's context
   */
  @Override
  public void afterEach(ExtensionContext context) {
    Scope scope = context.getStore(NAMESPACE).get(SCOPE_KEY, Scope.class);
    if (scope == null) {
      return;
    }
    if (!scope.server.isRunning()) {
      scope.server.restart();
    } else if (scope.server.isPaused()) {
      scope.server.resume();
    }
  }

  /**
   * Stops the server, if this class started it.
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
   * Whether the parameter is a {@link PostgresServer} or a {@link DataSource}.
   *
   * @param parameterContext the parameter
   * @param extensionContext the context it is resolved in
   * @return true for those two types
   */
  @Override
  public boolean supportsParameter(
      ParameterContext parameterContext, ExtensionContext extensionContext) {
    Class<?> type = parameterContext.getParameter().getType();
    return type == PostgresServer.class || type == DataSource.class;
  }

  /**
   * Provides the class's server, or a new superuser data source for it.
   *
   * @param parameterContext the parameter
   * @param extensionContext the context it is resolved in
   * @return the server or a data source
   * @throws ParameterResolutionException if no server is running for the context
   */
  @Override
  public Object resolveParameter(
      ParameterContext parameterContext, ExtensionContext extensionContext) {
    Scope scope = extensionContext.getStore(NAMESPACE).get(SCOPE_KEY, Scope.class);
    if (scope == null) {
      throw new ParameterResolutionException(
          "no PostgreSQL server is running for "
              + extensionContext.getDisplayName()
              + ": the server starts before all tests of the class");
    }
    if (parameterContext.getParameter().getType() == DataSource.class) {
      return scope.server.dataSource();
    }
    return scope.server;
  }

  /** The server of one test class, closed by JUnit if after-all callbacks do not run. */
  private static final class Scope implements AutoCloseable {
    private final String ownerId;
    private final PostgresServer server;

    Scope(String ownerId, PostgresServer server) {
      this.ownerId = ownerId;
      this.server = server;
    }

    @Override
    public void close() {
      server.close();
    }
  }

  /** Configures a {@link PostgresExtension}; each setter returns this builder. Not thread-safe. */
  public static final class Builder {
    private Consumer<PostgresServer.Builder> serverOptions = server -> {};

    private Builder() {}

    /**
     * Server settings (binaries, {@code -c} settings, timeouts), applied to the {@link
     * PostgresServer.Builder} of each test class's server.
     *
     * @param options called once per test class, before the server starts; replaces options set
     *     before
     * @return this builder
     */
    public Builder serverOptions(Consumer<PostgresServer.Builder> options) {
      this.serverOptions = Objects.requireNonNull(options, "serverOptions must not be null");
      return this;
    }

    /**
     * Creates the extension; later changes to this builder do not affect it.
     *
     * @return the extension, for a static {@code @RegisterExtension} field
     */
    public PostgresExtension build() {
      return new PostgresExtension(this);
    }
  }
}

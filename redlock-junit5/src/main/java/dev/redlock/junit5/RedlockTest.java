package dev.redlock.junit5;

import dev.redlock.testing.RedisFleet;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Gives a JUnit 5 test class its own {@link RedisFleet}: started before the first test, stopped
 * after the last (also when tests fail), reset between tests.
 *
 * <pre>{@code
 * @RedlockTest(masters = 3)
 * final class InventoryTest {
 *   @Test
 *   void reservesOnce(AsyncRedlock redlock, RedisFleet fleet) { ... }
 * }
 * }</pre>
 *
 * <p>Test methods, lifecycle methods and constructors can declare parameters of these types:
 *
 * <ul>
 *   <li>{@link RedisFleet}: the class's fleet, to kill, pause, resume and restart masters.
 *   <li>{@code dev.redlock.core.RedlockConfig}: a configuration whose masters are the fleet's,
 *       everything else at its default.
 *   <li>{@code dev.redlock.coroutines.Redlock} and, when {@code redlock-java-facade} is on the
 *       class path, {@code dev.redlock.java.AsyncRedlock}: a new instance over the fleet for each
 *       parameter, closed by the extension after the test that asked for it (after all tests of
 *       the class when asked for by a {@code @BeforeAll} method or a per-class test instance).
 * </ul>
 *
 * <p>To configure the {@code RedlockConfig} (lease time, wait time, ...) or the fleet beyond what
 * these attributes offer, register the extension programmatically instead: see {@link
 * RedisFleetExtension#builder()}. Use one form or the other in a class, not both.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Inherited
@ExtendWith(RedisFleetExtension.class)
public @interface RedlockTest {
  /**
   * The number of masters, 1 to 15.
   *
   * @return the number of masters; default 1
   */
  int masters() default 1;

  /**
   * How the masters run.
   *
   * @return the backend; default {@link RedisFleet.Backend#AUTO}: local {@code redis-server}
   *     processes when a binary can be found, else Docker containers when Testcontainers finds a
   *     Docker engine
   */
  RedisFleet.Backend backend() default RedisFleet.Backend.AUTO;

  /**
   * Whether the fleet is reset after each test: killed masters are restarted, paused ones resumed,
   * and every key is deleted ({@link RedisFleet#flushAll()}).
   *
   * @return whether to reset; default {@code true}
   */
  boolean resetAfterEach() default true;

  /**
   * The password every master requires.
   *
   * @return the password, or {@code ""} (the default) for none
   */
  String password() default "";

  /**
   * Extra {@code redis-server} arguments for every master, as for {@link
   * RedisFleet.Builder#serverArgs(String...)}.
   *
   * @return the arguments; default none
   */
  String[] serverArgs() default {};

  /**
   * The Docker image of the masters when they run as containers; {@link
   * RedisFleet#LOCAL_BINARY_IMAGE} builds one on the Docker engine from a local binary, for
   * machines that cannot pull from a registry.
   *
   * @return the image; default {@link RedisFleet#DEFAULT_IMAGE}
   */
  String image() default RedisFleet.DEFAULT_IMAGE;
}

package dev.redlock.junit5;

import dev.redlock.testing.RedisClusterFleet;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Gives a JUnit 5 test class its own local Redis Cluster ({@link RedisClusterFleet}): started
 * before the first test, stopped after the last (also when tests fail), reset between tests.
 *
 * <pre>{@code
 * @RedisClusterTest(shards = 3)
 * final class CartClusterTest {
 *   @Test
 *   void survivesAFailover(RedisClusterFleet cluster) {
 *     cluster.failover(0);
 *     ...
 *   }
 * }
 * }</pre>
 *
 * <p>Test methods, lifecycle methods and constructors can declare a {@link RedisClusterFleet}
 * parameter. To set more than these attributes offer, register {@link RedisClusterExtension} from
 * a static field instead (see {@link RedisClusterExtension#builder()}).
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Inherited
@ExtendWith(RedisClusterExtension.class)
public @interface RedisClusterTest {
  /**
   * The number of shards, each a primary with its replicas.
   *
   * @return 1 to 8; default 3
   */
  int shards() default 3;

  /**
   * The number of replicas of each primary.
   *
   * @return 0 to 3; default 1
   */
  int replicasPerShard() default 1;

  /**
   * Whether the cluster is reset after each test ({@link RedisClusterFleet#reset()}): paused nodes
   * resumed, killed ones restarted, unfinished slot migrations ended, every key deleted.
   *
   * @return whether to reset; default {@code true}
   */
  boolean resetAfterEach() default true;
}

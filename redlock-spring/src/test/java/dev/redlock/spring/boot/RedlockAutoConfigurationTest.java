package dev.redlock.spring.boot;

import static dev.redlock.spring.SpringFleets.runner;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.core.RedlockClosedException;
import dev.redlock.core.RedlockConfig;
import dev.redlock.core.RedlockMetrics;
import dev.redlock.coroutines.Redlock;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.spring.SpringFleets;
import dev.redlock.testing.RedisFleet;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.boot.test.context.assertj.AssertableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The auto-configuration in real application contexts over real masters: properties, beans, lifecycle. */
final class RedlockAutoConfigurationTest {
  private static RedisFleet fleet;

  @BeforeAll
  static void startFleet() {
    fleet = RedisFleet.start(3);
  }

  @AfterAll
  static void stopFleet() {
    fleet.close();
  }

  @AfterEach
  void noKeysLeft() {
    SpringFleets.eventually("no keys left on the masters", () -> fleet.keyCount() == 0);
  }

  @Test
  void properties_setEverySettingOfTheConfig() {
    runner(fleet)
        .withPropertyValues(
            "redlock.lease-time=4s",
            "redlock.wait-time=3s",
            "redlock.retry-delay=7ms",
            "redlock.drift-factor=0.02",
            "redlock.drift-constant=3ms",
            "redlock.node-timeout=150ms",
            "redlock.key-prefix=app:",
            "redlock.fencing=true",
            "redlock.key-tracking=false",
            "redlock.restart-guard=1m",
            "redlock.max-hold-time=5m")
        .run(
            context -> {
              assertStarted(context);
              RedlockConfig config = context.getBean(RedlockConfig.class);
              assertEquals(fleet.uris(), config.masters());
              assertEquals(Duration.ofSeconds(4), config.leaseTime());
              assertEquals(Duration.ofSeconds(3), config.waitTime());
              assertEquals(Duration.ofMillis(7), config.retryDelay());
              assertEquals(0.02, config.driftFactor());
              assertEquals(Duration.ofMillis(3), config.driftConstant());
              assertEquals(Duration.ofMillis(150), config.nodeTimeout());
              assertEquals("app:", config.keyPrefix());
              assertTrue(config.fencing());
              assertFalse(config.keyTracking());
              assertEquals(Duration.ofMinutes(1), config.restartGuard());
              assertEquals(Duration.ofMinutes(5), config.maxHoldTime().orElseThrow());
              assertSame(config, context.getBean(AsyncRedlock.class).config());
              assertSame(config, context.getBean(Redlock.class).getConfig());
              // The key prefix reaches the masters.
              try (LockLease lease = context.getBean(AsyncRedlock.class).acquire("orders:1").get(20, TimeUnit.SECONDS)) {
                assertTrue(lease.fencingToken().isPresent());
                assertEquals(List.of("app:orders:1"), fleet.keys(0, "app:orders:1"));
              }
            });
    // The fencing counter has no expiry, by design.
    fleet.flushAll();
  }

  @Test
  void trustedCertificates_isAPathProperty() {
    // A file that holds no certificate: the library refuses it, and names the property.
    runner(fleet)
        .withPropertyValues("redlock.trusted-certificates=" + Path.of("pom.xml").toAbsolutePath())
        .run(
            context -> {
              InvalidConfigurationPropertyValueException failure = failure(context);
              assertEquals("redlock.trusted-certificates", failure.getName());
              assertTrue(failure.getReason().startsWith("trustedCertificates must be"), failure.getReason());
            });
  }

  @Test
  void defaults_areTheLibrarysDefaults() {
    runner(fleet)
        .withPropertyValues("redlock.lease-time=10s", "redlock.retry-delay=200ms")
        .run(
            context -> {
              assertStarted(context);
              RedlockConfig config = context.getBean(RedlockConfig.class);
              RedlockConfig library = RedlockConfig.builder().masters(fleet.uris()).build();
              assertEquals(library.toString(), config.toString());
              assertEquals(RedlockMetrics.NONE, config.metrics());
            });
    // The property class starts from the same values (they are also the metadata's defaults).
    RedlockProperties defaults = new RedlockProperties();
    assertEquals(RedlockConfig.DEFAULT_LEASE_TIME, defaults.getLeaseTime());
    assertEquals(RedlockConfig.DEFAULT_WAIT_TIME, defaults.getWaitTime());
    assertEquals(RedlockConfig.DEFAULT_RETRY_DELAY, defaults.getRetryDelay());
    assertEquals(RedlockConfig.DEFAULT_DRIFT_FACTOR, defaults.getDriftFactor());
    assertEquals(RedlockConfig.DEFAULT_DRIFT_CONSTANT, defaults.getDriftConstant());
    assertEquals(RedlockConfig.DEFAULT_KEY_PREFIX, defaults.getKeyPrefix());
  }

  @Test
  void metadata_describesAPropertyForEverySettingOfTheConfigBuilder() throws Exception {
    String json;
    try (var in = getClass().getClassLoader().getResourceAsStream("META-INF/spring-configuration-metadata.json")) {
      assertNotNull(in, "spring-configuration-metadata.json is in the jar");
      json = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
    List<java.util.Map<String, Object>> properties = com.jayway.jsonpath.JsonPath.read(json, "$.properties[*]");
    java.util.Map<String, java.util.Map<String, Object>> byName = new java.util.HashMap<>();
    properties.forEach(p -> byName.put((String) p.get("name"), p));
    // Every setting of the builder, except those that take objects no property can hold.
    java.util.Set<String> objects = java.util.Set.of("master", "masters", "sslOptions", "metrics", "build");
    for (java.lang.reflect.Method setting : RedlockConfig.Builder.class.getDeclaredMethods()) {
      if (!java.lang.reflect.Modifier.isPublic(setting.getModifiers()) || objects.contains(setting.getName())) {
        continue;
      }
      String property = "redlock." + setting.getName().replaceAll("([a-z])([A-Z])", "$1-$2").toLowerCase(java.util.Locale.ROOT);
      assertTrue(byName.containsKey(property), "no property " + property + " for RedlockConfig.Builder." + setting.getName());
      assertNotNull(byName.get(property).get("description"), property + " has a description");
    }
    assertTrue(byName.containsKey("redlock.masters"));
    assertEquals("10s", byName.get("redlock.lease-time").get("defaultValue"));
    assertEquals("200ms", byName.get("redlock.retry-delay").get("defaultValue"));
    assertEquals("redlock:", byName.get("redlock.key-prefix").get("defaultValue"));
    assertTrue(byName.containsKey("management.health.redlock.enabled"));
  }

  @Test
  void badValue_failsStartUpWithTheLibrarysMessageNamingTheProperty() {
    String expected =
        assertThrows(
                IllegalArgumentException.class,
                () -> RedlockConfig.builder().masters(fleet.uris()).leaseTime(Duration.ofMillis(5)).build())
            .getMessage();
    runner(fleet)
        .withPropertyValues("redlock.lease-time=5ms")
        .run(
            context -> {
              InvalidConfigurationPropertyValueException failure = failure(context);
              assertEquals("redlock.lease-time", failure.getName());
              assertEquals(Duration.ofMillis(5), failure.getValue());
              assertEquals(expected, failure.getReason());
              assertTrue(failure.getMessage().contains("redlock.lease-time"), failure.getMessage());
            });
    runner(fleet)
        .withPropertyValues("redlock.restart-guard=500ms")
        .run(context -> assertEquals("redlock.restart-guard", failure(context).getName()));
    runner(fleet)
        .withPropertyValues("redlock.replica-acks=17")
        .run(context -> assertEquals("redlock.replica-acks", failure(context).getName()));
    runner(fleet)
        .withPropertyValues("redlock.replica-ack-timeout=50ms")
        .run(context -> assertEquals("redlock.replica-ack-timeout", failure(context).getName()));
    runner(fleet)
        .withPropertyValues("redlock.replica-acks=1", "redlock.replica-ack-timeout=20ms")
        .run(
            context -> {
              assertStarted(context);
              RedlockConfig config = context.getBean(RedlockConfig.class);
              assertEquals(1, config.replicaAcks());
              assertEquals(Duration.ofMillis(20), config.replicaAckTimeout());
            });
    runner(fleet)
        .withPropertyValues("redlock.drift-factor=0.9")
        .run(context -> assertEquals("redlock.drift-factor", failure(context).getName()));
    runner(fleet)
        .withPropertyValues("redlock.key-prefix=" + "k".repeat(300))
        .run(context -> assertEquals("redlock.key-prefix", failure(context).getName()));
  }

  @Test
  void badMaster_isNamedByItsIndex_withoutItsPassword() {
    runner(fleet)
        .withPropertyValues("redlock.masters=" + fleet.uri(0) + ",redis://:s3cret@host:port")
        .run(
            context -> {
              InvalidConfigurationPropertyValueException failure = failure(context);
              assertEquals("redlock.masters[1]", failure.getName());
              assertTrue(failure.getReason().startsWith("masters[1] must"), failure.getReason());
              assertFalse(failure.getMessage().contains("s3cret"), failure.getMessage());
            });
  }

  @Test
  void noMasters_andNoSpringDataRedis_failsNamingRedlockMasters() {
    new org.springframework.boot.test.context.runner.ApplicationContextRunner()
        .withConfiguration(
            org.springframework.boot.autoconfigure.AutoConfigurations.of(RedlockAutoConfiguration.class))
        .run(
            context -> {
              InvalidConfigurationPropertyValueException failure = failure(context);
              assertEquals("redlock.masters", failure.getName());
              assertTrue(failure.getReason().startsWith("masters must list at least one"), failure.getReason());
            });
  }

  @Test
  void noRedlockMasters_usesTheSpringDataRedisServer() {
    new org.springframework.boot.test.context.runner.ApplicationContextRunner()
        .withConfiguration(
            org.springframework.boot.autoconfigure.AutoConfigurations.of(RedlockAutoConfiguration.class))
        .withPropertyValues("spring.data.redis.host=127.0.0.1", "spring.data.redis.port=" + fleet.port(1))
        .run(
            context -> {
              assertStarted(context);
              assertEquals(
                  List.of("redis://127.0.0.1:" + fleet.port(1)),
                  context.getBean(RedlockConfig.class).masters());
              try (LockLease lease = context.getBean(AsyncRedlock.class).acquire("fallback").get(20, TimeUnit.SECONDS)) {
                assertEquals(List.of("redlock:fallback"), fleet.keys(1, "redlock:*"));
                assertEquals(List.of(), fleet.keys(0, "redlock:*"));
              }
            });
    new org.springframework.boot.test.context.runner.ApplicationContextRunner()
        .withConfiguration(
            org.springframework.boot.autoconfigure.AutoConfigurations.of(RedlockAutoConfiguration.class))
        .withPropertyValues(
            "spring.data.redis.host=redis.internal",
            "spring.data.redis.username=app",
            "spring.data.redis.password=p@ss word",
            "spring.data.redis.database=2",
            "spring.data.redis.ssl.enabled=true")
        .run(
            context -> {
              assertStarted(context);
              assertEquals(
                  List.of("rediss://app:p%40ss%20word@redis.internal:6379/2"),
                  context.getBean(RedlockConfig.class).masters());
            });
    new org.springframework.boot.test.context.runner.ApplicationContextRunner()
        .withConfiguration(
            org.springframework.boot.autoconfigure.AutoConfigurations.of(RedlockAutoConfiguration.class))
        .withPropertyValues(
            "spring.data.redis.cluster.nodes=127.0.0.1:7000, 127.0.0.1:7001", "spring.data.redis.password=s3cret")
        .run(
            context ->
                assertEquals(
                    List.of("redis-cluster://:s3cret@127.0.0.1:7000,127.0.0.1:7001"),
                    context.getBean(RedlockConfig.class).masters()));
    // A malformed node list is reported on the property it came from.
    new org.springframework.boot.test.context.runner.ApplicationContextRunner()
        .withConfiguration(
            org.springframework.boot.autoconfigure.AutoConfigurations.of(RedlockAutoConfiguration.class))
        .withPropertyValues("spring.data.redis.cluster.nodes=127.0.0.1:7000,127.0.0.1:notaport")
        .run(context -> assertEquals("spring.data.redis.cluster.nodes", failure(context).getName()));
  }

  @Test
  void beans_areClosedWithTheContext() throws Exception {
    AsyncRedlock[] async = new AsyncRedlock[1];
    LockLease[] held = new LockLease[1];
    runner(fleet)
        .run(
            context -> {
              assertStarted(context);
              async[0] = context.getBean(AsyncRedlock.class);
              assertNotNull(context.getBean(Redlock.class));
              held[0] = async[0].acquire("held-at-close").get(20, TimeUnit.SECONDS);
              assertEquals(1, fleet.keys(0, "redlock:held-at-close").size());
            });
    // The runner closed the context: the lease was ended by close() and released on the masters.
    ExecutionException lost = assertThrows(ExecutionException.class, () -> held[0].lost().get(20, TimeUnit.SECONDS));
    assertEquals(LockLostException.Reason.CLOSED, assertInstanceOf(LockLostException.class, lost.getCause()).reason());
    ExecutionException closed = assertThrows(ExecutionException.class, () -> async[0].tryAcquire("x").get(20, TimeUnit.SECONDS));
    assertInstanceOf(RedlockClosedException.class, closed.getCause());
    assertEquals(0, fleet.keyCount());
  }

  @Test
  void applicationBeans_takePrecedence() {
    runner(fleet)
        .withUserConfiguration(OwnRedlock.class)
        .run(
            context -> {
              assertStarted(context);
              assertSame(OwnRedlock.created, context.getBean(AsyncRedlock.class));
            });
  }

  @Test
  void meterRegistry_getsTheMetrics_andCustomizersRunAfter() {
    runner(fleet)
        .withUserConfiguration(Registry.class)
        .run(
            context -> {
              assertStarted(context);
              RedlockConfig config = context.getBean(RedlockConfig.class);
              assertEquals(Duration.ofSeconds(2), config.waitTime()); // the customizer's
              context.getBean(AsyncRedlock.class).withLock("metered", lease -> java.util.concurrent.CompletableFuture.completedFuture(1)).get(20, TimeUnit.SECONDS);
              MeterRegistry registry = context.getBean(MeterRegistry.class);
              assertEquals(1, registry.find("redlock.acquire").tags("outcome", "acquired").timer().count());
            });
  }

  @Test
  void disabled_createsNothing() {
    runner(fleet)
        .withPropertyValues("redlock.enabled=false")
        .run(
            context -> {
              assertStarted(context);
              assertTrue(context.getBeansOfType(AsyncRedlock.class).isEmpty());
              assertTrue(context.getBeansOfType(RedlockConfig.class).isEmpty());
            });
  }

  private static void assertStarted(AssertableApplicationContext context) {
    if (context.getStartupFailure() != null) {
      throw new AssertionError("the context did not start", context.getStartupFailure());
    }
  }

  /** The start-up failure's root cause, which names a property. */
  private static InvalidConfigurationPropertyValueException failure(AssertableApplicationContext context) {
    Throwable failure = context.getStartupFailure();
    assertNotNull(failure, "the context started, but should have failed");
    Throwable root = failure;
    while (root.getCause() != null) {
      root = root.getCause();
    }
    if (root instanceof InvalidConfigurationPropertyValueException named) {
      return named;
    }
    throw new AssertionError("the root cause is not an InvalidConfigurationPropertyValueException", failure);
  }

  @Configuration(proxyBeanMethods = false)
  static class OwnRedlock {
    static AsyncRedlock created;

    @Bean(destroyMethod = "close")
    AsyncRedlock myRedlock(RedlockConfig config) {
      created = AsyncRedlock.create(config);
      return created;
    }
  }

  @Configuration(proxyBeanMethods = false)
  static class Registry {
    @Bean
    MeterRegistry meterRegistry() {
      return new SimpleMeterRegistry();
    }

    @Bean
    RedlockConfigCustomizer shorterWait() {
      return builder -> builder.waitTime(Duration.ofSeconds(2));
    }
  }
}

package dev.redlock.spring.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.RedlockConfig;
import dev.redlock.coroutines.Redlock;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.spring.Redlocked;
import dev.redlock.spring.RedlockedLease;
import dev.redlock.spring.SpringFleets;
import dev.redlock.spring.boot.RedlockHealthIndicator;
import dev.redlock.spring.integration.RedlockLockRegistry;
import dev.redlock.spring.shedlock.RedlockLockProvider;
import dev.redlock.testing.RedisFleet;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.context.ApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * A whole Spring Boot application, as a user has it: the auto-configuration found through Spring
 * Boot's own discovery, two properties, and everything there.
 */
@SpringBootTest(classes = BootApplicationTest.App.class)
@DirtiesContext(classMode = DirtiesContext.ClassMode.AFTER_CLASS)
final class BootApplicationTest {
  private static RedisFleet fleet;

  @DynamicPropertySource
  static void masters(DynamicPropertyRegistry registry) {
    fleet = RedisFleet.start(3);
    registry.add("redlock.masters", () -> String.join(",", fleet.uris()));
    registry.add("redlock.lease-time", () -> "5s");
  }

  @AfterAll
  static void stop() {
    fleet.close();
  }

  @Autowired ApplicationContext context;
  @Autowired Greeter greeter;

  @Test
  void theApplicationHasEveryPiece_fromTwoProperties() throws Exception {
    RedlockConfig config = context.getBean(RedlockConfig.class);
    assertEquals(fleet.uris(), config.masters());
    assertEquals(java.time.Duration.ofSeconds(5), config.leaseTime());
    assertNotNull(context.getBean(AsyncRedlock.class));
    assertNotNull(context.getBean(Redlock.class));
    assertNotNull(context.getBean(RedlockLockRegistry.class));
    assertNotNull(context.getBean(RedlockLockProvider.class));
    assertEquals(Status.UP, context.getBean(RedlockHealthIndicator.class).health().getStatus());

    assertEquals("hello, ada (held [greetings:ada])", greeter.greet("ada"));
    MeterRegistry registry = context.getBean(MeterRegistry.class);
    assertEquals(1, registry.find("redlock.acquire").tags("outcome", "acquired").timer().count());
    SpringFleets.eventually("released", () -> fleet.keyCount() == 0);
  }

  @SpringBootApplication
  static class App {
    @Bean
    MeterRegistry meterRegistry() {
      return new SimpleMeterRegistry();
    }

    @Bean
    Greeter greeter() {
      return new Greeter();
    }
  }

  static class Greeter {
    @Redlocked("greetings:#{#name}")
    public String greet(String name) {
      assertTrue(RedlockedLease.current().isValid());
      return "hello, " + name + " (held " + RedlockedLease.current().resources() + ")";
    }
  }
}

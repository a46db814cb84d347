package dev.redlock.spring.boot;

import static dev.redlock.spring.SpringFleets.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.spring.SpringFleets;
import dev.redlock.testing.RedisFleet;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.boot.health.contributor.Status;

/** The health indicator follows the masters: killed ones go down, restarted ones are guarded, and the status follows the quorum. */
final class RedlockHealthIndicatorTest {

  @Test
  void health_followsTheMasters_andTheQuorum() {
    try (RedisFleet fleet = RedisFleet.start(3)) {
      SpringFleets.runner(fleet)
          .withPropertyValues("redlock.restart-guard=1m")
          .run(
              context -> {
                HealthIndicator indicator = context.getBean("redlockHealthIndicator", HealthIndicator.class);
                Health health = indicator.health();
                assertEquals(Status.UP, health.getStatus());
                assertEquals(2, health.getDetails().get("quorum"));
                assertEquals(3, health.getDetails().get("counting"));
                assertEquals(3, masters(health).size());
                masters(health).values().forEach(m -> assertEquals("UP", m.get("state")));

                fleet.kill(0);
                health = indicator.health();
                assertEquals(Status.UP, health.getStatus(), "a majority still counts");
                assertEquals(2, health.getDetails().get("counting"));
                Map<String, Object> down = masters(health).get("127.0.0.1:" + fleet.port(0));
                assertEquals("DOWN", down.get("state"));
                assertTrue(down.containsKey("failure"), down.toString());

                fleet.kill(1);
                health = indicator.health();
                assertEquals(Status.DOWN, health.getStatus(), "no quorum");
                assertEquals(1, health.getDetails().get("counting"));

                // Back, but empty: the restart guard keeps their votes out.
                fleet.restart(0);
                fleet.restart(1);
                eventually(
                    "both restarted masters are seen, guarded",
                    () -> {
                      Map<String, Map<String, Object>> masters = masters(indicator.health());
                      return "RESTART_GUARDED".equals(masters.get("127.0.0.1:" + fleet.port(0)).get("state"))
                          && "RESTART_GUARDED".equals(masters.get("127.0.0.1:" + fleet.port(1)).get("state"));
                    });
                health = indicator.health();
                assertEquals(Status.DOWN, health.getStatus(), "guarded masters do not count");
                assertTrue(masters(health).get("127.0.0.1:" + fleet.port(0)).containsKey("guardedFor"));
              });
    }
  }

  @Test
  void health_canBeTurnedOff() {
    try (RedisFleet fleet = RedisFleet.start(1)) {
      SpringFleets.runner(fleet)
          .withPropertyValues("management.health.redlock.enabled=false")
          .run(context -> assertTrue(context.getBeansOfType(RedlockHealthIndicator.class).isEmpty()));
      SpringFleets.runner(fleet)
          .run(context -> assertEquals(1, context.getBeansOfType(RedlockHealthIndicator.class).size()));
    }
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Map<String, Object>> masters(Health health) {
    return (Map<String, Map<String, Object>>) health.getDetails().get("masters");
  }
}

package dev.redlock.junit5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.redlock.core.RedlockConfig;
import dev.redlock.coroutines.Redlock;
import dev.redlock.testing.RedisFleet;
import org.junit.jupiter.api.Test;

/**
 * A user of the Kotlin engine alone: runs in its own Surefire execution with redlock-java-facade
 * off the class path (see this module's pom), so a reference to the facade would fail here.
 */
@RedlockTest(masters = 3)
final class WithoutFacadeTest {

  @Test
  void theFacadeIsReallyAbsent() {
    assertThrows(ClassNotFoundException.class, () -> Class.forName("dev.redlock.java.AsyncRedlock"));
  }

  @Test
  void fleetConfigAndRedlock_areHandedOut(RedisFleet fleet, RedlockConfig config, Redlock redlock) {
    assertEquals(3, fleet.size());
    assertEquals(fleet.uris(), config.masters());
    assertSame(config, redlock.getConfig());
    fleet.kill(0);
  }

  @Test
  void theResetRunsToo(RedisFleet fleet) {
    assertEquals(true, fleet.isRunning(0));
  }
}

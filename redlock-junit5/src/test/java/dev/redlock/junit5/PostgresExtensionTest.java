package dev.redlock.junit5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import dev.redlock.testing.PostgresServer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.platform.testkit.engine.EngineExecutionResults;
import org.junit.platform.testkit.engine.EngineTestKit;

/** Runs the classes of {@link PostgresCases} and checks what the extension did around them. */
final class PostgresExtensionTest {

  @BeforeEach
  void clear() {
    PostgresCases.clear();
  }

  private static EngineExecutionResults run(Class<?> testClass) {
    return EngineTestKit.engine("junit-jupiter")
        .configurationParameter(HarnessOnly.PARAMETER, "true")
        .selectors(selectClass(testClass))
        .execute();
  }

  private static void assertStopped(PostgresServer server) {
    assertFalse(server.isRunning());
    assertThrows(IllegalStateException.class, () -> server.query("SELECT 1")); // closed
  }

  @Test
  void annotatedClass_getsOneServer_restartedAfterAKill_sharedWithNested_andStoppedAfterAll() {
    run(PostgresCases.KillCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(3).succeeded(3).failed(0));
    assertEquals(1, PostgresCases.servers.size());
    assertStopped(PostgresCases.servers.get(0));
  }

  @Test
  void aFailingTest_stillStopsTheServer() {
    run(PostgresCases.FailingCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(1).failed(1));
    assertStopped(PostgresCases.servers.get(0));
  }

  @Test
  void registeredExtension_appliesItsOptions_andHandsOutTheServerItStarted() {
    run(PostgresCases.RegisteredCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(1).succeeded(1));
    assertStopped(PostgresCases.servers.get(0));
  }
}

package dev.redlock.junit5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import dev.redlock.testing.RedisClusterFleet;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionConfigurationException;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.testkit.engine.EngineExecutionResults;
import org.junit.platform.testkit.engine.EngineTestKit;

/** Runs the classes of {@link ClusterCases} and checks what the cluster extension did around them. */
final class ClusterExtensionTest {

  @BeforeEach
  void clear() {
    ClusterCases.clear();
  }

  private static EngineExecutionResults run(Class<?> testClass) {
    return EngineTestKit.engine("junit-jupiter")
        .configurationParameter(HarnessOnly.PARAMETER, "true")
        .selectors(selectClass(testClass))
        .execute();
  }

  private static void assertStopped(RedisClusterFleet cluster) {
    for (int node = 0; node < cluster.size(); node++) {
      assertFalse(cluster.isRunning(node), "node " + node + " still running");
    }
    for (long pid : ClusterCases.pids) {
      assertFalse(
          ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "pid " + pid + " alive");
    }
    assertThrows(IllegalStateException.class, () -> cluster.command(0, "PING")); // closed
  }

  @Test
  void annotatedClass_getsAClusterResetBetweenTests_sharedWithNestedClasses_andStoppedAfterAll() {
    run(ClusterCases.ResetCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(3).succeeded(3).failed(0));
    assertEquals(1, ClusterCases.clusters.size());
    assertFalse(ClusterCases.pids.isEmpty());
    assertStopped(ClusterCases.clusters.get(0));
  }

  @Test
  void resetAfterEach_false_keepsTheKeysBetweenTests() {
    run(ClusterCases.NoResetCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(2).succeeded(2));
    assertStopped(ClusterCases.clusters.get(0));
  }

  @Test
  void aFailingTest_stillStopsTheCluster() {
    run(ClusterCases.FailingCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(1).failed(1));
    assertStopped(ClusterCases.clusters.get(0));
  }

  @Test
  void registeredExtension_appliesItsOptions_andHandsOutTheClusterItStarted() {
    run(ClusterCases.RegisteredCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(1).succeeded(1));
    assertStopped(ClusterCases.clusters.get(0));
  }

  @Test
  void badAnnotationValues_failTheClass_namingTheSetting() {
    Throwable failure =
        run(ClusterCases.BadAnnotationCase.class)
            .containerEvents()
            .failed()
            .stream()
            .findFirst()
            .orElseThrow()
            .getPayload(TestExecutionResult.class)
            .orElseThrow()
            .getThrowable()
            .orElseThrow();
    assertInstanceOf(ExtensionConfigurationException.class, failure);
    assertTrue(failure.getMessage().contains("shards"), failure.getMessage());
    assertTrue(ClusterCases.clusters.isEmpty());
  }
}

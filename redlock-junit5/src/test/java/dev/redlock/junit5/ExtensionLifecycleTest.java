package dev.redlock.junit5;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import dev.redlock.core.RedlockClosedException;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.testing.RedisFleet;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionConfigurationException;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.testkit.engine.EngineExecutionResults;
import org.junit.platform.testkit.engine.EngineTestKit;
import org.junit.platform.testkit.engine.Event;

/** Runs the classes of {@link LifecycleCases} and checks what the extension did around them. */
final class ExtensionLifecycleTest {

  @BeforeEach
  void clear() {
    LifecycleCases.clear();
  }

  private static EngineExecutionResults run(Class<?> testClass) {
    return EngineTestKit.engine("junit-jupiter")
        .configurationParameter(HarnessOnly.PARAMETER, "true")
        .selectors(selectClass(testClass))
        .execute();
  }

  private static void assertStopped(RedisFleet fleet) {
    for (int i = 0; i < fleet.size(); i++) {
      assertFalse(fleet.isRunning(i), "master " + i + " still running");
    }
    assertEquals(0, fleet.pids().size());
    for (long pid : LifecycleCases.pids) {
      assertFalse(
          ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "pid " + pid + " alive");
    }
    assertThrows(IllegalStateException.class, () -> fleet.command(0, "PING")); // closed
  }

  private static void assertClosed(AsyncRedlock redlock) {
    Throwable failure;
    try {
      redlock.tryAcquire("after:close").get(10, SECONDS);
      throw new AssertionError("an AsyncRedlock handed out by the extension is still open");
    } catch (ExecutionException e) {
      failure = e.getCause();
    } catch (Exception e) {
      failure = e;
    }
    assertInstanceOf(RedlockClosedException.class, failure);
  }

  private static Throwable failureOf(Event event) {
    return event.getPayload(TestExecutionResult.class).orElseThrow().getThrowable().orElseThrow();
  }

  @Test
  void resetAfterEach_restoresMastersDeletesKeysAndClosesWhatTheTestWasGiven() {
    run(LifecycleCases.ResetCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(2).succeeded(2).failed(0));
    assertEquals(1, LifecycleCases.fleets.size());
    assertStopped(LifecycleCases.fleets.get(0));
    assertEquals(2, LifecycleCases.asyncRedlocks.size()); // the class's and the first test's
    LifecycleCases.asyncRedlocks.forEach(ExtensionLifecycleTest::assertClosed);
  }

  @Test
  void resetAfterEach_false_keepsTheDataBetweenTests() {
    run(LifecycleCases.NoResetCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(2).succeeded(2));
    assertStopped(LifecycleCases.fleets.get(0));
  }

  @Test
  void aFailingTest_stillStopsTheFleetAndClosesItsInstances() {
    run(LifecycleCases.FailingCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(1).failed(1));
    assertStopped(LifecycleCases.fleets.get(0)); // its paused master too
    assertClosed(LifecycleCases.asyncRedlocks.get(0));
  }

  @Test
  void aFailingBeforeAll_stillStopsTheFleet() {
    EngineExecutionResults results = run(LifecycleCases.FailingBeforeAllCase.class);
    results.containerEvents().assertStatistics(stats -> stats.failed(1));
    assertEquals("setup fails on purpose", failureOf(results.containerEvents().failed().list().get(0)).getMessage());
    assertStopped(LifecycleCases.fleets.get(0));
  }

  @Test
  void badAnnotationSettings_failTheClassWithTheSettingAndItsRange() {
    EngineExecutionResults results = run(LifecycleCases.BadSettingsCase.class);
    Throwable failure = failureOf(results.containerEvents().failed().list().get(0));
    assertInstanceOf(ExtensionConfigurationException.class, failure);
    assertEquals("@RedlockTest: masters expected in 1..15, but was 0", failure.getMessage());
    results.testEvents().assertStatistics(stats -> stats.started(0));
  }

  @Test
  void nestedClasses_shareTheEnclosingClassesFleet() {
    run(LifecycleCases.OuterCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(2).succeeded(2));
    assertEquals(2, LifecycleCases.fleets.size());
    assertSame(LifecycleCases.fleets.get(0), LifecycleCases.fleets.get(1));
    assertStopped(LifecycleCases.fleets.get(0));
  }

  @Test
  void constructorParameters_belongToTheTest() {
    run(LifecycleCases.ConstructorCase.class)
        .testEvents()
        .assertStatistics(stats -> stats.started(2).succeeded(2));
    assertStopped(LifecycleCases.fleets.get(0));
  }

  @Test
  void accessors_outsideAClass_sayWhy() {
    IllegalStateException error =
        assertThrows(IllegalStateException.class, () -> new RedisFleetExtension().fleet());
    assertTrue(error.getMessage().contains("no Redis fleet is running"));
    assertThrows(IllegalStateException.class, () -> RedisFleetExtension.builder().build().redlockConfig());
  }

  @Test
  void builder_rejectsBadSettingsAtOnce() {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> RedisFleetExtension.builder().masters(16));
    assertEquals("masters expected in 1..15, but was 16", error.getMessage());
    assertThrows(NullPointerException.class, () -> RedisFleetExtension.builder().backend(null));
  }
}

package dev.redlock.java;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executor;
import org.junit.jupiter.api.Test;

/** Pure value tests: no masters needed. */
final class LockOptionsTest {

  private static String rejected(LockOptions.Builder builder) {
    return assertThrows(IllegalArgumentException.class, builder::build).getMessage();
  }

  @Test
  void of_usesTheDefaults() {
    LockOptions options = LockOptions.of("a");
    assertEquals(List.of("a"), options.resources());
    assertEquals(Optional.empty(), options.leaseTime());
    assertEquals(Optional.empty(), options.waitTime());
    assertTrue(options.autoRenew());
    assertEquals(Optional.empty(), options.executor());
  }

  @Test
  void builder_keepsEverySetting() {
    Executor direct = Runnable::run;
    LockOptions options =
        LockOptions.builder("a", "b")
            .leaseTime(Duration.ofSeconds(3))
            .waitTime(Duration.ZERO)
            .autoRenew(false)
            .executor(direct)
            .build();
    assertEquals(List.of("a", "b"), options.resources());
    assertEquals(Optional.of(Duration.ofSeconds(3)), options.leaseTime());
    assertEquals(Optional.of(Duration.ZERO), options.waitTime());
    assertFalse(options.autoRenew());
    assertSame(direct, options.executor().orElseThrow());
  }

  @Test
  void builder_copiesTheResourceList() {
    List<String> names = new ArrayList<>(List.of("a", "b"));
    LockOptions options = LockOptions.builder(names).build();
    names.add("c");
    assertEquals(List.of("a", "b"), options.resources());
    assertThrows(UnsupportedOperationException.class, () -> options.resources().add("d"));
  }

  @Test
  void build_rejectsBadResourcesNamingTheProblem() {
    assertEquals(
        "resources must name at least one resource, but none was given",
        rejected(LockOptions.builder(List.of())));
    assertEquals(
        "resource must be a non-empty string of at most 1024 characters, but was \"\"",
        rejected(LockOptions.builder("a", "")));
    assertEquals(
        "resource must be a non-empty string of at most 1024 characters, but was null",
        rejected(LockOptions.builder("a", (String) null)));
    assertEquals(
        "resource must be a non-empty string of at most 1024 characters, but was 1025 characters long",
        rejected(LockOptions.builder("x".repeat(1025))));
    assertEquals(
        "resources must be distinct, but 'a' was given 2 times",
        rejected(LockOptions.builder("a", "b", "a")));
    assertThrows(NullPointerException.class, () -> LockOptions.builder((List<String>) null));
  }

  @Test
  void build_rejectsLeaseTimesOutOfRange() {
    assertEquals(
        "leaseTime must be between 10ms and 1d, but was 9ms",
        rejected(LockOptions.builder("a").leaseTime(Duration.ofMillis(9))));
    assertEquals(
        "leaseTime must be between 10ms and 1d, but was 25h",
        rejected(LockOptions.builder("a").leaseTime(Duration.ofHours(25))));
    assertEquals(
        "leaseTime must be set to a duration between 10ms and 1d, but was null",
        rejected(LockOptions.builder("a").leaseTime(null)));
  }

  @Test
  void build_rejectsWaitTimesOutOfRange() {
    assertEquals(
        "waitTime must be between 0ms and 365d, but was -1ms",
        rejected(LockOptions.builder("a").waitTime(Duration.ofMillis(-1))));
    assertEquals(
        "waitTime must be set to a duration between 0ms and 365d, but was null",
        rejected(LockOptions.builder("a").waitTime(null)));
  }

  @Test
  void executor_rejectsNull() {
    NullPointerException e =
        assertThrows(NullPointerException.class, () -> LockOptions.builder("a").executor(null));
    assertEquals("executor must be an Executor, but was null", e.getMessage());
  }

  @Test
  void toBuilder_derivesOptionsWithOtherResources() {
    LockOptions template =
        LockOptions.builder("a").leaseTime(Duration.ofSeconds(1)).autoRenew(false).build();
    LockOptions derived = template.toBuilder().resources(List.of("b")).build();
    assertEquals(List.of("b"), derived.resources());
    assertEquals(template.leaseTime(), derived.leaseTime());
    assertFalse(derived.autoRenew());
    assertEquals(template, template.toBuilder().build());
  }

  @Test
  void equals_comparesEverySetting() {
    LockOptions one = LockOptions.builder("a").leaseTime(Duration.ofSeconds(1)).build();
    LockOptions same = LockOptions.builder("a").leaseTime(Duration.ofSeconds(1)).build();
    assertEquals(one, same);
    assertEquals(one.hashCode(), same.hashCode());
    assertNotEquals(one, LockOptions.builder("a").build());
    assertNotEquals(one, LockOptions.builder("a").leaseTime(Duration.ofSeconds(1)).autoRenew(false).build());
  }

  @Test
  void toString_showsDefaultsAsDefault() {
    assertEquals(
        "LockOptions{resources=[a], leaseTime=1500ms, waitTime=default, autoRenew=true, fencing=default, writerPriority=true, executor=default}",
        LockOptions.builder("a").leaseTime(Duration.ofMillis(1500)).build().toString());
  }
}

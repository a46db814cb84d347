package dev.redlock.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

final class LockNotAcquiredExceptionTest {
  private static MasterFailureException failure(String master, MasterFailureException.Kind kind) {
    return new MasterFailureException(master, kind, kind.name().toLowerCase(), null);
  }

  @Test
  void constructor_firstFailureIsCause_othersSuppressed() {
    MasterFailureException a = failure("h:1", MasterFailureException.Kind.TIMEOUT);
    MasterFailureException b = failure("h:2", MasterFailureException.Kind.UNREACHABLE);
    MasterFailureException c = failure("h:3", MasterFailureException.Kind.AUTHENTICATION);
    LockNotAcquiredException e =
        new LockNotAcquiredException("not acquired", List.of("r"), false, null, List.of(a, b, c));
    assertSame(a, e.getCause());
    assertArrayEquals(new Throwable[] {b, c}, e.getSuppressed());
    assertEquals(List.of(a, b, c), e.masterFailures());
    assertFalse(e.isContended());
    assertEquals(Optional.empty(), e.holderRemaining());
    assertEquals("not acquired", e.getMessage());
    assertTrue(e instanceof RedlockException);
  }

  @Test
  void constructor_noFailures_noCause() {
    LockNotAcquiredException e =
        new LockNotAcquiredException("busy", List.of("a", "b"), true, Duration.ofMillis(1234), List.of());
    assertNull(e.getCause());
    assertEquals(0, e.getSuppressed().length);
    assertTrue(e.isContended());
    assertEquals(Optional.of(Duration.ofMillis(1234)), e.holderRemaining());
    assertEquals(List.of("a", "b"), e.resources());
    assertTrue(e.masterFailures().isEmpty());
  }

  @Test
  void constructor_contendedWithoutExpiry_hasNoHolderRemaining() {
    LockNotAcquiredException e =
        new LockNotAcquiredException("busy", List.of("a"), true, null, List.of());
    assertTrue(e.isContended());
    assertTrue(e.holderRemaining().isEmpty());
  }

  @Test
  void constructor_copiesTheLists() {
    List<String> resources = new ArrayList<>(List.of("a"));
    List<MasterFailureException> failures =
        new ArrayList<>(List.of(failure("h:1", MasterFailureException.Kind.ERROR)));
    LockNotAcquiredException e =
        new LockNotAcquiredException("x", resources, false, null, failures);
    resources.add("b");
    failures.clear();
    assertEquals(List.of("a"), e.resources());
    assertEquals(1, e.masterFailures().size());
    assertThrows(UnsupportedOperationException.class, () -> e.resources().add("c"));
    assertThrows(UnsupportedOperationException.class, () -> e.masterFailures().clear());
  }
}

package dev.redlock.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.List;
import org.junit.jupiter.api.Test;

final class LockNotExtendedExceptionTest {
  @Test
  void constructor_firstFailureIsCause_othersSuppressed() {
    MasterFailureException a =
        new MasterFailureException("h:1", MasterFailureException.Kind.TIMEOUT, "slow", null);
    MasterFailureException b =
        new MasterFailureException("h:2", MasterFailureException.Kind.ERROR, "odd", null);
    LockNotExtendedException e = new LockNotExtendedException("not extended", List.of("r"), List.of(a, b));
    assertSame(a, e.getCause());
    assertArrayEquals(new Throwable[] {b}, e.getSuppressed());
    assertEquals(List.of("r"), e.resources());
    assertEquals(List.of(a, b), e.masterFailures());
  }

  @Test
  void constructor_noFailures_noCause() {
    LockNotExtendedException e = new LockNotExtendedException("x", List.of("r"), List.of());
    assertNull(e.getCause());
    assertEquals(0, e.getSuppressed().length);
  }
}

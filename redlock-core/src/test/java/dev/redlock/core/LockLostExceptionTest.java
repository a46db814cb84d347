package dev.redlock.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.List;
import java.util.concurrent.CancellationException;
import org.junit.jupiter.api.Test;

final class LockLostExceptionTest {
  @Test
  void constructor_keepsReasonResourcesAndCause() {
    MasterFailureException cause =
        new MasterFailureException("h:1", MasterFailureException.Kind.TIMEOUT, "slow", null);
    LockLostException e =
        new LockLostException("lost r", List.of("r"), LockLostException.Reason.EXPIRED, cause);
    assertSame(cause, e.getCause());
    assertEquals(LockLostException.Reason.EXPIRED, e.reason());
    assertEquals(List.of("r"), e.resources());
    assertEquals("lost r", e.getMessage());
  }

  @Test
  void type_isNotACancellation() {
    LockLostException e =
        new LockLostException("lost", List.of("r"), LockLostException.Reason.NOT_HELD, null);
    assertFalse(((Object) e) instanceof CancellationException);
    assertNull(e.getCause());
  }
}

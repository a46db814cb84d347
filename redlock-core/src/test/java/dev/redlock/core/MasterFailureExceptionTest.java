package dev.redlock.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.MasterFailureException.Kind;
import java.io.IOException;
import org.junit.jupiter.api.Test;

final class MasterFailureExceptionTest {
  @Test
  void constructor_messageNamesTheMaster() {
    IOException cause = new IOException("refused");
    MasterFailureException e = new MasterFailureException("10.0.0.1:6379", Kind.UNREACHABLE, "unreachable", cause);
    assertEquals("10.0.0.1:6379: unreachable", e.getMessage());
    assertEquals("10.0.0.1:6379", e.master());
    assertEquals(Kind.UNREACHABLE, e.kind());
    assertSame(cause, e.getCause());
  }

  @Test
  void constructor_nullMasterOrKind() {
    assertThrows(NullPointerException.class, () -> new MasterFailureException(null, Kind.ERROR, "x", null));
    assertThrows(NullPointerException.class, () -> new MasterFailureException("h:1", null, "x", null));
  }

  @Test
  void isPermanent_onlyConfigurationAndForeignKeyFailures() {
    assertTrue(Kind.AUTHENTICATION.isPermanent());
    assertTrue(Kind.WRONG_TYPE.isPermanent());
    assertTrue(Kind.PERMISSION.isPermanent());
    assertTrue(Kind.TLS.isPermanent());
    assertFalse(Kind.TIMEOUT.isPermanent());
    assertFalse(Kind.UNREACHABLE.isPermanent());
    assertFalse(Kind.ERROR.isPermanent());
  }
}

package dev.redlock.core.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The quorum and validity arithmetic: pure functions, checked by value and by property. */
final class LockMathTest {
  private static final long MS = 1_000_000L;

  @Test
  void quorum_oneToNine() {
    int[] expected = {1, 2, 2, 3, 3, 4, 4, 5, 5};
    for (int n = 1; n <= 9; n++) {
      assertEquals(expected[n - 1], LockMath.quorum(n), "quorum(" + n + ")");
    }
  }

  @Test
  void quorum_belowOne() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LockMath.quorum(0));
    assertEquals("masters must be at least 1, but was 0", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> LockMath.quorum(-3));
  }

  /** Any two quorums share a master, so two holders can never both have one: 2q > n. */
  @Test
  void quorum_anyTwoQuorumsOverlap() {
    for (int n = 1; n <= 15; n++) {
      int q = LockMath.quorum(n);
      assertTrue(2 * q > n, "two quorums of " + q + " out of " + n + " could be disjoint");
      assertTrue(q <= n, "quorum " + q + " larger than " + n + " masters");
      // The smallest such majority: one fewer would allow two disjoint "quorums".
      assertTrue(2 * (q - 1) <= n, "quorum " + q + " of " + n + " is larger than needed");
    }
  }

  /** The tolerated failures: a quorum survives n - q failed masters, and not one more. */
  @Test
  void quorumImpossible_property() {
    for (int n = 1; n <= 15; n++) {
      int q = LockMath.quorum(n);
      for (int no = 0; no <= n; no++) {
        assertEquals(no > n - q, LockMath.quorumImpossible(n, q, no), "n=" + n + " no=" + no);
      }
    }
  }

  @Test
  void quorumImpossible_threeMasters() {
    assertFalse(LockMath.quorumImpossible(3, 2, 0));
    assertFalse(LockMath.quorumImpossible(3, 2, 1));
    assertTrue(LockMath.quorumImpossible(3, 2, 2));
    assertTrue(LockMath.quorumImpossible(3, 2, 3));
  }

  @Test
  void quorumImpossible_singleMaster() {
    assertFalse(LockMath.quorumImpossible(1, 1, 0));
    assertTrue(LockMath.quorumImpossible(1, 1, 1));
  }

  @Test
  void driftNanos_isFactorTimesLeasePlusConstant() {
    assertEquals(102 * MS, LockMath.driftNanos(10_000 * MS, 0.01, 2 * MS));
    assertEquals(2 * MS, LockMath.driftNanos(10_000 * MS, 0.0, 2 * MS));
    assertEquals(5_000 * MS, LockMath.driftNanos(10_000 * MS, 0.5, 0));
  }

  /** Agrees with the config's drift, so the engine and the configuration never disagree. */
  @Test
  void driftNanos_matchesConfigDriftFor() {
    dev.redlock.core.RedlockConfig config =
        dev.redlock.core.RedlockConfig.builder()
            .master("redis://127.0.0.1:1")
            .driftFactor(0.03)
            .driftConstant(Duration.ofMillis(7))
            .build();
    for (long leaseMs : new long[] {10, 333, 10_000, 86_400_000}) {
      Duration lease = Duration.ofMillis(leaseMs);
      assertEquals(
          ConfigInternals.driftFor(config, lease).toNanos(),
          LockMath.driftNanos(lease.toNanos(), 0.03, 7 * MS),
          "lease " + leaseMs + " ms");
    }
  }
}

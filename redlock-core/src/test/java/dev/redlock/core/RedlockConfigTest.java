package dev.redlock.core;

import dev.redlock.core.internal.ConfigInternals;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Validation and derived values of {@link RedlockConfig}. Building a configuration never talks to
 * a master, so no fleet is needed here; the masters' behaviour is covered by {@code RedisNodeTest}.
 */
final class RedlockConfigTest {
  private static final String M1 = "redis://127.0.0.1:7001";
  private static final String M2 = "redis://127.0.0.1:7002";
  private static final String M3 = "redis://127.0.0.1:7003";

  private static RedlockConfig.Builder valid() {
    return RedlockConfig.builder().master(M1);
  }

  /** Builds and expects the failure; checks that the message names the setting, range and value. */
  private static String rejected(RedlockConfig.Builder builder, String... fragments) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, builder::build);
    String message = e.getMessage();
    for (String fragment : fragments) {
      assertTrue(message.contains(fragment), () -> "expected '" + fragment + "' in: " + message);
    }
    return message;
  }

  /** The secret is neither in the exception's message nor in any cause's (a logged trace prints both). */
  private static void assertNowhereIn(Throwable e, String secret) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String m = String.valueOf(t.getMessage());
      if (m.contains(secret)) {
        throw new AssertionError(t.getClass().getName() + " leaks the password: " + m);
      }
    }
  }

  @Test
  void build_defaults() {
    RedlockConfig config = RedlockConfig.builder().master(M1).build();
    assertAll(
        () -> assertEquals(List.of(M1), config.masters()),
        () -> assertEquals(Duration.ofSeconds(10), config.leaseTime()),
        () -> assertEquals(RedlockConfig.DEFAULT_LEASE_TIME, config.leaseTime()),
        () -> assertEquals(Duration.ofSeconds(10), config.waitTime()),
        () -> assertEquals(Duration.ofMillis(200), config.retryDelay()),
        () -> assertEquals(0.01, config.driftFactor()),
        () -> assertEquals(Duration.ofMillis(2), config.driftConstant()),
        () -> assertEquals("redlock:", config.keyPrefix()),
        () -> assertFalse(ConfigInternals.hasExplicitNodeTimeout(config)),
        // 5 % of the 10 s default lease.
        () -> assertEquals(Duration.ofMillis(500), config.nodeTimeout()));
  }

  @Test
  void build_keepsEverySetting() {
    RedlockConfig config =
        RedlockConfig.builder()
            .masters(List.of(M1, M2, M3))
            .leaseTime(Duration.ofSeconds(30))
            .waitTime(Duration.ZERO)
            .retryDelay(Duration.ofMillis(50))
            .driftFactor(0.02)
            .driftConstant(Duration.ofMillis(5))
            .nodeTimeout(Duration.ofMillis(300))
            .keyPrefix("app:locks:")
            .build();
    assertAll(
        () -> assertEquals(List.of(M1, M2, M3), config.masters()),
        () -> assertEquals(Duration.ofSeconds(30), config.leaseTime()),
        () -> assertEquals(Duration.ZERO, config.waitTime()),
        () -> assertEquals(Duration.ofMillis(50), config.retryDelay()),
        () -> assertEquals(0.02, config.driftFactor()),
        () -> assertEquals(Duration.ofMillis(5), config.driftConstant()),
        () -> assertTrue(ConfigInternals.hasExplicitNodeTimeout(config)),
        () -> assertEquals(Duration.ofMillis(300), config.nodeTimeout()),
        () -> assertEquals("app:locks:", config.keyPrefix()));
  }

  @Test
  void replicaAcks_offByDefault_onWithHalfTheNodeTimeout_orAnExplicitBound() {
    RedlockConfig off = valid().build();
    assertEquals(0, off.replicaAcks());
    assertFalse(off.toString().contains("replicaAcks"), off.toString());
    RedlockConfig on = valid().leaseTime(Duration.ofSeconds(10)).replicaAcks(2).build();
    assertEquals(2, on.replicaAcks());
    assertEquals(Duration.ofMillis(250), on.replicaAckTimeout());
    assertTrue(on.toString().contains("replicaAcks=2, replicaAckTimeout=250ms"), on.toString());
    assertEquals(
        Duration.ofMillis(40),
        valid().replicaAcks(1).replicaAckTimeout(Duration.ofMillis(40)).build().replicaAckTimeout());
  }

  @Test
  void replicaAcks_outOfRange_orATimeoutThatDoesNotFitTheNodeTimeout() {
    rejected(valid().replicaAcks(-1), "replicaAcks", "between 0 (off) and 16", "but was -1");
    rejected(valid().replicaAcks(17), "replicaAcks", "but was 17");
    rejected(
        valid().replicaAckTimeout(Duration.ofMillis(50)),
        "replicaAckTimeout", "50ms", "replicaAcks is 0 (off)");
    rejected(
        valid().replicaAcks(1).nodeTimeout(Duration.ofMillis(200)).replicaAckTimeout(Duration.ofMillis(200)),
        "replicaAckTimeout", "less than nodeTimeout (200ms)", "but was 200ms");
    rejected(
        valid().replicaAcks(1).replicaAckTimeout(Duration.ZERO),
        "replicaAckTimeout", "at least 1ms", "but was 0");
  }

  @Test
  void masters_replacesEarlierMasters_andMasterAdds() {
    RedlockConfig config =
        RedlockConfig.builder().master(M1).masters(List.of(M2)).master(M3).build();
    assertEquals(List.of(M2, M3), config.masters());
  }

  @Test
  void masters_isACopyThatCannotBeChanged() {
    List<String> given = new ArrayList<>(List.of(M1, M2));
    RedlockConfig config = RedlockConfig.builder().masters(given).build();
    given.add(M3);
    assertEquals(List.of(M1, M2), config.masters());
    assertThrows(UnsupportedOperationException.class, () -> config.masters().add(M3));
  }

  @Test
  void build_noMasters() {
    rejected(RedlockConfig.builder(), "masters", "at least one", "but was empty");
    rejected(RedlockConfig.builder().masters(List.of()), "masters", "but was empty");
  }

  @Test
  void build_malformedUri_namesIndexAndValue() {
    String message =
        rejected(
            RedlockConfig.builder().master(M1).master("not a uri"),
            "masters[1]",
            "redis://host:6379",
            "but was 'not a uri'");
    assertFalse(message.contains("masters[0]"), message);
  }

  @Test
  void build_unsupportedScheme() {
    rejected(valid().master("http://127.0.0.1:7002"), "masters[1]", "'http://127.0.0.1:7002'");
  }

  @Test
  void build_blankOrNullUri() {
    rejected(RedlockConfig.builder().master(" "), "masters[0]", "but was ' '");
    rejected(RedlockConfig.builder().masters(Arrays.asList(M1, null)), "masters[1]", "but was 'null'");
  }

  @Test
  void build_malformedUriWithPassword_redactsThePasswordEverywhere() {
    String secret = "s3cr3t-pw";
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> valid().master("redis://:" + secret + "@[bad-host").build());
    assertTrue(e.getMessage().contains("masters[1]"), e.getMessage());
    assertTrue(e.getMessage().contains("redis://***@[bad-host"), e.getMessage());
    assertNowhereIn(e, secret);
  }

  @Test
  void build_malformedPortWithUserAndPassword_redactsThePassword() {
    String secret = "other-secret";
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> RedlockConfig.builder().master("redis://alice:" + secret + "@host:99999").build());
    assertTrue(e.getMessage().contains("masters[0]"), e.getMessage());
    assertTrue(e.getMessage().contains("***@host:99999"), e.getMessage());
    // Lettuce's reason is kept, as long as it does not quote the password.
    assertTrue(e.getMessage().contains("Port out of range"), e.getMessage());
    assertNowhereIn(e, secret);
  }

  @Test
  void build_duplicateMasters_hostCaseDiffers() {
    rejected(
        RedlockConfig.builder().master("redis://localhost:1").master("redis://LOCALHOST:1"),
        "masters must be distinct",
        "masters[0]",
        "masters[1]",
        "localhost:1");
  }

  @Test
  void build_duplicateMasters_defaultPortWrittenOut() {
    rejected(
        RedlockConfig.builder().master(M1).master("redis://localhost").master("redis://localhost:6379"),
        "masters[1]",
        "masters[2]",
        "localhost:6379");
  }

  @Test
  void build_duplicateMasters_differentDatabaseOrPassword_isStillOneServer() {
    rejected(
        RedlockConfig.builder().master("redis://h:1/0").master("redis://:pw@h:1/1"),
        "masters[0]",
        "masters[1]",
        "h:1");
  }

  @Test
  void build_sameHostDifferentPorts_isAccepted() {
    RedlockConfig config =
        RedlockConfig.builder().masters(List.of("redis://h:1", "redis://h:2", "redis://H:3")).build();
    assertEquals(3, config.masters().size());
  }

  @Test
  void build_leaseTimeBelowTenMillis() {
    rejected(valid().leaseTime(Duration.ofMillis(9)), "leaseTime", "between 10ms and 1d", "but was 9ms");
  }

  @Test
  void build_leaseTimeAboveOneDay() {
    rejected(
        valid().leaseTime(Duration.ofDays(1).plusSeconds(1)),
        "leaseTime",
        "between 10ms and 1d",
        "but was 86401s");
  }

  @Test
  void build_leaseTimeNull() {
    rejected(valid().leaseTime(null), "leaseTime", "10ms and 1d", "but was null");
  }

  @Test
  void build_leaseTimeBounds_areAccepted() {
    assertEquals(Duration.ofMillis(10), valid().leaseTime(Duration.ofMillis(10)).build().leaseTime());
    assertEquals(Duration.ofDays(1), valid().leaseTime(Duration.ofDays(1)).build().leaseTime());
  }

  @Test
  void build_waitTimeNegative() {
    rejected(valid().waitTime(Duration.ofMillis(-1)), "waitTime", "between 0ms and 365d", "but was -1ms");
  }

  @Test
  void build_waitTimeNull() {
    rejected(valid().waitTime(null), "waitTime", "but was null");
  }

  @Test
  void build_retryDelayZero() {
    rejected(valid().retryDelay(Duration.ZERO), "retryDelay", "between 1ms and 1m", "but was 0ms");
  }

  @Test
  void build_retryDelayAboveOneMinute() {
    rejected(
        valid().retryDelay(Duration.ofMinutes(1).plusMillis(1)),
        "retryDelay",
        "between 1ms and 1m",
        "but was 60001ms");
  }

  @Test
  void build_driftFactorNegative() {
    rejected(valid().driftFactor(-0.01), "driftFactor", "between 0 and 0.5", "but was -0.01");
  }

  @Test
  void build_driftFactorAboveHalf() {
    rejected(valid().driftFactor(0.51), "driftFactor", "between 0 and 0.5", "but was 0.51");
  }

  @Test
  void build_driftFactorNaN() {
    rejected(valid().driftFactor(Double.NaN), "driftFactor", "between 0 and 0.5", "but was NaN");
  }

  @Test
  void build_driftFactorBounds_areAccepted() {
    assertEquals(0.0, valid().driftFactor(0.0).build().driftFactor());
    assertEquals(0.5, valid().driftFactor(0.5).build().driftFactor());
  }

  @Test
  void build_driftConstantNegative() {
    rejected(
        valid().driftConstant(Duration.ofMillis(-2)),
        "driftConstant",
        "between 0ms and 1m",
        "but was -2ms");
  }

  @Test
  void build_driftAtLeastTheLease() {
    rejected(
        valid().leaseTime(Duration.ofMillis(10)).driftConstant(Duration.ofMillis(10)),
        "driftConstant + driftFactor * leaseTime",
        "less than leaseTime (10ms)",
        "but was 10.1ms");
  }

  @Test
  void build_nodeTimeoutZero() {
    rejected(
        valid().nodeTimeout(Duration.ZERO),
        "nodeTimeout",
        "between 1ms and a third of leaseTime (10s/3 = 3333ms)",
        "but was 0ms");
  }

  @Test
  void build_nodeTimeoutEqualToLease() {
    rejected(
        valid().nodeTimeout(Duration.ofSeconds(10)),
        "nodeTimeout",
        "between 1ms and a third of leaseTime (10s/3 = 3333ms)",
        "but was 10s; raise leaseTime to at least 30s or lower nodeTimeout");
  }

  @Test
  void build_nodeTimeoutAboveAThirdOfTheLease() {
    // A renewal runs every third of the lease: one that may take longer overlaps the next.
    rejected(
        valid().leaseTime(Duration.ofSeconds(1)).nodeTimeout(Duration.ofMillis(900)),
        "nodeTimeout",
        "a third of leaseTime (1s/3 = 333.333ms), so that a renewal is over before the next one is due",
        "but was 900ms; raise leaseTime to at least 2700ms or lower nodeTimeout");
  }

  @Test
  void build_nodeTimeoutAboveLease() {
    rejected(
        valid().leaseTime(Duration.ofSeconds(1)).nodeTimeout(Duration.ofSeconds(2)),
        "nodeTimeout",
        "a third of leaseTime (1s/3 = 333.333ms)",
        "but was 2s");
  }

  @Test
  void build_nodeTimeoutAtAThirdOfTheLease_isAccepted() {
    RedlockConfig config =
        valid().leaseTime(Duration.ofSeconds(3)).nodeTimeout(Duration.ofSeconds(1)).build();
    assertEquals(Duration.ofSeconds(1), config.nodeTimeout());
  }

  @Test
  void build_keyPrefixNull() {
    rejected(valid().keyPrefix(null), "keyPrefix", "at most 256 characters", "but was null");
  }

  @Test
  void build_keyPrefixTooLong() {
    rejected(
        valid().keyPrefix("p".repeat(257)),
        "keyPrefix",
        "at most 256 characters",
        "but was 257 characters long");
  }

  @Test
  void build_keyPrefixBounds_areAccepted() {
    assertEquals("", valid().keyPrefix("").build().keyPrefix());
    assertEquals(256, valid().keyPrefix("p".repeat(256)).build().keyPrefix().length());
  }

  @Test
  void nodeTimeoutFor_isFivePercentOfTheLease() {
    RedlockConfig config = valid().build();
    assertEquals(Duration.ofMillis(500), ConfigInternals.nodeTimeoutFor(config, Duration.ofSeconds(10)));
    assertEquals(Duration.ofSeconds(3), ConfigInternals.nodeTimeoutFor(config, Duration.ofMinutes(1)));
    assertEquals(Duration.ofMillis(50), ConfigInternals.nodeTimeoutFor(config, Duration.ofSeconds(1)));
  }

  @Test
  void nodeTimeoutFor_isAtLeastTwentyMillis() {
    RedlockConfig config = valid().build();
    assertEquals(Duration.ofMillis(20), ConfigInternals.nodeTimeoutFor(config, Duration.ofMillis(100)));
    assertEquals(Duration.ofMillis(20), ConfigInternals.nodeTimeoutFor(config, Duration.ofMillis(400)));
  }

  @Test
  void nodeTimeoutFor_isAtMostAThirdOfTheLease() {
    RedlockConfig config = valid().build();
    assertEquals(Duration.ofMillis(10), ConfigInternals.nodeTimeoutFor(config, Duration.ofMillis(30)));
    assertEquals(Duration.ofMillis(20), ConfigInternals.nodeTimeoutFor(config, Duration.ofMillis(60)));
  }

  @Test
  void nodeTimeoutFor_explicitWins() {
    RedlockConfig config = valid().nodeTimeout(Duration.ofMillis(7)).build();
    assertEquals(Duration.ofMillis(7), ConfigInternals.nodeTimeoutFor(config, Duration.ofSeconds(10)));
    assertEquals(Duration.ofMillis(7), ConfigInternals.nodeTimeoutFor(config, Duration.ofMillis(100)));
    assertEquals(Duration.ofMillis(7), config.nodeTimeout());
  }

  @Test
  void driftFor_isFactorTimesLeasePlusConstant() {
    assertEquals(Duration.ofMillis(102), ConfigInternals.driftFor(valid().build(), Duration.ofSeconds(10)));
    assertEquals(
        Duration.ofMillis(2_005),
        ConfigInternals.driftFor(
            valid().driftFactor(0.1).driftConstant(Duration.ofMillis(5)).build(), Duration.ofSeconds(20)));
    assertEquals(
        Duration.ZERO,
        ConfigInternals.driftFor(valid().driftFactor(0).driftConstant(Duration.ZERO).build(), Duration.ofSeconds(1)));
  }

  @Test
  void toString_redactsPasswords() {
    RedlockConfig config =
        RedlockConfig.builder()
            .master("redis://:topsecret@127.0.0.1:7001")
            .master("redis://alice:alsosecret@127.0.0.1:7002")
            .master("redis://127.0.0.1:7003")
            .build();
    String shown = config.toString();
    assertFalse(shown.contains("topsecret"), shown);
    assertFalse(shown.contains("alsosecret"), shown);
    assertTrue(shown.contains("redis://***@127.0.0.1:7001"), shown);
    assertTrue(shown.contains("redis://***@127.0.0.1:7002"), shown);
    assertTrue(shown.contains("redis://127.0.0.1:7003"), shown);
    assertTrue(shown.contains("leaseTime=10s"), shown);
    assertTrue(shown.contains("nodeTimeout=500ms"), shown);
    // The config itself still carries the credentials: the masters need them.
    assertEquals("redis://:topsecret@127.0.0.1:7001", config.masters().get(0));
  }
}

package dev.redlock.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.internal.ConfigInternals;
import dev.redlock.core.internal.MasterSpec;
import dev.redlock.testing.RedisFleet;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SslOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The deployment settings of {@link RedlockConfig}: Sentinel URIs, TLS trust, and masters given
 * as a user's client or connection (checked against one real master, since a connection must be
 * open to be given).
 */
final class RedlockConfigDeploymentTest {
  private static final String M1 = "redis://127.0.0.1:7001";
  private static final String SENTINEL = "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380#g0";

  private static RedisFleet fleet;
  private static RedisClient client;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(1);
    client = RedisClient.create();
    client.setOptions(
        ClientOptions.builder()
            .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
            .build());
  }

  @AfterAll
  static void stop() {
    if (client != null) {
      client.shutdown(Duration.ZERO, Duration.ofSeconds(5));
    }
    if (fleet != null) {
      fleet.close();
    }
  }

  private static String rejected(RedlockConfig.Builder builder, String... fragments) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, builder::build);
    String message = e.getMessage();
    for (String fragment : fragments) {
      assertTrue(message.contains(fragment), () -> "expected '" + fragment + "' in: " + message);
    }
    return message;
  }

  @Test
  void build_sentinelUris_areAccepted_andDistinctByMasterId() {
    RedlockConfig config =
        RedlockConfig.builder()
            .master(SENTINEL)
            .master("redis-sentinel://127.0.0.1:26380,127.0.0.1:26379#g1")
            .master("redis-sentinel://:pw@127.0.0.1:26379?sentinelMasterId=g2")
            .build();
    assertEquals(3, config.masters().size());
    assertFalse(config.toString().contains("pw@"), config.toString());
  }

  @Test
  void build_sameSentinelMasterTwice_isRejected() {
    rejected(
        RedlockConfig.builder()
            .master(SENTINEL)
            .master("redis-sentinel://127.0.0.1:26380,127.0.0.1:26379#g0"),
        "masters[0] and masters[1]",
        "sentinel master g0");
  }

  @Test
  void build_sentinelWithoutMasterId_namesTheProblem() {
    rejected(
        RedlockConfig.builder().master("redis-sentinel://:secret9@127.0.0.1:26379"),
        "masters[0]",
        "redis-sentinel://");
    String message =
        assertThrows(
                IllegalArgumentException.class,
                () -> RedlockConfig.builder().master("redis-sentinel://:secret9@127.0.0.1:26379").build())
            .getMessage();
    assertFalse(message.contains("secret9"), message);
  }

  @Test
  void build_trustedCertificates_mustBeAPemFileOfCertificates(@TempDir Path dir) throws IOException {
    Path missing = dir.resolve("missing.pem");
    rejected(
        RedlockConfig.builder().master(M1).trustedCertificates(missing),
        "trustedCertificates must be a readable PEM file",
        missing.toString());
    Path empty = Files.writeString(dir.resolve("empty.pem"), "");
    rejected(RedlockConfig.builder().master(M1).trustedCertificates(empty), "holds none");
  }

  @Test
  void build_trustedCertificatesAndSslOptions_areExclusive(@TempDir Path dir) throws IOException {
    Path any = Files.writeString(dir.resolve("x.pem"), "");
    rejected(
        RedlockConfig.builder()
            .master(M1)
            .trustedCertificates(any)
            .sslOptions(SslOptions.builder().build()),
        "trustedCertificates and sslOptions must not both be set");
  }

  @Test
  void build_tlsSettingsWithOnlySuppliedMasters_areRejected() {
    rejected(
        RedlockConfig.builder()
            .master(client, RedisURI.create(fleet.uri(0)))
            .sslOptions(SslOptions.builder().build()),
        "sslOptions applies to masters given as URIs");
  }

  @Test
  void build_clientMaster_isKept_andShownWithoutCredentials() {
    RedisURI uri = RedisURI.create("redis://alice:hidden42@127.0.0.1:" + fleet.port(0));
    RedlockConfig config = RedlockConfig.builder().master(M1).master(client, uri).build();
    assertEquals("client:redis://***@127.0.0.1:" + fleet.port(0), config.masters().get(1));
    assertFalse(config.toString().contains("hidden42"), config.toString());
    List<MasterSpec> specs = ConfigInternals.masters(config);
    assertEquals(MasterSpec.Source.URI, specs.get(0).source());
    assertEquals(MasterSpec.Source.CLIENT, specs.get(1).source());
    assertTrue(specs.get(1).client() == client);
  }

  @Test
  void build_clientMasterWithDefaultOptions_isRejectedWithTheFix() {
    RedisClient buffering = RedisClient.create();
    try {
      rejected(
          RedlockConfig.builder().master(buffering, RedisURI.create(fleet.uri(0))),
          "masters[0]'s RedisClient must reject commands while disconnected",
          "disconnectedBehavior DEFAULT",
          "REJECT_COMMANDS");
    } finally {
      buffering.shutdown(Duration.ZERO, Duration.ofSeconds(5));
    }
  }

  @Test
  void build_clientMasterNulls_areRejected() {
    rejected(RedlockConfig.builder().master(null, RedisURI.create(M1)), "masters[0]", "client was null");
    rejected(RedlockConfig.builder().master(client, null), "masters[0]", "URI was null");
    rejected(
        RedlockConfig.builder().master((StatefulRedisConnection<String, String>) null),
        "masters[0] must be an open connection, but was null");
  }

  @Test
  void build_sameServerAsUriAndClient_isRejected() {
    rejected(
        RedlockConfig.builder().master(fleet.uri(0)).master(client, RedisURI.create(fleet.uri(0))),
        "masters[0] and masters[1] are both 127.0.0.1:" + fleet.port(0));
  }

  @Test
  void build_connectionMaster_mustBeOpen_distinct_andRejectWhileDisconnected() {
    StatefulRedisConnection<String, String> connection = client.connect(RedisURI.create(fleet.uri(0)));
    try {
      RedlockConfig config = RedlockConfig.builder().master(connection).build();
      assertEquals(List.of("connection:masters[0]"), config.masters());
      rejected(
          RedlockConfig.builder().master(connection).master(connection),
          "masters[0] and masters[1] are the same connection");
    } finally {
      connection.close();
    }
    rejected(RedlockConfig.builder().master(connection), "masters[0] must be an open connection, but was closed");

    RedisClient buffering = RedisClient.create();
    try (StatefulRedisConnection<String, String> c = buffering.connect(RedisURI.create(fleet.uri(0)))) {
      rejected(
          RedlockConfig.builder().master(c),
          "masters[0]'s connection must reject commands while disconnected");
    } finally {
      buffering.shutdown(Duration.ZERO, Duration.ofSeconds(5));
    }
  }

  @Test
  void masters_replacesSuppliedMastersToo() {
    RedlockConfig config =
        RedlockConfig.builder()
            .master(client, RedisURI.create(fleet.uri(0)))
            .masters(List.of(M1))
            .build();
    assertEquals(List.of(M1), config.masters());
  }
}

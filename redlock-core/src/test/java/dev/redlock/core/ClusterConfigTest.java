package dev.redlock.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.internal.ConfigInternals;
import dev.redlock.core.internal.Keys;
import dev.redlock.core.internal.MasterSpec;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisURI;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.DefaultClientResources;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Redis Cluster masters in a configuration ({@code redis-cluster://} URIs and a user's {@link
 * RedisClusterClient}) and the cluster key layout of {@link Keys}. No server is needed: building a
 * configuration never connects.
 */
final class ClusterConfigTest {
  private static IllegalArgumentException rejected(RedlockConfig.Builder builder, String... fragments) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, builder::build);
    for (String fragment : fragments) {
      assertTrue(e.getMessage().contains(fragment), () -> "expected '" + fragment + "' in: " + e.getMessage());
    }
    return e;
  }

  @Test
  void clusterUri_isOneMaster_withItsSeeds() {
    RedlockConfig config =
        RedlockConfig.builder()
            .master("redis-cluster://:secret@10.0.0.1:7000,10.0.0.2:7001")
            .master("redis://10.0.0.9:6379")
            .build();
    assertEquals(2, config.masters().size());
    MasterSpec spec = ConfigInternals.masters(config).get(0);
    assertTrue(spec.isCluster());
    List<RedisURI> seeds = MasterSpec.clusterSeeds(spec.uri());
    assertEquals(2, seeds.size());
    assertEquals("10.0.0.2", seeds.get(1).getHost());
    assertEquals(7001, seeds.get(1).getPort());
    assertEquals("cluster 10.0.0.1:7000,10.0.0.2:7001", MasterSpec.clusterName(seeds));
    assertFalse(ConfigInternals.masters(config).get(1).isCluster());
    assertTrue(MasterSpec.clusterSeeds("rediss-cluster://h:7000").get(0).isSsl());
  }

  @Test
  void clusterUri_malformed_namesIndexValueAndForm() {
    rejected(
        RedlockConfig.builder().master("redis://h:1").master("redis-cluster://h:7000,"),
        "masters[1] must be a Redis Cluster URI like redis-cluster://host:7000,host:7001", "'redis-cluster://h:7000,'",
        "empty seed node");
    rejected(RedlockConfig.builder().master("redis-cluster://h:7000/2"), "masters[0]", "database");
    rejected(RedlockConfig.builder().master("redis-cluster://h:99999"), "masters[0] must be a Redis Cluster URI", "Port out of range: 99999");
  }

  @Test
  void clusterUri_password_neverShown() {
    IllegalArgumentException e = rejected(RedlockConfig.builder().master("redis-cluster://:hunter2@h:7000,"), "***");
    assertFalse(e.getMessage().contains("hunter2"), e.getMessage());
  }

  @Test
  void clusterMaster_withReplicaAcks_isAccepted() {
    // WAIT follows each script to the primary of its slot (ClusterNode); tested against a cluster.
    RedlockConfig config =
        RedlockConfig.builder().master("redis://a:6379").master("redis-cluster://h:7000").replicaAcks(1).build();
    assertEquals(1, config.replicaAcks());
  }

  @Test
  void clusterUri_givenTwice_isRefused_whateverTheSeedOrder() {
    rejected(
        RedlockConfig.builder().master("redis-cluster://a:7000,b:7001").master("redis-cluster://B:7001,a:7000"),
        "masters[0] and masters[1] are both cluster a:7000,b:7001");
  }

  @Test
  void clusterClient_isAccepted_whenItRejectsCommandsWhileDisconnected_andRefusedOtherwise() {
    ClientResources resources = DefaultClientResources.builder().ioThreadPoolSize(2).computationThreadPoolSize(2).build();
    try {
      RedisClusterClient good = RedisClusterClient.create(resources, RedisURI.create("redis://127.0.0.1:7000"));
      good.setOptions(
          ClusterClientOptions.builder()
              .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
              .autoReconnect(true)
              .build());
      RedlockConfig config = RedlockConfig.builder().master(good).build();
      assertEquals(List.of("cluster-client:masters[0]"), config.masters());
      assertTrue(ConfigInternals.masters(config).get(0).isCluster());
      rejected(RedlockConfig.builder().master(good).master(good), "are the same RedisClusterClient");

      RedisClusterClient defaults = RedisClusterClient.create(resources, RedisURI.create("redis://127.0.0.1:7000"));
      rejected(
          RedlockConfig.builder().master(defaults),
          "masters[0]'s RedisClusterClient must reject commands while disconnected", "REJECT_COMMANDS");
      rejected(RedlockConfig.builder().master((RedisClusterClient) null), "masters[0] must be a RedisClusterClient, but was null");
      good.shutdown();
      defaults.shutdown();
    } finally {
      resources.shutdown();
    }
  }

  @Test
  void clusterKeys_shareTheResourceSlot_andStandaloneNamesStay() {
    String lock = Keys.lock("redlock:", "orders");
    assertEquals("redlock:orders", lock);
    assertEquals("{redlock:orders}", Keys.onCluster(lock));
    assertEquals("{redlock:orders}\u0000fence", Keys.onCluster(Keys.fence(lock)));
    int slot = Keys.slot(Keys.onCluster(lock));
    for (String derived :
        List.of(Keys.fence(lock), Keys.writer(lock), Keys.readers(lock), Keys.writerWaiting(lock),
            Keys.permitHolders(lock), Keys.permitCount(lock), Keys.fence(Keys.writer(lock)))) {
      assertEquals(slot, Keys.slot(Keys.onCluster(derived)), derived);
    }
    // A resource that starts with its own hash tag shares the slot with the others of that tag.
    assertEquals(
        Keys.slot(Keys.onCluster(Keys.lock("redlock:", "{order-7}:payment"))),
        Keys.slot(Keys.onCluster(Keys.lock("redlock:", "{order-7}:stock"))));
    assertFalse(Keys.taggable("}odd"));
    assertTrue(Keys.taggable("redlock:x"));
  }

  @Test
  void slot_matchesRedis_andEverySlotHasItsOwnBootMarker() {
    // Values from the Redis Cluster specification's examples and CLUSTER KEYSLOT.
    assertEquals(12739, Keys.slot("123456789")); // CRC16 XMODEM check value 0x31C3
    assertEquals(Keys.slot("foo"), Keys.slot("{foo}bar"));
    assertEquals(12182, Keys.slot("foo"));
    assertEquals(Keys.slot("{}x"), Keys.slot("{}x")); // empty tag: the whole key
    assertNotEquals(Keys.slot("{}x"), Keys.slot("x"));
    Set<String> markers = new HashSet<>();
    for (int slot = 0; slot < Keys.SLOTS; slot++) {
      String marker = Keys.clusterBootMarker(slot);
      assertEquals(slot, Keys.slot(marker), marker);
      markers.add(marker);
    }
    assertEquals(Keys.SLOTS, markers.size());
  }
}

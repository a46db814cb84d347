package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.failure;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.RedlockConfig;
import dev.redlock.core.internal.Keys;
import dev.redlock.testing.RedisClusterFleet;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisURI;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A Redis Cluster as one master, as a Java user configures it: a {@code redis-cluster://} URI, or
 * the application's own {@link RedisClusterClient} (never shut down by the library).
 */
@Tag("compat")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
final class ClusterMasterTest {
  private static RedisClusterFleet cluster;

  @BeforeAll
  static void start() {
    cluster = RedisClusterFleet.builder().replicasPerShard(0).start();
  }

  @AfterAll
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @AfterEach
  void checkClean() {
    for (int s = 0; s < cluster.shards(); s++) {
      int primary = cluster.primary(s);
      List<String> left =
          cluster.keys(primary, "{redlock:*").stream().filter(k -> !k.endsWith("\u0000fence")).collect(Collectors.toList());
      assertEquals(List.of(), left, "keys left on shard " + s);
      for (String key : cluster.keys(primary, "{redlock:*")) {
        cluster.command(primary, "DEL", key);
      }
    }
  }

  private static String clusterUri() {
    return "redis-cluster://"
        + IntStream.range(0, cluster.size()).mapToObj(i -> "127.0.0.1:" + cluster.port(i)).collect(Collectors.joining(","));
  }

  /** Dates the restart guard's marker of a resource's slot back, as the test kits do for fresh servers. */
  private static void neverGranted(String resource) {
    int slot = Keys.slot(Keys.onCluster(Keys.lock("redlock:", resource)));
    cluster.command(
        cluster.primary(cluster.shardOf(slot)), "EVAL", Keys.BOOT_MARKER_NEVER_GRANTED, "1", Keys.clusterBootMarker(slot));
  }

  private static RedlockConfig.Builder config() {
    return RedlockConfig.builder()
        .leaseTime(Duration.ofSeconds(5))
        .waitTime(Duration.ofSeconds(10))
        .retryDelay(Duration.ofMillis(20));
  }

  @Test
  void withLock_onAClusterUri_locksFencesAndReleases() throws Exception {
    neverGranted("invoice-9");
    try (AsyncRedlock redlock = AsyncRedlock.create(config().master(clusterUri()).fencing(true).build())) {
      long first =
          await(redlock.withLock("invoice-9", lease -> CompletableFuture.completedFuture(lease.fencingToken().getAsLong())));
      try (LockLease lease = await(redlock.acquire("invoice-9"))) {
        assertTrue(lease.fencingToken().getAsLong() > first);
        assertTrue(lease.isValid());
        int primary = cluster.primary(cluster.shardOf(Keys.slot("{redlock:invoice-9}")));
        assertEquals(1L, cluster.command(primary, "EXISTS", "{redlock:invoice-9}"));
        Optional<LockLease> refused = await(redlock.tryAcquire("invoice-9"));
        assertFalse(refused.isPresent());
        await(lease.extend());
      }
    }
  }

  @Test
  void sharedLocks_andPermits_workOnACluster() {
    neverGranted("catalog");
    neverGranted("pool");
    try (AsyncRedlock redlock = AsyncRedlock.create(config().master(clusterUri()).build())) {
      LockLease reader = await(redlock.acquireReadLock("catalog"));
      assertFalse(await(redlock.tryAcquireWriteLock("catalog")).isPresent());
      await(reader.release());
      await(redlock.withWriteLock("catalog", lease -> CompletableFuture.completedFuture(null)));

      LockLease one = await(redlock.acquirePermit("pool", 2));
      LockLease two = await(redlock.acquirePermit("pool", 2));
      assertFalse(await(redlock.tryAcquirePermit("pool", 2)).isPresent());
      await(one.release());
      await(two.release());
    }
  }

  @Test
  void severalResources_inDifferentSlots_areRefusedAtTheCall() {
    try (AsyncRedlock redlock = AsyncRedlock.create(config().master(clusterUri()).build())) {
      IllegalArgumentException e =
          failure(redlock.acquire(LockOptions.of("payment", "stock")), IllegalArgumentException.class);
      assertTrue(e.getMessage().contains("hash to different slots"), e.getMessage());
      neverGranted("{order-1}:payment");
      await(redlock.withLock(LockOptions.of("{order-1}:payment", "{order-1}:stock"), lease -> CompletableFuture.completedFuture(null)));
    }
  }

  @Test
  void ownClusterClient_isUsed_andNeverShutDown() throws Exception {
    neverGranted("own-client");
    RedisClusterClient client =
        RedisClusterClient.create(
            IntStream.range(0, cluster.size()).mapToObj(i -> RedisURI.create("redis://127.0.0.1:" + cluster.port(i))).collect(Collectors.toList()));
    client.setOptions(
        ClusterClientOptions.builder()
            .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
            .autoReconnect(true)
            .topologyRefreshOptions(ClusterTopologyRefreshOptions.builder().enablePeriodicRefresh(Duration.ofSeconds(5)).build())
            .build());
    try {
      try (AsyncRedlock redlock = AsyncRedlock.create(config().master(client).build())) {
        assertEquals(List.of("cluster-client:masters[0]"), redlock.config().masters());
        await(redlock.withLock("own-client", lease -> CompletableFuture.completedFuture(null)));
      }
      // Still usable after the Redlock is closed: the library closed only its own connections.
      try (var connection = client.connect()) {
        assertEquals("PONG", connection.sync().ping());
      }
    } finally {
      client.shutdown();
    }
  }

  @Test
  void build_refusesAClusterClientThatWouldBufferCommands() {
    RedisClusterClient client = RedisClusterClient.create(RedisURI.create("redis://127.0.0.1:" + cluster.port(0)));
    try {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> config().master(client).build());
      assertTrue(e.getMessage().contains("REJECT_COMMANDS"), e.getMessage());
    } finally {
      client.shutdown();
    }
  }

  @Test
  void aDownShard_failsOnlyItsOwnLocks() throws Exception {
    String resource = "down-shard";
    neverGranted(resource);
    int shard = cluster.shardOf(Keys.slot(Keys.onCluster("redlock:" + resource)));
    try (AsyncRedlock redlock = AsyncRedlock.create(config().master(clusterUri()).build())) {
      await(redlock.withLock(resource, lease -> CompletableFuture.completedFuture(null)));
      int primary = cluster.primary(shard);
      cluster.pause(primary);
      try {
        ExecutionException e =
            assertThrows(ExecutionException.class, () -> redlock.acquire(LockOptions.builder(resource).waitTime(Duration.ZERO).build()).get(30, TimeUnit.SECONDS));
        assertTrue(e.getCause() instanceof dev.redlock.core.LockNotAcquiredException, String.valueOf(e.getCause()));
        assertTrue(e.getCause().getMessage().contains("cluster 127.0.0.1:"), e.getCause().getMessage());
      } finally {
        cluster.resume(primary);
      }
      await(redlock.withLock(LockOptions.builder(resource).waitTime(Duration.ofSeconds(30)).build(), lease -> CompletableFuture.completedFuture(null)));
    }
  }
}

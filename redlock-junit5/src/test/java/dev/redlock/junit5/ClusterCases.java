package dev.redlock.junit5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.testing.RedisClusterFleet;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Test classes with a cluster, as users write them, run one at a time by {@link
 * ClusterExtensionTest}, which then checks what the extension did. They record what they were
 * handed in static fields.
 */
final class ClusterCases {
  private ClusterCases() {}

  static final List<RedisClusterFleet> clusters = new CopyOnWriteArrayList<>();
  static final List<Long> pids = new CopyOnWriteArrayList<>();

  static void clear() {
    clusters.clear();
    pids.clear();
  }

  static void record(RedisClusterFleet cluster) {
    if (!clusters.contains(cluster)) {
      clusters.add(cluster);
    }
    pids.addAll(cluster.pids());
  }

  @ExtendWith(HarnessOnly.class)
  @RedisClusterTest(shards = 2)
  @TestMethodOrder(MethodOrderer.OrderAnnotation.class)
  static final class ResetCase {
    @Test
    @Order(1)
    void breaksTheCluster(RedisClusterFleet cluster) {
      record(cluster);
      assertEquals(4, cluster.size());
      int owner = cluster.primary(cluster.shardOf(cluster.slotOf("k")));
      assertEquals("OK", cluster.command(owner, "SET", "k", "v"));
      cluster.kill(cluster.replicas(0).get(0));
      cluster.pause(cluster.replicas(1).get(0));
    }

    @Test
    @Order(2)
    void findsItWholeAndEmpty(RedisClusterFleet cluster) {
      record(cluster);
      for (int node = 0; node < cluster.size(); node++) {
        assertTrue(cluster.isRunning(node), "node " + node);
        assertFalse(cluster.isPaused(node), "node " + node);
      }
      assertEquals(0, cluster.keyCount());
    }

    @Nested
    final class Inner {
      @Test
      void sharesTheOuterCluster(RedisClusterFleet cluster) {
        assertSame(clusters.get(0), cluster);
      }
    }
  }

  @ExtendWith(HarnessOnly.class)
  @RedisClusterTest(shards = 1, replicasPerShard = 0, resetAfterEach = false)
  @TestMethodOrder(MethodOrderer.OrderAnnotation.class)
  static final class NoResetCase {
    @Test
    @Order(1)
    void writes(RedisClusterFleet cluster) {
      record(cluster);
      cluster.command(0, "SET", "kept", "v");
    }

    @Test
    @Order(2)
    void readsWhatTheFirstTestWrote(RedisClusterFleet cluster) {
      assertEquals("v", cluster.command(0, "GET", "kept"));
    }
  }

  @ExtendWith(HarnessOnly.class)
  @RedisClusterTest(shards = 1, replicasPerShard = 0)
  static final class FailingCase {
    @Test
    void fails(RedisClusterFleet cluster) {
      record(cluster);
      throw new AssertionError("a failing test");
    }
  }

  @ExtendWith(HarnessOnly.class)
  static final class RegisteredCase {
    @RegisterExtension
    static final RedisClusterExtension CLUSTER =
        RedisClusterExtension.builder()
            .shards(1)
            .replicasPerShard(1)
            .clusterOptions(cluster -> cluster.nodeTimeout(Duration.ofMillis(1500)))
            .build();

    @Test
    void handsOutTheClusterItStarted(RedisClusterFleet cluster) {
      record(cluster);
      assertSame(CLUSTER.cluster(), cluster);
      assertEquals(2, cluster.size());
      String config = cluster.command(0, "CONFIG", "GET", "cluster-node-timeout").toString();
      assertTrue(config.contains("1500"), config);
    }
  }

  @ExtendWith(HarnessOnly.class)
  @RedisClusterTest(shards = 0)
  static final class BadAnnotationCase {
    @Test
    void neverRuns() {}
  }
}

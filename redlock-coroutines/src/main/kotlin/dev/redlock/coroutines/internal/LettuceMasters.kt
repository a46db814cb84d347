package dev.redlock.coroutines.internal

import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.ClusterNode
import dev.redlock.core.internal.ConfigInternals
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.MasterSpec
import dev.redlock.core.internal.RedisNode
import io.lettuce.core.RedisClient
import io.lettuce.core.RedisURI
import io.lettuce.core.SslOptions
import io.lettuce.core.cluster.ClusterClientOptions
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions
import io.lettuce.core.cluster.RedisClusterClient
import io.lettuce.core.resource.ClientResources
import io.lettuce.core.resource.DefaultClientResources
import io.lettuce.core.resource.Delay
import java.time.Duration
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.TimeUnit

/**
 * The Lettuce side of a `Redlock`: one [RedisNode] per master ([ClusterNode] for a Redis Cluster)
 * and, for the masters given as URIs, one shared [ClientResources], one [RedisClient] and one
 * [RedisClusterClient] per cluster URI. What the library created is closed with the
 * Redlock; a client or connection the user supplied is never shut down or closed (only the
 * connections the library opened with a user's client are).
 */
internal class LettuceMasters(config: RedlockConfig, timer: ScheduledExecutorService) : AutoCloseable {
    private val specs: List<MasterSpec> = ConfigInternals.masters(config)

    /** Created only when some master is given as a URI: user-supplied masters need none of it. */
    private val resources: ClientResources? =
        if (specs.none { it.source() == MasterSpec.Source.URI }) null
        else DefaultClientResources.builder()
            .ioThreadPoolSize(IO_THREADS)
            .computationThreadPoolSize(COMPUTATION_THREADS)
            // Lettuce's default backs off up to 30 s between reconnects, which would keep a master
            // that came back out of every quorum for that long; a lock client wants it back soon.
            .reconnectDelay(Delay.equalJitter(Duration.ofMillis(10), RECONNECT_CAP, 10, TimeUnit.MILLISECONDS))
            .build()

    private val client: RedisClient? =
        resources?.let {
            RedisClient.create(it).apply {
                options = RedisNode.clientOptions(connectTimeout(config), sslOptions(config))
            }
        }

    /** The cluster clients the library created, one per cluster URI (closed with the Redlock). */
    private val clusterClients = ArrayList<RedisClusterClient>()

    val nodes: List<LockNode> =
        specs.mapIndexed { i, spec ->
            when {
                spec.source() == MasterSpec.Source.CLIENT -> RedisNode(spec.client(), spec.redisUri(), timer).acks(config)
                spec.source() == MasterSpec.Source.CONNECTION -> RedisNode(spec.connection(), "connection:masters[$i]", timer).acks(config)
                spec.source() == MasterSpec.Source.CLUSTER_CLIENT ->
                    ClusterNode(spec.clusterClient(), "cluster-client:masters[$i]", timer).acks(config)
                MasterSpec.isClusterUri(spec.uri()) -> {
                    val seeds = MasterSpec.clusterSeeds(spec.uri())
                    val cluster = RedisClusterClient.create(resources, seeds).apply { setOptions(clusterOptions(config)) }
                    clusterClients += cluster
                    ClusterNode(cluster, MasterSpec.clusterName(seeds), timer).acks(config)
                }
                else -> RedisNode(client!!, RedisURI.create(spec.uri()), timer).acks(config)
            }
        }

    /** `replicaAcks`: `WAIT` after a write, on a server or on the primary serving a cluster master's slot. */
    private fun RedisNode.acks(config: RedlockConfig): RedisNode = replicaAcks(config.replicaAcks(), config.replicaAckTimeout())

    private fun ClusterNode.acks(config: RedlockConfig): ClusterNode = replicaAcks(config.replicaAcks(), config.replicaAckTimeout())

    /** Lock connections' options ([RedisNode.clientOptions]) plus a topology refresh that follows failovers and migrations within seconds (Lettuce 7 enables every adaptive trigger by default; their rate limit is lowered). */
    private fun clusterOptions(config: RedlockConfig): ClusterClientOptions =
        ClusterClientOptions.builder(RedisNode.clientOptions(connectTimeout(config), sslOptions(config)))
            .topologyRefreshOptions(
                ClusterTopologyRefreshOptions.builder()
                    .adaptiveRefreshTriggersTimeout(Duration.ofMillis(500))
                    .refreshTriggersReconnectAttempts(2)
                    .enablePeriodicRefresh(CLUSTER_REFRESH)
                    .build(),
            )
            .build()

    /**
     * Closes the connections and shuts down what the library created. Waits (bounded) for the
     * client's threads to end, unless called on one of them: it then only starts the shutdown,
     * since a thread cannot wait for itself to end.
     */
    override fun close() {
        if (onClientThread()) {
            for (node in nodes) node.close()
            for (c in clusterClients) c.shutdownAsync(0, CLOSE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
            client?.shutdownAsync(0, CLOSE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
            resources?.shutdown(0, CLOSE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
            return
        }
        for (node in nodes) node.closeAndWait(CLOSE_TIMEOUT)
        for (c in clusterClients) c.shutdown(Duration.ZERO, CLOSE_TIMEOUT)
        client?.shutdown(Duration.ZERO, CLOSE_TIMEOUT)
        resources?.shutdown(0, CLOSE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)?.await(CLOSE_TIMEOUT.toMillis())
    }

    /** Whether the calling thread is a Netty thread (one of ours, or another client's: either way, do not block it). */
    private fun onClientThread(): Boolean =
        Thread.currentThread() is io.netty.util.concurrent.FastThreadLocalThread

    companion object {
        private val CLOSE_TIMEOUT: Duration = Duration.ofSeconds(2)
        private val RECONNECT_CAP: Duration = Duration.ofMillis(500)
        private val CLUSTER_REFRESH: Duration = Duration.ofSeconds(5)
        private val IO_THREADS = Runtime.getRuntime().availableProcessors().coerceIn(2, 4)
        private const val COMPUTATION_THREADS = 2

        /** Connecting may take longer than one command; the caller is bounded by the node timeout anyway. */
        fun connectTimeout(config: RedlockConfig): Duration =
            maxOf(Duration.ofSeconds(1), config.nodeTimeout().multipliedBy(4))

        /** The TLS options for URI masters: as given, or trusting the given PEM file, or Lettuce's default. */
        private fun sslOptions(config: RedlockConfig): SslOptions? =
            config.sslOptions().orElse(null)
                ?: config.trustedCertificates().map { SslOptions.builder().jdkSslProvider().trustManager(it.toFile()).build() }.orElse(null)
    }
}

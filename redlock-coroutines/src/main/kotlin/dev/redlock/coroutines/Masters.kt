package dev.redlock.coroutines

import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.RedisNode
import io.lettuce.core.RedisClient
import io.lettuce.core.RedisURI
import io.lettuce.core.resource.ClientResources
import io.lettuce.core.resource.DefaultClientResources
import io.lettuce.core.resource.Delay
import java.time.Duration
import java.util.concurrent.TimeUnit

/**
 * The Lettuce side of a [Redlock]: one shared [ClientResources] and [RedisClient] for all masters
 * and one [RedisNode] per master. Owned by the Redlock and shut down with it.
 */
internal class LettuceMasters(config: RedlockConfig) : AutoCloseable {
    private val resources: ClientResources =
        DefaultClientResources.builder()
            .ioThreadPoolSize(IO_THREADS)
            .computationThreadPoolSize(COMPUTATION_THREADS)
            // Lettuce's default backs off up to 30 s between reconnects, which would keep a master
            // that came back out of every quorum for that long; a lock client wants it back soon.
            .reconnectDelay(Delay.equalJitter(Duration.ofMillis(10), RECONNECT_CAP, 10, TimeUnit.MILLISECONDS))
            .build()

    private val client: RedisClient =
        RedisClient.create(resources).apply {
            options = RedisNode.clientOptions(connectTimeout(config))
        }

    val nodes: List<LockNode> = config.masters().map { RedisNode(client, RedisURI.create(it)) }

    override fun close() {
        for (node in nodes) (node as RedisNode).closeAndWait(CLOSE_TIMEOUT)
        client.shutdown(Duration.ZERO, CLOSE_TIMEOUT)
        resources.shutdown(0, CLOSE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).await(CLOSE_TIMEOUT.toMillis())
    }

    private companion object {
        val CLOSE_TIMEOUT: Duration = Duration.ofSeconds(2)
        val RECONNECT_CAP: Duration = Duration.ofMillis(500)
        val IO_THREADS = Runtime.getRuntime().availableProcessors().coerceIn(2, 4)
        const val COMPUTATION_THREADS = 2

        /** Connecting may take longer than one command; the caller is bounded by the node timeout anyway. */
        fun connectTimeout(config: RedlockConfig): Duration =
            maxOf(Duration.ofSeconds(1), config.nodeTimeout().multipliedBy(4))
    }
}

package dev.redlock.examples.readme

import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import dev.redlock.testing.RedisFleet
import dev.redlock.testing.SentinelFleet
import io.lettuce.core.ClientOptions
import io.lettuce.core.RedisClient
import io.lettuce.core.RedisURI
import io.lettuce.core.SslOptions
import io.lettuce.core.api.StatefulRedisConnection
import java.io.File
import java.nio.file.Path
import java.time.Duration

// The README's "Deployments" examples, compiled with the API they show. They name servers that do
// not exist here; the behaviour is tested by SecureDeploymentTest, SentinelDeploymentTest and
// UserClientTest (redlock-coroutines) against local TLS, ACL and Sentinel servers.

/** TLS and an ACL user, trusting a private CA. */
fun tlsAndAcl(): RedlockConfig {
    // region deploy-tls
    val config = RedlockConfig.builder()
        .masters(
            listOf(
                "rediss://locker:s3cret@redis-a.internal:6380",
                "rediss://locker:s3cret@redis-b.internal:6380",
                "rediss://locker:s3cret@redis-c.internal:6380",
            ),
        )
        .trustedCertificates(Path.of("/etc/redlock/ca.pem")) // the CA that signed the servers' certificates
        .build()
    // endregion
    return config
}

/** Mutual TLS and a trust store, through Lettuce's SslOptions. */
fun mutualTls(): RedlockConfig {
    // region deploy-mtls
    val config = RedlockConfig.builder()
        .master("rediss://locker:s3cret@redis-a.internal:6380")
        .sslOptions(
            SslOptions.builder()
                .jdkSslProvider()
                .truststore(File("/etc/redlock/truststore.p12"), "changeit")
                .keystore(File("/etc/redlock/client.p12"), "changeit".toCharArray())
                .build(),
        )
        .build()
    // endregion
    return config
}

/** Three Sentinel-managed groups as the three Redlock masters. */
fun sentinelGroups(): RedlockConfig {
    // region deploy-sentinel
    val config = RedlockConfig.builder()
        .masters(
            listOf(
                "redis-sentinel://s1.internal:26379,s2.internal:26379,s3.internal:26379#locks-a",
                "redis-sentinel://s1.internal:26379,s2.internal:26379,s3.internal:26379#locks-b",
                "redis-sentinel://s1.internal:26379,s2.internal:26379,s3.internal:26379#locks-c",
            ),
        )
        .build()
    // endregion
    return config
}

/** A whole Redis Cluster as one master. */
fun clusterConfig(): RedlockConfig {
    // region deploy-cluster
    val config = RedlockConfig.builder()
        .master("redis-cluster://:secret@redis-a.internal:7000,redis-b.internal:7000,redis-c.internal:7000")
        .build()
    // endregion
    return config
}

/** The application's own RedisClient, never shut down by the library. */
suspend fun userClient() {
    // region deploy-client
    val client = RedisClient.create()
    client.options = ClientOptions.builder()
        .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS) // required, checked by build()
        .build()
    val config = RedlockConfig.builder()
        .master(client, RedisURI.create("redis://10.0.0.1:6379"))
        .master(client, RedisURI.create("redis://10.0.0.2:6379"))
        .master(client, RedisURI.create("redis://10.0.0.3:6379"))
        .build()
    Redlock(config).use { redlock ->
        redlock.withRedlock("orders:42") { /* ... */ }
    } // closes the connections the Redlock opened; the client stays usable
    client.shutdown()
    // endregion
}

/** An open connection of the application's, never closed by the library. */
fun userConnection(connection: StatefulRedisConnection<String, String>): RedlockConfig {
    // region deploy-connection
    val config = RedlockConfig.builder()
        .master(connection) // used as it is, never closed by the library
        .retryDelay(Duration.ofMillis(50)) // no release notices on this master: waiters retry
        .build()
    // endregion
    return config
}

/** The test kit's TLS, ACL and Sentinel fleets. */
suspend fun deploymentTestKit() {
    // region deploy-testkit
    RedisFleet.builder().masters(3).tls(true).user("locker", "pw-for-tests").start().use { fleet ->
        val config = RedlockConfig.builder()
            .masters(fleet.uris()) // rediss://locker:pw-for-tests@127.0.0.1:PORT
            .trustedCertificates(fleet.caCertificate())
            .build()
        Redlock(config).use { it.withRedlock("x") { } }
    }
    SentinelFleet.builder().groups(3).start().use { sentinels ->
        val config = RedlockConfig.builder().masters(sentinels.uris()).build()
        Redlock(config).use { redlock ->
            redlock.withRedlock("x") { }
            sentinels.failover(0) // a replica of group 0 becomes its primary
            redlock.withRedlock("x") { }
        }
    }
    // endregion
}

package dev.redlock.core;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import java.nio.file.Path;

/**
 * The Java snippet of README-deploy.md, kept here so that it compiles with the API it shows. Not
 * a test: it needs the servers it names. RedlockConfigDeploymentTest covers the behaviour.
 */
final class DeploymentSnippets {
  private DeploymentSnippets() {}

  static RedlockConfig javaConfig(RedisClient client) {
    client.setOptions(
        ClientOptions.builder()
            .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
            .build());
    return RedlockConfig.builder()
        .master("rediss://locker:s3cret@redis-a.internal:6380")
        .master("rediss://locker:s3cret@redis-b.internal:6380")
        .trustedCertificates(Path.of("/etc/redlock/ca.pem")) // for the two URIs above
        // Through the application's client: its own options (TLS included) apply.
        .master(client, RedisURI.create("redis://locker:s3cret@redis-c.internal:6379"))
        .build();
  }
}

package dev.redlock.examples.readme;

import dev.redlock.core.RedlockConfig;
import dev.redlock.java.AsyncRedlock;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import java.nio.file.Path;

/** The README's Java "Deployments" example, compiled with the API it shows. */
public final class JavaDeployment {
  private JavaDeployment() {}

  /** URIs over TLS next to a master reached through the application's client. */
  public static void mixedMasters(RedisClient client) {
    // region deploy-java
    client.setOptions(
        ClientOptions.builder()
            .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
            .build());
    RedlockConfig config = RedlockConfig.builder()
        .master("rediss://locker:s3cret@redis-a.internal:6380")
        .master("rediss://locker:s3cret@redis-b.internal:6380")
        .trustedCertificates(Path.of("/etc/redlock/ca.pem")) // for the two URIs above
        // Through the application's client: its own options (TLS included) apply.
        .master(client, RedisURI.create("redis://locker:s3cret@redis-c.internal:6379"))
        .build();
    try (AsyncRedlock redlock = AsyncRedlock.create(config)) {
      // ...
    }
    // endregion
  }
}

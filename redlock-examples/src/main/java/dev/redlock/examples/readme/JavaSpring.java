package dev.redlock.examples.readme;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.spring.boot.RedlockConfigCustomizer;
import dev.redlock.spring.integration.RedlockLockRegistry;
import io.lettuce.core.SslOptions;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.integration.support.leader.LockRegistryLeaderInitiator;
import org.springframework.integration.support.locks.LockRegistry;

/** The README's Spring samples in Java. */
@Configuration(proxyBeanMethods = false)
public class JavaSpring {

  // region spring-registry
  @Bean
  RedlockLockRegistry lockRegistry(AsyncRedlock redlock) {
    return new RedlockLockRegistry(redlock, "orders"); // key k locks resource orders:k
  }

  @Bean
  LockRegistryLeaderInitiator leader(LockRegistry<?> lockRegistry) {
    return new LockRegistryLeaderInitiator(lockRegistry); // one leader across instances
  }
  // endregion

  // region spring-customizer
  @Bean
  RedlockConfigCustomizer tls() {
    return builder -> builder.sslOptions(
        SslOptions.builder().jdkSslProvider().truststore(Path.of("/etc/redlock/truststore.p12").toFile(), "changeit").build());
  }
  // endregion

  /** The README's future-returning method. */
  public static class Exports {
    // region spring-future
    @dev.redlock.spring.Redlocked("exports:#{#day}")
    public CompletableFuture<String> export(String day) {
      // Held until the returned future completes; cancelled (and the caller's future failed) on loss.
      return CompletableFuture.supplyAsync(() -> "exported " + day);
    }
    // endregion
  }
}

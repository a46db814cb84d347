package dev.redlock.spring.boot;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.spring.integration.RedlockLockRegistry;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.context.annotation.Bean;
import org.springframework.integration.support.locks.LockRegistry;

/**
 * Auto-configuration of a {@link RedlockLockRegistry} when Spring Integration is on the class path
 * and the application defines no {@code LockRegistry} of its own; its resources start with {@code
 * redlock.integration.registry-key}.
 */
@AutoConfiguration(after = RedlockAutoConfiguration.class)
@ConditionalOnClass(LockRegistry.class)
@ConditionalOnBean(AsyncRedlock.class)
public final class RedlockIntegrationAutoConfiguration {

  /** Created by Spring Boot. */
  RedlockIntegrationAutoConfiguration() {}

  /**
   * The lock registry.
   *
   * @param redlock the Redlock that takes the locks
   * @param properties for the registry key
   * @return the registry
   */
  @Bean
  @ConditionalOnMissingBean(LockRegistry.class)
  RedlockLockRegistry redlockLockRegistry(AsyncRedlock redlock, RedlockProperties properties) {
    return new RedlockLockRegistry(redlock, properties.getIntegration().getRegistryKey());
  }
}

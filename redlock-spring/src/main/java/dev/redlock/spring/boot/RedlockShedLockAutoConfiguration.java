package dev.redlock.spring.boot;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.spring.shedlock.RedlockLockProvider;
import net.javacrumbs.shedlock.core.LockProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configuration of a {@link RedlockLockProvider} when ShedLock is on the class path and the
 * application defines no {@code LockProvider} of its own; {@code @EnableSchedulerLock} is still the
 * application's to add. Its resources start with {@code redlock.shedlock.prefix}.
 */
@AutoConfiguration(after = RedlockAutoConfiguration.class)
@ConditionalOnClass(LockProvider.class)
@ConditionalOnBean(AsyncRedlock.class)
public final class RedlockShedLockAutoConfiguration {

  /** Created by Spring Boot. */
  RedlockShedLockAutoConfiguration() {}

  /**
   * The lock provider, closed with the context.
   *
   * @param redlock the Redlock that takes the locks
   * @param properties for the resource prefix
   * @return the provider
   */
  @Bean(destroyMethod = "close")
  @ConditionalOnMissingBean(LockProvider.class)
  RedlockLockProvider redlockLockProvider(AsyncRedlock redlock, RedlockProperties properties) {
    return new RedlockLockProvider(redlock, properties.getShedlock().getPrefix());
  }
}

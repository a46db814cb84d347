package dev.redlock.spring.boot;

import dev.redlock.java.AsyncRedlock;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.health.autoconfigure.contributor.ConditionalOnEnabledHealthIndicator;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configuration of the {@link RedlockHealthIndicator}, when Spring Boot's health support is on
 * the class path (as with {@code spring-boot-starter-actuator}).
 */
@AutoConfiguration(after = RedlockAutoConfiguration.class)
@ConditionalOnClass({HealthIndicator.class, ConditionalOnEnabledHealthIndicator.class})
@ConditionalOnBean(AsyncRedlock.class)
@ConditionalOnEnabledHealthIndicator("redlock")
public final class RedlockHealthAutoConfiguration {

  /** Created by Spring Boot. */
  RedlockHealthAutoConfiguration() {}

  /**
   * The health indicator, named {@code redlock}.
   *
   * @param redlock the Redlock whose masters it checks
   * @return the indicator
   */
  @Bean
  @ConditionalOnMissingBean(name = "redlockHealthIndicator")
  RedlockHealthIndicator redlockHealthIndicator(AsyncRedlock redlock) {
    return new RedlockHealthIndicator(redlock);
  }
}

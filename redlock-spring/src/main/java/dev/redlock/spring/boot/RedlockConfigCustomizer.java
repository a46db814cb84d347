package dev.redlock.spring.boot;

import dev.redlock.core.RedlockConfig;

/**
 * Changes the {@link RedlockConfig} that the auto-configuration builds from the {@code redlock.*}
 * properties, before it is validated: for what properties cannot express, such as Lettuce {@code
 * SslOptions} or masters reached through a {@code RedisClient} of the application's.
 *
 * <pre>{@code
 * @Bean
 * RedlockConfigCustomizer tls() {
 *   return builder -> builder.sslOptions(SslOptions.builder().jdkSslProvider().build());
 * }
 * }</pre>
 *
 * <p>Every customizer bean is applied, in {@code @Order}, after the properties and the metrics.
 */
@FunctionalInterface
public interface RedlockConfigCustomizer {

  /**
   * Changes the builder.
   *
   * @param builder the builder, set from the properties
   */
  void customize(RedlockConfig.Builder builder);
}

package dev.redlock.spring.boot;

import dev.redlock.core.RedlockConfig;
import dev.redlock.core.micrometer.MicrometerRedlockMetrics;
import dev.redlock.coroutines.Redlock;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.spring.RedlockedAdvisor;
import dev.redlock.spring.internal.KotlinRedlocks;
import io.micrometer.core.instrument.MeterRegistry;
import org.springframework.aop.config.AopConfigUtils;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.config.BeanDefinition;
import org.springframework.beans.factory.support.BeanDefinitionRegistry;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.ImportBeanDefinitionRegistrar;
import org.springframework.context.annotation.Lazy;
import org.springframework.context.annotation.Role;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.core.env.Environment;
import org.springframework.core.type.AnnotationMetadata;

/**
 * Auto-configuration of Redlock: a {@link RedlockConfig} from the {@code redlock.*} properties
 * (or the application's {@code spring.data.redis} server when {@code redlock.masters} is unset),
 * an {@link AsyncRedlock} and a {@link Redlock} over it, both closed with the context, Micrometer
 * metrics when the context has a {@link MeterRegistry}, and the {@link RedlockedAdvisor} that runs
 * {@code @Redlocked} methods.
 *
 * <p>Every bean backs off when the application defines its own. The Kotlin {@code Redlock} is
 * created when first needed (injected, or a {@code suspend} function with {@code @Redlocked}
 * called): each of the two owns its connections to the masters, so an application that uses one
 * of them pays for one. {@code redlock.enabled=false} turns it all off.
 */
@AutoConfiguration
@ConditionalOnClass(AsyncRedlock.class)
@ConditionalOnProperty(prefix = "redlock", name = "enabled", matchIfMissing = true)
@EnableConfigurationProperties(RedlockProperties.class)
@Import(RedlockAutoConfiguration.AutoProxy.class)
public final class RedlockAutoConfiguration {

  /** Created by Spring Boot. */
  RedlockAutoConfiguration() {}

  /**
   * The configuration: the properties, then every {@link RedlockConfigCustomizer}, validated.
   *
   * @param properties the {@code redlock.*} properties
   * @param environment for the {@code spring.data.redis.*} fallback
   * @param customizers the customizers, in order
   * @return the configuration
   */
  @Bean
  @ConditionalOnMissingBean
  RedlockConfig redlockConfig(
      RedlockProperties properties,
      Environment environment,
      ObjectProvider<RedlockConfigCustomizer> customizers) {
    return ConfigFromProperties.build(
        properties, Binder.get(environment), customizers.orderedStream().toList());
  }

  /**
   * The Java Redlock, closed with the context.
   *
   * @param config the configuration
   * @return the Redlock
   */
  @Bean(destroyMethod = "close")
  @ConditionalOnMissingBean
  AsyncRedlock asyncRedlock(RedlockConfig config) {
    return AsyncRedlock.create(config);
  }

  /**
   * The Kotlin Redlock, created when first needed, closed with the context.
   *
   * @param config the configuration
   * @return the Redlock
   */
  @Bean(destroyMethod = "close")
  @Lazy
  @ConditionalOnMissingBean
  Redlock redlock(RedlockConfig config) {
    return KotlinRedlocks.create(config);
  }

  /**
   * The advisor that runs {@code @Redlocked} methods; it looks the Redlocks up at the first call.
   *
   * @param asyncRedlock the Java Redlock
   * @param redlock the Kotlin Redlock
   * @return the advisor
   */
  @Bean
  @Role(BeanDefinition.ROLE_INFRASTRUCTURE)
  @ConditionalOnMissingBean
  static RedlockedAdvisor redlockedAdvisor(
      ObjectProvider<AsyncRedlock> asyncRedlock, ObjectProvider<Redlock> redlock) {
    return new RedlockedAdvisor(asyncRedlock::getObject, redlock::getObject);
  }

  /** Micrometer metrics, when Micrometer is on the class path and the context has a registry. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass({MeterRegistry.class, MicrometerRedlockMetrics.class})
  static class Metrics {
    /**
     * Records into the context's registry, before the application's own customizers run.
     *
     * @param registry the registry, if the context has exactly one
     * @return the customizer
     */
    @Bean
    @Order(Ordered.HIGHEST_PRECEDENCE)
    RedlockConfigCustomizer redlockMicrometerMetrics(ObjectProvider<MeterRegistry> registry) {
      return builder -> {
        MeterRegistry unique = registry.getIfUnique();
        if (unique != null) {
          builder.metrics(MicrometerRedlockMetrics.create(unique));
        }
      };
    }
  }

  /** Makes sure an auto-proxy creator exists, as {@code @EnableTransactionManagement} does. */
  static class AutoProxy implements ImportBeanDefinitionRegistrar {
    @Override
    public void registerBeanDefinitions(
        AnnotationMetadata importingClassMetadata, BeanDefinitionRegistry registry) {
      AopConfigUtils.registerAutoProxyCreatorIfNecessary(registry);
    }
  }
}

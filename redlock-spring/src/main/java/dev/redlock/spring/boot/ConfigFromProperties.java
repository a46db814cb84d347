package dev.redlock.spring.boot;

import dev.redlock.core.RedlockConfig;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.util.ClassUtils;

/**
 * Builds the {@link RedlockConfig} from the properties, and turns the library's validation failure
 * into one that names the property (Spring Boot then reports it with the property's origin).
 */
final class ConfigFromProperties {
  /** The library's setting names (the first word of its messages) and the property of each. */
  private static final Map<String, Function<RedlockProperties, Object>> VALUES =
      Map.ofEntries(
          Map.entry("leaseTime", RedlockProperties::getLeaseTime),
          Map.entry("waitTime", RedlockProperties::getWaitTime),
          Map.entry("retryDelay", RedlockProperties::getRetryDelay),
          Map.entry("driftFactor", RedlockProperties::getDriftFactor),
          Map.entry("driftConstant", RedlockProperties::getDriftConstant),
          Map.entry("nodeTimeout", RedlockProperties::getNodeTimeout),
          Map.entry("keyPrefix", RedlockProperties::getKeyPrefix),
          Map.entry("restartGuard", RedlockProperties::getRestartGuard),
          Map.entry("maxHoldTime", RedlockProperties::getMaxHoldTime),
          Map.entry("replicaAcks", RedlockProperties::getReplicaAcks),
          Map.entry("replicaAckTimeout", RedlockProperties::getReplicaAckTimeout),
          Map.entry("trustedCertificates", RedlockProperties::getTrustedCertificates));

  private static final Pattern SETTING = Pattern.compile("^(\\w+)(?:\\[(\\d+)])?");

  private ConfigFromProperties() {}

  /**
   * The configuration of the properties, then the customizers.
   *
   * @throws InvalidConfigurationPropertyValueException naming the property, with the library's
   *     message as the reason
   */
  static RedlockConfig build(
      RedlockProperties properties, Binder binder, List<RedlockConfigCustomizer> customizers) {
    RedlockConfig.Builder builder = RedlockConfig.builder();
    Masters masters = masters(properties, binder);
    builder.masters(masters.uris());
    builder
        .leaseTime(properties.getLeaseTime())
        .waitTime(properties.getWaitTime())
        .retryDelay(properties.getRetryDelay())
        .driftFactor(properties.getDriftFactor())
        .driftConstant(properties.getDriftConstant())
        .nodeTimeout(properties.getNodeTimeout())
        .keyPrefix(properties.getKeyPrefix())
        .fencing(properties.isFencing())
        .keyTracking(properties.isKeyTracking())
        .replicaAcks(properties.getReplicaAcks())
        .replicaAckTimeout(properties.getReplicaAckTimeout())
        .restartGuard(properties.getRestartGuard())
        .maxHoldTime(properties.getMaxHoldTime())
        .trustedCertificates(properties.getTrustedCertificates());
    for (RedlockConfigCustomizer customizer : customizers) {
      customizer.customize(builder);
    }
    try {
      return builder.build();
    } catch (IllegalArgumentException e) {
      throw named(e, properties, masters);
    }
  }

  /** Where the masters come from, and the property to name when they are wrong. */
  private record Masters(List<String> uris, String property) {}

  private static Masters masters(RedlockProperties properties, Binder binder) {
    if (properties.getMasters() != null && !properties.getMasters().isEmpty()) {
      return new Masters(properties.getMasters(), "redlock.masters");
    }
    String prefix = "spring.data.redis.";
    List<String> cluster =
        binder.bind(prefix + "cluster.nodes", Bindable.listOf(String.class)).orElse(List.of());
    if (!cluster.isEmpty()) {
      // The whole cluster is one Redlock master (its seed nodes), with Spring's credentials and TLS.
      String username = binder.bind(prefix + "username", String.class).orElse(null);
      String password = binder.bind(prefix + "password", String.class).orElse(null);
      boolean ssl = binder.bind(prefix + "ssl.enabled", Boolean.class).orElse(false);
      return new Masters(
          List.of(
              (ssl ? "rediss-cluster://" : "redis-cluster://") + credentials(username, password)
                  + String.join(",", cluster.stream().map(String::trim).toList())),
          prefix + "cluster.nodes");
    }
    String url = binder.bind(prefix + "url", String.class).orElse(null);
    if (url != null && !url.isBlank()) {
      return new Masters(List.of(url), prefix + "url");
    }
    String host = binder.bind(prefix + "host", String.class).orElse(null);
    Integer port = binder.bind(prefix + "port", Integer.class).orElse(null);
    String sentinelMaster = binder.bind(prefix + "sentinel.master", String.class).orElse(null);
    boolean springDataRedis =
        ClassUtils.isPresent(
            "org.springframework.data.redis.connection.RedisConnectionFactory",
            ConfigFromProperties.class.getClassLoader());
    if (host == null && port == null && sentinelMaster == null && !springDataRedis) {
      // No masters anywhere: the library's own message, on redlock.masters.
      return new Masters(List.of(), "redlock.masters");
    }
    String username = binder.bind(prefix + "username", String.class).orElse(null);
    String password = binder.bind(prefix + "password", String.class).orElse(null);
    int database = binder.bind(prefix + "database", Integer.class).orElse(0);
    String credentials = credentials(username, password);
    String path = database != 0 ? "/" + database : "";
    if (sentinelMaster != null) {
      List<String> nodes =
          binder.bind(prefix + "sentinel.nodes", Bindable.listOf(String.class)).orElse(List.of());
      return new Masters(
          List.of("redis-sentinel://" + credentials + String.join(",", nodes) + path + "#" + sentinelMaster),
          prefix + "sentinel.nodes");
    }
    boolean ssl = binder.bind(prefix + "ssl.enabled", Boolean.class).orElse(false);
    return new Masters(
        List.of(
            (ssl ? "rediss://" : "redis://") + credentials + (host != null ? host : "localhost") + ":"
                + (port != null ? port : 6379) + path),
        prefix + (host != null ? "host" : "port"));
  }

  /** {@code user:password@}, {@code :password@} or nothing, percent-encoded for a URI. */
  private static String credentials(String username, String password) {
    return password == null
        ? ""
        : (username == null ? "" : encode(username)) + ":" + encode(password) + "@";
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
  }

  /** The library's failure, on the property it is about; unchanged when it is about no property. */
  private static RuntimeException named(
      IllegalArgumentException e, RedlockProperties properties, Masters masters) {
    String message = e.getMessage() == null ? "" : e.getMessage();
    Matcher setting = SETTING.matcher(message);
    if (!setting.find()) {
      return e;
    }
    String name = setting.group(1);
    String index = setting.group(2);
    RuntimeException named;
    if (name.equals("masters")) {
      String property = masters.property();
      Object value = String.join(",", masters.uris().stream().map(ConfigFromProperties::redact).toList());
      if (index != null && property.equals("redlock.masters")) {
        int i = Integer.parseInt(index);
        property += "[" + i + "]";
        value = i < masters.uris().size() ? redact(masters.uris().get(i)) : "";
      }
      named = new InvalidConfigurationPropertyValueException(property, value, message);
    } else if (VALUES.containsKey(name)) {
      Object value = VALUES.get(name).apply(properties);
      named =
          new InvalidConfigurationPropertyValueException(
              "redlock." + kebab(name), value == null ? "" : value, message);
    } else {
      return e;
    }
    // Its cause is fixed (null) by its constructor: the library's exception goes along as suppressed.
    named.addSuppressed(e);
    return named;
  }

  private static String kebab(String camel) {
    return camel.replaceAll("([a-z])([A-Z])", "$1-$2").toLowerCase(java.util.Locale.ROOT);
  }

  /** A URI without its password, as the library shows masters. */
  private static String redact(String uri) {
    return uri == null ? "" : uri.replaceAll("//[^/@]*@", "//***@");
  }
}

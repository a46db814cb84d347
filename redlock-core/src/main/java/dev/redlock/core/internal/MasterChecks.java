package dev.redlock.core.internal;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SslOptions;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateFactory;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The checks {@code RedlockConfig.Builder.build()} runs on the masters and their TLS settings, and
 * how a master is shown in messages without its password.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public final class MasterChecks {
  private MasterChecks() {}

  /**
   * A master as text: its URI (redacted if asked), or what the user supplied, without credentials.
   *
   * @param spec the master
   * @param index its place in the configuration
   * @param redacted whether to hide the password of a URI
   * @return the text
   */
  public static String describe(MasterSpec spec, int index, boolean redacted) {
    switch (spec.source()) {
      case CLIENT:
        return "client:" + (spec.redisUri() == null ? "null" : redact(spec.redisUri().toString()));
      case CONNECTION:
        return "connection:masters[" + index + "]";
      case CLUSTER_CLIENT:
        return "cluster-client:masters[" + index + "]";
      default:
        return spec.uri() == null ? "null" : redacted ? redact(spec.uri()) : spec.uri();
    }
  }

  /**
   * Replaces the password part of a Redis URI by {@code ***}.
   *
   * @param uri a Redis URI
   * @return the URI without its secret
   */
  public static String redact(String uri) {
    int scheme = uri.indexOf("://");
    int at = uri.lastIndexOf('@');
    if (scheme < 0 || at < scheme) {
      return uri;
    }
    return uri.substring(0, scheme + 3) + "***" + uri.substring(at);
  }

  /**
   * Why a master URI did not parse, without its password: {@code " (reason)"}, or empty when the
   * reason cannot be shown safely.
   */
  private static String redactedReason(RuntimeException e, String uri) {
    String reason = e.getMessage();
    if (uri == null || uri.isBlank() || reason == null) {
      return "";
    }
    reason = reason.replace(uri, redact(uri));
    int scheme = uri.indexOf("://");
    int at = uri.lastIndexOf('@');
    if (scheme >= 0 && at > scheme + 3 && reason.contains(uri.substring(scheme + 3, at))) {
      return "";
    }
    return " (" + reason + ")";
  }

  /**
   * Checks the masters: at least one, each reachable by what it names, no server listed twice.
   *
   * @param masters the masters as given
   * @throws IllegalArgumentException naming the first bad master and what is allowed
   */
  public static void masters(List<MasterSpec> masters) {
    if (masters.isEmpty()) {
      throw new IllegalArgumentException(
          "masters must list at least one Redis URI (redis://host:port), but was empty");
    }
    Map<String, Integer> seen = new HashMap<>();
    Map<Object, Integer> supplied = new IdentityHashMap<>();
    for (int i = 0; i < masters.size(); i++) {
      MasterSpec spec = masters.get(i);
      String server;
      switch (spec.source()) {
        case CLIENT:
          server = checkClientMaster(i, spec);
          break;
        case CONNECTION:
          checkConnectionMaster(i, spec);
          Integer same = supplied.putIfAbsent(spec.connection(), i);
          if (same != null) {
            throw new IllegalArgumentException(
                "masters must be distinct servers, but masters[" + same + "] and masters[" + i
                    + "] are the same connection (one server counted twice would break the"
                    + " majority rule)");
          }
          continue;
        case CLUSTER_CLIENT:
          checkClusterClientMaster(i, spec);
          Integer sameClient = supplied.putIfAbsent(spec.clusterClient(), i);
          if (sameClient != null) {
            throw new IllegalArgumentException(
                "masters must be distinct servers, but masters[" + sameClient + "] and masters[" + i
                    + "] are the same RedisClusterClient (one cluster counted twice would break the"
                    + " majority rule)");
          }
          continue;
        default:
          server = MasterSpec.isClusterUri(spec.uri()) ? checkClusterUriMaster(i, spec.uri()) : checkUriMaster(i, spec.uri());
      }
      Integer earlier = seen.putIfAbsent(server, i);
      if (earlier != null) {
        throw new IllegalArgumentException(
            "masters must be distinct servers, but masters[" + earlier + "] and masters["
                + i + "] are both " + server
                + " (one server counted twice would break the majority rule)");
      }
    }
  }

  /** Checks a master given as a URI string; returns what identifies its server. */
  private static String checkUriMaster(int i, String uri) {
    RedisURI parsed;
    try {
      if (uri == null || uri.isBlank()) {
        throw new IllegalArgumentException("blank");
      }
      parsed = RedisURI.create(uri);
    } catch (RuntimeException e) {
      // Lettuce's exception quotes the URI with its password: keep only a redacted reason,
      // not the exception itself as the cause (a logged stack trace would print it).
      throw new IllegalArgumentException(
          "masters[" + i + "] must be a Redis URI like redis://host:6379,"
              + " rediss://:password@host:6380, redis-sentinel://host:26379#mymaster or"
              + " redis-cluster://host:7000,host:7001, but was '"
              + (uri == null ? "null" : redact(uri)) + "'" + redactedReason(e, uri));
    }
    checkTarget("masters[" + i + "]", parsed, "'" + redact(uri) + "'");
    return MasterSpec.identityOf(parsed);
  }

  /** Checks a Redis Cluster master given as a URI string; returns what identifies the cluster. */
  private static String checkClusterUriMaster(int i, String uri) {
    String what = "masters[" + i + "]";
    List<RedisURI> seeds;
    try {
      seeds = MasterSpec.clusterSeeds(uri);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(
          what + " must be a Redis Cluster URI like redis-cluster://host:7000,host:7001 or"
              + " rediss-cluster://:password@host:7000 (seed nodes of one cluster), but was '"
              + redact(uri) + "'" + redactedReason(e, uri));
    }
    for (RedisURI seed : seeds) {
      if (seed.getSocket() != null) {
        throw new IllegalArgumentException(
            what + " must list cluster nodes as host:port, but was '" + redact(uri) + "'");
      }
      checkTarget(what, seed, "'" + redact(uri) + "'");
    }
    return MasterSpec.clusterIdentity(seeds);
  }

  /** Checks a Redis Cluster master given as the user's cluster client. */
  private static void checkClusterClientMaster(int i, MasterSpec spec) {
    String what = "masters[" + i + "]";
    if (spec.clusterClient() == null) {
      throw new IllegalArgumentException(what + " must be a RedisClusterClient, but was null");
    }
    checkOptions(what + "'s RedisClusterClient", spec.clusterClient().getOptions());
  }

  /** Checks that a parsed URI names a host, a socket or a Sentinel master. */
  private static void checkTarget(String what, RedisURI parsed, String shown) {
    boolean sentinel = parsed.getSentinels() != null && !parsed.getSentinels().isEmpty();
    if (sentinel) {
      if (parsed.getSentinelMasterId() == null || parsed.getSentinelMasterId().isEmpty()) {
        throw new IllegalArgumentException(
            what + " must name the Sentinel master id (redis-sentinel://host:26379#mymaster),"
                + " but was " + shown);
      }
      return;
    }
    if (parsed.getSocket() != null) {
      return;
    }
    String host = parsed.getHost();
    if (host == null || host.isEmpty()) {
      throw new IllegalArgumentException(what + " must name a host, but was " + shown);
    }
    // Lettuce reads "redis://host:abc" as the host "host:abc" on the default port.
    if (host.indexOf(':') >= 0 && !host.startsWith("[") && host.chars().filter(c -> c == ':').count() == 1) {
      throw new IllegalArgumentException(
          what + " must have a port number from 1 to 65535 after the host, but was " + shown);
    }
    if (parsed.getPort() < 1 || parsed.getPort() > 65535) {
      throw new IllegalArgumentException(
          what + " must have a port number from 1 to 65535, but had " + parsed.getPort() + " in " + shown);
    }
  }

  /** Checks a master given as the user's client and URI; returns what identifies its server. */
  private static String checkClientMaster(int i, MasterSpec spec) {
    String what = "masters[" + i + "]";
    if (spec.client() == null || spec.redisUri() == null) {
      throw new IllegalArgumentException(
          what + " must be a RedisClient and a RedisURI, but the "
              + (spec.client() == null ? "client" : "URI") + " was null");
    }
    checkTarget(what, spec.redisUri(), "'" + redact(spec.redisUri().toString()) + "'");
    checkOptions(what + "'s RedisClient", spec.client().getOptions());
    return MasterSpec.identityOf(spec.redisUri());
  }

  /** Checks a master given as the user's connection. */
  private static void checkConnectionMaster(int i, MasterSpec spec) {
    String what = "masters[" + i + "]";
    if (spec.connection() == null) {
      throw new IllegalArgumentException(what + " must be an open connection, but was null");
    }
    if (!spec.connection().isOpen()) {
      throw new IllegalArgumentException(what + " must be an open connection, but was closed");
    }
    checkOptions(what + "'s connection", spec.connection().getOptions());
  }

  /** The rule lock connections need (DESIGN rule 10): reject while disconnected, reconnect. */
  private static void checkOptions(String what, ClientOptions options) {
    if (options.getDisconnectedBehavior() != ClientOptions.DisconnectedBehavior.REJECT_COMMANDS
        || !options.isAutoReconnect()) {
      throw new IllegalArgumentException(
          what + " must reject commands while disconnected and reconnect automatically"
              + " (ClientOptions disconnectedBehavior REJECT_COMMANDS, autoReconnect true: a"
              + " lock command buffered during a disconnect would run after the caller gave up),"
              + " but had disconnectedBehavior " + options.getDisconnectedBehavior()
              + ", autoReconnect " + options.isAutoReconnect()
              + "; set them with client.setOptions(...) before connecting, or use a second"
              + " client that shares your ClientResources");
    }
  }

  /**
   * Checks the TLS settings against the masters they apply to.
   *
   * @param masters the masters as given
   * @param trustedCertificates the PEM file of trusted certificates, or {@code null}
   * @param sslOptions the TLS options, or {@code null}
   * @throws IllegalArgumentException naming what is wrong
   */
  public static void tls(List<MasterSpec> masters, Path trustedCertificates, SslOptions sslOptions) {
    if (trustedCertificates == null && sslOptions == null) {
      return;
    }
    if (trustedCertificates != null && sslOptions != null) {
      throw new IllegalArgumentException(
          "trustedCertificates and sslOptions must not both be set (put the trusted"
              + " certificates into the SslOptions), but both were");
    }
    boolean anyUri = false;
    for (MasterSpec spec : masters) {
      anyUri |= spec.source() == MasterSpec.Source.URI;
    }
    if (!anyUri) {
      throw new IllegalArgumentException(
          (trustedCertificates != null ? "trustedCertificates" : "sslOptions")
              + " applies to masters given as URIs, but every master was given as a RedisClient"
              + " or a connection (whose own options apply)");
    }
    if (trustedCertificates != null) {
      int count;
      try (InputStream in = Files.newInputStream(trustedCertificates)) {
        count = CertificateFactory.getInstance("X.509").generateCertificates(in).size();
      } catch (IOException | GeneralSecurityException e) {
        throw new IllegalArgumentException(
            "trustedCertificates must be a readable PEM file of X.509 certificates, but was '"
                + trustedCertificates + "' (" + e + ")",
            e);
      }
      if (count == 0) {
        throw new IllegalArgumentException(
            "trustedCertificates must be a PEM file of at least one X.509 certificate, but '"
                + trustedCertificates + "' holds none");
      }
    }
  }
}

package dev.redlock.core.internal;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.RedisClusterClient;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * How one master of a configuration is reached: a URI the library connects to with its own
 * client, a user's {@link RedisClient} and {@link RedisURI} (the library opens its connections
 * with that client), or a user's open connection (used as it is).
 *
 * <p>A master may also be a whole Redis Cluster: given as a {@code redis-cluster://} URI (seed
 * nodes; the library connects with its own cluster client) or as the user's {@link
 * RedisClusterClient}.
 *
 * <p>The library closes the connections it opened and never shuts down or closes what the user
 * supplied. Internal to the library: not a public API, may change without notice. Immutable.
 */
public final class MasterSpec {
  /** How a master was given. */
  public enum Source {
    /** As a URI string. */
    URI,
    /** As the user's client and a URI. */
    CLIENT,
    /** As the user's open connection. */
    CONNECTION,
    /** A Redis Cluster, as the user's cluster client. */
    CLUSTER_CLIENT
  }

  /** The scheme of a Redis Cluster master's URI; {@code rediss-cluster} with TLS. */
  public static final String CLUSTER_SCHEME = "redis-cluster";

  /** The scheme of a Redis Cluster master's URI with TLS. */
  public static final String CLUSTER_TLS_SCHEME = "rediss-cluster";

  private final Source source;
  private final String uri;
  private final RedisClient client;
  private final RedisURI redisUri;
  private final StatefulRedisConnection<String, String> connection;
  private final RedisClusterClient clusterClient;

  private MasterSpec(
      Source source,
      String uri,
      RedisClient client,
      RedisURI redisUri,
      StatefulRedisConnection<String, String> connection,
      RedisClusterClient clusterClient) {
    this.source = source;
    this.clusterClient = clusterClient;
    this.uri = uri;
    this.client = client;
    this.redisUri = redisUri;
    this.connection = connection;
  }

  /**
   * A master given as a URI string.
   *
   * @param uri the URI, as given (may be null or malformed until the configuration is validated)
   * @return the spec
   */
  public static MasterSpec ofUri(String uri) {
    return new MasterSpec(Source.URI, uri, null, null, null, null);
  }

  /**
   * A master reached through the user's client.
   *
   * @param client the user's client (never shut down by the library)
   * @param uri the master's URI
   * @return the spec
   */
  public static MasterSpec ofClient(RedisClient client, RedisURI uri) {
    return new MasterSpec(Source.CLIENT, null, client, uri, null, null);
  }

  /**
   * A master reached through the user's connection.
   *
   * @param connection the user's connection (never closed by the library)
   * @return the spec
   */
  public static MasterSpec ofConnection(StatefulRedisConnection<String, String> connection) {
    return new MasterSpec(Source.CONNECTION, null, null, null, connection, null);
  }

  /**
   * A Redis Cluster master reached through the user's cluster client (its seed URIs and options).
   *
   * @param client the user's cluster client (never shut down by the library)
   * @return the spec
   */
  public static MasterSpec ofCluster(RedisClusterClient client) {
    return new MasterSpec(Source.CLUSTER_CLIENT, null, null, null, null, client);
  }

  /**
   * How the master was given.
   *
   * @return the source
   */
  public Source source() {
    return source;
  }

  /**
   * The URI string, for a master given as a URI.
   *
   * @return the URI as given, or {@code null} for a user-supplied client or connection
   */
  public String uri() {
    return uri;
  }

  /**
   * The user's client, for a master given as a client and URI.
   *
   * @return the client, or {@code null}
   */
  public RedisClient client() {
    return client;
  }

  /**
   * The URI to connect to with the user's client.
   *
   * @return the URI, or {@code null} when the master was not given as a client and URI
   */
  public RedisURI redisUri() {
    return redisUri;
  }

  /**
   * The user's connection.
   *
   * @return the connection, or {@code null} when the master was not given as a connection
   */
  public StatefulRedisConnection<String, String> connection() {
    return connection;
  }

  /**
   * The user's cluster client.
   *
   * @return the client, or {@code null} when the master was not given as a cluster client
   */
  public RedisClusterClient clusterClient() {
    return clusterClient;
  }

  /**
   * Whether this master is a Redis Cluster (a cluster URI or a cluster client).
   *
   * @return {@code true} for a cluster master
   */
  public boolean isCluster() {
    return source == Source.CLUSTER_CLIENT || (source == Source.URI && isClusterUri(uri));
  }

  /**
   * Whether a URI names a Redis Cluster master ({@code redis-cluster://} or {@code
   * rediss-cluster://}).
   *
   * @param uri a master URI, possibly null
   * @return whether its scheme is a cluster scheme
   */
  public static boolean isClusterUri(String uri) {
    if (uri == null) {
      return false;
    }
    String lower = uri.trim().toLowerCase(Locale.ROOT);
    return lower.startsWith(CLUSTER_SCHEME + "://") || lower.startsWith(CLUSTER_TLS_SCHEME + "://");
  }

  /**
   * The seed nodes of a cluster URI {@code redis-cluster://[[user]:password@]host:port[,host:port...][?query]}
   * as {@code redis://} (or {@code rediss://}) URIs, each with the credentials and query.
   *
   * @param uri a cluster URI
   * @return one URI per seed node
   * @throws IllegalArgumentException when a seed does not parse (the message may hold the URI)
   */
  public static List<RedisURI> clusterSeeds(String uri) {
    String trimmed = uri.trim();
    int scheme = trimmed.indexOf("://");
    boolean tls = trimmed.substring(0, scheme).equalsIgnoreCase(CLUSTER_TLS_SCHEME);
    String rest = trimmed.substring(scheme + 3);
    int at = rest.lastIndexOf('@');
    String credentials = at >= 0 ? rest.substring(0, at + 1) : "";
    String hosts = at >= 0 ? rest.substring(at + 1) : rest;
    String tail = "";
    int cut = -1;
    for (int i = 0; i < hosts.length(); i++) {
      char c = hosts.charAt(i);
      if (c == '?' || c == '/' || c == '#') {
        cut = i;
        break;
      }
    }
    if (cut >= 0) {
      tail = hosts.substring(cut);
      hosts = hosts.substring(0, cut);
    }
    if (tail.startsWith("/") || tail.startsWith("#")) {
      throw new IllegalArgumentException(
          "a cluster has no database number or master id (a cluster serves database 0 only)");
    }
    List<RedisURI> seeds = new ArrayList<>();
    for (String host : hosts.split(",", -1)) {
      if (host.isBlank()) {
        throw new IllegalArgumentException("an empty seed node in the host list");
      }
      seeds.add(RedisURI.create((tls ? "rediss://" : "redis://") + credentials + host.trim() + tail));
    }
    return seeds;
  }

  /**
   * The name of a cluster master in messages: {@code cluster host:port,host:port}, without
   * credentials.
   *
   * @param seeds its seed URIs
   * @return the name
   */
  public static String clusterName(List<RedisURI> seeds) {
    return "cluster "
        + seeds.stream().map(s -> s.getHost() + ":" + s.getPort()).collect(Collectors.joining(","));
  }

  /**
   * What identifies a cluster master given by seeds, to tell one given twice: its seeds, sorted.
   *
   * @param seeds its seed URIs
   * @return the identity
   */
  public static String clusterIdentity(List<RedisURI> seeds) {
    return "cluster "
        + seeds.stream()
            .map(s -> s.getHost().toLowerCase(Locale.ROOT) + ":" + s.getPort())
            .sorted()
            .collect(Collectors.joining(","));
  }

  /**
   * The name of a master in messages, without credentials: {@code host:port}, the socket path,
   * or {@code <masterId> via <sentinel host:port,...>} for a Sentinel-managed master.
   *
   * @param uri the master's URI
   * @return the name
   */
  public static String nameOf(RedisURI uri) {
    if (uri.getSocket() != null) {
      return uri.getSocket();
    }
    if (uri.getSentinels() != null && !uri.getSentinels().isEmpty()) {
      return uri.getSentinelMasterId()
          + " via "
          + uri.getSentinels().stream()
              .map(s -> s.getHost() + ":" + s.getPort())
              .collect(Collectors.joining(","));
    }
    return uri.getHost() + ":" + uri.getPort();
  }

  /**
   * What identifies the server behind a URI, to tell a master given twice: the socket path,
   * {@code host:port} (host in lower case), or the Sentinel master id with its sentinels.
   *
   * @param uri the master's URI
   * @return the identity
   */
  public static String identityOf(RedisURI uri) {
    if (uri.getSocket() != null) {
      return uri.getSocket();
    }
    if (uri.getSentinels() != null && !uri.getSentinels().isEmpty()) {
      return "sentinel master " + uri.getSentinelMasterId() + " via "
          + uri.getSentinels().stream()
              .map(s -> s.getHost().toLowerCase(Locale.ROOT) + ":" + s.getPort())
              .sorted()
              .collect(Collectors.joining(","));
    }
    return uri.getHost().toLowerCase(Locale.ROOT) + ":" + uri.getPort();
  }
}

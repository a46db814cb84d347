package dev.redlock.core.internal;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * How one master of a configuration is reached: a URI the library connects to with its own
 * client, a user's {@link RedisClient} and {@link RedisURI} (the library opens its connections
 * with that client), or a user's open connection (used as it is).
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
    CONNECTION
  }

  private final Source source;
  private final String uri;
  private final RedisClient client;
  private final RedisURI redisUri;
  private final StatefulRedisConnection<String, String> connection;

  private MasterSpec(
      Source source,
      String uri,
      RedisClient client,
      RedisURI redisUri,
      StatefulRedisConnection<String, String> connection) {
    this.source = source;
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
    return new MasterSpec(Source.URI, uri, null, null, null);
  }

  /**
   * A master reached through the user's client.
   *
   * @param client the user's client (never shut down by the library)
   * @param uri the master's URI
   * @return the spec
   */
  public static MasterSpec ofClient(RedisClient client, RedisURI uri) {
    return new MasterSpec(Source.CLIENT, null, client, uri, null);
  }

  /**
   * A master reached through the user's connection.
   *
   * @param connection the user's connection (never closed by the library)
   * @return the spec
   */
  public static MasterSpec ofConnection(StatefulRedisConnection<String, String> connection) {
    return new MasterSpec(Source.CONNECTION, null, null, null, connection);
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

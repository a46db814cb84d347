package dev.redlock.core;

import java.util.Objects;

/**
 * One master failed to answer a lock command, or answered with an error.
 *
 * <p>It is never thrown on its own by a lock operation: a lock keeps working while a majority
 * answers. It appears as the cause (or a suppressed exception) of {@link
 * LockNotAcquiredException}, {@link LockNotExtendedException} and {@link LockLostException},
 * one per failing master, with the Lettuce exception as its own cause.
 */
public final class MasterFailureException extends RedlockException {
  private static final long serialVersionUID = 1L;

  /** What kind of failure a master had. */
  public enum Kind {
    /** No reply within the per-node timeout. The command may still run on the server later. */
    TIMEOUT,
    /** The master could not be reached, or the connection dropped. */
    UNREACHABLE,
    /** The master refused our credentials ({@code NOAUTH}, {@code WRONGPASS}). Not retried. */
    AUTHENTICATION,
    /** A lock key holds a value of another type than a lock. Not retried. */
    WRONG_TYPE,
    /** Any other error reply from the master. */
    ERROR,
    /**
     * The master's ACL does not let our user run a command, or touch a key or channel, that
     * locking needs ({@code NOPERM}). Not retried.
     */
    PERMISSION,
    /**
     * The TLS handshake failed: the master's certificate is not trusted or does not name the
     * host, or the two sides share no protocol. Not retried.
     */
    /**
     * The master granted or renewed, but fewer of its replicas than {@code replicaAcks} asks for
     * acknowledged the write in time ({@code WAIT}): the vote does not count. Retried.
     */
    NOT_REPLICATED,
    TLS,
    /**
     * The master is the same server (the same {@code run_id}) as an earlier master of the
     * configuration, reached under another spelling of its address: its answers are not counted
     * a second time, so one server never makes up two votes of a majority. Not retried.
     */
    DUPLICATE;

    /**
     * Whether waiting and retrying cannot fix this failure (bad credentials, missing ACL
     * permissions, an untrusted certificate, a foreign key).
     *
     * @return {@code true} for {@link #AUTHENTICATION}, {@link #PERMISSION}, {@link #TLS},
     *     {@link #WRONG_TYPE} and {@link #DUPLICATE}
     */
    public boolean isPermanent() {
      return this == AUTHENTICATION || this == WRONG_TYPE || this == PERMISSION || this == TLS
          || this == DUPLICATE;
    }
  }

  private final String master;
  private final Kind kind;

  /**
   * Creates the failure of one master.
   *
   * @param master the master as {@code host:port}, or {@code <masterId> via <sentinels>} for a
   *     Sentinel-managed master (never with its password)
   * @param kind what kind of failure it was
   * @param detail what happened, for a person to read
   * @param cause the Lettuce or JDK exception, may be {@code null}
   */
  public MasterFailureException(String master, Kind kind, String detail, Throwable cause) {
    super(master + ": " + detail, cause);
    this.master = Objects.requireNonNull(master, "master");
    this.kind = Objects.requireNonNull(kind, "kind");
  }

  /**
   * The master that failed.
   *
   * @return {@code host:port} (or {@code <masterId> via <sentinels>}), without credentials
   */
  public String master() {
    return master;
  }

  /**
   * What kind of failure it was.
   *
   * @return the kind, never {@code null}
   */
  public Kind kind() {
    return kind;
  }
}

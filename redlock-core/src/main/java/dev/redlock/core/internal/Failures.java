package dev.redlock.core.internal;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import io.lettuce.core.RedisConnectionException;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;

/**
 * Turns what went wrong with one master's command into a {@link MasterFailureException} of the
 * right {@link Kind}, with a message that says what to do about it.
 *
 * <p>Redis and Lettuce report most failures as text only, so part of the classification reads the
 * messages of the cause chain (the error codes Redis puts first: {@code NOPERM}, {@code WRONGPASS},
 * {@code WRONGTYPE}...). Internal to the library: not a public API, may change without notice.
 */
public final class Failures {
  private final String master;

  /**
   * Creates the classifier of one master's failures.
   *
   * @param master the master's name in messages ({@code host:port}, no credentials)
   */
  public Failures(String master) {
    this.master = master;
  }

  /**
   * The master these failures are of.
   *
   * @return its name in messages
   */
  public String master() {
    return master;
  }

  /**
   * A command that got no reply in time.
   *
   * @param timeout the bound that applied
   * @param sent whether the command had been sent (else the connection was still opening)
   * @return the failure
   */
  public MasterFailureException timedOut(Duration timeout, boolean sent) {
    return new MasterFailureException(
        master,
        Kind.TIMEOUT,
        sent
            ? "no reply within " + Checks.show(timeout)
            : "not connected within " + Checks.show(timeout) + " (the command was not sent)",
        null);
  }

  /**
   * A connection that could not be opened.
   *
   * @param e why
   * @param connectTimeout the bound on opening it
   * @return the failure
   */
  public MasterFailureException connect(Throwable e, Duration connectTimeout) {
    e = unwrap(e);
    if (e instanceof TimeoutException) {
      return new MasterFailureException(
          master, Kind.TIMEOUT, "could not open a connection within " + Checks.show(connectTimeout), e);
    }
    return of(e, Duration.ZERO);
  }

  /**
   * Classifies any failure of this master.
   *
   * @param e the failure
   * @param timeout the bound that applied
   * @return the failure as a {@link MasterFailureException}
   */
  public MasterFailureException of(Throwable e, Duration timeout) {
    e = unwrap(e);
    if (e instanceof MasterFailureException m) {
      return m;
    }
    if (e instanceof TimeoutException || e instanceof io.lettuce.core.RedisCommandTimeoutException) {
      return new MasterFailureException(master, Kind.TIMEOUT, "no reply within " + Checks.show(timeout), e);
    }
    String all = messages(e);
    String lower = all.toLowerCase(Locale.ROOT);
    Throwable tls = tlsFailure(e);
    if (tls != null) {
      if (tls.getClass().getSimpleName().contains("Timeout")) {
        return new MasterFailureException(
            master, Kind.TIMEOUT, "the TLS handshake did not complete (" + firstLine(all) + ")", e);
      }
      return new MasterFailureException(
          master,
          Kind.TLS,
          "the TLS handshake failed; check that the master's certificate is trusted (RedlockConfig"
              + " trustedCertificates or sslOptions), names the host of its URI, and that the"
              + " master speaks TLS on that port (" + firstLine(all) + ")",
          e);
    }
    if (lower.contains("wrongpass") || lower.contains("noauth")
        || lower.contains("invalid password") || lower.contains("invalid username-password")
        || lower.contains("authentication")) {
      return new MasterFailureException(
          master,
          Kind.AUTHENTICATION,
          "authentication failed; check the user and password in the master's URI (" + firstLine(all) + ")",
          e);
    }
    if (lower.contains("noperm") || lower.contains("no permissions")
        || lower.contains("can't run this command")) {
      return new MasterFailureException(
          master,
          Kind.PERMISSION,
          "the master's ACL denies the user a command, key or channel that locking needs (see the"
              + " README for the rules a lock user needs) (" + firstLine(all) + ")",
          e);
    }
    if (all.startsWith("TRYAGAIN") || all.contains(": TRYAGAIN")) {
      // A multi-key command while its slot moves between two primaries and its keys are split
      // between them; lasts until the migration of the slot ends. Not retried here: a node timeout
      // rarely outlasts a migration, and the acquisition (or the next renewal) tries again anyway.
      return new MasterFailureException(
          master,
          Kind.ERROR,
          "the lock's hash slot is being migrated between two primaries and its keys are split between"
              + " them (TRYAGAIN); the vote does not count until the migration ends (" + firstLine(all) + ")",
          e);
    }
    if (all.startsWith("CLUSTERDOWN") || all.contains(": CLUSTERDOWN")) {
      return new MasterFailureException(
          master,
          Kind.UNREACHABLE,
          "the cluster serves no commands now (CLUSTERDOWN): a shard's primary is down and not failed"
              + " over yet, or the nodes lost their majority (" + firstLine(all) + ")",
          e);
    }
    if (all.contains("WRONGTYPE")) {
      return new MasterFailureException(master, Kind.WRONG_TYPE, firstLine(all), e);
    }
    if (lower.contains("stack size exceeded") || lower.contains("queue size exceeded")
        || lower.contains("buffer size exceeded")) {
      // Lettuce's bounded request queue: the master has not answered that many commands (paused,
      // or far behind); new ones are refused at once instead of piling up without bound.
      return new MasterFailureException(
          master,
          Kind.UNREACHABLE,
          "too many commands are waiting for this master's reply; it is paused or overloaded ("
              + firstLine(all) + ")",
          e);
    }
    if (e instanceof RedisConnectionException
        || e instanceof IOException
        || e instanceof ClosedChannelException
        || lower.contains("not connected")
        || lower.contains("connection")) {
      return new MasterFailureException(master, Kind.UNREACHABLE, "unreachable (" + firstLine(all) + ")", e);
    }
    return new MasterFailureException(master, Kind.ERROR, firstLine(all), e);
  }

  /**
   * Takes off the wrappers that futures put around a failure.
   *
   * @param e the failure as a future reported it
   * @return the failure itself
   */
  public static Throwable unwrap(Throwable e) {
    while ((e instanceof CompletionException || e instanceof ExecutionException) && e.getCause() != null) {
      e = e.getCause();
    }
    return e;
  }

  /** The TLS failure in a cause chain, if there is one. */
  private static Throwable tlsFailure(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof javax.net.ssl.SSLException) {
        return t;
      }
    }
    return null;
  }

  private static String messages(Throwable e) {
    StringBuilder b = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t.getMessage() != null) {
        if (b.length() > 0) {
          b.append(": ");
        }
        b.append(t.getMessage());
      }
    }
    return b.length() == 0 ? e.getClass().getSimpleName() : b.toString();
  }

  private static String firstLine(String s) {
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}

package dev.redlock.core.internal;

import java.time.Duration;

/**
 * Argument checks shared by the configuration and the per-call overrides of every lock API.
 *
 * <p>Internal to the library: not a public API, may change without notice. Every message names
 * the setting, the allowed range and the value that was given.
 */
public final class Checks {
  /** The shortest lease the library accepts: shorter ones cannot survive one round trip. */
  public static final Duration MIN_LEASE_TIME = Duration.ofMillis(10);

  /** The longest lease: a day. Longer leases make a crashed holder block others for too long. */
  public static final Duration MAX_LEASE_TIME = Duration.ofDays(1);

  /** The longest wait for a lock. */
  public static final Duration MAX_WAIT_TIME = Duration.ofDays(365);

  private Checks() {}

  /**
   * Checks a lease time.
   *
   * @param setting the name the caller knows the setting by
   * @param value the value given
   * @return the value
   * @throws IllegalArgumentException naming the setting, the range and the value
   */
  public static Duration leaseTime(String setting, Duration value) {
    return between(setting, value, MIN_LEASE_TIME, MAX_LEASE_TIME);
  }

  /**
   * Checks a wait time (zero means one attempt, no waiting).
   *
   * @param setting the name the caller knows the setting by
   * @param value the value given
   * @return the value
   * @throws IllegalArgumentException naming the setting, the range and the value
   */
  public static Duration waitTime(String setting, Duration value) {
    return between(setting, value, Duration.ZERO, MAX_WAIT_TIME);
  }

  /**
   * Checks that a duration lies within {@code [min, max]}.
   *
   * @param setting the name the caller knows the setting by
   * @param value the value given
   * @param min the smallest allowed value
   * @param max the largest allowed value
   * @return the value
   * @throws IllegalArgumentException naming the setting, the range and the value
   */
  public static Duration between(String setting, Duration value, Duration min, Duration max) {
    if (value == null) {
      throw new IllegalArgumentException(
          setting + " must be set to a duration between " + show(min) + " and " + show(max)
              + ", but was null");
    }
    if (value.compareTo(min) < 0 || value.compareTo(max) > 0) {
      throw new IllegalArgumentException(
          setting + " must be between " + show(min) + " and " + show(max) + ", but was "
              + show(value));
    }
    return value;
  }

  /**
   * Checks a resource name: non-empty, no longer than 1024 characters.
   *
   * @param resource the resource name given
   * @return the resource
   * @throws IllegalArgumentException naming what is wrong
   */
  public static String resource(String resource) {
    if (resource == null || resource.isEmpty()) {
      throw new IllegalArgumentException(
          "resource must be a non-empty string of at most 1024 characters, but was "
              + (resource == null ? "null" : "\"\""));
    }
    if (resource.length() > 1024) {
      throw new IllegalArgumentException(
          "resource must be a non-empty string of at most 1024 characters, but was "
              + resource.length() + " characters long");
    }
    if (resource.indexOf('\u0000') >= 0) {
      throw new IllegalArgumentException(
          "resource must not contain the NUL character (reserved for the library's own keys),"
              + " but did at index " + resource.indexOf('\u0000'));
    }
    return resource;
  }

  /**
   * The key of a resource's fencing counter: its lock key followed by a NUL character and {@code
   * fence}, which no lock key can be (resource names and key prefixes cannot contain NUL).
   *
   * @param lockKey the lock key of the resource
   * @return the counter's key
   */
  public static String fenceKey(String lockKey) {
    return lockKey + "\u0000fence";
  }

  /**
   * Shows a duration the way people write it: {@code 250ms}, {@code 10s}, {@code 1.5s}, {@code -3ms}.
   *
   * @param d the duration
   * @return a short human form
   */
  public static String show(Duration d) {
    if (d == null) {
      return "null";
    }
    long nanos;
    try {
      nanos = d.toNanos();
    } catch (ArithmeticException e) {
      return d.toString();
    }
    if (nanos % 1_000_000L != 0 && Math.abs(nanos) < 1_000_000_000L) {
      return (nanos / 1000) / 1000.0 + "ms";
    }
    long ms = nanos / 1_000_000L;
    if (ms % 1000 != 0 || ms == 0) {
      return ms + "ms";
    }
    long s = ms / 1000;
    if (s % 86_400 == 0) {
      return s / 86_400 + "d";
    }
    if (s % 3600 == 0) {
      return s / 3600 + "h";
    }
    if (s % 60 == 0) {
      return s / 60 + "m";
    }
    return s + "s";
  }
}

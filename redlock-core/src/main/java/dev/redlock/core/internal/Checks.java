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
   * Checks a node timeout against the lease time it must serve: at least 1 ms and at most a third
   * of the lease (a renewal runs every third of the lease and must be over before the next one).
   *
   * @param setting the name of the node timeout setting
   * @param value the node timeout
   * @param leaseSetting the name of the lease time setting
   * @param lease the lease time
   * @return the value
   * @throws IllegalArgumentException naming both settings, the range and the values
   */
  public static Duration nodeTimeout(String setting, Duration value, String leaseSetting, Duration lease) {
    Duration third = lease.dividedBy(3);
    if (value.compareTo(Duration.ofMillis(1)) < 0 || value.compareTo(third) > 0) {
      throw new IllegalArgumentException(
          setting + " must be between 1ms and a third of " + leaseSetting + " (" + show(lease) + "/3 = "
              + show(third) + "), so that a renewal is over before the next one is due, but was "
              + show(value)
              + (value.compareTo(third) > 0
                  ? "; raise " + leaseSetting + " to at least " + show(value.multipliedBy(3))
                      + " or lower " + setting
                  : ""));
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
    if (resource.isBlank()) {
      throw new IllegalArgumentException(
          "resource must contain a character other than whitespace, but was \"" + resource + "\"");
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
   * Checks the resources of one lock: at least one, each a valid name ({@link #resource}), no name
   * twice.
   *
   * @param resources the names given
   * @return the names, in order, unmodifiable
   * @throws IllegalArgumentException naming what is wrong
   */
  public static java.util.List<String> resources(java.util.List<String> resources) {
    if (resources.isEmpty()) {
      throw new IllegalArgumentException("resources must name at least one resource, but none was given");
    }
    if (resources.size() == 1) {
      // The common case: a singleton list is the smallest (one is held per lease).
      return java.util.Collections.singletonList(resource(resources.get(0)));
    }
    java.util.Map<String, Integer> counts = new java.util.HashMap<>();
    for (String r : resources) {
      counts.merge(resource(r), 1, Integer::sum);
    }
    for (String r : resources) {
      int count = counts.get(r);
      if (count > 1) {
        throw new IllegalArgumentException(
            "resources must be distinct, but '" + r + "' was given " + count + " times");
      }
    }
    return java.util.List.copyOf(resources);
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

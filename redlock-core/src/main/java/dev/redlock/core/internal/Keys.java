package dev.redlock.core.internal;

/**
 * Every name the library gives a Redis key or a pub/sub channel: the one place the key layout is
 * spelled out (the engine, the scripts' callers and the test kit all take their names from here).
 *
 * <p>A resource's lock key is {@code <keyPrefix><resource>}. The other keys of a resource append a
 * NUL character and a suffix to its lock key; resource names and key prefixes cannot contain NUL
 * (see {@link Checks#resource}), so these keys never collide with a lock key or with each other.
 * The boot marker starts with NUL, so no lock key can be it either.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public final class Keys {
  /** A master's boot marker for the restart guard: the server time (ms) the marker dates from. */
  public static final String BOOT_MARKER = "\u0000redlock-boot";

  /**
   * A script (one key: {@link #BOOT_MARKER}) that dates the boot marker a year back: the master has
   * granted no lock it could have forgotten, so the restart guard counts its votes at once. For
   * test fleets that start masters fresh (the library itself never runs it).
   */
  public static final String BOOT_MARKER_NEVER_GRANTED =
      "local t = redis.call('TIME') redis.call('SET', KEYS[1], string.format('%d', t[1] * 1000 - 31536000000))";

  /** Channels of release notices are this prefix followed by the key waiters listen to. */
  public static final String RELEASE_CHANNEL_PREFIX = "redlock-released:";

  private Keys() {}

  /**
   * The lock key of a resource.
   *
   * @param keyPrefix the configured key prefix
   * @param resource the resource name
   * @return {@code keyPrefix + resource}
   */
  public static String lock(String keyPrefix, String resource) {
    return keyPrefix + resource;
  }

  /**
   * The fencing counter of a resource (no expiry).
   *
   * @param lockKey the resource's lock key
   * @return {@code <lockKey>\0fence}
   */
  public static String fence(String lockKey) {
    return lockKey + "\u0000fence";
  }

  /**
   * The key the writer of a resource's reader-writer lock holds.
   *
   * @param lockKey the resource's lock key
   * @return {@code <lockKey>\0write}
   */
  public static String writer(String lockKey) {
    return lockKey + "\u0000write";
  }

  /**
   * The sorted set of the readers of a resource's reader-writer lock, scored by expiry.
   *
   * @param lockKey the resource's lock key
   * @return {@code <lockKey>\0readers}
   */
  public static String readers(String lockKey) {
    return lockKey + "\u0000readers";
  }

  /**
   * The mark of a writer waiting for a resource's reader-writer lock (keeps new readers out).
   *
   * @param lockKey the resource's lock key
   * @return {@code <lockKey>\0write-waiting}
   */
  public static String writerWaiting(String lockKey) {
    return lockKey + "\u0000write-waiting";
  }

  /**
   * The sorted set of the holders of a resource's semaphore, scored by expiry.
   *
   * @param lockKey the resource's lock key
   * @return {@code <lockKey>\0permits}
   */
  public static String permitHolders(String lockKey) {
    return lockKey + "\u0000permits";
  }

  /**
   * The number of permits the holders of a resource's semaphore agreed on.
   *
   * @param lockKey the resource's lock key
   * @return {@code <lockKey>\0permit-count}
   */
  public static String permitCount(String lockKey) {
    return lockKey + "\u0000permit-count";
  }

  /**
   * The channel on which releases of a key are announced.
   *
   * @param key the key waiters listen to
   * @return {@link #RELEASE_CHANNEL_PREFIX} followed by the key
   */
  public static String releaseChannel(String key) {
    return RELEASE_CHANNEL_PREFIX + key;
  }
}

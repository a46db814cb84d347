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
 * <p>On a Redis Cluster master every key of a resource must live in one hash slot, so there the
 * lock key and the keys derived from it are written with the lock key as their hash tag ({@link
 * #onCluster}): {@code {<keyPrefix><resource>}} and {@code {<keyPrefix><resource>}\0fence}. The
 * restart guard's marker is one per slot there ({@link #clusterBootMarker}). Standalone and
 * Sentinel-managed masters keep the plain names.
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

  /** The number of hash slots of a Redis Cluster. */
  public static final int SLOTS = 16_384;

  /**
   * The name a key of the layout above has on a Redis Cluster master: the lock key part (everything
   * before the first NUL) in braces, as the hash tag, followed by the rest. All keys of one
   * resource then hash to one slot, the slot of its lock key's tag.
   *
   * @param key a lock key or a key derived from one (not {@link #BOOT_MARKER}: see {@link
   *     #clusterBootMarker})
   * @return {@code {<lockKey>}<suffix>}
   */
  public static String onCluster(String key) {
    int nul = key.indexOf('\u0000');
    return nul < 0 ? "{" + key + "}" : "{" + key.substring(0, nul) + "}" + key.substring(nul);
  }

  /**
   * Whether a key written by {@link #onCluster} has a hash tag: not when its lock key starts with
   * {@code '}'} (the braces would then enclose nothing, and Redis would hash each whole key apart).
   *
   * @param key a lock key or a key derived from one
   * @return whether all keys of its resource share one slot on a cluster master
   */
  public static boolean taggable(String key) {
    return !key.isEmpty() && key.charAt(0) != '}' && key.charAt(0) != '\u0000';
  }

  /**
   * The hash slot of a key on a Redis Cluster: CRC16 (XMODEM) of its hash tag (the text between the
   * first {@code '{'} and the next {@code '}'}, when not empty) or of the whole key, modulo 16384.
   *
   * @param key the key
   * @return the slot, 0 to 16383
   */
  public static int slot(String key) {
    byte[] bytes = key.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    int from = 0;
    int to = bytes.length;
    for (int open = 0; open < bytes.length; open++) {
      if (bytes[open] == '{') {
        for (int close = open + 1; close < bytes.length; close++) {
          if (bytes[close] == '}') {
            if (close > open + 1) {
              from = open + 1;
              to = close;
            }
            break;
          }
        }
        break;
      }
    }
    return crc16(bytes, from, to) % SLOTS;
  }

  /**
   * The restart guard's marker of one hash slot of a Redis Cluster master (one marker per slot, as
   * a script may only touch keys of one slot): {@code {<tag>}\0redlock-boot}, where the tag is the
   * shortest name that hashes to the slot. It moves with its slot's keys in a slot migration.
   *
   * @param slot the slot, 0 to 16383
   * @return the marker's key
   */
  public static String clusterBootMarker(int slot) {
    return "{" + SlotTags.TAGS[slot] + "}" + BOOT_MARKER;
  }

  private static int crc16(byte[] bytes, int from, int to) {
    int crc = 0;
    for (int i = from; i < to; i++) {
      crc ^= (bytes[i] & 0xff) << 8;
      for (int b = 0; b < 8; b++) {
        crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
      }
      crc &= 0xffff;
    }
    return crc;
  }

  /** Per slot, the first name in order (length, then characters 0-9a-z) that hashes to it. */
  private static final class SlotTags {
    static final String[] TAGS = build();

    private static String[] build() {
      String[] tags = new String[SLOTS];
      String alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
      int found = 0;
      for (int length = 1; found < SLOTS; length++) {
        int[] digits = new int[length];
        char[] name = new char[length];
        byte[] bytes = new byte[length];
        while (true) {
          for (int i = 0; i < length; i++) {
            name[i] = alphabet.charAt(digits[i]);
            bytes[i] = (byte) name[i];
          }
          int slot = crc16(bytes, 0, length) % SLOTS;
          if (tags[slot] == null) {
            tags[slot] = new String(name);
            found++;
          }
          int i = length - 1;
          while (i >= 0 && ++digits[i] == alphabet.length()) {
            digits[i--] = 0;
          }
          if (i < 0) {
            break;
          }
        }
      }
      return tags;
    }
  }
}

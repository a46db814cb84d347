package dev.redlock.core.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One Lua script shipped as a resource file, with its SHA-1 for {@code EVALSHA}.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public final class Script {
  /** A line joining a shared script in (declared ahead of the scripts, which use it as they load). */
  private static final Pattern INCLUDE = Pattern.compile("^--#include (\\w+)\n", Pattern.MULTILINE);

  /** Acquires every key of one lease, all or nothing. */
  public static final Script ACQUIRE = load("acquire");

  /** Extends one or several leases (coalesced renewals). */
  public static final Script EXTEND = load("extend");

  /** Releases one lease and announces the release. */
  public static final Script RELEASE = load("release");

  /** Confirms a fencing number on a master that still holds the lease. */
  public static final Script FENCE = load("fence");

  /** Acquires a read or a write lease of a reader-writer lock. */
  public static final Script RW_ACQUIRE = load("rw_acquire");

  /** Acquires one permit of a semaphore with expiring permits. */
  public static final Script SEMAPHORE_ACQUIRE = load("semaphore_acquire");

  /** Extends leases kept as members of sorted sets (readers, permits). */
  public static final Script SHARED_EXTEND = load("shared_extend");

  /** Releases a lease of a reader-writer lock or a semaphore and announces it. */
  public static final Script SHARED_RELEASE = load("shared_release");

  /**
   * Hands a lease's keys from its holder to the next holder in one call (the same keys and
   * arguments as {@link #ACQUIRE}, then the old holder's token): only nodes that say {@link
   * LockNode#handsOff()} are given it.
   */
  public static final Script HANDOFF = load("handoff");

  /** Reads how old a master's data is (its boot marker), creating nothing: for health checks. */
  public static final Script PROBE = load("probe");

  /** Every script, for loading them ahead of use. */
  static final Script[] ALL = {
    ACQUIRE, EXTEND, RELEASE, FENCE, RW_ACQUIRE, SEMAPHORE_ACQUIRE, SHARED_EXTEND, SHARED_RELEASE, PROBE, HANDOFF
  };

  private final String name;
  private final String text;
  private final String sha;

  private Script(String name, String text) {
    this.name = name;
    this.text = text;
    this.sha = sha1(text);
  }

  /**
   * The script's name (the resource file without {@code .lua}).
   *
   * @return the name
   */
  public String name() {
    return name;
  }

  /**
   * The Lua source.
   *
   * @return the source text
   */
  public String text() {
    return text;
  }

  /**
   * The SHA-1 of the source, as Redis computes it for {@code SCRIPT LOAD}.
   *
   * @return 40 lowercase hex digits
   */
  public String sha() {
    return sha;
  }

  private static Script load(String name) {
    // A line "--#include X" is replaced by the shared X.lua: boot (the restart guard's marker),
    // grant (setting the keys of a granted lease), holders (reading the keys before a grant).
    Matcher include = INCLUDE.matcher(read(name));
    StringBuilder source = new StringBuilder();
    while (include.find()) {
      include.appendReplacement(source, Matcher.quoteReplacement(read(include.group(1))));
    }
    include.appendTail(source);
    return new Script(name, source.toString());
  }

  private static String read(String name) {
    String path = "/dev/redlock/core/scripts/" + name + ".lua";
    try (InputStream in = Script.class.getResourceAsStream(path)) {
      if (in == null) {
        throw new IllegalStateException("Lua script " + path + " is missing from the class path");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read Lua script " + path, e);
    }
  }

  private static String sha1(String text) {
    try {
      MessageDigest digest = MessageDigest.getInstance("SHA-1");
      return HexFormat.of().formatHex(digest.digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-1", e);
    }
  }
}

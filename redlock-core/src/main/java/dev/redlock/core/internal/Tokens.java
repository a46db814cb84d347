package dev.redlock.core.internal;

import java.security.SecureRandom;
import java.util.Base64;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Holder tokens: 128 random bits from {@link SecureRandom}, fresh for every acquisition.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public final class Tokens {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Base64.Encoder ENCODER = Base64.getUrlEncoder().withoutPadding();

  private Tokens() {}

  /**
   * A new token: 128 random bits as 22 URL-safe base64 characters.
   *
   * @return the token
   */
  public static String next() {
    byte[] bytes = new byte[16];
    RANDOM.nextBytes(bytes);
    return ENCODER.encodeToString(bytes);
  }

  /**
   * A new release notice id: 64 random bits as 11 URL-safe base64 characters. Published on the
   * lock's channel when a lease is released, so it identifies one lease to waiters; it is not a
   * secret and tells nothing about the token.
   *
   * @return the id
   */
  public static String releaseId() {
    long bits = ThreadLocalRandom.current().nextLong();
    byte[] bytes = new byte[8];
    for (int i = 0; i < 8; i++) {
      bytes[i] = (byte) (bits >>> (8 * i));
    }
    return ENCODER.encodeToString(bytes);
  }

  /**
   * The form of a token that may be shown in messages and logs: its first 4 characters only,
   * which identify it to a person but are useless to forge a release.
   *
   * @param token the token
   * @return the shortened token
   */
  public static String redact(String token) {
    return token.length() <= 4 ? "…" : token.substring(0, 4) + "…";
  }
}

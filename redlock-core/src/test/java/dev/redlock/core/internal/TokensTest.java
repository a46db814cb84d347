package dev.redlock.core.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Base64;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

final class TokensTest {
  private static final Pattern URL_SAFE_22 = Pattern.compile("[A-Za-z0-9_-]{22}");

  @Test
  void next_is22UrlSafeCharacters() {
    for (int i = 0; i < 1_000; i++) {
      String token = Tokens.next();
      assertTrue(URL_SAFE_22.matcher(token).matches(), token);
      assertEquals(16, Base64.getUrlDecoder().decode(token).length, token);
    }
  }

  @Test
  void next_isUniqueOverManyCalls() {
    int calls = 100_000;
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < calls; i++) {
      assertTrue(seen.add(Tokens.next()), "a token repeated after " + i + " calls");
    }
    assertEquals(calls, seen.size());
  }

  @Test
  void next_usesEveryBit() {
    // Over many tokens every decoded bit position takes both values: no constant bits.
    int[] ones = new int[128];
    int n = 2_000;
    for (int i = 0; i < n; i++) {
      byte[] bytes = Base64.getUrlDecoder().decode(Tokens.next());
      for (int bit = 0; bit < 128; bit++) {
        if ((bytes[bit / 8] >> (bit % 8) & 1) == 1) {
          ones[bit]++;
        }
      }
    }
    for (int bit = 0; bit < 128; bit++) {
      assertTrue(ones[bit] > 0 && ones[bit] < n, "bit " + bit + " is constant");
    }
  }

  @Test
  void redact_showsOnlyFourCharacters() {
    String token = Tokens.next();
    String shown = Tokens.redact(token);
    assertEquals(token.substring(0, 4) + "…", shown);
    assertFalse(shown.contains(token.substring(4, 8)), shown);
  }

  @Test
  void redact_shortToken_showsNothing() {
    assertEquals("…", Tokens.redact("abcd"));
    assertEquals("…", Tokens.redact(""));
    assertEquals("abcd…", Tokens.redact("abcde"));
  }
}

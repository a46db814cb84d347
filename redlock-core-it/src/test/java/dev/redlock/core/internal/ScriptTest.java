package dev.redlock.core.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.testing.RedisFleet;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("compat")
final class ScriptTest {
  private static RedisFleet fleet;

  @BeforeAll
  static void startFleet() {
    fleet = RedisFleet.start(1);
  }

  @AfterAll
  static void stopFleet() {
    if (fleet != null) {
      fleet.close();
    }
  }

  @AfterEach
  void flush() {
    fleet.command(0, "SCRIPT", "FLUSH");
    fleet.flushAll();
  }

  @Test
  void sha_matchesScriptLoadOnTheServer() {
    for (Script script : Script.ALL) {
      assertEquals(script.sha(), fleet.command(0, "SCRIPT", "LOAD", script.text()), script.name());
    }
  }

  @Test
  void sha_isFortyLowercaseHexDigits() {
    for (Script script : List.of(Script.ACQUIRE, Script.EXTEND, Script.RELEASE)) {
      assertTrue(script.sha().matches("[0-9a-f]{40}"), script.sha());
    }
  }

  @Test
  void sha_afterLoad_isKnownToEvalsha() {
    fleet.command(0, "SCRIPT", "LOAD", Script.RELEASE.text());
    // Releasing a key nobody holds deletes nothing: the script ran, found by its SHA.
    assertEquals(
        0L,
        fleet.command(
            0, "EVALSHA", Script.RELEASE.sha(), "1", "redlock:x", "token", Keys.RELEASE_CHANNEL_PREFIX, "r1"));
  }

  @Test
  void text_isTheResourceFileAndNamesDiffer() {
    assertEquals("acquire", Script.ACQUIRE.name());
    assertEquals("extend", Script.EXTEND.name());
    assertEquals("release", Script.RELEASE.name());
    // Both set the keys through the shared grant.lua, joined in when loaded.
    assertTrue(Script.ACQUIRE.text().contains("redis.call('SET', KEYS[i], token, 'PX', lease)"));
    assertTrue(Script.HANDOFF.text().contains("redis.call('SET', KEYS[i], token, 'PX', lease)"));
    assertTrue(Script.HANDOFF.text().contains("local from = ARGV[6]"));
    // Both read the keys through the shared holders.lua; no include is left unresolved anywhere.
    assertTrue(Script.ACQUIRE.text().contains("local function holders(n, may_take)"));
    assertTrue(Script.HANDOFF.text().contains("local function holders(n, may_take)"));
    for (Script script : Script.ALL) {
      assertFalse(java.util.regex.Pattern.compile("(?m)^--#include").matcher(script.text()).find(), script.name());
    }
    assertNotEquals(Script.ACQUIRE.sha(), Script.HANDOFF.sha());
    assertTrue(Script.FENCE.text().contains("redis.call('SET', KEYS[i], ARGV[2])"));
    assertTrue(Script.EXTEND.text().contains("PEXPIRE"));
    assertTrue(Script.RELEASE.text().contains("PUBLISH"));
    assertNotEquals(Script.ACQUIRE.sha(), Script.RELEASE.sha());
    assertNotEquals(Script.EXTEND.sha(), Script.RELEASE.sha());
  }

  @Test
  void bootMarkerKey_isTheOneTheFleetSeedsAndHides() {
    assertEquals(RedisFleet.BOOT_MARKER_KEY, Keys.BOOT_MARKER);
  }
}

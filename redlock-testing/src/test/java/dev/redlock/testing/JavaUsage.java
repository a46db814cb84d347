package dev.redlock.testing;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Calls the public API as a Java user would. javac compiles it, so a signature that reads badly
 * from Java (a missing static, overload or checked exception) breaks the build; RedisFleetTest runs it.
 */
final class JavaUsage {
  private JavaUsage() {}

  static List<Object> run(Path redisServer) {
    List<Object> seen = new ArrayList<>();
    try (RedisFleet fleet = RedisFleet.start(2)) {
      seen.add(fleet.command(0, "SET", "java:key", "v"));
      seen.add(fleet.keys(0));
      seen.add(fleet.keys(0, "java:*"));
      seen.add(fleet.keyCount());
      fleet.flushAll();
      seen.add(fleet.keyCount());
      seen.add(fleet.size());
      seen.add(fleet.uris().size());
      seen.add(fleet.uri(1).endsWith(":" + fleet.port(1)));
      seen.add(fleet.serverVersion().isEmpty());
      seen.add(fleet.backend());
      seen.add(fleet.host());
      fleet.pause(1);
      seen.add(fleet.isPaused(1));
      fleet.resume(1);
      fleet.kill(1);
      seen.add(fleet.isRunning(1));
      fleet.restart(1);
      seen.add(fleet.pids().size());
    }
    RedisFleet.Builder builder =
        RedisFleet.builder()
            .masters(1)
            .password("java pw")
            .serverArgs("--maxmemory", "2mb")
            .redisServer(redisServer)
            .commandTimeout(Duration.ofSeconds(2))
            .backend(RedisFleet.Backend.LOCAL)
            .image(RedisFleet.DEFAULT_IMAGE);
    try (RedisFleet fleet = builder.start()) {
      seen.add(fleet.command(0, "CONFIG", "GET", "maxmemory"));
      try {
        fleet.command(0, "NOPE");
      } catch (RedisFleetException e) {
        seen.add(e.getMessage().startsWith("ERR unknown command"));
      }
    }
    seen.add(new RedisFleetException("message only").getCause() == null);
    seen.add(RedisFleet.dockerAvailable() == (RedisFleet.dockerUnavailableReason() == null));
    return seen;
  }
}

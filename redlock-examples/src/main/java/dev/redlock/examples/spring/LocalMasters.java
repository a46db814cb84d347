package dev.redlock.examples.spring;

import dev.redlock.testing.RedisFleet;

/**
 * Starts three local Redis masters for the Spring example's instances, prints the argument that
 * points an instance at them, and keeps them until Enter is pressed (or the JVM stops).
 */
public final class LocalMasters {
  private LocalMasters() {}

  public static void main(String[] args) throws Exception {
    try (RedisFleet fleet = RedisFleet.start(3)) {
      System.out.println("--redlock.masters=" + String.join(",", fleet.uris()));
      System.out.println("(press Enter to stop the masters)");
      System.in.read();
    }
  }
}

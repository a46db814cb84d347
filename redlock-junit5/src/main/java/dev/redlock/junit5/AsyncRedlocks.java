package dev.redlock.junit5;

import dev.redlock.core.RedlockConfig;
import dev.redlock.java.AsyncRedlock;

/**
 * The only class of this module that refers to the Java facade: loaded when an {@code
 * AsyncRedlock} parameter is resolved, which cannot happen unless the facade is on the class path.
 */
final class AsyncRedlocks {
  static final String CLASS_NAME = "dev.redlock.java.AsyncRedlock";

  private AsyncRedlocks() {}

  static AutoCloseable create(RedlockConfig config) {
    return AsyncRedlock.create(config);
  }
}

package dev.redlock.junit5;

import java.util.ArrayList;
import java.util.List;

/** Instances handed out for one scope (a test, or a whole class), closed together; idempotent. */
final class Handouts implements AutoCloseable {
  private final List<AutoCloseable> items = new ArrayList<>();
  private boolean closed;

  synchronized <T extends AutoCloseable> T add(T item) {
    if (closed) {
      closeQuietly(item);
      throw new IllegalStateException("this scope of the Redis fleet extension has ended");
    }
    items.add(item);
    return item;
  }

  /**
   * Closes every item, latest first; the first failure is thrown with the others suppressed (a
   * checked one wrapped in an {@link IllegalStateException}).
   */
  @Override
  public void close() {
    List<AutoCloseable> toClose;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      toClose = new ArrayList<>(items);
      items.clear();
    }
    Exception failure = null;
    for (int i = toClose.size() - 1; i >= 0; i--) {
      try {
        toClose.get(i).close();
      } catch (Exception e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure instanceof RuntimeException) {
      throw (RuntimeException) failure;
    }
    if (failure != null) {
      if (failure instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      throw new IllegalStateException("closing a handed-out Redlock failed: " + failure, failure);
    }
  }

  private static void closeQuietly(AutoCloseable item) {
    try {
      item.close();
    } catch (Exception ignored) {
      // The caller gets the IllegalStateException; this instance was never handed out.
    }
  }
}

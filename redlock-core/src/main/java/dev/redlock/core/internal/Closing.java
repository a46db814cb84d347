package dev.redlock.core.internal;

import io.lettuce.core.api.StatefulConnection;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** How a node closes the connections it opened: shared by {@link RedisNode} and {@link ClusterNode}. */
final class Closing {
  private Closing() {}

  /** Closes each connection once it is open, never blocking. */
  static void closeAll(List<CompletableFuture<? extends StatefulConnection<String, String>>> opened) {
    for (CompletableFuture<? extends StatefulConnection<String, String>> c : opened) {
      c.thenAccept(StatefulConnection::closeAsync);
    }
  }

  /**
   * Closes each connection and waits, at most {@code timeout}, until all are closed. Must not be
   * called on one of the client's I/O threads (it would wait for itself).
   */
  static void closeAllAndWait(
      List<CompletableFuture<? extends StatefulConnection<String, String>>> opened, Duration timeout) {
    if (opened.isEmpty()) {
      return;
    }
    CompletableFuture<?>[] closing = new CompletableFuture<?>[opened.size()];
    for (int i = 0; i < closing.length; i++) {
      closing[i] = opened.get(i).thenCompose(StatefulConnection::closeAsync);
    }
    try {
      CompletableFuture.allOf(closing).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      // A connection never opened, or closing it failed: nothing is left to close.
    }
  }
}

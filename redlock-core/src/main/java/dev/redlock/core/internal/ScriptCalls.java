package dev.redlock.core.internal;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import io.lettuce.core.RedisNoScriptException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * A script call that outlives the server forgetting the script (a restart, {@code SCRIPT FLUSH}):
 * shared by the node of a server ({@link RedisNode}) and of a cluster ({@link ClusterNode}).
 */
final class ScriptCalls {
  private ScriptCalls() {}

  /**
   * The result of {@code first} (a call by SHA); on {@code NOSCRIPT}, the script is loaded and
   * called once more, unless {@code superseded} says that a release of the same token went out
   * meanwhile: checked under {@code lock}, under which a release marks it and the second call is
   * sent, so the second call goes out before that release or never.
   *
   * @param node the master's name, for the failure
   * @param script the script called
   * @param lock the node's lock
   * @param superseded the mark a release sets, or null for calls no release supersedes
   * @param first the call by SHA
   * @param load loads the script, giving its SHA
   * @param again calls the script by the SHA given
   * @param <T> the script's result
   * @return the result of the call that ran
   */
  static <T> CompletableFuture<T> reloading(
      String node,
      Script script,
      Object lock,
      AtomicBoolean superseded,
      CompletableFuture<T> first,
      Supplier<CompletionStage<String>> load,
      Function<String, CompletableFuture<T>> again) {
    // One dependent future on the common path (the script ran); the reload only on NOSCRIPT.
    CompletableFuture<T> result = new CompletableFuture<>();
    first.whenComplete(
        (r, e) -> {
          if (e == null) {
            result.complete(r);
            return;
          }
          Throwable cause = Failures.unwrap(e);
          if (!(cause instanceof RedisNoScriptException)) {
            result.completeExceptionally(cause);
            return;
          }
          load.get()
              .toCompletableFuture()
              .thenCompose(
                  sha -> {
                    synchronized (lock) {
                      if (superseded != null && superseded.get()) {
                        return CompletableFuture.<T>failedFuture(
                            new MasterFailureException(
                                node, Kind.ERROR,
                                "the " + script.name() + " script had to be reloaded and the call was"
                                    + " abandoned, since a later release was already sent",
                                cause));
                      }
                      return again.apply(sha);
                    }
                  })
              .whenComplete(
                  (r2, e2) -> {
                    if (e2 == null) {
                      result.complete(r2);
                    } else {
                      result.completeExceptionally(Failures.unwrap(e2));
                    }
                  });
        });
    return result;
  }
}

package dev.redlock.core.internal;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * The mutex's calls on a {@link LockNode}, with the keys and arguments the engine passes (the
 * engine builds them in its lock kinds; these tests speak to the node directly).
 */
final class MutexCalls {
  private MutexCalls() {}

  static CompletableFuture<AcquireReply> acquire(
      LockNode node, String[] keys, boolean fencing, boolean guard, String token, long leaseMillis, Duration timeout) {
    int n = fencing ? keys.length / 2 : keys.length;
    String[] all = keys;
    if (guard) {
      all = java.util.Arrays.copyOf(keys, keys.length + 1);
      all[keys.length] = Keys.BOOT_MARKER;
    }
    String[] args = {
      token, Long.toString(leaseMillis), Integer.toString(n), fencing ? "1" : "0", guard ? "1" : "0"
    };
    return node.acquire(Script.ACQUIRE, all, args, timeout);
  }

  /** The hand-off: the acquire's keys and arguments, then the old holder's token. */
  static CompletableFuture<AcquireReply> handOff(
      LockNode node, String[] keys, String token, String from, long leaseMillis, Duration timeout) {
    String[] args = {token, Long.toString(leaseMillis), Integer.toString(keys.length), "0", "0", from};
    return node.acquire(Script.HANDOFF, keys, args, timeout);
  }

  static CompletableFuture<boolean[]> extend(
      LockNode node, String[] keys, String[] leaseArgs, long leaseMillis, Duration timeout) {
    String[] args = new String[leaseArgs.length + 1];
    args[0] = Long.toString(leaseMillis);
    System.arraycopy(leaseArgs, 0, args, 1, leaseArgs.length);
    return node.extend(Script.EXTEND, keys, args, timeout);
  }

  static CompletableFuture<Long> release(
      LockNode node, String[] keys, String token, String releaseId, Duration timeout) {
    return node.release(Script.RELEASE, keys, new String[] {token, Keys.RELEASE_CHANNEL_PREFIX, releaseId}, timeout);
  }
}

package com.example;

import dev.redlock.core.RedlockConfig;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

public class QuickStart {
  public static void main(String[] args) throws Exception {
    // Three throwaway Redis masters on this machine. In production, list your own masters:
    // RedlockConfig.builder().masters(List.of("redis://10.0.0.1:6379", "redis://10.0.0.2:6379", ...))
    try (RedisFleet fleet = RedisFleet.start(3);
        AsyncRedlock redlock =
            AsyncRedlock.create(
                RedlockConfig.builder()
                    .masters(fleet.uris())
                    .leaseTime(Duration.ofSeconds(10))
                    .build())) {

      // 1. Asynchronous: the lock is held (and renewed) until the action's stage completes.
      CompletableFuture<String> receipt =
          redlock.withLock(
              "orders:42", lease -> CompletableFuture.supplyAsync(() -> "charged order 42"));
      System.out.println(receipt.get());

      // 2. Blocking, for code that is not asynchronous: the section runs on this thread.
      int stock = redlock.withLockBlocking("stock:7", lease -> 41);
      System.out.println("stock left: " + stock);

      // 3. A lease of your own: renewed in the background until you close it.
      try (LockLease lease = redlock.acquire("reports:daily").get()) {
        System.out.println("holding " + lease.resources() + ": " + lease.isValid());
        System.out.println("second try: " + redlock.tryAcquire("reports:daily").get().isPresent());
      }
    }
  }
}

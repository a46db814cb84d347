package dev.redlock.examples.readme;

import dev.redlock.java.AsyncRedlock;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;

/** The README's {@code java.util.concurrent.locks.Lock} example. */
public final class JavaLock {
  private JavaLock() {}

  /**
   * Runs {@code work} under the lock on {@code orders:42}, waiting up to 5 seconds for it.
   *
   * @return whether the work ran
   */
  public static boolean withOrderLock(AsyncRedlock redlock, Runnable work) throws InterruptedException {
    // region lock
    Lock lock = redlock.asLock("orders:42");
    if (!lock.tryLock(5, TimeUnit.SECONDS)) {
      return false; // another holder kept it for 5 s
    }
    try {
      work.run();
    } finally {
      lock.unlock(); // throws LockLostException if the lease was lost meanwhile
    }
    return true;
    // endregion
  }
}

package net.javacrumbs.shedlock.support;

import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import net.javacrumbs.shedlock.core.ExtensibleLockProvider;

/**
 * ShedLock's own KeepAliveLockProvider with a shorter minimal lockAtMostFor than the public
 * constructor's 30 s (through its package-private constructor), so a test can watch several
 * extensions in about a second.
 */
public final class ShortKeepAlive {
  private ShortKeepAlive() {}

  public static KeepAliveLockProvider create(
      ExtensibleLockProvider wrapped, ScheduledExecutorService executor, Duration minimalLockAtMostFor) {
    return new KeepAliveLockProvider(wrapped, executor, minimalLockAtMostFor);
  }
}

package dev.redlock.spring;

import dev.redlock.java.LockLease;
import java.util.Optional;

/**
 * The lease of the {@link Redlocked} method running on the current thread: for its fencing token,
 * its validity and its {@code lost()} future.
 *
 * <pre>{@code
 * @Redlocked(value = "ledger", fencing = true)
 * public void post(Entry entry) {
 *   long token = RedlockedLease.current().fencingToken().orElseThrow();
 *   ledger.write(entry, token); // the ledger refuses tokens older than the newest it saw
 * }
 * }</pre>
 *
 * <p>It is set on the thread that runs the method's body: the calling thread of a blocking
 * method, the callback thread that calls a method returning a {@code CompletionStage} (until it
 * returns its stage; continuations on other threads must keep the lease in a variable). In Kotlin
 * {@code suspend} functions use {@code redlockedLease()} instead. Nested annotated methods see
 * their own lease, and the outer one again once they return.
 */
public final class RedlockedLease {
  private static final ThreadLocal<LockLease> CURRENT = new ThreadLocal<>();

  private RedlockedLease() {}

  /**
   * The lease of the annotated method running on this thread.
   *
   * @return the lease
   * @throws IllegalStateException if no {@link Redlocked} method runs on this thread
   */
  public static LockLease current() {
    LockLease lease = CURRENT.get();
    if (lease == null) {
      throw new IllegalStateException(
          "no @Redlocked method runs on this thread (" + Thread.currentThread().getName()
              + "): RedlockedLease.current() works inside the method's body, on the thread that"
              + " called it");
    }
    return lease;
  }

  /**
   * The lease of the annotated method running on this thread, if one runs.
   *
   * @return the lease, or empty
   */
  public static Optional<LockLease> find() {
    return Optional.ofNullable(CURRENT.get());
  }

  /** Sets the lease of this thread; returns the one it replaces, for {@link #restore}. */
  static LockLease enter(LockLease lease) {
    LockLease previous = CURRENT.get();
    CURRENT.set(lease);
    return previous;
  }

  /** Puts back what {@link #enter} replaced. */
  static void restore(LockLease previous) {
    if (previous == null) {
      CURRENT.remove();
    } else {
      CURRENT.set(previous);
    }
  }
}

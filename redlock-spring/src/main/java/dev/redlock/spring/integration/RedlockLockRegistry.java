package dev.redlock.spring.integration;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.springframework.integration.support.locks.DistributedLock;
import org.springframework.integration.support.locks.ExpirableLockRegistry;
import org.springframework.integration.support.locks.RenewableLockRegistry;

/**
 * A Spring Integration {@code LockRegistry} whose locks are Redlocks: held on a quorum of
 * independent masters, renewed in the background while held, with no polling while waiting (a
 * release wakes the waiters). For {@code LockRegistryLeaderInitiator}, aggregators, {@code
 * executeLocked} and anything else that takes a {@code LockRegistry}.
 *
 * <pre>{@code
 * @Bean
 * RedlockLockRegistry lockRegistry(AsyncRedlock redlock) {
 *   return new RedlockLockRegistry(redlock, "orders");
 * }
 * }</pre>
 *
 * <p>Key {@code k} (a {@code String}) locks resource {@code registryKey:k}. {@link #obtain} returns
 * the same lock for the same key until it is expired ({@link #expireUnusedOlderThan}), so that:
 *
 * <ul>
 *   <li><b>Locks are reentrant per thread</b>, as Spring Integration's registries are (the Redlock
 *       itself is not: reentrancy is kept in this process, one lease per holding thread). Threads
 *       of the same process, like other processes, wait for the holder.
 *   <li><b>Only the owner unlocks</b>: another thread's {@code unlock()} throws {@link
 *       IllegalMonitorStateException}.
 *   <li><b>Loss is reported</b>: a thread's code cannot be stopped from outside, so when the lease
 *       is lost while held, {@code unlock()} releases and throws {@link
 *       dev.redlock.core.LockLostException}, and a reentrant {@code tryLock} (as {@code
 *       LockRegistryLeaderInitiator} makes on every heartbeat) returns {@code false} and drops the
 *       thread's broken hold, so a leader learns it lost leadership. A reentrant {@code lock()}
 *       throws the {@code LockLostException} instead. {@link #lease(Object)} gives the lease to
 *       check {@code isValid()} or wait on {@code lost()} meanwhile.
 *   <li>Waiting: {@code lock()} waits as long as it takes and is not interruptible (it keeps the
 *       interrupt status); {@code lockInterruptibly()} gives up on an interrupt; {@code
 *       tryLock(time, unit)} waits up to {@code time}. Masters failing (not contention) throw
 *       {@link dev.redlock.core.LockNotAcquiredException}.
 * </ul>
 *
 * <p>Each lease lives for the registry's lease time (or the {@code ttl} of {@link
 * DistributedLock#lock(Duration)}), renewed every third of it while held, so a crashed holder
 * blocks others at most that long. Thread-safe. Closing the {@link AsyncRedlock} ends every lease.
 */
public final class RedlockLockRegistry
    implements ExpirableLockRegistry<DistributedLock>, RenewableLockRegistry<DistributedLock> {
  private final AsyncRedlock redlock;
  private final String registryKey;
  private final Duration leaseTime;
  private final Map<String, RegistryLock> locks = new ConcurrentHashMap<>();

  /**
   * Creates a registry whose leases use the Redlock's configured lease time.
   *
   * @param redlock the Redlock that takes the locks
   * @param registryKey the prefix of every resource: key {@code k} locks {@code registryKey:k}
   */
  public RedlockLockRegistry(AsyncRedlock redlock, String registryKey) {
    this(redlock, registryKey, null);
  }

  /**
   * Creates a registry with its own lease time.
   *
   * @param redlock the Redlock that takes the locks
   * @param registryKey the prefix of every resource: key {@code k} locks {@code registryKey:k}
   * @param leaseTime how long a lease lives unless renewed, or {@code null} for the Redlock's
   *     configured lease time
   */
  public RedlockLockRegistry(AsyncRedlock redlock, String registryKey, Duration leaseTime) {
    this.redlock = Objects.requireNonNull(redlock, "redlock");
    if (registryKey == null || registryKey.isBlank()) {
      throw new IllegalArgumentException(
          "registryKey must be a non-blank prefix of the locks' resources, but was '" + registryKey + "'");
    }
    this.registryKey = registryKey;
    this.leaseTime = leaseTime;
  }

  /**
   * The lock for {@code lockKey}: the same object for the same key while it is cached.
   *
   * @param lockKey the key, a {@code String}
   * @return the lock
   * @throws IllegalArgumentException if the key is not a {@code String}
   */
  @Override
  public DistributedLock obtain(Object lockKey) {
    RegistryLock lock = locks.computeIfAbsent(key(lockKey), k -> new RegistryLock(redlock, registryKey + ":" + k, leaseTime));
    lock.touch();
    return lock;
  }

  /**
   * The lease the current thread holds for {@code lockKey}: its fencing token, validity and {@code
   * lost()} future.
   *
   * @param lockKey the key
   * @return the lease, or empty when this thread does not hold the lock
   */
  public Optional<LockLease> lease(Object lockKey) {
    RegistryLock lock = locks.get(key(lockKey));
    return lock == null ? Optional.empty() : lock.lease();
  }

  /**
   * Forgets the locks that no thread of this process holds and that were last obtained or unlocked
   * more than {@code age} milliseconds ago; a later {@link #obtain} creates them anew.
   *
   * @param age the age in milliseconds
   */
  @Override
  public void expireUnusedOlderThan(long age) {
    long now = System.nanoTime();
    long limit = TimeUnit.MILLISECONDS.toNanos(age);
    locks.values().removeIf(lock -> lock.unusedLongerThan(now, limit));
  }

  /**
   * Extends the current thread's lease of {@code lockKey} to its full lease time now (held leases
   * are also renewed in the background).
   *
   * @param lockKey the key
   * @throws IllegalStateException if this thread does not hold the lock
   * @throws dev.redlock.core.LockLostException if the lease was lost
   * @throws dev.redlock.core.LockNotExtendedException if too few masters confirmed
   */
  @Override
  public void renewLock(Object lockKey) {
    held(lockKey).renew(null);
  }

  /**
   * As {@link #renewLock(Object)}. A Redlock lease renews to its own lease time only: {@code ttl}
   * must be the lease time the lock was taken with.
   *
   * @param lockKey the key
   * @param ttl the lease time the lock was taken with
   * @throws UnsupportedOperationException for any other {@code ttl}
   * @throws IllegalStateException if this thread does not hold the lock
   */
  @Override
  public void renewLock(Object lockKey, Duration ttl) {
    held(lockKey).renew(Objects.requireNonNull(ttl, "ttl"));
  }

  private RegistryLock held(Object lockKey) {
    RegistryLock lock = locks.get(key(lockKey));
    if (lock == null || lock.lease().isEmpty()) {
      throw new IllegalStateException(
          "the lock " + registryKey + ":" + lockKey + " is not held by this thread ("
              + Thread.currentThread().getName() + "), so it cannot be renewed");
    }
    return lock;
  }

  private static String key(Object lockKey) {
    if (!(lockKey instanceof String key)) {
      throw new IllegalArgumentException(
          "lock keys of a RedlockLockRegistry must be Strings, but was "
              + (lockKey == null ? "null" : lockKey.getClass().getName()));
    }
    return key;
  }

  /**
   * Describes the registry for logs: its key and how many locks it has cached.
   *
   * @return a one-line description
   */
  @Override
  public String toString() {
    return "RedlockLockRegistry(" + registryKey + ", " + locks.size() + " locks cached)";
  }
}

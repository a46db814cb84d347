package dev.redlock.spring.boot;

import dev.redlock.core.MasterStatus;
import dev.redlock.java.AsyncRedlock;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * Actuator health of a Redlock: {@code UP} while a quorum of its masters counts (answers, and is
 * not kept out by the restart guard), {@code DOWN} otherwise; the details show each master's state
 * ({@code UP}, {@code DOWN} with why, {@code RESTART_GUARDED} with for how long, {@code DUPLICATE}),
 * the quorum and how many masters count.
 *
 * <p>Each check asks every master once, all at once, each bounded by the node timeout ({@link
 * AsyncRedlock#checkMasters()}). Auto-configured as {@code redlock} ({@code /actuator/health/redlock};
 * {@code management.health.redlock.enabled=false} turns it off).
 */
public final class RedlockHealthIndicator extends AbstractHealthIndicator {
  private final AsyncRedlock redlock;

  /**
   * Creates the indicator.
   *
   * @param redlock the Redlock whose masters it checks
   */
  public RedlockHealthIndicator(AsyncRedlock redlock) {
    super("Redlock health check failed");
    this.redlock = Objects.requireNonNull(redlock, "redlock");
  }

  @Override
  protected void doHealthCheck(Health.Builder builder) throws Exception {
    // checkMasters is bounded by the node timeout; this bound only guards against a bug.
    List<MasterStatus> statuses = redlock.checkMasters().get(1, TimeUnit.MINUTES);
    int quorum = statuses.size() / 2 + 1;
    int counting = 0;
    Map<String, Object> masters = new LinkedHashMap<>();
    for (MasterStatus status : statuses) {
      if (status.counts()) {
        counting++;
      }
      Map<String, Object> detail = new LinkedHashMap<>();
      detail.put("state", status.state().name());
      if (status.state() == MasterStatus.State.RESTART_GUARDED) {
        detail.put("guardedFor", status.guardedFor().toString());
      }
      status.failure().ifPresent(failure -> detail.put("failure", failure.getMessage()));
      masters.put(status.master(), detail);
    }
    (counting >= quorum ? builder.up() : builder.down())
        .withDetail("quorum", quorum)
        .withDetail("counting", counting)
        .withDetail("masters", masters);
  }
}

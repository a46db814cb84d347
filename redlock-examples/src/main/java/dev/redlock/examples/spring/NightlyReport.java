package dev.redlock.examples.spring;

import java.time.LocalDateTime;
import java.time.temporal.ChronoUnit;
import net.javacrumbs.shedlock.spring.annotation.SchedulerLock;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

/** The scheduled job: every instance's scheduler fires it, and ShedLock lets one of them run it. */
@Component
public class NightlyReport {
  private final Ledger ledger;
  private final String instance;

  public NightlyReport(Ledger ledger, @Value("${example.instance:${PID:?}}") String instance) {
    this.ledger = ledger;
    this.instance = instance;
  }

  // region spring-job
  @Scheduled(cron = "${example.cron:*/5 * * * * *}")
  @SchedulerLock(name = "nightly-report", lockAtLeastFor = "${example.lock-at-least-for:PT4S}")
  public void run() {
    String slot = LocalDateTime.now().truncatedTo(ChronoUnit.SECONDS).toString();
    long token = ledger.post("report for " + slot);
    System.out.println("run " + slot + " by instance " + instance + ", fencing token " + token);
  }
  // endregion
}

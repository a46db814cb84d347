package dev.redlock.examples.spring;

import net.javacrumbs.shedlock.spring.annotation.EnableSchedulerLock;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.scheduling.annotation.EnableScheduling;

/**
 * A small Spring Boot application: a scheduled job ({@link NightlyReport}, once per run across
 * every instance, through ShedLock on Redlock) that posts to a ledger ({@link Ledger}, a
 * {@code @Redlocked} service method with a fencing token). Run several instances against the same
 * masters (see the README's "Spring" section, and {@link LocalMasters} to start masters locally):
 * each run of the job happens in one of them, and the fencing tokens grow across all of them.
 */
// region spring-app
@SpringBootApplication
@EnableScheduling
@EnableSchedulerLock(defaultLockAtMostFor = "PT30S")
public class SpringExample {
  public static void main(String[] args) {
    SpringApplication.run(SpringExample.class, args);
  }
}
// endregion

package dev.redlock.examples.spring;

import dev.redlock.spring.Redlocked;
import dev.redlock.spring.RedlockedLease;
import org.springframework.stereotype.Service;

// region spring-service
@Service
public class Ledger {
  @Redlocked(value = "ledger", fencing = true)
  public long post(String entry) {
    // Held on a majority of the masters while this runs; interrupted if the lock is lost.
    long token = RedlockedLease.current().fencingToken().orElseThrow();
    write(entry, token); // the store refuses a token older than the newest it has seen
    return token;
  }

  private void write(String entry, long token) {
    // Stands in for a store that checks the token.
  }
}
// endregion

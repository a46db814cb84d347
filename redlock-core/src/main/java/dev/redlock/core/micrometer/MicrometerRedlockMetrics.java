package dev.redlock.core.micrometer;

import dev.redlock.core.LockLostException;
import dev.redlock.core.MasterFailureException;
import dev.redlock.core.RedlockMetrics;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Records a Redlock's measurements into a Micrometer {@link MeterRegistry}. Micrometer is an
 * optional dependency of this library: add {@code io.micrometer:micrometer-core} to use this class;
 * without it, leave {@link dev.redlock.core.RedlockConfig.Builder#metrics} unset and nothing is
 * recorded.
 *
 * <p>Meters (Micrometer's naming convention: dotted lower case, base unit seconds), each tagged
 * {@code type} ({@code lock}, {@code read}, {@code write}, {@code permit}) plus the common tags
 * given at creation:
 *
 * <ul>
 *   <li>{@code redlock.acquire} (timer), tag {@code outcome} ({@code acquired}, {@code contended},
 *       {@code failed}, {@code cancelled}): how long acquisitions took, waiting included;
 *   <li>{@code redlock.acquire.wait} (timer), tag {@code outcome}: the time acquisitions spent
 *       waiting for another holder, recorded only for those that waited;
 *   <li>{@code redlock.hold} (timer), tag {@code end} ({@code released}, {@code lost}): how long
 *       leases were held;
 *   <li>{@code redlock.renewals} (counter), tag {@code result} ({@code extended}, {@code failed});
 *   <li>{@code redlock.losses} (counter), tag {@code reason} ({@code not_held}, {@code expired},
 *       {@code max_hold});
 *   <li>{@code redlock.master.failures} (counter), tags {@code master} ({@code host:port}), {@code
 *       operation} ({@code acquire}, {@code extend}, {@code release}) and {@code kind} (the
 *       {@link MasterFailureException.Kind}, lower case);
 *   <li>{@code redlock.master.restarts} (counter), tag {@code master}.
 * </ul>
 *
 * <p>Resource names are never tags. Thread-safe; meters are created once and cached.
 */
public final class MicrometerRedlockMetrics implements RedlockMetrics {
  private final MeterRegistry registry;
  private final Tags common;
  private final ConcurrentHashMap<Object, Object> meters = new ConcurrentHashMap<>();

  private MicrometerRedlockMetrics(MeterRegistry registry, Tags common) {
    this.registry = Objects.requireNonNull(registry, "registry");
    this.common = common;
  }

  /**
   * Records into {@code registry}.
   *
   * @param registry where the meters are registered
   * @return the metrics, for {@link dev.redlock.core.RedlockConfig.Builder#metrics}
   */
  public static MicrometerRedlockMetrics create(MeterRegistry registry) {
    return new MicrometerRedlockMetrics(registry, Tags.empty());
  }

  /**
   * Records into {@code registry}, adding {@code commonTags} to every meter (for example the
   * name of the Redlock when an application has several).
   *
   * @param registry where the meters are registered
   * @param commonTags tags added to every meter
   * @return the metrics, for {@link dev.redlock.core.RedlockConfig.Builder#metrics}
   */
  public static MicrometerRedlockMetrics create(MeterRegistry registry, Iterable<Tag> commonTags) {
    return new MicrometerRedlockMetrics(registry, Tags.of(commonTags));
  }

  @Override
  public void acquisition(String type, Outcome outcome, Duration latency, Duration waited) {
    timer("redlock.acquire", "How long acquisitions took, waiting included", type, "outcome", outcome.tag())
        .record(latency);
    if (!waited.isZero()) {
      timer("redlock.acquire.wait", "Time acquisitions spent waiting for another holder", type, "outcome", outcome.tag())
          .record(waited);
    }
  }

  @Override
  public void leaseEnded(String type, Duration held, boolean lost) {
    timer("redlock.hold", "How long leases were held", type, "end", lost ? "lost" : "released").record(held);
  }

  @Override
  public void renewal(String type, boolean extended) {
    counter("redlock.renewals", "Lease renewals", Tags.of("type", type, "result", extended ? "extended" : "failed"))
        .increment();
  }

  @Override
  public void loss(String type, LockLostException.Reason reason) {
    counter("redlock.losses", "Leases lost", Tags.of("type", type, "reason", reason.name().toLowerCase(java.util.Locale.ROOT)))
        .increment();
  }

  @Override
  public void masterFailure(String master, String operation, MasterFailureException.Kind kind) {
    counter(
            "redlock.master.failures",
            "Failed calls to one master",
            Tags.of("master", master, "operation", operation, "kind", kind.name().toLowerCase(java.util.Locale.ROOT)))
        .increment();
  }

  @Override
  public void masterRestart(String master) {
    counter("redlock.master.restarts", "Masters found restarted with their data gone", Tags.of("master", master))
        .increment();
  }

  private Timer timer(String name, String description, String type, String key, String value) {
    Tags tags = Tags.of("type", type, key, value);
    return cached(
        new MeterKey(name, tags),
        k -> Timer.builder(name).description(description).tags(common).tags(tags).register(registry));
  }

  private Counter counter(String name, String description, Tags tags) {
    return cached(
        new MeterKey(name, tags),
        k -> Counter.builder(name).description(description).tags(common).tags(tags).register(registry));
  }

  @SuppressWarnings("unchecked")
  private <M> M cached(MeterKey key, Function<Object, M> create) {
    return (M) meters.computeIfAbsent(key, create::apply);
  }

  private record MeterKey(String name, Tags tags) {}

  /**
   * Names the registry's type, for {@link dev.redlock.core.RedlockConfig#toString()}.
   *
   * @return a short description
   */
  @Override
  public String toString() {
    return "MicrometerRedlockMetrics(" + registry.getClass().getSimpleName() + ")";
  }
}

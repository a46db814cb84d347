package dev.redlock.core.internal;

import dev.redlock.core.RedlockConfig;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;

/**
 * What the engine reads from a {@link RedlockConfig} that is not public API: how each master is
 * reached ({@link MasterSpec}), in order. {@code RedlockConfig} installs the reader when its class
 * is initialised.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public final class ConfigInternals {
  private static volatile Function<RedlockConfig, List<MasterSpec>> masters;

  private ConfigInternals() {}

  /**
   * Installs the reader; called once, by {@code RedlockConfig}.
   *
   * @param reader reads a configuration's masters
   * @throws IllegalStateException if a reader is installed already
   */
  public static synchronized void install(Function<RedlockConfig, List<MasterSpec>> reader) {
    if (masters != null) {
      throw new IllegalStateException("the RedlockConfig reader is installed already");
    }
    masters = Objects.requireNonNull(reader, "reader");
  }

  /**
   * How each master of a configuration is reached, in the configuration's order.
   *
   * @param config a built configuration
   * @return one spec per master
   */
  public static List<MasterSpec> masters(RedlockConfig config) {
    // An instance exists, so RedlockConfig's class is initialised and the reader installed.
    return masters.apply(Objects.requireNonNull(config, "config"));
  }
}

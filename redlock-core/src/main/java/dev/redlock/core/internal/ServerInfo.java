package dev.redlock.core.internal;

/**
 * Reads fields of an {@code INFO} reply ({@code name:value} lines).
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public final class ServerInfo {
  private ServerInfo() {}

  /**
   * The value of one field of an {@code INFO} reply.
   *
   * @param info the reply's text
   * @param name the field, such as {@code run_id}
   * @return the value, or {@code null} if the reply has no such field
   */
  public static String field(String info, String name) {
    if (info == null) {
      return null;
    }
    String prefix = name + ":";
    for (String line : info.split("\r?\n")) {
      if (line.startsWith(prefix)) {
        return line.substring(prefix.length()).trim();
      }
    }
    return null;
  }
}

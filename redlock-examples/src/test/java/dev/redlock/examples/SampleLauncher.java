package dev.redlock.examples;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs a sample's {@code main} as {@code mvn exec:java} does: on a thread of a thread group of its
 * own, then waits for every thread the sample started in that group (daemon ones included) to end,
 * and reports on standard error how long that took and which threads were left. Then it exits: a
 * sample that leaves non-daemon threads behind would otherwise keep the JVM alive, and one that
 * leaves lingering daemon threads keeps {@code exec:java} waiting up to 15 s.
 */
public final class SampleLauncher {
  private SampleLauncher() {}

  public static void main(String[] args) throws Exception {
    Class<?> sample = Class.forName(args[0]);
    Method main = sample.getMethod("main", String[].class);
    ThreadGroup group = new ThreadGroup("sample");
    Throwable[] failed = new Throwable[1];
    Thread runner =
        new Thread(
            group,
            () -> {
              try {
                main.invoke(null, (Object) new String[0]);
              } catch (InvocationTargetException e) {
                failed[0] = e.getCause();
              } catch (ReflectiveOperationException e) {
                failed[0] = e;
              }
            },
            "sample-main");
    runner.start();
    runner.join();
    if (failed[0] != null) {
      failed[0].printStackTrace();
      System.exit(2);
    }
    long start = System.nanoTime();
    List<String> left = new ArrayList<>();
    long limit = start + 30_000_000_000L; // exec:java waits 15 s by default; report anything past that
    while (System.nanoTime() < limit) {
      left = liveThreads(group);
      if (left.isEmpty()) {
        break;
      }
      Thread.sleep(10);
    }
    System.err.printf("sample threads ended %d ms after main returned; left: %s%n",
        (System.nanoTime() - start) / 1_000_000, left);
    System.exit(left.isEmpty() ? 0 : 3);
  }

  private static List<String> liveThreads(ThreadGroup group) {
    Thread[] threads = new Thread[group.activeCount() + 16];
    int n = group.enumerate(threads, true);
    List<String> names = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      if (threads[i].isAlive()) {
        names.add(threads[i].getName() + (threads[i].isDaemon() ? " (daemon)" : ""));
      }
    }
    return names;
  }
}

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The README's quick starts as a newcomer runs them: each in a new Maven project, outside this
 * repository, made only of what the README shows (its pom.xml and its source file), built against
 * the installed artifacts and run with {@code mvn -q compile exec:java}. Fails when a project does
 * not build, does not end within the hang guard, or prints something other than the README shows.
 * Prints how long each took from the end of main to the end of the Maven run (exec:java waits for
 * the threads a program leaves behind).
 *
 * <p>Run by {@code .ci/run} after {@code mvn install}: {@code java .ci/Newcomer.java README.md}.
 */
public final class Newcomer {
  public static void main(String[] args) throws Exception {
    String readme = Files.readString(Path.of(args.length > 0 ? args[0] : "README.md"));
    boolean ok = true;
    ok &= run(readme, "kotlin",
        "redlock-examples/newcomer/kotlin/pom.xml", "xml",
        "redlock-examples/src/main/kotlin/dev/redlock/examples/readme/QuickStart.kt#quick-start", "kotlin",
        "src/main/kotlin/QuickStart.kt");
    ok &= run(readme, "java",
        "redlock-examples/newcomer/java/pom.xml", "xml",
        "redlock-examples/src/main/java/com/example/QuickStart.java", "java",
        "src/main/java/com/example/QuickStart.java");
    // The test kit's examples, as tests of a new project: they must pass.
    ok &= runTests(readme, "junit5", Path.of("redlock-examples/newcomer/junit5/pom.xml"),
        "redlock-junit5/src/test/java/dev/redlock/junit5/OrderLockTest.java#junit5", "java",
        "src/test/java/OrderLockTest.java");
    ok &= runTests(readme, "kotest", Path.of("redlock-examples/newcomer/kotest/pom.xml"),
        "redlock-kotest/src/test/kotlin/dev/redlock/kotest/OrderLockTest.kt#kotest", "kotlin",
        "src/test/kotlin/OrderLockTest.kt");
    System.exit(ok ? 0 : 1);
  }

  /** A new project of the README's test file and the pom the README links to; its tests must pass. */
  static boolean runTests(String readme, String name, Path pom, String sourceMarker, String sourceLang,
      String sourcePath) throws IOException, InterruptedException {
    Path project = Files.createTempDirectory("redlock-newcomer-" + name);
    Files.copy(pom, project.resolve("pom.xml"));
    Path source = project.resolve(sourcePath);
    Files.createDirectories(source.getParent());
    Files.writeString(source, block(readme, sourceMarker, sourceLang));
    long start = System.nanoTime();
    Process mvn = new ProcessBuilder("mvn", "-q", "-B", "-Dstyle.color=never", "test")
        .directory(project.toFile())
        .inheritIO()
        .start();
    boolean ended = mvn.waitFor(600, TimeUnit.SECONDS); // a hang guard
    if (!ended) {
      mvn.destroyForcibly();
    }
    // Surefire also succeeds when it finds no test: count what ran.
    int ran = 0;
    Path reports = project.resolve("target/surefire-reports");
    if (Files.isDirectory(reports)) {
      try (var files = Files.list(reports)) {
        for (Path report : files.filter(f -> f.toString().endsWith(".txt")).toList()) {
          var m = java.util.regex.Pattern.compile("Tests run: (\\d+)").matcher(Files.readString(report));
          if (m.find()) {
            ran += Integer.parseInt(m.group(1));
          }
        }
      }
    }
    boolean passed = ended && mvn.exitValue() == 0 && ran > 0;
    System.out.printf("newcomer %s tests: %s, %d test(s) run, %.1f s%n", name,
        !ended ? "HUNG (killed after 600 s)" : passed ? "pass" : "FAIL (exit " + mvn.exitValue() + ")",
        ran, (System.nanoTime() - start) / 1e9);
    return passed;
  }

  /** The body of the first ```lang block after the sample marker. */
  static String block(String readme, String marker, String lang) {
    int at = readme.indexOf("<!-- sample: " + marker + " -->");
    if (at < 0) {
      throw new IllegalStateException("README.md has no sample " + marker);
    }
    String fence = "```" + lang + "\n";
    int start = readme.indexOf(fence, at) + fence.length();
    return readme.substring(start, readme.indexOf("```\n", start));
  }

  static boolean run(String readme, String name, String pomMarker, String pomLang, String sourceMarker,
      String sourceLang, String sourcePath) throws IOException, InterruptedException {
    Path project = Files.createTempDirectory("redlock-newcomer-" + name);
    Files.writeString(project.resolve("pom.xml"), block(readme, pomMarker, pomLang));
    Path source = project.resolve(sourcePath);
    Files.createDirectories(source.getParent());
    Files.writeString(source, block(readme, sourceMarker, sourceLang));
    int at = readme.indexOf("<!-- sample: " + sourceMarker);
    String expected = readme.substring(readme.indexOf("```text\n", at) + 8, readme.indexOf("```\n", readme.indexOf("```text\n", at) + 8));

    long start = System.nanoTime();
    Process mvn = new ProcessBuilder("mvn", "-q", "-B", "-Dstyle.color=never", "compile", "exec:java")
        .directory(project.toFile())
        .redirectErrorStream(false)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    List<String> out = new ArrayList<>();
    long[] printedAt = {0};
    Thread reader = new Thread(() -> {
      try (var lines = mvn.inputReader(StandardCharsets.UTF_8)) {
        String line;
        while ((line = lines.readLine()) != null) {
          // Maven's own escape codes and blank lines are not the program's output.
          String text = line.replaceAll("\u001B\\[[0-9;]*m", "");
          if (!text.isBlank()) {
            out.add(text);
            printedAt[0] = System.nanoTime();
          }
        }
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
    reader.start();
    boolean ended = mvn.waitFor(300, TimeUnit.SECONDS); // a hang guard, never a speed assertion
    if (!ended) {
      mvn.destroyForcibly();
    }
    reader.join(5_000);
    long end = System.nanoTime();
    List<String> expectedLines = expected.lines().toList();
    boolean same = out.equals(expectedLines);
    System.out.printf("newcomer %s quick start: %s, exit %s, %.1f s in all, %.1f s from its last line to the end of the run%n",
        name, !ended ? "HUNG (killed after 300 s)" : same ? "prints what the README shows" : "PRINTS SOMETHING ELSE",
        ended ? mvn.exitValue() : "-", (end - start) / 1e9, printedAt[0] == 0 ? 0.0 : (end - printedAt[0]) / 1e9);
    if (!same) {
      System.out.println("  expected: " + expectedLines);
      System.out.println("  printed:  " + out);
    }
    return ended && mvn.exitValue() == 0 && same;
  }
}

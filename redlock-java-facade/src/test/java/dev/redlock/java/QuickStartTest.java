package dev.redlock.java;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.example.QuickStart;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** QUICKSTART-java.md shows the compiled {@link QuickStart} verbatim, and its output is what it prints. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
final class QuickStartTest {
  private static final Path MODULE = Path.of(System.getProperty("basedir", "."));

  private static String block(String markdown, String language) {
    String fence = "```" + language + "\n";
    int start = markdown.indexOf(fence);
    if (start < 0) {
      throw new AssertionError("QUICKSTART-java.md has no ```" + language + " block");
    }
    start += fence.length();
    return markdown.substring(start, markdown.indexOf("```\n", start));
  }

  private static String quickStartDoc() throws IOException {
    return Files.readString(MODULE.resolve("QUICKSTART-java.md"), StandardCharsets.UTF_8);
  }

  @Test
  void quickStart_showsTheCompiledSourceVerbatim() throws IOException {
    String source =
        Files.readString(
            MODULE.resolve("src/test/java/com/example/QuickStart.java"), StandardCharsets.UTF_8);
    assertEquals(source, block(quickStartDoc(), "java"));
  }

  @Test
  void quickStart_printsWhatTheDocumentSays() throws Exception {
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    PrintStream original = System.out;
    System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    try {
      QuickStart.main(new String[0]);
    } finally {
      System.setOut(original);
    }
    List<String> expected = block(quickStartDoc(), "text").lines().toList();
    assertEquals(expected, captured.toString(StandardCharsets.UTF_8).lines().toList());
  }
}

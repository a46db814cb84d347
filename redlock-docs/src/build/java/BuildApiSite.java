import java.io.File;
import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.jetbrains.dokka.DokkaBootstrapImpl;

/**
 * Builds the API site of the library modules with Dokka's generator, as Dokka's Gradle plugin
 * does for a multi-module project: a partial run per module, then one run that joins them.
 * Started by redlock-docs/pom.xml (profile "docs") with dokka-core on the classpath:
 *
 * <pre>
 * java -cp DOKKA_CORE_CLASSPATH BuildApiSite.java --root=DIR --out=DIR --title=TEXT --index=FILE
 *      --plugins=PATHS --classpath=PATHS [--samples=DIRS] [--source-url=URL]
 *      [--source-line-suffix=TEXT] [--online=true|false] [--version=TEXT]
 *      [--java-syntax=MODULE,...] MODULE...
 * </pre>
 *
 * <p>For each MODULE (a directory under --root) it documents src/main/java and src/main/kotlin with
 * MODULE/Module.md as module and package documentation, hides packages named {@code internal},
 * reports every undocumented public declaration, and links each declaration to its source; the
 * modules named by --java-syntax are shown with Java signatures (their API is for Java callers).
 * Any warning from Dokka (an undocumented declaration, for one) fails the build, after all
 * modules have been checked, and no site is assembled; so does a link to one of our declarations that has no page on the site (a module
 * left out of the list). Exit status 0 means the site is complete and warning-free.
 */
public final class BuildApiSite {
  private BuildApiSite() {}

  public static void main(String[] args) throws Throwable {
    Map<String, String> options = new LinkedHashMap<>();
    List<String> modules = new ArrayList<>();
    for (String arg : args) {
      if (arg.startsWith("--")) {
        int eq = arg.indexOf('=');
        if (eq < 0) {
          fail("option " + arg + " needs a value: " + arg + "=...");
        }
        options.put(arg.substring(2, eq), arg.substring(eq + 1));
      } else {
        modules.add(arg);
      }
    }
    if (modules.isEmpty()) {
      fail("no module given: list the module directories to document after the options");
    }
    Path root = Path.of(required(options, "root")).toAbsolutePath().normalize();
    Path out = Path.of(required(options, "out")).toAbsolutePath().normalize();
    Path partials = out.resolveSibling(out.getFileName() + "-partial");
    List<String> plugins = paths(required(options, "plugins"));
    List<String> classpath = paths(required(options, "classpath"));
    List<String> samples =
        paths(options.getOrDefault("samples", "")).stream()
            .map(s -> root.resolve(s).toString())
            .collect(Collectors.toList());
    version = options.getOrDefault("version", "");
    footer = required(options, "title") + (version.isEmpty() ? "" : " " + version);
    boolean online = Boolean.parseBoolean(options.getOrDefault("online", "false"));
    String sourceUrl = options.getOrDefault("source-url", root.toUri().toString());
    String lineSuffix = options.getOrDefault("source-line-suffix", "#L");
    List<String> javaSyntax = Arrays.asList(options.getOrDefault("java-syntax", "").split(","));
    // Partial runs: no index of modules; Java signatures only where asked. Final run: no analysis.
    List<String> partialPlugins =
        plugins.stream().filter(p -> !p.contains("all-modules-page-plugin")).collect(Collectors.toList());
    List<String> sitePlugins =
        plugins.stream().filter(p -> !p.contains("kotlin-as-java-plugin")).collect(Collectors.toList());

    deleteRecursively(out);
    deleteRecursively(partials);
    Files.createDirectories(partials);
    log = new PrintStream(Files.newOutputStream(partials.resolveSibling(out.getFileName() + "-dokka.log")), true, "UTF-8");

    int warnings = 0;
    for (String module : modules) {
      Path dir = root.resolve(module);
      Path moduleDoc = dir.resolve("Module.md");
      if (!Files.isRegularFile(moduleDoc)) {
        fail(module + " has no Module.md: every documented module needs one (# Module " + module
            + ", then a # Package section per public package)");
      }
      List<Path> sourceRoots =
          Stream.of("src/main/java", "src/main/kotlin")
              .map(dir::resolve)
              .filter(Files::isDirectory)
              .collect(Collectors.toList());
      if (sourceRoots.isEmpty()) {
        fail(module + " has neither src/main/java nor src/main/kotlin");
      }
      // The module's own jar would shadow its sources.
      String ownOutput = dir.resolve("target").toString() + File.separator;
      List<String> moduleClasspath =
          classpath.stream().filter(p -> !p.startsWith(ownOutput)).collect(Collectors.toList());

      Json sourceLinks = Json.array();
      for (Path sourceRoot : sourceRoots) {
        sourceLinks.add(
            Json.object()
                .put("localDirectory", sourceRoot.toString())
                .put("remoteUrl", url(sourceUrl, root.relativize(sourceRoot)))
                .put("remoteLineSuffix", lineSuffix));
      }
      Json sourceSet =
          Json.object()
              .put("displayName", "JVM")
              .put("sourceSetID", Json.object().put("scopeId", module).put("sourceSetName", "main"))
              .put("analysisPlatform", "jvm")
              .put("sourceRoots", Json.strings(sourceRoots.stream().map(Path::toString).collect(Collectors.toList())))
              .put("classpath", Json.strings(moduleClasspath))
              .put("samples", Json.strings(samples))
              .put("includes", Json.strings(List.of(moduleDoc.toString())))
              .put("documentedVisibilities", Json.strings(List.of("PUBLIC")))
              .put("reportUndocumented", true)
              .put("skipEmptyPackages", true)
              .put("skipDeprecated", false)
              .put("jdkVersion", 17)
              .put("noJdkLink", !online)
              .put("noStdlibLink", !online)
              .put("externalDocumentationLinks", online ? externalLinks() : Json.array())
              .put("sourceLinks", sourceLinks)
              .put(
                  "perPackageOptions",
                  Json.array()
                      .add(
                          Json.object()
                              .put("matchingRegex", "(.+\\.)?internal(\\..+)?")
                              .put("suppress", true)
                              .put("reportUndocumented", false)
                              .put("skipDeprecated", false)
                              .put("includeNonPublic", false)
                              .put("documentedVisibilities", Json.strings(List.of("PUBLIC")))));
      Json partial =
          common(
                  module,
                  partials.resolve(module),
                  !online,
                  javaSyntax.contains(module)
                      ? partialPlugins
                      : partialPlugins.stream()
                          .filter(p -> !p.contains("kotlin-as-java-plugin"))
                          .collect(Collectors.toList()))
              .put("delayTemplateSubstitution", true)
              .put("sourceSets", Json.array().add(sourceSet))
              .put("modules", Json.array());
      warnings += generate(module, partial);
    }
    if (warnings > 0) {
      System.out.println(
          "API docs: " + warnings + (warnings == 1 ? " warning" : " warnings")
              + " above. Every public declaration needs a doc comment (KDoc or Javadoc); internal"
              + " ones go in an 'internal' package or carry @suppress. The site was not built.");
      System.exit(1);
    }

    Json moduleList = Json.array();
    for (String module : modules) {
      moduleList.add(
          Json.object()
              .put("name", module)
              .put("relativePathToOutputDirectory", module)
              .put("sourceOutputDirectory", partials.resolve(module).toString())
              .put("includes", Json.strings(List.of(root.resolve(module).resolve("Module.md").toString()))));
    }
    String index = options.get("index");
    Json site =
        common(required(options, "title"), out, !online, sitePlugins)
            .put("delayTemplateSubstitution", false)
            .put("sourceSets", Json.array())
            .put("modules", moduleList)
            .put("includes", Json.strings(index == null ? List.of() : List.of(index)));
    if (generate("site", site) > 0) {
      System.out.println("API docs: the site was built with warnings (above).");
      System.exit(1);
    }
    // A link to one of our own declarations that has no page: it points at something hidden
    // (internal) or at a module missing from the site. Dokka renders it as plain text, silently.
    List<String> dead = deadOwnLinks(out);
    if (!dead.isEmpty()) {
      dead.forEach(d -> System.out.println("[site] warn: " + d));
      System.out.println("API docs: " + dead.size() + " link(s) to our own declarations lead nowhere (above).");
      System.exit(1);
    }
    deleteRecursively(partials);
    System.out.println("API docs: " + out.resolve("index.html").toUri());
    // Dokka's analysis leaves non-daemon threads behind.
    System.exit(0);
  }

  private static String version = "";
  private static String footer = "";

  /** Dokka's full output, for when something needs explaining; the console gets only the problems. */
  private static PrintStream log;

  private static Json common(String name, Path outputDir, boolean offline, List<String> plugins) {
    String base = Json.object().put("footerMessage", footer).toString();
    return Json.object()
        .put("moduleName", name)
        .put("moduleVersion", version)
        .put(
            "pluginsConfiguration",
            Json.array()
                .add(
                    Json.object()
                        .put("fqPluginName", "org.jetbrains.dokka.base.DokkaBase")
                        .put("serializationFormat", "JSON")
                        .put("values", base)))
        .put("outputDir", outputDir.toString())
        .put("offlineMode", offline)
        .put("pluginsClasspath", Json.strings(plugins))
        .put("failOnWarning", false)
        .put("suppressObviousFunctions", true)
        .put("suppressInheritedMembers", false)
        // Several generations run in this JVM: keep the shared coroutine dispatcher alive.
        .put("finalizeCoroutines", false);
  }

  private static Json externalLinks() {
    return Json.array()
        .add(link("https://docs.oracle.com/en/java/javase/17/docs/api/", "element-list"))
        .add(link("https://kotlinlang.org/api/core/", "package-list"))
        .add(link("https://kotlinlang.org/api/kotlinx.coroutines/", "package-list"));
  }

  private static Json link(String url, String list) {
    return Json.object().put("url", url).put("packageListUrl", url + list);
  }

  /** Runs one Dokka generation, printing its warnings and errors; returns how many there were. */
  private static int generate(String what, Json configuration) throws Throwable {
    long start = System.nanoTime();
    int[] problems = {0};
    BiConsumer<String, String> logger =
        (level, message) -> {
          log.println("[" + what + "] " + level + ": " + message);
          if (level.equals("warn") || level.equals("error")) {
            problems[0]++;
            System.out.println("[" + what + "] " + level + ": " + message);
          }
        };
    DokkaBootstrapImpl dokka = new DokkaBootstrapImpl();
    dokka.configure(configuration.toString(), logger);
    dokka.generate();
    System.out.printf(
        "API docs: %s, %d warning(s), %.1f s%n", what, problems[0], (System.nanoTime() - start) / 1e9);
    return problems[0];
  }

  private static List<String> deadOwnLinks(Path site) throws Exception {
    Pattern unresolved =
        Pattern.compile("data-unresolved-link=\"(dev\\.redlock[^\"]*)\"");
    List<String> dead = new ArrayList<>();
    try (Stream<Path> pages = Files.walk(site)) {
      for (Path page : pages.filter(p -> p.toString().endsWith(".html")).collect(Collectors.toList())) {
        Matcher m = unresolved.matcher(Files.readString(page));
        while (m.find()) {
          dead.add(site.relativize(page) + " links to " + m.group(1).replace("///PointingToDeclaration/", ""));
        }
      }
    }
    return dead;
  }

  private static String url(String base, Path relative) {
    String joined = (base.endsWith("/") ? base : base + "/") + relative.toString().replace(File.separatorChar, '/');
    return URI.create(joined).normalize().toString();
  }

  private static List<String> paths(String list) {
    return Arrays.stream(list.split(File.pathSeparator)).filter(s -> !s.isBlank()).collect(Collectors.toList());
  }

  private static String required(Map<String, String> options, String name) {
    String value = options.get(name);
    if (value == null || value.isBlank()) {
      fail("missing option --" + name + "=...");
    }
    return value;
  }

  private static void fail(String message) {
    System.err.println("BuildApiSite: " + message);
    System.exit(2);
  }

  private static void deleteRecursively(Path path) throws Exception {
    if (!Files.exists(path)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(path)) {
      for (Path p : walk.sorted((a, b) -> b.getNameCount() - a.getNameCount()).collect(Collectors.toList())) {
        Files.delete(p);
      }
    }
  }

  /** Just enough JSON to write Dokka's configuration. */
  private static final class Json {
    private final StringBuilder text = new StringBuilder();
    private final boolean isObject;
    private boolean empty = true;

    private Json(boolean isObject) {
      this.isObject = isObject;
    }

    static Json object() {
      return new Json(true);
    }

    static Json array() {
      return new Json(false);
    }

    static Json strings(List<String> values) {
      Json array = array();
      values.forEach(array::add);
      return array;
    }

    Json put(String key, Object value) {
      separator();
      text.append(quote(key)).append(':').append(encode(value));
      return this;
    }

    Json add(Object value) {
      separator();
      text.append(encode(value));
      return this;
    }

    private void separator() {
      if (!empty) {
        text.append(',');
      }
      empty = false;
    }

    private static String encode(Object value) {
      if (value instanceof String) {
        return quote((String) value);
      }
      return String.valueOf(value);
    }

    private static String quote(String s) {
      StringBuilder b = new StringBuilder("\"");
      for (char c : s.toCharArray()) {
        switch (c) {
          case '"' -> b.append("\\\"");
          case '\\' -> b.append("\\\\");
          case '\n' -> b.append("\\n");
          case '\t' -> b.append("\\t");
          default -> {
            if (c < 0x20) {
              b.append(String.format("\\u%04x", (int) c));
            } else {
              b.append(c);
            }
          }
        }
      }
      return b.append('"').toString();
    }

    @Override
    public String toString() {
      return (isObject ? "{" : "[") + text + (isObject ? "}" : "]");
    }
  }
}

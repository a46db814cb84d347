package dev.redlock.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * Nothing Spring reaches the class paths of core, the engine or the facade: their poms (and the
 * parent's managed dependencies they draw from) name no Spring, ShedLock or Reactor artifact, and
 * only redlock-spring itself is a dependency of the starter.
 */
final class SpringStaysOutTest {
  private static final List<String> FOREIGN = List.of("org.springframework", "net.javacrumbs", "io.projectreactor");

  @Test
  void coreEngineAndFacade_dependOnNothingSpring() throws Exception {
    Path root = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().getParent();
    for (String module : List.of("redlock-core", "redlock-coroutines", "redlock-java-facade")) {
      List<String> groups = dependencyGroups(root.resolve(module).resolve("pom.xml"));
      assertTrue(!groups.isEmpty(), module + " has dependencies to check");
      for (String group : groups) {
        for (String foreign : FOREIGN) {
          assertTrue(!group.startsWith(foreign), module + " depends on " + group);
        }
      }
    }
    List<String> starter = dependencyGroups(root.resolve("redlock-spring-boot-starter").resolve("pom.xml"));
    assertEquals(List.of("dev.redlock", "org.springframework.boot"), starter);
  }

  /** The group ids of a pom's dependencies (not its dependency management). */
  private static List<String> dependencyGroups(Path pom) throws Exception {
    Element project =
        DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(Files.newInputStream(pom)).getDocumentElement();
    List<String> groups = new ArrayList<>();
    NodeList children = project.getChildNodes();
    for (int i = 0; i < children.getLength(); i++) {
      if (children.item(i) instanceof Element e && e.getTagName().equals("dependencies")) {
        NodeList deps = e.getElementsByTagName("groupId");
        for (int j = 0; j < deps.getLength(); j++) {
          groups.add(deps.item(j).getTextContent().trim());
        }
      }
    }
    return groups;
  }
}

package dev.redlock.junit5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.testing.PostgresServer;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.sql.DataSource;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Test classes with a PostgreSQL server, as users write them, run one at a time by {@link
 * PostgresExtensionTest}, which then checks what the extension did. They record what they were
 * handed in static fields.
 */
final class PostgresCases {
  private PostgresCases() {}

  static final List<PostgresServer> servers = new CopyOnWriteArrayList<>();

  static void clear() {
    servers.clear();
  }

  static void record(PostgresServer server) {
    if (!servers.contains(server)) {
      servers.add(server);
    }
  }

  static int selectOne(DataSource dataSource) throws SQLException {
    try (Connection c = dataSource.getConnection();
        ResultSet rs = c.createStatement().executeQuery("SELECT 1")) {
      rs.next();
      return rs.getInt(1);
    }
  }

  @ExtendWith(HarnessOnly.class)
  @PostgresTest
  @TestMethodOrder(MethodOrderer.OrderAnnotation.class)
  static final class KillCase {
    @Test
    @Order(1)
    void killsTheServer(PostgresServer server, DataSource dataSource) throws SQLException {
      record(server);
      assertEquals(1, selectOne(dataSource));
      server.kill();
    }

    @Test
    @Order(2)
    void findsItRunningAgain(PostgresServer server, DataSource dataSource) throws SQLException {
      record(server);
      assertTrue(server.isRunning());
      assertEquals(1, selectOne(dataSource));
    }

    @Nested
    final class Inner {
      @Test
      void sharesTheServer(PostgresServer server) {
        record(server);
      }
    }
  }

  @ExtendWith(HarnessOnly.class)
  @PostgresTest
  static final class FailingCase {
    @Test
    void fails(PostgresServer server) {
      record(server);
      throw new AssertionError("failing on purpose");
    }
  }

  @ExtendWith(HarnessOnly.class)
  static final class RegisteredCase {
    @RegisterExtension
    static final PostgresExtension POSTGRES =
        PostgresExtension.builder()
            .serverOptions(server -> server.setting("work_mem", "5MB"))
            .build();

    @Test
    void handsOutTheServerItStarted(PostgresServer server) {
      record(server);
      assertSame(POSTGRES.server(), server);
      assertEquals(
          "5MB", server.query("SHOW work_mem").get(0).get(0).toString());
    }
  }
}

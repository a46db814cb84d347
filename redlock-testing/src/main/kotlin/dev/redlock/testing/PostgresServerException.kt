package dev.redlock.testing

/**
 * Thrown when a [PostgresServer] cannot find, start, reach or control its PostgreSQL server, or when
 * the server rejects a statement sent with [PostgresServer.execute] or [PostgresServer.query].
 *
 * Start failures carry the tail of the server's log (or `initdb`'s output); the underlying failure,
 * such as a [java.sql.SQLException] with the server's message, is kept as the [cause].
 */
public class PostgresServerException
@JvmOverloads
public constructor(message: String, cause: Throwable? = null) : RuntimeException(message, cause)

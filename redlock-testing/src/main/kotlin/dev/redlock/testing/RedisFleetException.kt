package dev.redlock.testing

/**
 * Thrown when a [RedisFleet] cannot find, start, reach or control a Redis master, or when a master
 * answers a command with an error reply.
 *
 * The message names the master (index and port) where there is one. Start failures carry the tail of
 * that master's log; error replies carry the server's message verbatim (for example
 * `ERR unknown command 'NOPE'`). The underlying failure, such as a [java.net.SocketTimeoutException],
 * is kept as the [cause].
 */
public class RedisFleetException
@JvmOverloads
public constructor(message: String, cause: Throwable? = null) : RuntimeException(message, cause)

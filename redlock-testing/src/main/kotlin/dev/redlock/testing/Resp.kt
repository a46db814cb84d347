package dev.redlock.testing

import java.io.BufferedInputStream
import java.io.BufferedOutputStream
import java.io.ByteArrayOutputStream
import java.io.Closeable
import java.io.EOFException
import java.io.IOException
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.Socket

/** The only address masters listen on. */
internal val LOOPBACK: InetAddress = InetAddress.getByAddress("localhost", byteArrayOf(127, 0, 0, 1))

/** An error reply (`-ERR ...`), kept as a value so that the stream stays readable after it. */
internal class RespError(val message: String) {
    override fun toString(): String = "RespError($message)"
}

/**
 * A minimal RESP2 connection: commands go out as arrays of bulk strings, replies come back as
 * `String` (simple and bulk), `Long`, `List<Any?>`, `null` or [RespError].
 *
 * Not thread-safe; callers open one per use (loopback connects cost microseconds, and a fresh
 * connection never carries the state of a command that timed out).
 */
internal class RespConnection private constructor(private val socket: Socket) : Closeable {
    private val input = BufferedInputStream(socket.getInputStream())
    private val output = BufferedOutputStream(socket.getOutputStream())

    /** Buffers one command; nothing is sent before [flush]. */
    fun write(args: List<String>) {
        output.write(header('*', args.size))
        for (arg in args) {
            val bytes = arg.toByteArray(Charsets.UTF_8)
            output.write(header('$', bytes.size))
            output.write(bytes)
            output.write(CRLF)
        }
    }

    fun flush() {
        output.flush()
    }

    /** Reads one reply; throws [IOException] on timeout, EOF or a malformed reply. */
    fun read(): Any? {
        val type = input.read()
        if (type == -1) throw EOFException("connection closed by the server")
        val line = readLine()
        return when (type.toChar()) {
            '+' -> line
            '-' -> RespError(line)
            ':' -> line.toLongOrNull() ?: throw IOException("malformed integer reply: $line")
            '$' -> {
                val length = line.toIntOrNull() ?: throw IOException("malformed bulk length: $line")
                if (length < 0) null else readBulk(length)
            }
            '*' -> {
                val count = line.toIntOrNull() ?: throw IOException("malformed array length: $line")
                if (count < 0) null else List(count) { read() }
            }
            else -> throw IOException("unsupported RESP reply type '${type.toChar()}' (only RESP2 is spoken)")
        }
    }

    override fun close() {
        socket.close()
    }

    private fun readBulk(length: Int): String {
        val bytes = input.readNBytes(length)
        if (bytes.size < length) throw EOFException("connection closed inside a bulk reply")
        if (input.read() != '\r'.code || input.read() != '\n'.code) throw IOException("bulk reply not terminated by CRLF")
        return String(bytes, Charsets.UTF_8)
    }

    private fun readLine(): String {
        val buffer = ByteArrayOutputStream(32)
        while (true) {
            val b = input.read()
            if (b == -1) throw EOFException("connection closed inside a reply")
            if (b == '\r'.code) {
                if (input.read() != '\n'.code) throw IOException("reply line not terminated by CRLF")
                return buffer.toString(Charsets.UTF_8)
            }
            buffer.write(b)
        }
    }

    companion object {
        private val CRLF = byteArrayOf('\r'.code.toByte(), '\n'.code.toByte())

        private fun header(type: Char, n: Int): ByteArray = "$type$n\r\n".toByteArray(Charsets.US_ASCII)

        /**
         * Connects to [host]:[port]; [timeoutMillis] bounds the connect and every later read.
         * [wrap] may layer the socket (TLS) before the first byte is sent.
         */
        fun open(host: InetAddress, port: Int, timeoutMillis: Int, wrap: (Socket) -> Socket = { it }): RespConnection {
            val socket = Socket()
            try {
                socket.tcpNoDelay = true
                socket.soTimeout = timeoutMillis
                socket.connect(InetSocketAddress(host, port), timeoutMillis)
                return RespConnection(wrap(socket))
            } catch (e: Throwable) {
                socket.close()
                throw e
            }
        }

        /**
         * Sends [AUTH password,] [args], QUIT in one write and returns the reply to [args].
         *
         * QUIT makes the server close first, so the TIME_WAIT state stays on the server's side and
         * a loop of many commands cannot exhaust the client's ephemeral ports.
         */
        /** Connects to 127.0.0.1:[port]; as [open] with a host. */
        fun open(port: Int, timeoutMillis: Int, wrap: (Socket) -> Socket = { it }): RespConnection =
            open(LOOPBACK, port, timeoutMillis, wrap)

        fun call(host: InetAddress, port: Int, password: String?, timeoutMillis: Int, args: List<String>): Any? =
            call(open(host, port, timeoutMillis), password?.let { listOf("AUTH", it) }, args)

        fun call(port: Int, password: String?, timeoutMillis: Int, args: List<String>): Any? =
            call(LOOPBACK, port, password, timeoutMillis, args)

        /** As [call], on a connection already open (closed by this call), authenticated by [auth] if given. */
        fun call(connection: RespConnection, auth: List<String>?, args: List<String>): Any? =
            connection.use {
                if (auth != null) connection.write(auth)
                connection.write(args)
                connection.write(listOf("QUIT"))
                connection.flush()
                if (auth != null) {
                    val reply = connection.read()
                    if (reply is RespError) return reply
                }
                val reply = connection.read()
                try {
                    connection.read()
                } catch (_: IOException) {
                    // The reply is what matters; a QUIT that goes unanswered changes nothing.
                }
                reply
            }
    }
}

/**
 * A server that answered the readiness probe: what `INFO server` said about it. [version] is the
 * server's own (`valkey_version` on Valkey, whose `redis_version` stays 7.2.4), [name] `Redis` or
 * `Valkey`.
 */
internal class ServerInfo(val pid: Long, val version: String, val name: String)

/** The server answered, but not as a ready Redis does (a wrong password, a stranger on the port). */
internal class ProbeException(message: String) : Exception(message)

/**
 * One readiness check: AUTH (with a password), PING and INFO server in one write; returns what INFO
 * says once PING got PONG. Throws [IOException] while nothing listens or answers, [ProbeException]
 * when something answers wrongly.
 */
internal fun probeServer(host: InetAddress, port: Int, password: String?, timeoutMillis: Int): ServerInfo =
    probeServer(RespConnection.open(host, port, timeoutMillis), password?.let { listOf("AUTH", it) })

/** As [probeServer], on a connection already open (closed by this call), authenticated by [auth] if given. */
internal fun probeServer(opened: RespConnection, auth: List<String>?): ServerInfo =
    opened.use { connection ->
        if (auth != null) connection.write(auth)
        connection.write(listOf("PING"))
        connection.write(listOf("INFO", "server"))
        connection.flush()
        if (auth != null) {
            val answer = connection.read()
            if (answer is RespError) throw ProbeException("AUTH: ${answer.message}")
        }
        val pong = connection.read()
        if (pong != "PONG") throw ProbeException("PING answered $pong")
        val info = connection.read() as? String ?: throw ProbeException("INFO server gave no text")
        val fields =
            info.lineSequence().mapNotNull { line ->
                val colon = line.indexOf(':')
                if (colon < 0) null else line.substring(0, colon) to line.substring(colon + 1).trim()
            }.toMap()
        val valkey = fields["server_name"] == "valkey" || fields.containsKey("valkey_version")
        ServerInfo(
            pid = fields["process_id"]?.toLongOrNull() ?: throw ProbeException("INFO server has no process_id"),
            version = (if (valkey) fields["valkey_version"] else null)
                ?: fields["redis_version"]
                ?: throw ProbeException("INFO server has no redis_version"),
            name = if (valkey) "Valkey" else "Redis",
        )
    }

/** Percent-encodes every byte but RFC 3986's unreserved characters, for the userinfo part of a URI. */
internal fun percentEncode(value: String): String = buildString {
    for (byte in value.toByteArray(Charsets.UTF_8)) {
        val c = byte.toInt() and 0xff
        if (c in 'a'.code..'z'.code || c in 'A'.code..'Z'.code || c in '0'.code..'9'.code || c.toChar() in "-._~") {
            append(c.toChar())
        } else {
            append('%').append("0123456789ABCDEF"[c shr 4]).append("0123456789ABCDEF"[c and 0xf])
        }
    }
}

package dev.redlock.chaos

import java.io.BufferedInputStream
import java.io.BufferedOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.InetSocketAddress
import java.net.Socket

/**
 * An administrator's connections to the masters, straight to each (no proxy), opened ahead of use
 * so that a command goes out the moment it is sent: the moment a deletion fault records is the
 * moment before its bytes are written, with no connection set up in between. Plain RESP2 without
 * client tracking, as `redis-cli` would send. Not thread-safe: one fault at a time uses it (callers
 * synchronize on it).
 */
class AdminConnections(private val cluster: ChaosCluster) : AutoCloseable {
    private val links = arrayOfNulls<Link>(cluster.masters)

    private class Link(port: Int) : AutoCloseable {
        val socket = Socket().apply {
            tcpNoDelay = true
            soTimeout = 3_000
            connect(InetSocketAddress("127.0.0.1", port), 3_000)
        }
        val output = BufferedOutputStream(socket.getOutputStream())
        val input = BufferedInputStream(socket.getInputStream())

        fun write(args: List<String>) {
            val out = StringBuilder().append('*').append(args.size).append("\r\n")
            for (a in args) {
                val bytes = a.toByteArray(Charsets.UTF_8)
                out.append('$').append(bytes.size).append("\r\n").append(a).append("\r\n")
            }
            output.write(out.toString().toByteArray(Charsets.UTF_8))
            output.flush()
        }

        fun read(): Any? = readReply(input)

        override fun close() {
            runCatching { socket.close() }
        }
    }

    /** Opens (or reopens, after a master restarted) the connection to every master in [masters] that is not open. */
    fun open(masters: Iterable<Int>) {
        for (m in masters) {
            val link = links[m]
            if (link == null || link.socket.isClosed || !ping(link)) {
                link?.close()
                links[m] = Link(cluster.fleet.port(m))
            }
        }
    }

    private fun ping(link: Link): Boolean =
        try {
            link.write(listOf("PING"))
            link.read() == "PONG"
        } catch (e: IOException) {
            false
        }

    /**
     * Sends [args] to every master in [masters] at once (each written before any reply is read), and
     * returns the replies in order. [before] runs just before the first byte is written: the moment
     * the deletion counts from. The connections must have been [open]ed.
     */
    fun sendAll(masters: List<Int>, args: List<String>, before: () -> Unit = {}): List<Any?> {
        val targets = masters.map { links[it] ?: error("no admin connection to master $it; open() first") }
        before()
        targets.forEach { it.write(args) }
        return targets.map { it.read() }
    }

    /**
     * Waits (polling `EXISTS`, at most [timeoutNanos]) until [key] exists on every master in
     * [masters]; returns whether it did. A lock is granted once a quorum answered: its write to a
     * slower master may still be on the way, and would re-create the key after a deletion there.
     */
    fun awaitKey(masters: List<Int>, key: String, timeoutNanos: Long): Boolean {
        val deadline = System.nanoTime() + timeoutNanos
        while (true) {
            if (sendAll(masters, listOf("EXISTS", key)).all { it == 1L }) return true
            if (System.nanoTime() > deadline) return false
            Thread.sleep(1)
        }
    }

    override fun close() {
        for (i in links.indices) {
            links[i]?.close()
            links[i] = null
        }
    }

    private companion object {
        /** One RESP2 reply: simple string, error (as an [IOException]), integer, bulk string or array. */
        fun readReply(input: InputStream): Any? {
            val line = readLine(input)
            if (line.isEmpty()) throw IOException("empty reply line")
            val rest = line.substring(1)
            return when (line[0]) {
                '+' -> rest
                '-' -> throw IOException("error reply: $rest")
                ':' -> rest.toLong()
                '$' -> {
                    val n = rest.toInt()
                    if (n < 0) return null
                    val bytes = ByteArray(n)
                    var read = 0
                    while (read < n) {
                        val r = input.read(bytes, read, n - read)
                        if (r < 0) throw IOException("connection closed in a reply")
                        read += r
                    }
                    readLine(input)
                    String(bytes, Charsets.UTF_8)
                }
                '*' -> {
                    val n = rest.toInt()
                    if (n < 0) null else List(n) { readReply(input) }
                }
                else -> throw IOException("not a RESP2 reply: $line")
            }
        }

        fun readLine(input: InputStream): String {
            val sb = StringBuilder()
            while (true) {
                val c = input.read()
                if (c < 0) throw IOException("connection closed")
                if (c == '\r'.code) {
                    input.read()
                    return sb.toString()
                }
                sb.append(c.toChar())
            }
        }
    }
}

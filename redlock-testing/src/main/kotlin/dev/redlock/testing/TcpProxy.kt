package dev.redlock.testing

import java.io.IOException
import java.io.InputStream
import java.io.OutputStream
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.locks.ReentrantLock
import java.util.concurrent.locks.LockSupport
import kotlin.concurrent.thread
import kotlin.concurrent.withLock

/**
 * A TCP proxy in the test process, between clients and one server (typically a master of a
 * [RedisFleet]), that can slow the network down, cut it off, or break its connections.
 *
 * ```kotlin
 * TcpProxy.start("127.0.0.1", fleet.port(0)).use { proxy ->
 *     val config = RedlockConfig.builder().master(proxy.uri()).build()
 *     proxy.latency = Duration.ofMillis(50)  // every chunk, in each direction, 50 ms late
 *     proxy.blackHole()                      // connections stay open, nothing gets through
 *     proxy.heal()                           // traffic flows again
 *     proxy.resetConnections()               // every connection ends with a TCP RST
 * }
 * ```
 *
 * The proxy listens on a free loopback port ([port], [uri]). Each accepted connection gets its own
 * connection to the target; bytes are forwarded in both directions, in order, in the chunks in
 * which they were read. Faults can be switched at any time and act on connections already open:
 * - [latency] delays every chunk, in each direction, by that much from the moment it was read;
 *   byte order is kept, so a chunk never overtakes an earlier one.
 * - [blackHole] keeps every connection open but forwards nothing: bytes read from either side
 *   are dropped, including chunks still waiting out their latency. New connections are accepted
 *   but not connected to the target until [heal].
 * - [resetConnections] closes every proxied connection on both sides with a TCP RST;
 *   [closeConnections] closes them with a FIN.
 *
 * Dropped bytes are gone for good, so a connection that carried traffic during a black hole no
 * longer carries a coherent byte stream (a Redis client may pair a later reply with an earlier
 * command). To model a partition that ends the way TCP connections usually do, call
 * [resetConnections] before [heal].
 *
 * When the target refuses a connection (say, the master is killed), the client's connection is
 * closed with an RST; when the target closes a connection, the client's side is closed too, after
 * the bytes already read have been forwarded.
 *
 * Thread-safety: every method may be called from any thread. Each connection is served by four
 * daemon threads; [close] stops them all.
 */
public class TcpProxy private constructor(
    private val targetHost: String,
    private val targetPort: Int,
    private val server: ServerSocket,
) : AutoCloseable {

    private val connections: MutableSet<Connection> = ConcurrentHashMap.newKeySet()
    private val closed = AtomicBoolean(false)
    private val stateLock = ReentrantLock()
    private val healed = stateLock.newCondition()

    @Volatile private var blackHoled = false

    /** Bumped by every [blackHole]: a chunk read in an earlier epoch is never written. */
    @Volatile private var epoch = 0L

    @Volatile private var latencyNanos = 0L

    private val acceptor: Thread = thread(name = "tcp-proxy-accept-${server.localPort}", isDaemon = true, start = false) { acceptLoop() }

    /** The loopback port the proxy listens on; `port()` from Java. */
    public val port: Int
        @JvmName("port") get() = server.localPort

    /**
     * The extra delay of every chunk in each direction; default zero. Settable at any time: a
     * chunk is due at the moment it was read plus the latency in force at that moment, and is
     * never written before the chunks read before it.
     *
     * @throws IllegalArgumentException from the setter if the value is negative.
     */
    public var latency: Duration
        get() = Duration.ofNanos(latencyNanos)
        set(value) {
            require(!value.isNegative) { "latency expected to be zero or positive, but was $value" }
            latencyNanos = value.toNanos()
        }

    /** The number of client connections currently open through the proxy; `connectionCount()` from Java. */
    public val connectionCount: Int
        @JvmName("connectionCount") get() = connections.size

    /** Whether [blackHole] is in force (until [heal]); `isBlackHoled()` from Java. */
    public val isBlackHoled: Boolean
        get() = blackHoled

    /** `redis://127.0.0.1:PORT`, the URI a Redis client uses to connect through the proxy. */
    public fun uri(): String = "redis://127.0.0.1:$port"

    /**
     * Stops forwarding: connections stay open, bytes read from either side are dropped (also those
     * still waiting out their latency), and new connections are accepted but not connected to the
     * target. Idempotent; [heal] ends it.
     */
    public fun blackHole() {
        stateLock.withLock {
            epoch++
            blackHoled = true
        }
    }

    /**
     * Forwards again, from the next chunk read; bytes dropped meanwhile stay dropped. Connections
     * accepted during the black hole are now connected to the target. Idempotent.
     */
    public fun heal() {
        stateLock.withLock {
            blackHoled = false
            healed.signalAll()
        }
    }

    /**
     * Closes every proxied connection on both sides with a TCP RST (`SO_LINGER` 0), as a crashed
     * middlebox or a peer that vanished would; bytes not yet forwarded are dropped. The proxy keeps
     * listening, and new connections are served as usual.
     */
    public fun resetConnections() {
        connections.toList().forEach { it.close(reset = true) }
    }

    /**
     * Closes every proxied connection on both sides the orderly way (a TCP FIN), as a server or a
     * middlebox that closes idle connections would; bytes not yet forwarded are dropped. The proxy
     * keeps listening, and new connections are served as usual.
     */
    public fun closeConnections() {
        connections.toList().forEach { it.close(reset = false) }
    }

    /**
     * Stops listening and resets every proxied connection. Idempotent; after close, [port] and
     * [uri] still answer but nothing is forwarded.
     */
    override fun close() {
        if (!closed.compareAndSet(false, true)) return
        try {
            server.close()
        } catch (_: IOException) {
            // Closing is all that matters; the acceptor ends on its own.
        }
        heal() // wakes connections waiting for the black hole to end, so that they see the close
        resetConnections()
        acceptor.join(JOIN_MILLIS)
    }

    /** Describes the proxy for logs and test reports: its ports, its faults and its open connections. */
    override fun toString(): String =
        "TcpProxy(127.0.0.1:$port -> $targetHost:$targetPort, latency=$latency, " +
            "blackHoled=$blackHoled, connections=$connectionCount${if (closed.get()) ", closed" else ""})"

    private fun acceptLoop() {
        while (!closed.get()) {
            val client =
                try {
                    server.accept()
                } catch (_: IOException) {
                    return
                }
            val connection = Connection(client)
            connections.add(connection)
            if (closed.get()) {
                connection.close(reset = true)
                return
            }
            connection.start()
        }
    }

    /** Blocks until the black hole ends; returns false if [gone] holds first. */
    private fun awaitForwarding(gone: () -> Boolean): Boolean {
        stateLock.withLock {
            while (blackHoled && !gone()) healed.await(WAKE_MILLIS, TimeUnit.MILLISECONDS)
        }
        return !gone()
    }

    private class Chunk(val bytes: ByteArray, val length: Int, val dueNanos: Long, val epoch: Long)

    /** One client connection and its connection to the target. */
    private inner class Connection(private val client: Socket) {
        private val done = AtomicBoolean(false)

        @Volatile private var upstream: Socket? = null
        private val toUpstream = LinkedBlockingQueue<Chunk>()
        private val toClient = LinkedBlockingQueue<Chunk>()
        private val name = "tcp-proxy-${server.localPort}-${client.port}"

        fun start() {
            guarded { client.tcpNoDelay = true }
            // Reads from the client start at once, so that bytes sent during a black hole are dropped.
            thread(name = "$name-c2u-read", isDaemon = true) { guarded { pump(client.getInputStream(), toUpstream) } }
            thread(name = "$name-connect", isDaemon = true) { guarded { connectThenRead() } }
        }

        private fun connectThenRead() {
            if (!awaitForwarding(::isGone)) return close(reset = true)
            val socket = Socket()
            try {
                socket.tcpNoDelay = true
                socket.connect(InetSocketAddress(targetHost, targetPort), CONNECT_TIMEOUT_MILLIS)
            } catch (_: IOException) {
                socket.close()
                return close(reset = true)
            }
            upstream = socket
            // A close that ran before the assignment could not see this socket.
            if (done.get()) return closeSocket(socket, reset = true)
            thread(name = "$name-c2u-write", isDaemon = true) { guarded { drain(toUpstream, socket.getOutputStream()) } }
            thread(name = "$name-u2c-write", isDaemon = true) { guarded { drain(toClient, client.getOutputStream()) } }
            pump(socket.getInputStream(), toClient)
        }

        /** Runs one thread's work; a socket or wait that fails ends the whole connection with an RST. */
        private inline fun guarded(work: () -> Unit) {
            try {
                work()
            } catch (_: IOException) {
                close(reset = true)
            } catch (_: InterruptedException) {
                close(reset = true)
            }
        }

        private fun isGone(): Boolean = done.get() || closed.get()

        /**
         * Reads chunks from [input] and queues them with their due time. An end of stream queues
         * [EOF], once any black hole is over (a closing peer is traffic too).
         */
        private fun pump(input: InputStream, queue: LinkedBlockingQueue<Chunk>) {
            while (!done.get()) {
                val buffer = ByteArray(BUFFER_BYTES)
                val n = input.read(buffer)
                if (n < 0) {
                    if (awaitForwarding(::isGone)) queue.put(EOF)
                    return
                }
                // Read the epoch first: a black hole starting now makes the chunk stale at once.
                val readEpoch = epoch
                if (!blackHoled) queue.put(Chunk(buffer, n, System.nanoTime() + latencyNanos, readEpoch))
            }
        }

        /** Writes queued chunks to [output] once due, dropping those that fall due in a black hole. */
        private fun drain(queue: LinkedBlockingQueue<Chunk>, output: OutputStream) {
            while (true) {
                val chunk = queue.take()
                if (chunk === EOF) return close(reset = false)
                if (chunk === CLOSED) return
                while (true) {
                    val wait = chunk.dueNanos - System.nanoTime()
                    if (wait <= 0 || done.get()) break
                    LockSupport.parkNanos(wait)
                }
                if (done.get()) return
                if (!blackHoled && chunk.epoch == epoch) {
                    output.write(chunk.bytes, 0, chunk.length)
                    output.flush()
                }
            }
        }

        /** Closes both sides, with an RST when [reset]; the first call wins. */
        fun close(reset: Boolean) {
            if (!done.compareAndSet(false, true)) return
            connections.remove(this)
            closeSocket(client, reset)
            upstream?.let { closeSocket(it, reset) }
            toUpstream.offer(CLOSED)
            toClient.offer(CLOSED)
        }

        private fun closeSocket(socket: Socket, reset: Boolean) {
            try {
                if (reset) socket.setSoLinger(true, 0)
            } catch (_: IOException) {
                // Already closed or never connected: nothing to reset.
            }
            try {
                socket.close()
            } catch (_: IOException) {
                // Closed either way.
            }
        }
    }

    /** Factories. */
    public companion object {
        private const val BUFFER_BYTES = 16 * 1024
        private const val CONNECT_TIMEOUT_MILLIS = 5_000
        private const val JOIN_MILLIS = 5_000L
        private val EOF = Chunk(ByteArray(0), 0, 0, 0)
        private val CLOSED = Chunk(ByteArray(0), 0, 0, 0)

        /**
         * Starts a proxy on a free loopback port that forwards to [targetHost]:[targetPort].
         *
         * The target need not be up yet: each client connection is connected to it when accepted
         * (or when a black hole ends), and closed with an RST if the target refuses.
         *
         * @throws IllegalArgumentException if [targetPort] is not in 1..65535 or [targetHost] is blank.
         * @throws IOException if no loopback port can be bound.
         */
        @JvmStatic
        @Throws(IOException::class)
        public fun start(targetHost: String, targetPort: Int): TcpProxy {
            require(targetHost.isNotBlank()) { "targetHost expected to be a host name or address, but was blank" }
            require(targetPort in 1..65535) { "targetPort expected in 1..65535, but was $targetPort" }
            val server = ServerSocket(0, BACKLOG, InetAddress.getLoopbackAddress())
            val proxy = TcpProxy(targetHost, targetPort, server)
            proxy.acceptor.start()
            return proxy
        }

        private const val BACKLOG = 128
        private const val WAKE_MILLIS = 20L
    }
}

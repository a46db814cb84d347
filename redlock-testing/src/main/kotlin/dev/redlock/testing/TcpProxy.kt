package dev.redlock.testing

import java.io.IOException
import java.io.InputStream
import java.io.OutputStream
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.locks.ReentrantLock
import java.util.concurrent.locks.LockSupport
import java.util.function.Predicate
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
 *     // The next renewal a client sends starts a 300 ms latency (it is delayed itself):
 *     proxy.latencyFromNextCommand(Duration.ofMillis(300)) { it.isEvalSha(extendSha) }
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
 * - [onNextCommand] arms an action (any of the above, or anything else, such as pausing the
 *   server) that runs exactly when the next command matching a predicate passes from a client
 *   towards the server, before that command can run there; [latencyFromNextCommand],
 *   [blackHoleFromNextCommand] and [resetOnNextCommand] arm the proxy's own faults that way.
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

    /** Armed by [onNextCommand], in arming order; each fires once. */
    private val armed = ConcurrentLinkedQueue<ArmedFault>()

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
     * Arms [action] to run once, exactly when the next command that [matcher] accepts passes from
     * a client towards the server, on any connection of this proxy.
     *
     * The proxy reads the commands clients send (RESP arrays, as client libraries send them, and
     * inline commands). When a command's last byte has been read and [matcher] accepts it, the
     * bytes before that command are handed on as usual (and written to the server, at their due
     * time under any latency in force, before the action runs), then [action] runs on the thread
     * that reads that connection, and only then are the command's bytes (and everything after
     * them) handed on, under whatever faults are in force by then. So a fault that [action] switches on
     * applies to that command itself (a latency delays it, a black hole drops it, a reset loses
     * it), and the server cannot run the command before [action] has returned (a command that
     * spans several reads may have its first bytes at the server already, but the server waits
     * for its last byte). The command's reply, and everything after, is subject to the same faults.
     *
     * [action] holds up that connection's traffic while it runs, nothing else; it should be quick
     * (sending a signal to a process is fine). Several armed faults may fire on the same command,
     * in the order they were armed. A command that [matcher] or [action] throws on still passes;
     * the exception completes [ArmedFault.fired] exceptionally. Commands whose first bytes were read
     * before this call may or may not count as "next". A connection whose bytes are not RESP is
     * forwarded as usual, and its commands never fire anything.
     *
     * @return the armed fault: whether and when it fired, and the command it fired on; [ArmedFault.cancel]
     *   disarms it. Closing the proxy disarms everything still armed.
     */
    public fun onNextCommand(matcher: Predicate<ProxiedCommand>, action: Runnable): ArmedFault {
        val fault = ArmedFault(matcher, action, armed::remove)
        armed += fault
        if (closed.get()) fault.cancel()
        return fault
    }

    /** [onNextCommand] for the next command of any kind. */
    public fun onNextCommand(action: Runnable): ArmedFault = onNextCommand({ true }, action)

    /**
     * Arms a [latency] of [added] that starts with the next command [matcher] accepts (that
     * command is the first one delayed) and stays in force until [latency] is set again.
     *
     * @throws IllegalArgumentException if [added] is negative.
     */
    @JvmOverloads
    public fun latencyFromNextCommand(added: Duration, matcher: Predicate<ProxiedCommand> = Predicate { true }): ArmedFault {
        require(!added.isNegative) { "latency expected to be zero or positive, but was $added" }
        return onNextCommand(matcher) { latency = added }
    }

    /**
     * Arms a [blackHole] that starts with the next command [matcher] accepts (that command is the
     * first one dropped) and lasts until [heal].
     */
    @JvmOverloads
    public fun blackHoleFromNextCommand(matcher: Predicate<ProxiedCommand> = Predicate { true }): ArmedFault =
        onNextCommand(matcher) { blackHole() }

    /**
     * Arms a [resetConnections] on the next command [matcher] accepts: that command never reaches
     * the server, and every connection of the proxy ends with an RST at that moment.
     */
    @JvmOverloads
    public fun resetOnNextCommand(matcher: Predicate<ProxiedCommand> = Predicate { true }): ArmedFault =
        onNextCommand(matcher) { resetConnections() }

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
        armed.toList().forEach { it.cancel() }
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

    private class Chunk(val bytes: ByteArray, val offset: Int, val length: Int, val dueNanos: Long, val epoch: Long, val seq: Long = 0)

    /** One client connection and its connection to the target. */
    private inner class Connection(private val client: Socket) {
        private val done = AtomicBoolean(false)

        @Volatile private var upstream: Socket? = null
        private val toUpstream = LinkedBlockingQueue<Chunk>()

        /** How many chunks the client's side queued ([Chunk.seq] of the last one); its reader's only. */
        private var queued = 0L

        /** The [Chunk.seq] of the last client chunk written to the server or dropped. */
        @Volatile private var handedOn = 0L
        private val toClient = LinkedBlockingQueue<Chunk>()
        private val name = "tcp-proxy-${server.localPort}-${client.port}"

        fun start() {
            guarded { client.tcpNoDelay = true }
            // Reads from the client start at once, so that bytes sent during a black hole are dropped.
            thread(name = "$name-c2u-read", isDaemon = true) { guarded { pump(client.getInputStream(), toUpstream, CommandReader()) } }
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
         * [EOF], once any black hole is over (a closing peer is traffic too). With [commands] (the
         * client's side), a chunk is split where a command that fires an armed fault begins, and
         * the fault's action runs between the two parts.
         */
        private fun pump(input: InputStream, queue: LinkedBlockingQueue<Chunk>, commands: CommandReader? = null) {
            while (!done.get()) {
                val buffer = ByteArray(BUFFER_BYTES)
                val n = input.read(buffer)
                if (n < 0) {
                    if (awaitForwarding(::isGone)) queue.put(EOF)
                    return
                }
                if (commands == null || !commands.usable) {
                    enqueue(queue, buffer, 0, n)
                    continue
                }
                var from = 0
                commands.feed(buffer, n) { start, _, command ->
                    val firing = if (armed.isEmpty()) emptyList() else armed.filter { it.claimFor(command) }
                    if (firing.isNotEmpty()) {
                        val cut = maxOf(start, from)
                        if (cut > from) enqueue(queue, buffer, from, cut - from)?.let(::awaitHandedOn)
                        from = cut
                        firing.forEach { it.fire(command) }
                    }
                }
                if (n > from && !done.get()) enqueue(queue, buffer, from, n - from)
            }
        }

        /** Queues a chunk unless a black hole is in force; returns it if queued. */
        private fun enqueue(queue: LinkedBlockingQueue<Chunk>, buffer: ByteArray, offset: Int, length: Int): Chunk? {
            // Read the epoch first: a black hole starting now makes the chunk stale at once.
            val readEpoch = epoch
            if (blackHoled) return null
            val chunk = Chunk(buffer, offset, length, System.nanoTime() + latencyNanos, readEpoch, ++queued)
            queue.put(chunk)
            return chunk
        }

        /**
         * Waits until the client's [chunk] has been handed on to the server (or dropped), so that a
         * fault that starts with the next command does not reach back to the bytes before it.
         * Bounded: a connection still waiting for its server, or gone, is not waited for.
         */
        private fun awaitHandedOn(chunk: Chunk) {
            val deadline = chunk.dueNanos + HAND_ON_WAIT_NANOS
            while (handedOn < chunk.seq && !done.get() && System.nanoTime() < deadline) LockSupport.parkNanos(HAND_ON_POLL_NANOS)
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
                    output.write(chunk.bytes, chunk.offset, chunk.length)
                    output.flush()
                }
                if (queue === toUpstream) handedOn = chunk.seq
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
        private val EOF = Chunk(ByteArray(0), 0, 0, 0, 0)
        private val CLOSED = Chunk(ByteArray(0), 0, 0, 0, 0)

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
        private const val HAND_ON_WAIT_NANOS = 1_000_000_000L
        private const val HAND_ON_POLL_NANOS = 20_000L
    }
}

/**
 * An action armed on a [TcpProxy] by [TcpProxy.onNextCommand]: it fires once, on the first
 * matching command, or never if cancelled first.
 */
public class ArmedFault internal constructor(
    private val matcher: Predicate<ProxiedCommand>,
    private val action: Runnable,
    private val disarm: (ArmedFault) -> Unit,
) {
    private val claimed = java.util.concurrent.atomic.AtomicBoolean(false)

    /**
     * Completes with the command the fault fired on, once its action has run; completes
     * exceptionally if the matcher or the action threw; is cancelled by [cancel] or by closing the
     * proxy before it fired.
     */
    public val fired: CompletableFuture<ProxiedCommand> = CompletableFuture()

    /** `System.nanoTime()` just before the action ran, or -1 while it has not fired; `firedAtNanos()` from Java. */
    @Volatile public var firedAtNanos: Long = -1L
        @JvmName("firedAtNanos") get
        private set

    /** Whether the fault fired (its action started). */
    public val isFired: Boolean
        get() = firedAtNanos >= 0

    /**
     * Claims the fault for [command] if it is still armed and [command] matches; a matcher that
     * throws claims it too and fails [fired]. Returns whether the caller is to [fire] it.
     */
    internal fun claimFor(command: ProxiedCommand): Boolean {
        if (claimed.get()) return false
        val matches = try {
            matcher.test(command)
        } catch (e: Throwable) {
            if (claimed.compareAndSet(false, true)) {
                disarm(this)
                fired.completeExceptionally(e)
            }
            return false
        }
        if (!matches || !claimed.compareAndSet(false, true)) return false
        disarm(this)
        return true
    }

    /** Runs the action of a fault claimed for [command]. */
    internal fun fire(command: ProxiedCommand) {
        firedAtNanos = System.nanoTime()
        try {
            action.run()
            fired.complete(command)
        } catch (e: Throwable) {
            fired.completeExceptionally(e)
        }
    }

    /** Disarms the fault if it has not fired yet; returns whether it was disarmed by this call. */
    public fun cancel(): Boolean {
        if (!claimed.compareAndSet(false, true)) return false
        disarm(this)
        fired.cancel(false)
        return true
    }

    /** Whether it fired, and on what, for logs. */
    override fun toString(): String = when {
        isFired -> "ArmedFault(fired on ${fired.getNow(null) ?: "a command"})"
        fired.isCancelled -> "ArmedFault(cancelled)"
        else -> "ArmedFault(armed)"
    }
}

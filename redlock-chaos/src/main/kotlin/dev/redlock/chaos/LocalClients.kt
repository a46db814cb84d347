package dev.redlock.chaos

import dev.redlock.coroutines.Redlock
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.time.Duration
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeoutOrNull

/**
 * The clients of a run that live in this JVM, each with its own `Redlock` and worker coroutine
 * (launched in [scope]) until [stop] says so. A client whose `Redlock` a fault closes is
 * [retire]d first (its worker ends after its current call) and later [replace]d by a fresh client
 * on the same side, so that the load stays the same. [close] closes every `Redlock` ever started.
 */
class LocalClients(
    private val scope: CoroutineScope,
    private val cluster: ChaosCluster,
    private val history: History,
    private val stop: () -> Boolean,
) : AutoCloseable {

    /** One client: its [name], the [side] whose proxies it uses, its settings and its `Redlock`. */
    class Client internal constructor(val name: String, val side: Int, val settings: WorkerSettings, val redlock: Redlock) {
        /** Set before a fault closes the `Redlock`: the worker starts no further call. */
        val retired = AtomicBoolean(false)
        internal lateinit var job: Job
    }

    private val lock = Any()
    private val all = ArrayList<Client>()
    private val live = ArrayList<Client>()
    private val replaced = HashMap<String, Int>()

    /** Starts a client for [settings] on [side], with a `Redlock` whose clock runs at the settings' rate. */
    fun start(settings: WorkerSettings, side: Int): Client {
        val redlock = Redlock(settings.timing.config(cluster.uris(side)), clockFor(settings.clockRate))
        val client = Client(settings.name, side, settings, redlock)
        history.tracking(settings.name, settings.timing.keyTracking)
        synchronized(lock) {
            all += client
            live += client
        }
        client.job = scope.launch { runWorker(redlock, settings, history) { stop() || client.retired.get() } }
        return client
    }

    /** The clients not retired. */
    fun live(): List<Client> = synchronized(lock) { live.toList() }

    /** Stops [client] from starting further calls and takes it out of [live]; its `Redlock` is the caller's to close. */
    fun retire(client: Client) {
        client.retired.set(true)
        synchronized(lock) { live -= client }
    }

    /** Starts a fresh client in place of a retired [client]: same side and kind, a new name and seed. */
    fun replace(client: Client): Client {
        val base = client.name.substringBefore('.')
        val k = synchronized(lock) { (replaced[base] ?: 0).plus(1).also { replaced[base] = it } }
        return start(client.settings.copy(name = "$base.$k", seed = client.settings.seed * 31 + k), client.side)
    }

    /** Waits up to [timeout] for every worker to end (they end on their own once told to stop), then cancels those left. */
    suspend fun awaitWorkers(timeout: Duration) {
        val jobs = synchronized(lock) { all.map { it.job } }
        if (withTimeoutOrNull(timeout) { jobs.joinAll() } == null) jobs.forEach { it.cancelAndJoin() }
    }

    /** Closes every `Redlock` started, each tried even if another fails. Idempotent. */
    override fun close() {
        val clients = synchronized(lock) { all.toList() }
        clients.forEach { runCatching { it.redlock.close() } }
    }
}

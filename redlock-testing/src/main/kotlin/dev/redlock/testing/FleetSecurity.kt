package dev.redlock.testing

import java.security.SecureRandom
import javax.net.ssl.SSLSocket

/** An ACL user of a fleet: `user NAME on >PASSWORD RULES...`. */
internal class AclUser(val name: String, val password: String, val rules: List<String>)

/**
 * How a fleet's masters are secured, and how the fleet itself gets in: the default user's password
 * (`requirepass`), ACL users, TLS. Shared by every master of one fleet.
 *
 * The fleet's own connections (readiness probes, [RedisFleet.command]) authenticate as the default
 * user with [password]. When ACL users are configured without a fleet password, a random one is
 * generated, so the default user never lets an unauthenticated client in.
 */
internal class FleetSecurity(
    /** The default user's password: given, generated (with ACL users), or null (open). */
    val password: String?,
    val users: List<AclUser>,
    /** The CA and server certificate when the masters speak TLS only. */
    val tls: TestCertificates?,
) {
    /** The `redis-server` arguments that set the listening port, TLS and users. */
    fun serverArgs(port: Int): List<String> = buildList {
        if (tls == null) {
            add("--port"); add(port.toString())
        } else {
            add("--port"); add("0")
            add("--tls-port"); add(port.toString())
            add("--tls-cert-file"); add(tls.certFile.toString())
            add("--tls-key-file"); add(tls.keyFile.toString())
            add("--tls-ca-cert-file"); add(tls.caFile.toString())
            add("--tls-auth-clients"); add("no")
        }
        if (password != null) {
            add("--requirepass"); add(password)
        }
        for (user in users) {
            add("--user"); add(user.name); add("on"); add(">${user.password}"); addAll(user.rules)
        }
    }

    /** The command that authenticates the fleet's own connections, or null when none is needed. */
    val auth: List<String>? = password?.let { listOf("AUTH", it) }

    /** A command line with every password replaced, for error messages. */
    fun redact(commandLine: String): String {
        var shown = commandLine
        password?.let { shown = shown.replace("--requirepass $it", "--requirepass ******") }
        for (user in users) shown = shown.replace(">${user.password}", ">******")
        return shown
    }

    /** Opens the fleet's own connection to 127.0.0.1:[port], over TLS when the masters speak it. */
    fun open(port: Int, timeoutMillis: Int): RespConnection = open(LOOPBACK, port, timeoutMillis)

    /** Opens the fleet's own connection to [host]:[port], over TLS when the masters speak it. */
    fun open(host: java.net.InetAddress, port: Int, timeoutMillis: Int): RespConnection =
        RespConnection.open(host, port, timeoutMillis) { socket ->
            if (tls == null) {
                socket
            } else {
                (tls.socketFactory.createSocket(socket, host.hostAddress, port, true) as SSLSocket).apply { startHandshake() }
            }
        }

    /** The URI of the master on 127.0.0.1:[port] for [user] (null: the default user). */
    fun uri(port: Int, user: AclUser?): String = uri("127.0.0.1", port, user)

    /** The URI of the master on [host]:[port] for [user] (null: the default user). */
    fun uri(host: String, port: Int, user: AclUser?): String {
        val scheme = if (tls != null) "rediss" else "redis"
        val auth =
            when {
                user != null -> "${percentEncode(user.name)}:${percentEncode(user.password)}@"
                password != null -> ":${percentEncode(password)}@"
                else -> ""
            }
        return "$scheme://$auth$host:$port"
    }

    companion object {
        /** The rules of a user given none: every key, every channel, every command. */
        val FULL_ACCESS: List<String> = listOf("~*", "&*", "+@all")

        fun randomPassword(): String {
            val bytes = ByteArray(18).also { SecureRandom().nextBytes(it) }
            return "fleet-" + java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(bytes)
        }
    }
}

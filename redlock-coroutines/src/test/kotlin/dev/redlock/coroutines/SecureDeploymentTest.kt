package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockConfig
import dev.redlock.testing.RedisFleet
import dev.redlock.testing.RedisFleetException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.io.PrintWriter
import java.io.StringWriter
import java.time.Duration
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope

/** TLS and ACL users against real masters: `rediss://` with a CA the test generated, ACL users with and without the rights locking needs. */
@Tags("compat")
class SecureDeploymentTest : FunSpec({
    val fleet =
        RedisFleet.builder()
            .masters(3)
            .tls(true)
            .user("app", APP_PASSWORD)
            .user("noscript", NOSCRIPT_PASSWORD, "~*", "&*", "+@all", "-evalsha")
            .start()
    afterEach { fleet.restoreAndCheckClean() }
    afterSpec { fleet.close() }

    fun config(uris: List<String>, trusted: Boolean = true): RedlockConfig =
        RedlockConfig.builder()
            .masters(uris)
            .apply { if (trusted) trustedCertificates(fleet.caCertificate()) }
            .leaseTime(Duration.ofSeconds(5))
            .waitTime(Duration.ofSeconds(2))
            .retryDelay(Duration.ofMillis(5))
            .build()

    /** Acquires on every master, expecting every one to fail with [kind]; returns the exception. */
    suspend fun failsWith(uris: List<String>, kind: MasterFailureException.Kind, trusted: Boolean = true): LockNotAcquiredException =
        Redlock(config(uris, trusted)).use { redlock ->
            val e = shouldThrow<LockNotAcquiredException> { redlock.acquire("secure") }
            e.masterFailures() shouldHaveSize 3
            for ((i, failure) in e.masterFailures().withIndex()) {
                failure.kind() shouldBe kind
                failure.master() shouldBe "127.0.0.1:${fleet.port(i)}"
                e.message!! shouldContain "127.0.0.1:${fleet.port(i)}"
            }
            e
        }

    test("lock and unlock over rediss:// on 3 masters, authenticated as an ACL user") {
        fleet.uris().forEach { it shouldContain "rediss://app:" }
        // The certificate names localhost too: the peer's host name is verified against it.
        Redlock(config(fleet.uris().map { it.replace("127.0.0.1", "localhost") })).use { redlock ->
            redlock.withRedlock("tls-localhost") { it.isValid shouldBe true }
        }
        Redlock(config(fleet.uris())).use { redlock ->
            redlock.withRedlock("tls-res") { lease ->
                lease.isValid shouldBe true
                // Granted once a majority answered; the third master sets the key a moment later.
                eventually(what = "every master holds the key") { (0 until 3).all { fleet.keys(it) == listOf("redlock:tls-res") } }
                val clients = fleet.command(0, "CLIENT", "LIST") as String
                clients shouldContain "user=app"
            }
            eventually(what = "the release reached every master") { (0 until 3).all { fleet.keys(it).isEmpty() } }
        }
    }

    test("a user allowed only what locking needs (the README's ACL rules, applied as written) can lock, wait, fence, read, write and take permits, and is refused nothing") {
        val readme = ReadmeAclRules.fromReadme()
        val rules = readme.forServer(fleet.serverName, fleet.serverVersion)
        for (m in 0 until 3) {
            fleet.command(m, "ACL", "SETUSER", readme.user, "on", ">${readme.password}", *rules.toTypedArray()) shouldBe "OK"
            fleet.command(m, "ACL", "LOG", "RESET") shouldBe "OK"
        }
        val uris = (0 until 3).map { "rediss://${readme.user}:${readme.password}@127.0.0.1:${fleet.port(it)}" }
        Redlock(config(uris)).use { redlock ->
            // The rules cover tracking: every master pushes changes of held keys to this user.
            eventually(what = "every master tracks as the README's user") { redlock.engine.masters.nodes.all { it.tracking() } }
            val first = redlock.acquire("least", fencing = true)
            first.fencingToken shouldNotBe null
            val waiter = coroutineScope {
                val w = async { redlock.acquire("least") }
                first.release()
                w.await()
            }
            waiter.release()
            redlock.withReadLock("least-rw") { redlock.withReadLock("least-rw", waitTime = kotlin.time.Duration.ZERO) { } }
            redlock.withWriteLock("least-rw") { it.extend() }
            redlock.withPermit("least-sem", permits = 2) { }
        }
        for (m in 0 until 3) {
            fleet.command(m, "DEL", "redlock:least\u0000fence")
            // Nothing the library sent was refused (Lettuce carries on after some refusals, such as
            // CLIENT SETINFO's, but the server logs each one).
            val refused = (fleet.command(m, "ACL", "LOG") as List<*>).map { entry ->
                (entry as List<*>).chunked(2).associate { it[0].toString() to it[1].toString() }
            }.filter { it["username"] == readme.user }
            refused shouldBe emptyList()
            fleet.command(m, "ACL", "DELUSER", readme.user)
        }
    }

    test("the README's ACL variant holds: every server but Redis 7.0 takes +client|setinfo, Redis 7.0 refuses it") {
        val extra = ReadmeAclRules.fromReadme().exceptRedis70
        extra shouldBe listOf("+client|setinfo")
        if (ReadmeAclRules.isRedis70(fleet.serverName, fleet.serverVersion)) {
            shouldThrow<RedisFleetException> { fleet.command(0, "ACL", "SETUSER", "probe", *extra.toTypedArray()) }
                .message!! shouldContain "Unknown command or category name in ACL"
        } else {
            fleet.command(0, "ACL", "SETUSER", "probe", *extra.toTypedArray()) shouldBe "OK"
        }
        fleet.command(0, "ACL", "DELUSER", "probe")
    }

    test("a wrong password or an unknown user fails as AUTHENTICATION on each master, and no password shows anywhere") {
        val wrong = "wrong-pw-5d1c"
        val e = failsWith(fleet.uris().map { it.replace(APP_PASSWORD, wrong) }, MasterFailureException.Kind.AUTHENTICATION)
        e.masterFailures().first().message!! shouldContain "authentication failed"
        e.everything() shouldNotContain wrong
        e.everything() shouldNotContain APP_PASSWORD
        val unknown = failsWith(fleet.uris().map { it.replace("app:", "nobody:") }, MasterFailureException.Kind.AUTHENTICATION)
        unknown.everything() shouldNotContain APP_PASSWORD
        config(fleet.uris()).toString() shouldNotContain APP_PASSWORD
    }

    test("a certificate the client does not trust fails as TLS on each master") {
        val e = failsWith(fleet.uris(), MasterFailureException.Kind.TLS, trusted = false)
        e.masterFailures().first().message!! shouldContain "TLS handshake failed"
        e.everything() shouldNotContain APP_PASSWORD
    }

    test("plain redis:// to a TLS-only master never gets a lock") {
        // Not a TLS error on the client side (the client sends plain text), but never a lock.
        Redlock(config(fleet.uris().map { it.replace("rediss://", "redis://") })).use { redlock ->
            val e = shouldThrow<LockNotAcquiredException> { redlock.tryAcquire("plain") }
            e.masterFailures() shouldHaveSize 3
        }
    }

    test("an ACL user without EVALSHA fails as PERMISSION on each master, naming the master") {
        val e = failsWith((0 until 3).map { fleet.uri(it, "noscript") }, MasterFailureException.Kind.PERMISSION)
        e.masterFailures().first().message!! shouldContain "ACL"
        e.everything() shouldNotContain NOSCRIPT_PASSWORD
    }

    test("trustedCertificates must be a PEM file of certificates, checked at build()") {
        val missing = fleet.caCertificate()!!.resolveSibling("missing.pem")
        shouldThrow<IllegalArgumentException> {
            RedlockConfig.builder().masters(fleet.uris()).trustedCertificates(missing).build()
        }.message!! shouldContain "trustedCertificates must be a readable PEM file"
    }
}) {
    companion object {
        const val APP_PASSWORD = "app-pw-8e2b"
        const val NOSCRIPT_PASSWORD = "noscript-pw-41aa"

        /** The message, stack trace, causes and suppressed exceptions of [this], as printed. */
        fun Throwable.everything(): String = StringWriter().also { printStackTrace(PrintWriter(it)) }.toString()
    }
}

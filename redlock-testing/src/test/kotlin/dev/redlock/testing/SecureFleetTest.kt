package dev.redlock.testing

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.annotation.Tags
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldStartWith
import java.io.IOException
import java.net.InetSocketAddress
import java.net.Socket
import java.nio.file.Files
import java.security.cert.CertificateFactory
import java.security.cert.X509Certificate

@Tags("compat")
class SecureFleetTest :
    FunSpec({
        test("a TLS fleet speaks TLS only, with a CA the client can load, and its own operations work over TLS") {
            RedisFleet.builder().masters(2).tls(true).start().use { fleet ->
                fleet.isTls shouldBe true
                val ca = fleet.caCertificate()!!
                val cert = Files.newInputStream(ca).use { CertificateFactory.getInstance("X.509").generateCertificate(it) } as X509Certificate
                cert.basicConstraints shouldNotBe -1 // a CA
                fleet.uris() shouldBe (0 until 2).map { "rediss://127.0.0.1:${fleet.port(it)}" }
                fleet.command(0, "SET", "k", "v") shouldBe "OK"
                fleet.keys(0) shouldBe listOf("k")
                fleet.command(0, "CONFIG", "GET", "port") shouldBe listOf("port", "0")
                // A plain-text client gets nothing sensible from a TLS port.
                shouldThrow<IOException> { plainPing(fleet.port(1)) }
                fleet.restart(1)
                fleet.command(1, "PING") shouldBe "PONG"
                fleet.pause(1)
                fleet.resume(1)
                fleet.flushAll()
                fleet.keyCount() shouldBe 0
            }
        }

        test("ACL users: uris carry the first user, the default user is closed, restricted users are refused what they lack") {
            RedisFleet.builder()
                .user("app", "app-pw-1")
                .user("reader", "reader-pw-2", "~*", "&*", "+@all", "-evalsha")
                .start()
                .use { fleet ->
                    fleet.uri(0) shouldBe "redis://app:app-pw-1@127.0.0.1:${fleet.port(0)}"
                    fleet.uri(0, "reader") shouldBe "redis://reader:reader-pw-2@127.0.0.1:${fleet.port(0)}"
                    shouldThrow<IllegalArgumentException> { fleet.uri(0, "nobody") }.message shouldContain "nobody"
                    fleet.command(0, "PING") shouldBe "PONG" // the fleet's own connection authenticates
                    plainPing(fleet.port(0)) shouldStartWith "-NOAUTH"
                    (fleet.command(0, "ACL", "USERS") as List<*>).toSet() shouldBe setOf("app", "default", "reader")
                    plain(fleet.port(0), "AUTH reader reader-pw-2", "EVALSHA 0000 0").first() shouldBe "+OK"
                    plain(fleet.port(0), "AUTH reader reader-pw-2", "EVALSHA 0000 0", replies = 2).last() shouldStartWith "-NOPERM"
                    plain(fleet.port(0), "AUTH app app-pw-1", "EVALSHA 0000 0", replies = 2).last() shouldStartWith "-NOSCRIPT"
                }
        }

        test("serverArgs may not take over TLS ports or users, and bad users are refused with the reason") {
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().serverArgs("--tls-port", "1") }.message shouldContain "--tls-port"
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().serverArgs("--user", "x") }.message shouldContain "--user"
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().user("default", "pw") }.message shouldContain "default"
            shouldThrow<IllegalArgumentException> { RedisFleet.builder().user("a", "p w") }.message shouldContain "whitespace"
        }
    })

/** One PING on a plain socket; returns the raw first reply line. */
private fun plainPing(port: Int): String = plain(port, "PING").first()

/** Inline commands on a plain socket; the first [replies] reply lines. */
private fun plain(port: Int, vararg commands: String, replies: Int = 1): List<String> =
    Socket().use { s ->
        s.soTimeout = 2_000
        s.connect(InetSocketAddress("127.0.0.1", port), 2_000)
        s.getOutputStream().write(commands.joinToString("") { "$it\r\n" }.toByteArray())
        val reader = s.getInputStream().bufferedReader()
        List(replies) { reader.readLine() ?: throw IOException("closed without a reply") }
    }

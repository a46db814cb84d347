package dev.redlock.testing

import java.io.ByteArrayOutputStream
import java.math.BigInteger
import java.nio.file.Files
import java.nio.file.Path
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.SecureRandom
import java.security.Signature
import java.security.cert.CertificateFactory
import java.security.cert.X509Certificate
import java.security.spec.ECGenParameterSpec
import java.time.Duration
import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter
import java.util.Base64
import javax.net.ssl.SSLContext
import javax.net.ssl.SSLSocketFactory
import javax.net.ssl.TrustManagerFactory

/**
 * A throwaway certificate authority and one server certificate it signed, for `127.0.0.1` and
 * `localhost`, written as PEM files that `redis-server` loads (`tls-cert-file`, `tls-key-file`,
 * `tls-ca-cert-file`) and that clients trust ([caFile]).
 *
 * Made with the JDK alone (EC P-256 keys, SHA-256 with ECDSA signatures, a small DER writer): no
 * `openssl` command and no extra library is needed. The keys live as long as the files; they
 * protect nothing but a test's loopback traffic.
 */
internal class TestCertificates private constructor(
    /** The CA certificate (PEM): what clients must trust. */
    val caFile: Path,
    /** The server's certificate (PEM), signed by the CA. */
    val certFile: Path,
    /** The server's private key (PEM, unencrypted PKCS #8). */
    val keyFile: Path,
    private val ca: X509Certificate,
) {
    /** A socket factory that trusts the CA alone, for the fleet's own connections. */
    val socketFactory: SSLSocketFactory by lazy {
        val store = KeyStore.getInstance("PKCS12").apply {
            load(null, null)
            setCertificateEntry("redlock-test-ca", ca)
        }
        val trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm()).apply { init(store) }
        SSLContext.getInstance("TLS").apply { init(null, trust.trustManagers, SecureRandom()) }.socketFactory
    }

    companion object {
        private val VALIDITY: Duration = Duration.ofDays(7)

        /** Generates a CA and a server certificate into [dir] (created if missing). */
        fun generate(dir: Path): TestCertificates {
            Files.createDirectories(dir)
            val now = Instant.now()
            val notBefore = now.minus(Duration.ofHours(1))
            val notAfter = now.plus(VALIDITY)
            val caKeys = keyPair()
            val caName = name("Redlock test CA")
            val caDer =
                certificate(
                    serial = serial(), issuer = caName, subject = caName, notBefore = notBefore, notAfter = notAfter,
                    subjectKey = caKeys, signer = caKeys.private,
                    extensions = listOf(
                        extension(OID_BASIC_CONSTRAINTS, critical = true, value = seq(bool(true))),
                        extension(OID_KEY_USAGE, critical = true, value = keyUsage(KEY_CERT_SIGN or CRL_SIGN)),
                    ),
                )
            val serverKeys = keyPair()
            val serverDer =
                certificate(
                    serial = serial(), issuer = caName, subject = name("127.0.0.1"), notBefore = notBefore, notAfter = notAfter,
                    subjectKey = serverKeys, signer = caKeys.private,
                    extensions = listOf(
                        extension(OID_BASIC_CONSTRAINTS, critical = true, value = seq()),
                        extension(OID_KEY_USAGE, critical = true, value = keyUsage(DIGITAL_SIGNATURE)),
                        extension(OID_EXT_KEY_USAGE, critical = false, value = seq(oid(OID_SERVER_AUTH), oid(OID_CLIENT_AUTH))),
                        extension(
                            OID_SUBJECT_ALT_NAME, critical = false,
                            value = seq(
                                tlv(0x87, byteArrayOf(127, 0, 0, 1)), // iPAddress
                                tlv(0x82, "localhost".toByteArray(Charsets.US_ASCII)), // dNSName
                            ),
                        ),
                    ),
                )
            val factory = CertificateFactory.getInstance("X.509")
            val ca = factory.generateCertificate(caDer.inputStream()) as X509Certificate
            val server = factory.generateCertificate(serverDer.inputStream()) as X509Certificate
            server.verify(ca.publicKey) // our own DER must be right before redis-server sees it
            val caFile = dir.resolve("ca.crt")
            val certFile = dir.resolve("server.crt")
            val keyFile = dir.resolve("server.key")
            Files.writeString(caFile, pem("CERTIFICATE", caDer))
            Files.writeString(certFile, pem("CERTIFICATE", serverDer))
            Files.writeString(keyFile, pem("PRIVATE KEY", serverKeys.private.encoded))
            return TestCertificates(caFile, certFile, keyFile, ca)
        }

        private fun keyPair(): KeyPair =
            KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()

        private fun serial(): BigInteger = BigInteger(64, SecureRandom()).setBit(62) // positive, 8 bytes

        private fun certificate(
            serial: BigInteger,
            issuer: ByteArray,
            subject: ByteArray,
            notBefore: Instant,
            notAfter: Instant,
            subjectKey: KeyPair,
            signer: PrivateKey,
            extensions: List<ByteArray>,
        ): ByteArray {
            val algorithm = seq(oid(OID_ECDSA_SHA256))
            val tbs =
                seq(
                    tlv(0xA0, integer(BigInteger.valueOf(2))), // version v3
                    integer(serial),
                    algorithm,
                    issuer,
                    seq(time(notBefore), time(notAfter)),
                    subject,
                    subjectKey.public.encoded, // SubjectPublicKeyInfo, already DER
                    tlv(0xA3, seq(*extensions.toTypedArray())),
                )
            val signature = Signature.getInstance("SHA256withECDSA").run {
                initSign(signer)
                update(tbs)
                sign()
            }
            return seq(tbs, algorithm, bitString(signature, unusedBits = 0))
        }

        private fun name(commonName: String): ByteArray =
            seq(tlv(0x31, seq(oid(OID_COMMON_NAME), tlv(0x0C, commonName.toByteArray(Charsets.UTF_8)))))

        private fun extension(id: String, critical: Boolean, value: ByteArray): ByteArray =
            if (critical) seq(oid(id), bool(true), tlv(0x04, value)) else seq(oid(id), tlv(0x04, value))

        /** KeyUsage as a DER BIT STRING: bit 0 is the most significant bit of the first byte. */
        private fun keyUsage(bits: Int): ByteArray {
            val byte = bits and 0xff
            return bitString(byteArrayOf(byte.toByte()), unusedBits = Integer.numberOfTrailingZeros(byte))
        }

        private const val DIGITAL_SIGNATURE = 0x80
        private const val KEY_CERT_SIGN = 0x04
        private const val CRL_SIGN = 0x02

        private const val OID_COMMON_NAME = "2.5.4.3"
        private const val OID_BASIC_CONSTRAINTS = "2.5.29.19"
        private const val OID_KEY_USAGE = "2.5.29.15"
        private const val OID_EXT_KEY_USAGE = "2.5.29.37"
        private const val OID_SUBJECT_ALT_NAME = "2.5.29.17"
        private const val OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
        private const val OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
        private const val OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"

        private val UTC_TIME: DateTimeFormatter = DateTimeFormatter.ofPattern("yyMMddHHmmss'Z'").withZone(ZoneOffset.UTC)

        // A minimal DER writer: just the types a certificate needs.

        private fun tlv(tag: Int, content: ByteArray): ByteArray {
            val out = ByteArrayOutputStream(content.size + 6)
            out.write(tag)
            val n = content.size
            when {
                n < 0x80 -> out.write(n)
                n < 0x100 -> { out.write(0x81); out.write(n) }
                n < 0x10000 -> { out.write(0x82); out.write(n shr 8); out.write(n and 0xff) }
                else -> { out.write(0x83); out.write(n shr 16); out.write((n shr 8) and 0xff); out.write(n and 0xff) }
            }
            out.write(content)
            return out.toByteArray()
        }

        private fun seq(vararg items: ByteArray): ByteArray {
            val out = ByteArrayOutputStream()
            items.forEach(out::write)
            return tlv(0x30, out.toByteArray())
        }

        private fun integer(value: BigInteger): ByteArray = tlv(0x02, value.toByteArray())

        private fun bool(value: Boolean): ByteArray = tlv(0x01, byteArrayOf(if (value) 0xff.toByte() else 0))

        private fun bitString(bytes: ByteArray, unusedBits: Int): ByteArray = tlv(0x03, byteArrayOf(unusedBits.toByte()) + bytes)

        private fun time(instant: Instant): ByteArray = tlv(0x17, UTC_TIME.format(instant).toByteArray(Charsets.US_ASCII))

        private fun oid(dotted: String): ByteArray {
            val parts = dotted.split('.').map { it.toLong() }
            val out = ByteArrayOutputStream()
            out.write((parts[0] * 40 + parts[1]).toInt())
            for (part in parts.drop(2)) {
                // Base 128, most significant group first, every byte but the last with its high bit set.
                var groups = listOf((part and 0x7f).toInt())
                var rest = part shr 7
                while (rest > 0) {
                    groups = listOf(((rest and 0x7f) or 0x80).toInt()) + groups
                    rest = rest shr 7
                }
                groups.forEach(out::write)
            }
            return tlv(0x06, out.toByteArray())
        }

        private fun pem(type: String, der: ByteArray): String =
            "-----BEGIN $type-----\n" +
                Base64.getMimeEncoder(64, "\n".toByteArray()).encodeToString(der) +
                "\n-----END $type-----\n"
    }
}

package dev.redlock.file.internal

import java.security.MessageDigest

/**
 * Lock keys as file names: safe on every file system, collision-free, and still readable for the
 * usual names.
 *
 * A key is encoded byte by byte (UTF-8): `a-z`, `0-9`, `-` and `_` stay as they are, every other
 * byte becomes `%XX` (two upper-case hex digits). Upper-case letters are escaped too, so that two
 * names that differ only in case never meet on a case-insensitive file system (macOS, Windows);
 * the encoding is injective, so two keys never share a file. An encoded key longer than
 * [MAX_PLAIN] characters is shortened to its first [KEPT] characters, `~`, and the SHA-256 of the
 * key in hex (64 characters): `~` never occurs in a plain encoding (it would be `%7E`), so a
 * shortened name never equals a plain one, and two long keys share a file only if their SHA-256
 * collide. Every name stays under 255 bytes.
 *
 * The encoded key never contains `.`, so the suffixes below tell the families apart.
 */
internal object FileNames {
    const val MAX_PLAIN = 150
    const val KEPT = 80

    /** The encoded key. */
    fun encode(key: String): String {
        val bytes = key.toByteArray(Charsets.UTF_8)
        val out = StringBuilder(bytes.size + 8)
        for (b in bytes) {
            val c = b.toInt() and 0xff
            if (c in 'a'.code..'z'.code || c in '0'.code..'9'.code || c == '-'.code || c == '_'.code) {
                out.append(c.toChar())
            } else {
                out.append('%').append(HEX[c shr 4]).append(HEX[c and 0xf])
            }
        }
        if (out.length <= MAX_PLAIN) return out.toString()
        val digest = MessageDigest.getInstance("SHA-256").digest(bytes)
        val hash = StringBuilder(64)
        for (b in digest) hash.append(HEX[(b.toInt() shr 4) and 0xf]).append(HEX[b.toInt() and 0xf])
        // Cut before a partial %XX escape, so the kept part is still a readable prefix.
        var cut = KEPT
        while (cut > 0 && (out[cut - 1] == '%' || (cut >= 2 && out[cut - 2] == '%'))) cut--
        return out.substring(0, cut) + "~" + hash.toString().lowercase()
    }

    /** A mutex on the key. */
    fun mutex(key: String) = encode(key) + ".lock"

    /** A mutex's fencing counter. */
    fun mutexFence(key: String) = encode(key) + ".fence"

    /** The reader-writer lock of the key (readers share it, a writer holds it alone). */
    fun readWrite(key: String) = encode(key) + ".rw.lock"

    /** The write side's fencing counter. */
    fun writeFence(key: String) = encode(key) + ".rw.fence"

    /** Permit [slot] of the semaphore of the key (0-based). */
    fun permit(key: String, slot: Int) = encode(key) + ".sem." + slot + ".lock"

    private val HEX = "0123456789ABCDEF".toCharArray()
}

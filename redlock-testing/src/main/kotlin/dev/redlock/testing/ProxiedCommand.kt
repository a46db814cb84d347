package dev.redlock.testing

/**
 * One command a client sent through a [TcpProxy], as the proxy saw it pass: the command's name and
 * its arguments, for deciding whether an armed fault starts on it (see [TcpProxy.onNextCommand]).
 *
 * Each part is kept up to its first [PART_LIMIT] bytes (a script's text may be longer; names,
 * SHA-1 digests, keys and tokens are much shorter).
 */
public class ProxiedCommand internal constructor(private val raw: List<ByteArray>) {

    /** The command's name in upper case (`EVALSHA`, `SET`, `SCRIPT`...); empty for an empty command. */
    public val name: String = raw.firstOrNull()?.toString(Charsets.UTF_8)?.uppercase() ?: ""

    /** Every part after the name, as UTF-8 text: for `EVALSHA sha 1 key token`, `[sha, 1, key, token]`. */
    public val arguments: List<String> = raw.drop(1).map { it.toString(Charsets.UTF_8) }

    /** The argument at [index] (0 is the first after the name), or null if there is none. */
    public fun argument(index: Int): String? = arguments.getOrNull(index)

    /** Whether [text] occurs in the name or in any argument (case-sensitive). */
    public fun contains(text: String): Boolean = name.contains(text) || arguments.any { it.contains(text) }

    /** Whether this is `EVALSHA` of the script whose SHA-1 is [sha] (40 hex digits, either case). */
    public fun isEvalSha(sha: String): Boolean = name == "EVALSHA" && argument(0).equals(sha, ignoreCase = true)

    /** The command as a short line for logs: its name and the start of each argument. */
    override fun toString(): String =
        (listOf(name) + arguments.map { if (it.length > 24) it.take(21) + "..." else it }).joinToString(" ")

    /** Limits. */
    public companion object {
        /** How many bytes of each part are kept. */
        public const val PART_LIMIT: Int = 4096
    }
}

/**
 * Finds the commands in the byte stream a client sends to a Redis server: RESP arrays of bulk
 * strings (what client libraries send) and inline commands (what a person types). Fed the bytes as
 * they are read, in chunks of any size; reports each command once its last byte has been read,
 * with the offset in the current chunk where it began (-1 if it began in an earlier chunk).
 *
 * A stream it cannot make sense of (not RESP) stops it for good: [usable] turns false and no
 * further command is reported. Not thread-safe: one per connection, used by its reader thread.
 */
internal class CommandReader {
    private enum class State { START, ARRAY_COUNT, BULK_MARK, BULK_LENGTH, BULK_DATA, BULK_CR, BULK_LF, INLINE }

    private var state = State.START
    private var number = 0L
    private var digits = 0
    private var negative = false
    private var expectLf = false
    private var numberDone = false

    private var partsLeft = 0L
    private var bulkLeft = 0L
    private var part = java.io.ByteArrayOutputStream()
    private val parts = ArrayList<ByteArray>()
    private var inline = java.io.ByteArrayOutputStream()

    /** False once the stream turned out not to be RESP. */
    var usable: Boolean = true
        private set

    /** Reads [length] bytes of [buffer]; calls [onCommand] for every command that ends in them. */
    fun feed(buffer: ByteArray, length: Int, onCommand: (start: Int, end: Int, command: ProxiedCommand) -> Unit) {
        var start = if (state == State.START) 0 else -1
        var i = 0
        while (i < length && usable) {
            val b = buffer[i]
            when (state) {
                State.START -> {
                    start = i
                    when (b) {
                        '*'.code.toByte() -> beginNumber(State.ARRAY_COUNT)
                        '\r'.code.toByte(), '\n'.code.toByte() -> Unit // blank lines between inline commands
                        else -> {
                            inline.reset()
                            inline.write(b.toInt())
                            state = State.INLINE
                        }
                    }
                    i++
                }
                State.ARRAY_COUNT, State.BULK_LENGTH -> {
                    if (!number(b)) return
                    i++
                    if (!numberDone) continue
                    numberDone = false
                    if (state == State.ARRAY_COUNT) {
                        partsLeft = if (negative) 0 else number
                        parts.clear()
                        if (partsLeft == 0L) {
                            finish(start, i, onCommand)
                            start = i
                        } else {
                            state = State.BULK_MARK
                        }
                    } else {
                        if (negative) return fail()
                        bulkLeft = number
                        part.reset()
                        state = if (bulkLeft == 0L) State.BULK_CR else State.BULK_DATA
                    }
                }
                State.BULK_MARK -> {
                    if (b != '$'.code.toByte()) return fail()
                    beginNumber(State.BULK_LENGTH)
                    i++
                }
                State.BULK_DATA -> {
                    val n = minOf(bulkLeft, (length - i).toLong()).toInt()
                    val room = ProxiedCommand.PART_LIMIT - part.size()
                    if (room > 0) part.write(buffer, i, minOf(room, n))
                    bulkLeft -= n
                    i += n
                    if (bulkLeft == 0L) state = State.BULK_CR
                }
                State.BULK_CR -> {
                    if (b != '\r'.code.toByte()) return fail()
                    state = State.BULK_LF
                    i++
                }
                State.BULK_LF -> {
                    if (b != '\n'.code.toByte()) return fail()
                    i++
                    parts += part.toByteArray()
                    partsLeft--
                    if (partsLeft == 0L) {
                        finish(start, i, onCommand)
                        start = i
                    } else {
                        state = State.BULK_MARK
                    }
                }
                State.INLINE -> {
                    i++
                    if (b == '\n'.code.toByte()) {
                        val line = inline.toString(Charsets.UTF_8).trimEnd('\r')
                        parts.clear()
                        line.split(' ', '\t').filter { it.isNotEmpty() }.forEach { parts += it.toByteArray(Charsets.UTF_8) }
                        finish(start, i, onCommand)
                        start = i
                    } else if (inline.size() < INLINE_LIMIT) {
                        inline.write(b.toInt())
                    } else {
                        return fail()
                    }
                }
            }
        }
    }

    private fun beginNumber(next: State) {
        state = next
        number = 0
        digits = 0
        negative = false
        expectLf = false
        numberDone = false
    }

    /** Reads one byte of a `<digits>\r\n` header; false (and unusable) on a malformed one. */
    private fun number(b: Byte): Boolean {
        val c = b.toInt().toChar()
        when {
            expectLf -> {
                if (c != '\n' || digits == 0) return failed()
                numberDone = true
            }
            c == '\r' -> expectLf = true
            c == '-' && digits == 0 && !negative -> negative = true
            c in '0'..'9' && digits < 18 -> {
                number = number * 10 + (c - '0')
                digits++
            }
            else -> return failed()
        }
        return true
    }

    private fun finish(start: Int, end: Int, onCommand: (Int, Int, ProxiedCommand) -> Unit) {
        state = State.START
        if (parts.isEmpty()) return
        val command = ProxiedCommand(parts.toList())
        parts.clear()
        onCommand(start, end, command)
    }

    private fun failed(): Boolean {
        usable = false
        return false
    }

    private fun fail() {
        usable = false
    }

    private companion object {
        /** Redis itself refuses longer inline commands. */
        const val INLINE_LIMIT = 64 * 1024
    }
}

package dev.redlock.postgres.internal

import dev.redlock.core.MasterFailureException
import java.net.SocketTimeoutException
import java.sql.SQLException

/** Turns JDBC failures into the engine's [MasterFailureException]s, with a message a person can act on. */
internal object SqlFailures {
    /** The failure of [what] on [node], of the kind its SQLSTATE says. */
    fun classify(node: String, what: String, e: SQLException, hint: String? = null): MasterFailureException {
        val state = e.sqlState.orEmpty()
        val kind =
            when {
                isTimeout(e) -> MasterFailureException.Kind.TIMEOUT
                state == "28P01" || state == "28000" -> MasterFailureException.Kind.AUTHENTICATION
                state == "42501" -> MasterFailureException.Kind.PERMISSION
                state.startsWith("08") || state == "57P01" || state == "57P02" || state == "57P03" -> MasterFailureException.Kind.UNREACHABLE
                else -> MasterFailureException.Kind.ERROR
            }
        val detail = buildString {
            append(what).append(" failed: ").append(oneLine(e.message ?: e.javaClass.name))
            if (state.isNotEmpty()) append(" (SQLSTATE ").append(state).append(')')
            if (hint != null) append(". ").append(hint)
        }
        return MasterFailureException(node, kind, detail, e)
    }

    /** The driver's message on one line, without the statement position it appends ("Position: 28"). */
    private fun oneLine(message: String): String =
        message.lines().map { it.trim() }.filter { it.isNotEmpty() && !it.startsWith("Position:") }.joinToString(" ")

    /** Whether [e] says a statement or the network ran out of time. */
    fun isTimeout(e: SQLException): Boolean {
        if (e.sqlState == "57014") return true
        var cause: Throwable? = e
        while (cause != null) {
            if (cause is SocketTimeoutException) return true
            cause = cause.cause
        }
        return false
    }

    /** Whether the session behind the connection is gone (ended by the server, or the connection broke). */
    fun sessionGone(e: SQLException): Boolean {
        val state = e.sqlState.orEmpty()
        return state.startsWith("08") || state.startsWith("57P")
    }
}

package dev.redlock.coroutines

import java.nio.file.Files
import java.nio.file.Path

/**
 * The least-privilege ACL rules of the README (Deployments, "ACL users and passwords"), read from
 * README.md itself so that the tests apply exactly what users copy: each ```text block there follows
 * a `<!-- acl-rules: WHICH -->` marker, `all` for the rules of every server and `except redis-7.0`
 * for the rules every server but Redis 7.0 takes.
 */
internal class ReadmeAclRules private constructor(blocks: Map<String, String>) {
    /** The user line's name, password and rules, from the `all` block (`user NAME on >PASSWORD RULES...`). */
    val user: String
    val password: String

    /** The rules after the password, for every server. */
    val rules: List<String>

    /** The rules to add on every server but Redis 7.0. */
    val exceptRedis70: List<String>

    init {
        val all = blocks["all"]?.split(Regex("\\s+"))?.filter(String::isNotEmpty)
            ?: error("README.md has no ```text block after <!-- acl-rules: all -->")
        require(all.size > 4 && all[0] == "user" && all[2] == "on" && all[3].startsWith(">")) {
            "README.md's acl-rules block expected to read 'user NAME on >PASSWORD RULES...', but was: ${all.joinToString(" ")}"
        }
        user = all[1]
        password = all[3].removePrefix(">")
        rules = all.drop(4)
        exceptRedis70 = blocks["except redis-7.0"]?.split(Regex("\\s+"))?.filter(String::isNotEmpty)
            ?: error("README.md has no ```text block after <!-- acl-rules: except redis-7.0 -->")
    }

    /** The rules for a server: [rules], plus [exceptRedis70] unless it is Redis 7.0. */
    fun forServer(name: String, version: String): List<String> = if (isRedis70(name, version)) rules else rules + exceptRedis70

    companion object {
        /** Redis 7.0.x (there was no 7.1 release); not Valkey, whose own versions start at 7.2. */
        fun isRedis70(name: String, version: String): Boolean = name == "Redis" && (version.startsWith("7.0.") || version.startsWith("7.1."))

        fun fromReadme(): ReadmeAclRules {
            val root = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().parent
            return parse(Files.readString(root.resolve("README.md")))
        }

        fun parse(markdown: String): ReadmeAclRules {
            val blocks = LinkedHashMap<String, String>()
            val marker = Regex("""<!--\s*acl-rules:\s*(.+?)\s*-->\s*\n```text\n(.*?)\n```""", RegexOption.DOT_MATCHES_ALL)
            for (match in marker.findAll(markdown)) blocks[match.groupValues[1]] = match.groupValues[2]
            return ReadmeAclRules(blocks)
        }
    }
}

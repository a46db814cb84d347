package dev.redlock.benchmarks

/** The calls per second of each command between two readings of every master, summed, busiest first (for scenario 4's log). */
fun commandMix(before: List<CommandStats>, after: List<CommandStats>, seconds: Double): String {
    val sums = HashMap<String, Long>()
    for (i in before.indices) {
        for ((name, calls) in after[i].calls) sums.merge(name, calls - (before[i].calls[name] ?: 0), Long::plus)
    }
    return sums.filterValues { it > 0 }.entries.sortedByDescending { it.value }
        .joinToString(", ") { "${it.key} ${"%.0f".format(it.value / seconds)}" }
}

package dev.redlock.testing

/**
 * A JVM that starts a container fleet, prints its containers' ids and halts without running shutdown
 * hooks, as a JVM killed outright would; ContainerFleetTest checks that the next sweep removes them.
 */
object UnclosedContainerFleetMain {
    @JvmStatic
    fun main(args: Array<String>) {
        val fleet = RedisFleet.builder().masters(2).backend(RedisFleet.Backend.CONTAINERS).image(RedisFleet.LOCAL_BINARY_IMAGE).start()
        val docker = org.testcontainers.DockerClientFactory.instance().client()
        val ids =
            docker.listContainersCmd().withLabelFilter(mapOf(Orphans.LABEL to Orphans.self)).exec().map { it.id }
        println("containers=" + ids.joinToString(","))
        System.out.flush()
        check(fleet.size == 2)
        Runtime.getRuntime().halt(3)
    }
}

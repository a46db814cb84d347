package dev.redlock.examples

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.io.File
import javax.xml.parsers.DocumentBuilderFactory
import org.w3c.dom.Element

/** The BOM lists every published module, at the build's version, and imposes nothing else. */
class BomTest : FunSpec({
    // Modules that are not published: suites (core-it: core against real servers; backends-it: one behaviour suite for every backend), demos, the API check, the docs builder and the BOM itself.
    val unpublished = setOf("redlock-core-it", "redlock-backends-it", "redlock-chaos", "redlock-benchmarks", "redlock-examples", "redlock-abi", "redlock-docs", "redlock-bom")

    /** The repository's root: the surefire working directory is the module's. */
    val root = generateSequence(File("").absoluteFile) { it.parentFile }.first { File(it, "redlock-bom/pom.xml").isFile }

    fun pom(path: String): Element =
        DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(File(root, path)).documentElement

    fun Element.child(name: String): Element? =
        (0 until childNodes.length).map { childNodes.item(it) }.filterIsInstance<Element>().firstOrNull { it.tagName == name }

    fun Element.children(name: String): List<Element> =
        (0 until childNodes.length).map { childNodes.item(it) }.filterIsInstance<Element>().filter { it.tagName == name }

    test("redlock-bom manages exactly the published modules, at the parent's version") {
        val parent = pom("pom.xml")
        val version = parent.child("version")!!.textContent
        val modules = parent.child("modules")!!.children("module").map { it.textContent }.toSet()
        val bom = pom("redlock-bom/pom.xml")
        bom.child("parent") shouldBe null
        bom.child("version")!!.textContent shouldBe version
        val managed = bom.child("dependencyManagement")!!.child("dependencies")!!.children("dependency")
        managed.map { it.child("groupId")!!.textContent }.toSet() shouldBe setOf("dev.redlock")
        managed.map { it.child("version")!!.textContent }.toSet() shouldBe setOf(version)
        managed.map { it.child("artifactId")!!.textContent }.toSet() shouldBe modules - unpublished
    }
})

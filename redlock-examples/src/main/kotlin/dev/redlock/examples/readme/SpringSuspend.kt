package dev.redlock.examples.readme

import dev.redlock.spring.Redlocked
import dev.redlock.spring.redlockedLease
import org.springframework.stereotype.Service

/** The README's Spring sample for Kotlin: a suspend function under the lock. */
// region spring-suspend
@Service
class Invoices(private val store: InvoiceStore) {
    @Redlocked("invoices:#{#customer}", leaseTime = "30s", waitTime = "5s")
    suspend fun close(customer: String) {
        // Cancelled at its next suspension point if the lock is lost; the caller gets LockLostException.
        store.write(customer, fence = redlockedLease().fencingToken)
    }
}
// endregion

/** Stands in for the store the lock protects. */
interface InvoiceStore {
    suspend fun write(customer: String, fence: Long?)
}

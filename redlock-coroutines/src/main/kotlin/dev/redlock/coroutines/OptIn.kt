package dev.redlock.coroutines

/**
 * Marks declarations that are public only so that other Redlock modules (the Java facade) can
 * use them. They are not part of the API: they may change or vanish in any release.
 */
@RequiresOptIn(
    message = "This is an internal Redlock API, for the library's own modules only.",
    level = RequiresOptIn.Level.ERROR,
)
// Kept at run time so that reflection-based API checks can tell internal entry points apart.
@Retention(AnnotationRetention.RUNTIME)
@Target(AnnotationTarget.CLASS, AnnotationTarget.FUNCTION, AnnotationTarget.PROPERTY, AnnotationTarget.CONSTRUCTOR)
public annotation class InternalRedlockApi

/**
 * Marks API that is new and may still change in a minor release.
 */
@RequiresOptIn(
    message = "This Redlock API is experimental and may change.",
    level = RequiresOptIn.Level.WARNING,
)
@Retention(AnnotationRetention.BINARY)
@Target(AnnotationTarget.CLASS, AnnotationTarget.FUNCTION, AnnotationTarget.PROPERTY, AnnotationTarget.CONSTRUCTOR)
public annotation class ExperimentalRedlockApi

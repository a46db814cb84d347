package dev.redlock.junit5;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Enables a case class only when {@link ExtensionLifecycleTest} runs it through the engine test
 * kit (some cases fail on purpose); anywhere else, such as an IDE running every class, it is
 * skipped.
 */
final class HarnessOnly implements ExecutionCondition {
  static final String PARAMETER = "dev.redlock.junit5.cases";

  @Override
  public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
    return context.getConfigurationParameter(PARAMETER).map(Boolean::parseBoolean).orElse(false)
        ? ConditionEvaluationResult.enabled("run by ExtensionLifecycleTest")
        : ConditionEvaluationResult.disabled("a case for ExtensionLifecycleTest, not a test by itself");
  }
}

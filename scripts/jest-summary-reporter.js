// Prints one plain closing line, "N passed, N failed", after jest's own summary, so that CI logs
// end with a count any tool can read.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const suitesFailed = results.numFailedTestSuites > 0 || results.numRuntimeErrorTestSuites > 0;
    // A suite that fails to load counts no test; report it as a failure rather than as green.
    const failed = results.numFailedTests || (suitesFailed ? results.numFailedTestSuites : 0);
    process.stderr.write(
      `\n${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`,
    );
  }
}
module.exports = SummaryReporter;

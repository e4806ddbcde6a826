// Renders Allure results as `allure generate` does, and also judges Allure 3's quality gate, so the
// report's Quality Gates tab shows it and the caller gets the gate's results as JSON on stdout.
//
// Why not `allure generate`: in allure 3.18 it reads `qualityGate` from the config but never
// evaluates it; only `allure run` (which runs the tests itself) and `allure quality-gate` (which
// renders nothing) do. This does what `allure log --quality-gate-results` does, then renders.
//
// Usage: node generate_report.mjs <allurerc.json> <results dir> <cwd>
// Driven by harness/report/render.py. Rules: Allure's own (maxFailures, minTestsCount, ...) and
// maxBreachedScenarios: scenarios failed by a breached verdict ("PolicyBreached (n):" in their
// failure, as steps/plugin.py raises it), so a breach shows as its own rule, apart from crashes.

import { AllureReport, qualityGateDefaultRules, readConfig } from "@allurereport/core";

// Allure 3's gate calls Iterator.prototype.toArray(), which Node.js has from version 22 on; the
// project runs on Node 20 (Debian's), so the standard method is supplied when it is missing.
const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
if (typeof IteratorPrototype.toArray !== "function") {
  Object.defineProperty(IteratorPrototype, "toArray", {
    value() { return [...this]; }, configurable: true, writable: true,
  });
}

const [configPath, resultsDir, cwd] = process.argv.slice(2);
const BREACH = /PolicyBreached \(\d+\):/;

const maxBreachedScenarios = {
  rule: "maxBreachedScenarios",
  message: ({ actual, expected }) =>
    `${actual} scenario(s) breached a documented target or a limit set in the scenario; at most ${expected} allowed`,
  successMessage: ({ actual, expected }) =>
    `${actual} scenario(s) breached a target or a limit; at most ${expected} allowed`,
  validate: async ({ trs, expected, state }) => {
    const breached = trs.filter((tr) => BREACH.test(tr.error?.message ?? ""));
    const actual = (Number(state.getResult()) || 0) + breached.length;
    state.setResult(actual, breached.map((tr) => tr.id));
    return { success: actual <= expected, actual, testResults: breached.map((tr) => tr.id) };
  },
};

const config = await readConfig(cwd, configPath);
config.qualityGate = { ...config.qualityGate, use: [...qualityGateDefaultRules, maxBreachedScenarios] };
const report = new AllureReport(config);
await report.start();
await report.readDirectory(resultsDir);
const trs = await report.store.allTestResults({ includeRetries: false });
const { results } = await report.validate({ trs });
if (results.length > 0) {
  report.realtimeDispatcher.sendQualityGateResults(results);
}
await report.done();
const plain = (text) => String(text ?? "").replace(/\u001b\[[0-9;]*m/g, "");
console.log(JSON.stringify(results.map(({ rule, success, expected, actual, message }) =>
  ({ rule, success, expected, actual, message: plain(message) }))));

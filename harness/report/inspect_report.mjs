// Opens an Allure 3 (Awesome) report in headless Chromium as a person would and prints, as JSON on
// stdout, what that person sees: every scenario in the tree with its status, its attachments, and
// whether its "Verdicts" table and "Timeline chart" actually display; then the categories and the
// quality gate's rules (passed or not) as their tabs show them.
//
// Usage: node inspect_report.mjs <report url> <chromium executable> <user data dir>
// Driven by harness/report/inspect.py, which serves the report on loopback and parses the JSON.
// Requests that leave loopback are blocked and listed: an auditor's report must work offline.

import { chromium } from "playwright-core";

const [url, executablePath, userDataDir] = process.argv.slice(2);
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TIMEOUT = 30_000;

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath, args: ARGS, headless: true, viewport: { width: 1400, height: 1000 },
});
context.setDefaultTimeout(TIMEOUT);
const external = [];
await context.route((target) => !["127.0.0.1", "localhost"].includes(target.hostname) &&
    target.protocol.startsWith("http"), (route) => {
  external.push(route.request().url());
  return route.abort();
});

try {
  const page = context.pages()[0] ?? await context.newPage();
  await page.goto(url);
  const title = (await page.locator('[data-testid="report-title"]').innerText()).trim();
  await expandTree(page);
  const leaves = await page.locator('[data-testid="tree-leaf"]').evaluateAll((nodes) => nodes.map((node) => ({
    id: node.id,
    name: node.querySelector('[data-testid="tree-leaf-title"]')?.textContent.trim() ?? "",
    status: (node.querySelector('[data-testid^="tree-leaf-status-"]')?.dataset.testid ?? "").replace("tree-leaf-status-", ""),
  })));
  const scenarios = [];
  for (const leaf of leaves) {
    scenarios.push({ ...leaf, ...await scenarioPage(page, leaf.id) });
  }
  await page.goto(url.split("#")[0]);
  await page.locator('[data-testid="report-title"]').waitFor();
  const categories = await tab(page, "categories", '[data-testid="tree-section-title"]',
    (nodes) => nodes.map((node) => node.textContent.trim()));
  const qualityGate = await tab(page, "qualityGate", '[data-testid="quality-gate-result"]',
    (nodes) => nodes.map((node) => ({
      rule: node.querySelector('[data-testid="quality-gate-result-rule"]')?.textContent.trim() ?? "",
      passed: !!node.querySelector('[data-testid="quality-gate-result-passed-icon"]'),
      message: (node.querySelector('[data-testid="quality-gate-result-message"]')?.textContent.trim() ?? "")
        .replace(/^(Error|Success)/, ""),
    })));
  console.log(JSON.stringify({ title, scenarios, external, categories, qualityGate }));
} finally {
  await context.close();
}

// A tab of the report's front page (categories, quality gates): what its entries say, [] without it.
async function tab(page, name, entries, read) {
  const button = page.locator(`[data-testid="nav-tab-${name}"]`);
  if (await button.count() === 0) return [];
  await button.click();
  await page.locator(entries).first().waitFor({ timeout: 5_000 }).catch(() => {});
  return page.locator(entries).evaluateAll(read);
}

// Open every collapsed group of the tree, level by level, until every scenario is listed.
async function expandTree(page) {
  await page.locator('[data-testid="tree-leaf"], [data-testid="tree-section"]').first().waitFor();
  for (let round = 0; round < 20; round++) {
    const closed = page.locator('[data-testid="tree-section"] > [data-testid="tree-arrow"]')
      .filter({ hasNot: page.locator('svg[class*="opened"]') });
    if (await closed.count() === 0) return;
    await closed.first().click();
  }
}

// The scenario's own page: its title and status there, and the two attachments that matter.
async function scenarioPage(page, id) {
  await page.goto(`${url.split("#")[0]}#${id}`);
  const info = page.locator('[data-testid="test-result-info-title"]');
  await info.waitFor();
  const attachments = await page.locator('[data-testid="test-result-attachment-header"]')
    .evaluateAll((nodes) => nodes.map((node) => node.querySelector("button span:last-child")?.textContent.trim() ?? ""));
  return {
    attachments,
    verdicts: await verdictsShown(page),
    chart: await chartShown(page),
  };
}

function attachment(page, name) {
  return page.locator('[data-testid="test-result-attachment"]').filter({
    has: page.locator('[data-testid="test-result-attachment-header"]').getByText(name, { exact: true }),
  }).first();
}

// Expanded, an HTML attachment is previewed in a sandboxed iframe: the table must be in it.
async function verdictsShown(page) {
  const verdicts = attachment(page, "Verdicts");
  if (await verdicts.count() === 0) return false;
  await verdicts.locator('[data-testid="test-result-attachment-header"]').click();
  const frame = verdicts.locator('[data-testid="html-attachment-preview"] iframe');
  try {
    await frame.waitFor();
    const html = await frame.contentFrame().locator("body").innerHTML();
    return html.includes("<table") && /Policy(Met|Breached)/.test(html);
  } catch {
    return false;
  }
}

// Expanded, an SVG attachment is an <img> of a blob: open that blob and check it is an SVG that drew.
async function chartShown(page) {
  const chart = attachment(page, "Timeline chart");
  if (await chart.count() === 0) return false;
  await chart.locator('[data-testid="test-result-attachment-header"]').click();
  const image = chart.locator('[data-testid="image-attachment-content"] img');
  try {
    await image.waitFor();
    return await image.evaluate(async (img) => {
      await img.decode();
      const text = await (await fetch(img.src)).text();
      return text.includes("<svg") && img.naturalWidth > 0;
    });
  } catch {
    return false;
  }
}

// Opens the DR certificate in headless Chromium, says what it shows, and prints it to one A4 PDF.
//
// Usage: node print_certificate.mjs <certificate file URL> <pdf path> <chromium executable> <user data dir>
// Driven by harness/certify/certificate.py. Prints JSON on stdout: the page's title, the verdict
// and digest as displayed, how many check lines are visible, requests that tried to leave the
// machine (blocked: a certificate must not phone home), and the scale the PDF was printed at to
// fit one page.

import { chromium } from "playwright-core";

const [url, pdfPath, executablePath, userDataDir] = process.argv.slice(2);
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];
const MM = 96 / 25.4; // CSS pixels per millimetre
const PAGE = { width: 210, height: 297, margin: 10 }; // A4, as the certificate's @page rule says

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath, args: ARGS, headless: true,
  viewport: { width: Math.round((PAGE.width - 2 * PAGE.margin) * MM), height: 1000 },
});
const external = [];
await context.route((target) => target.protocol.startsWith("http"), (route) => {
  external.push(route.request().url());
  return route.abort();
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  await page.goto(url, { waitUntil: "load" });
  await page.emulateMedia({ media: "print" });
  const seen = await page.evaluate(() => {
    const visible = (element) => !!element && element.getClientRects().length > 0 &&
      getComputedStyle(element).visibility !== "hidden";
    return {
      title: document.title,
      verdict: visible(document.querySelector('[data-testid="verdict"]'))
        ? document.querySelector('[data-testid="verdict"]').innerText.trim() : "",
      digest: visible(document.querySelector('[data-testid="digest"]'))
        ? document.querySelector('[data-testid="digest"]').innerText.trim() : "",
      lines: [...document.querySelectorAll("tbody tr.line")].filter(visible).length,
      height: document.documentElement.scrollHeight,
    };
  });
  const printable = (PAGE.height - 2 * PAGE.margin) * MM;
  const scale = Math.max(0.1, Math.min(1, Math.floor((printable / seen.height) * 1000) / 1000));
  await page.pdf({ path: pdfPath, format: "A4", printBackground: true, scale, preferCSSPageSize: true });
  console.log(JSON.stringify({ ...seen, scale, external }));
} finally {
  await context.close();
}

// Loads a page in headless Chromium, counts the elements matching each selector given, and
// takes a full-page screenshot: rungs' dashboard and report tests.
//
//   node snap.mjs --url file:///tmp/title.html --count 'circle.pt,path.rung' --screenshot out.png
//
// Prints {"title", "counts": {selector: n}, "errors": [...]} on stdout.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rungs-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.RUNGS_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  extraHTTPHeaders: args.token ? { authorization: `Bearer ${args.token}` } : {},
});
const out = { counts: {}, errors: [], requests: [] };
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => out.errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') out.errors.push(m.text()); });
  // A self-contained page loads nothing from the network.
  page.on('request', (r) => { if (!r.url().startsWith('data:') && r.url() !== args.url) out.requests.push(r.url()); });
  const resp = await page.goto(args.url, { waitUntil: 'load' });
  out.status = resp ? resp.status() : null;
  out.title = await page.title();
  for (const sel of (args.count || '').split(',').filter(Boolean)) {
    out.counts[sel] = await page.locator(sel).count();
  }
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
} catch (e) {
  out.errors.push(`harness: ${e.message}`);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(out)}\n`);

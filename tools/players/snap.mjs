// Loads a page in headless Chromium, counts the elements matching each selector given, and
// takes a full-page screenshot: rungs' dashboard and report tests.
//
//   node snap.mjs --url file:///tmp/title.html --count 'circle.pt,path.rung' --screenshot out.png
//
// Prints {"title", "counts": {selector: n}, "errors": [...], "dialogs": [...], "scripted",
// "text"} on stdout: `dialogs` are the alert/confirm/prompt boxes the page opened, `scripted` is
// true when anything set `window.__rungs_pwned` (what an injected handler in a test does), and
// `text` is the page's visible text.
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
const out = { counts: {}, errors: [], requests: [], dialogs: [], scripted: false };
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => out.errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') out.errors.push(m.text()); });
  page.on('dialog', (d) => { out.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  // A self-contained page loads nothing from the network.
  page.on('request', (r) => { if (!r.url().startsWith('data:') && r.url() !== args.url) out.requests.push(r.url()); });
  const resp = await page.goto(args.url, { waitUntil: 'load' });
  out.status = resp ? resp.status() : null;
  out.title = await page.title();
  for (const sel of (args.count || '').split(',').filter(Boolean)) {
    out.counts[sel] = await page.locator(sel).count();
  }
  // Give event handlers (an image's onerror) time to run before looking.
  await page.waitForTimeout(300);
  out.scripted = await page.evaluate(() => Boolean(window.__rungs_pwned));
  out.text = await page.evaluate(() => (document.body ? document.body.innerText : ''));
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
} catch (e) {
  out.errors.push(`harness: ${e.message}`);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(out)}\n`);

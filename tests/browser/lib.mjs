// What every browser test shares: Debian's chromium, headless, driven by
// puppeteer-core, opening the dashboard of a server tests/lib/server.mjs
// started; a record of console errors and failed requests; bounded polls.
import puppeteer from 'puppeteer-core';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const here = dirname(fileURLToPath(import.meta.url));
export const REPO = join(here, '..', '..');

/** Starts headless chromium; resolves the Browser. */
export function launch() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
}

/**
 * Opens srv's /ui in a new page, 1400×1000. Resolves {page, problems}:
 * problems collects every console error, uncaught exception and failed
 * request (HTTP status >= 400 or a network failure) from then on, except
 * those `allow(text)` accepts.
 */
export async function openDashboard(browser, srv, { allow = () => false, path = '/ui' } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const problems = [];
  const note = (text) => { if (!allow(text)) problems.push(text); };
  page.on('console', (m) => { if (m.type() === 'error') note(`console: ${m.text()}`); });
  page.on('pageerror', (e) => note(`exception: ${e.message}`));
  page.on('requestfailed', (r) => {
    // Closing the page aborts the open feed: that is not a failure.
    if (r.failure()?.errorText === 'net::ERR_ABORTED' && r.url().includes('/admin/events')) return;
    note(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => { if (r.status() >= 400) note(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  await page.goto(srv.baseURL + path, { waitUntil: 'load' });
  return { page, problems };
}

/** Polls `fn` (async, returns truthy when done) every 50 ms for up to `ms`; resolves its value or throws `what`. */
export async function waitFor(what, fn, ms = 5000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

/** Sets a range input to `value` and fires input then change, as dragging and releasing it does. */
export async function moveSlider(page, selector, value) {
  await page.$eval(selector, (input, v) => {
    input.value = String(v);
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

/** Where artifacts go: $FLEETMOCK_ARTIFACTS, else <build dir>/artifacts (ctest's working dir), made if missing. */
export function artifactDir() {
  const dir = process.env.FLEETMOCK_ARTIFACTS || join(process.cwd(), 'artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}

// A picture of the page mid-congestion: launch-spike at its peak (the clock
// 5× faster, so the peak holds from 8 s to 18 s in), Standard and Priority traffic from
// three keys. Written as a test artifact; with UPDATE_SCREENSHOT=1 also as
// docs/dashboard.png, the one docs/dashboard.md shows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, stopChecked, admin, post, streamRequest, NO_LIMITS } from '../lib/server.mjs';
import { launch, openDashboard, waitFor, artifactDir, REPO } from './lib.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';

let srv;
let browser;
before(async () => {
  srv = await startServer({ args: ['--time-scale', '5', '--seed', '7'], config: NO_LIMITS });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (srv) await stopChecked(srv);
});

/** Sends requests from `clients` loops until stop() is called; resolves when they have all ended. */
function drive(clients) {
  let running = true;
  const loops = Array.from({ length: clients }, async (_, i) => {
    const key = { Authorization: `Bearer drill-key-${i % 3}` };
    for (let n = 0; running && n < 100000; n++) {
      const tier = n % 3 === 0 ? 'priority' : 'standard';
      const body = { model: KIMI, max_tokens: 24, messages: [{ role: 'user', content: `hello ${n}` }],
        ...(tier === 'priority' ? { service_tier: 'priority' } : {}) };
      if (n % 4 === 1) await streamRequest(srv, '/v1/chat/completions', { ...body, stream: true }, { headers: key });
      else await post(srv, '/v1/chat/completions', body, key);
    }
  });
  return { stop: async () => { running = false; await Promise.all(loops); } };
}

test('screenshot_mid_congestion', async () => {
  const { page, problems } = await openDashboard(browser, srv);
  await waitFor('the dashboard', () => page.$('#pools [data-pool="kimi-k2p6"]'));
  await page.click('#pools [data-pool="kimi-k2p6"]');
  await page.select('#scenario-select', 'launch-spike');
  await page.click('#scenario-start');
  const file = join(artifactDir(), 'dashboard-mid-congestion.png');
  const load = drive(8);
  try {
    // The peak: tenant load 1.3 from 40 s (simulated), 8 s of real time in.
    await waitFor('launch-spike at its peak', async () =>
      (await admin(srv, 'GET', '/admin/state')).json.pools['kimi-k2p6'].tenant_load >= 1.3, 20000);
    await waitFor('Standard shed on the page', () => page.$eval('#outcomes [data-path="standard"]',
      (e) => e.dataset.verdict === '503' && Number(e.dataset['503']) > 20), 10000);
    await waitFor('Priority served on the page', () => page.$eval('#outcomes [data-path="priority"]',
      (e) => e.dataset.verdict === '200'), 5000);
    await new Promise((r) => setTimeout(r, 1500)); // a few bars of the peak
    // The whole page in one viewport (a full-page capture would resize the charts mid-shot).
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewport({ width: 1400, height });
    await new Promise((r) => setTimeout(r, 1200)); // the charts redraw at their new size, at 1 Hz
    await page.screenshot({ path: file });
  } finally {
    await load.stop();
  }
  console.log(`screenshot: ${file}`);
  if (process.env.UPDATE_SCREENSHOT === '1') {
    copyFileSync(file, join(REPO, 'docs', 'dashboard.png'));
    console.log(`updated ${join(REPO, 'docs', 'dashboard.png')}`);
  }
  assert.deepEqual(problems, []);
  await page.close();
});

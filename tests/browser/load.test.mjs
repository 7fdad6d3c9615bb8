// The page loads clean and shows what GET /admin/state says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, stopChecked, admin, patchPool } from '../lib/server.mjs';
import { launch, openDashboard, waitFor, REPO } from './lib.mjs';

let srv;
let browser;
before(async () => {
  srv = await startServer({ args: ['--timing', 'instant'] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (srv) await stopChecked(srv);
});

test('page_loads_without_errors_and_matches_admin_state', async () => {
  // Numbers that are not the defaults, so a page that showed defaults would fail.
  await patchPool(srv, 'kimi-k2p5', { slots: 12, tenant_load: 0.35, tenant_priority_share: 0.4 });
  const { page, problems } = await openDashboard(browser, srv);
  const state = (await admin(srv, 'GET', '/admin/state')).json;
  const names = Object.keys(state.pools);

  await waitFor('a card per pool', async () =>
    (await page.$$eval('#pools [data-pool]', (els) => els.map((e) => e.dataset.pool))).join() === names.join());
  await waitFor('the feed to be live', () => page.$eval('#feed-status', (e) => e.dataset.state === 'live'));
  assert.match(await page.evaluate(() => window.Chart && window.Chart.version), /^3\./, 'Chart.js 3 from /ui/chart.js');

  for (const name of names) {
    const p = state.pools[name];
    const shown = await page.$eval(`#pools [data-pool="${name}"]`, (card) => ({
      slots: card.querySelector('dd[data-field="slots"]').textContent,
      tenant_load: card.querySelector('dd[data-field="tenant_load"]').textContent,
      share: card.querySelector('dd[data-field="tenant_priority_share"]').textContent,
      slider: card.querySelector('input[name="tenant_load"]').value,
      slotsSlider: card.querySelector('input[name="slots"]').value,
      data: { ...card.dataset },
    }));
    assert.equal(shown.slots, String(p.slots), `${name} slots`);
    assert.equal(shown.tenant_load, p.tenant_load.toFixed(2), `${name} tenant_load`);
    assert.equal(shown.share, p.tenant_priority_share.toFixed(2), `${name} tenant_priority_share`);
    assert.equal(Number(shown.slider), p.tenant_load, `${name} tenant_load slider`);
    assert.equal(Number(shown.slotsSlider), p.slots, `${name} slots slider`);
    assert.equal(Number(shown.data.slots), p.slots);
    assert.equal(Number(shown.data.tenantLoad), p.tenant_load);
  }
  assert.equal(state.pools['kimi-k2p5'].slots, 12);

  // A second of feed events and polls, then nothing may have gone wrong.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(problems, []);
  await page.close();
});

test('scenario_select_lists_every_shipped_scenario', async () => {
  const { page, problems } = await openDashboard(browser, srv);
  await waitFor('the dashboard', () => page.$('#pools [data-pool]'));
  const shipped = readdirSync(join(REPO, 'scenarios')).filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, '')).sort();
  const options = await page.$$eval('#scenario-select option', (os) => os.map((o) => o.value));
  assert.deepEqual([...options].sort(), shipped);
  assert.deepEqual(problems, []);
  await page.close();
});

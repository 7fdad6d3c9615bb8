// The page's controls call the admin API, and the page shows what follows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopChecked, admin, post, streamRequest, LATE_MS, NO_LIMITS } from '../lib/server.mjs';
import { launch, openDashboard, waitFor, moveSlider } from './lib.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const chat = (tier, extra = {}) => ({
  model: KIMI, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }],
  ...(tier === 'standard' ? {} : { service_tier: tier }), ...extra,
});

let srv;
let browser;
before(async () => {
  srv = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (srv) await stopChecked(srv);
});

/** The per-path outcome summary the page keeps (data-200, data-429, data-503, data-other, data-verdict). */
const outcomes = (page) => page.$$eval('#outcomes [data-path]', (els) =>
  Object.fromEntries(els.map((e) => [e.dataset.path, { ...e.dataset, color: getComputedStyle(e).borderLeftColor }])));

/** The sum of one outcome's bars in a path's stacked chart, to the nearest request (a batch is spread over the seconds it covers). */
const bars = (page, path, outcome) => page.evaluate((p, o) => {
  const c = Object.values(window.Chart.instances).find((ch) => ch.options.plugins.title?.text === p);
  return Math.round(c.data.datasets.find((d) => d.label === o).data.reduce((a, pt) => a + pt.y, 0));
}, path, outcome);

test('tenant_load_slider_patches_the_pool_and_a_burst_shows_standard_red_priority_green', async () => {
  const { page, problems } = await openDashboard(browser, srv);
  await waitFor('the kimi-k2p6 card', () => page.$('#pools [data-pool="kimi-k2p6"]'));
  await moveSlider(page, '#pools [data-pool="kimi-k2p6"] input[name="tenant_load"]', 1.3);
  await waitFor('tenant_load 1.3 in /admin/state', async () =>
    (await admin(srv, 'GET', '/admin/state')).json.pools['kimi-k2p6'].tenant_load === 1.3);

  const sent = [];
  for (let i = 0; i < 10; i++) sent.push(post(srv, '/v1/chat/completions', chat('standard')), post(srv, '/v1/chat/completions', chat('priority')));
  const answers = await Promise.all(sent);
  assert.deepEqual(answers.map((a) => a.status).filter((s, i) => i % 2 === 0), Array(10).fill(503), 'every Standard request shed');
  assert.deepEqual(answers.map((a) => a.status).filter((s, i) => i % 2 === 1), Array(10).fill(200), 'every Priority request served');

  // Two seconds, plus the one allowance a busy machine gets (tests/lib/server.mjs).
  const shown = await waitFor('Standard red and Priority green', async () => {
    const o = await outcomes(page);
    return o.standard['503'] === '10' && o.priority['200'] === '10' ? o : null;
  }, 2000 + LATE_MS);
  assert.equal(shown.standard.verdict, '503');
  assert.equal(shown.standard['200'], '0');
  assert.equal(shown.standard.color, 'rgb(214, 57, 57)', 'Standard is red');
  assert.equal(shown.priority.verdict, '200');
  assert.equal(shown.priority['503'], '0');
  assert.equal(shown.priority.color, 'rgb(47, 158, 68)', 'Priority is green');
  await waitFor('the stacked bars', async () =>
    (await bars(page, 'standard', '503')) === 10 && (await bars(page, 'priority', '200')) === 10, 2000 + LATE_MS);
  assert.equal(await bars(page, 'standard', '200'), 0);
  assert.equal(await bars(page, 'priority', '503'), 0);
  assert.deepEqual(problems, []);
  await page.close();
  await admin(srv, 'POST', '/admin/reset');
});

test('scenario_start_fault_add_remove_and_reset_from_the_page', async () => {
  const boot = (await admin(srv, 'GET', '/admin/state')).json;
  const bootFaults = (await admin(srv, 'GET', '/admin/faults')).json;
  const { page, problems } = await openDashboard(browser, srv);
  await waitFor('the dashboard', () => page.$('#pools [data-pool]'));

  // launch-spike on its timeline.
  await page.select('#scenario-select', 'launch-spike');
  await page.click('#scenario-start');
  await waitFor('launch-spike running', async () => (await admin(srv, 'GET', '/admin/scenario')).json?.name === 'launch-spike');
  await waitFor('launch-spike on the timeline', () => page.$eval('#scenario', (e) =>
    e.dataset.name === 'launch-spike' && e.dataset.step === '0' && !e.querySelector('#scenario-running').hidden &&
    e.querySelector('#scenario-end').textContent === '150 s'));

  // A status fault: the next Priority request on kimi-k2p6 gets 500, once.
  await page.$eval('#fault-form [name="model"]', (e, v) => { e.value = v; }, KIMI);
  await page.select('#fault-form [name="tier"]', 'priority');
  await page.select('#fault-form [name="kind"]', 'status');
  await page.$eval('#fault-form [name="status"]', (e) => { e.value = '500'; });
  await page.select('#fault-form [name="fires"]', 'count');
  await page.$eval('#fault-form [name="count"]', (e) => { e.value = '1'; });
  await page.click('#fault-add');
  await waitFor('the fault in /admin/faults', async () => (await admin(srv, 'GET', '/admin/faults')).json.faults.length === 1);
  const [f1] = (await admin(srv, 'GET', '/admin/faults')).json.faults;
  assert.deepEqual({ match: f1.match, action: f1.action, count_left: f1.count_left },
    { match: { model: KIMI, tier: 'priority' }, action: { status: 500 }, count_left: 1 });
  assert.equal((await post(srv, '/v1/chat/completions', chat('priority'))).status, 500);
  assert.equal((await post(srv, '/v1/chat/completions', chat('priority'))).status, 200, 'count 1: it fired once');
  await waitFor('the page shows it fired once', () => page.$eval(`#faults tr[data-fault-id="${f1.id}"]`, (tr) => tr.dataset.fired === '1'));

  // A mid-stream error after 2 tokens, with probability 1.
  await page.select('#fault-form [name="tier"]', 'standard');
  await page.select('#fault-form [name="kind"]', 'error');
  await page.$eval('#fault-form [name="after_tokens"]', (e) => { e.value = '2'; });
  await page.select('#fault-form [name="fires"]', 'probability');
  await page.$eval('#fault-form [name="probability"]', (e) => { e.value = '1'; });
  await page.click('#fault-add');
  await waitFor('the second fault', async () => (await admin(srv, 'GET', '/admin/faults')).json.faults.length === 2);
  const f2 = (await admin(srv, 'GET', '/admin/faults')).json.faults[1];
  assert.deepEqual(f2.action, { stream: 'error', after_tokens: 2 });
  assert.equal(f2.probability, 1);
  const s = await streamRequest(srv, '/v1/chat/completions', chat('standard', { stream: true, max_tokens: 20 }));
  assert.equal(s.status, 200);
  const deltas = s.events.filter((e) => e.json?.choices?.[0]?.delta?.content);
  assert.equal(deltas.length, 2, 'two tokens, then the error');
  assert.ok(s.events.some((e) => e.json?.error), 'an SSE error event');

  // Remove the first from the page.
  // The list is redrawn every poll: find and click the button in one step in
  // the page, so a redraw between the two cannot detach it.
  await waitFor('the remove button', () =>
    page.evaluate((id) => {
      const b = document.querySelector(`#faults button[data-remove="${id}"]`);
      if (b) b.click();
      return Boolean(b);
    }, f1.id));
  await waitFor('one fault left', async () => {
    const left = (await admin(srv, 'GET', '/admin/faults')).json.faults;
    if (left.length === 1 && left[0].id === f2.id) return true;
    throw new Error(JSON.stringify(left));
  });

  // Reset: the boot state again.
  await page.click('#reset');
  await waitFor('the boot state', async () => {
    const st = (await admin(srv, 'GET', '/admin/state')).json;
    return st.scenario === null && JSON.stringify(st.pools) === JSON.stringify(boot.pools);
  });
  assert.deepEqual((await admin(srv, 'GET', '/admin/faults')).json, bootFaults);
  await waitFor('the page shows no scenario and no faults', () => page.evaluate(() =>
    !document.querySelector('#scenario-none').hidden && document.querySelector('#scenario').dataset.name === '' &&
    document.querySelectorAll('#faults tr[data-fault-id]').length === 0));
  assert.deepEqual(problems, []);
  await page.close();
});

test('a_refused_control_shows_the_admin_api_error', async () => {
  await admin(srv, 'POST', '/admin/reset');
  const { page, problems } = await openDashboard(browser, srv, { allow: (t) => /HTTP 400|status of 400/.test(t) });
  await waitFor('the dashboard', () => page.$('#pools [data-pool]'));
  await page.select('#fault-form [name="kind"]', 'status');
  await page.$eval('#fault-form [name="status"]', (e) => { e.value = '200'; });
  await page.click('#fault-add');
  const text = await waitFor('the error banner', () => page.$eval('#error', (e) => !e.hidden && e.textContent));
  assert.match(text, /POST \/admin\/faults: .*status/);
  assert.deepEqual((await admin(srv, 'GET', '/admin/faults')).json.faults, []);
  assert.deepEqual(problems, []);
  await page.close();
});

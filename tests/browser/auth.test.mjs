// With --admin-token the page shows nothing but a prompt until it has the
// token; then it sends it as a bearer on every call, never in a URL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopChecked } from '../lib/server.mjs';
import { launch, openDashboard, waitFor } from './lib.mjs';

const TOKEN = 'ui-test-admin-token-7f3a';

let srv;
let browser;
before(async () => {
  srv = await startServer({ args: ['--timing', 'instant'], env: { FLEETMOCK_ADMIN_TOKEN: TOKEN } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (srv) await stopChecked(srv);
});

/** The number of pool cards and pieces of data the page shows. */
const shownData = (page) => page.evaluate(() => ({
  dashboardHidden: document.querySelector('#dashboard').hidden,
  pools: document.querySelectorAll('#pools [data-pool]').length,
  requests: document.querySelectorAll('#requests tbody tr').length,
  accounts: document.querySelectorAll('#accounts tbody tr').length,
}));

test('without_the_token_the_page_shows_a_prompt_and_no_data_then_works_with_it', async () => {
  // The refused calls are the expected 401s; anything else is a problem.
  const { page, problems } = await openDashboard(browser, srv, { allow: (t) => /HTTP 401|status of 401/.test(t) });
  const calls = [];
  page.on('request', (r) => { if (r.url().includes('/admin/')) calls.push({ url: r.url(), auth: r.headers().authorization }); });

  await waitFor('the token prompt', () => page.$eval('#auth', (f) => !f.hidden));
  assert.match(await page.$eval('#auth', (f) => f.textContent), /Admin token needed/);
  assert.match(await page.$eval('#feed-status', (e) => e.textContent), /admin token needed/);
  assert.deepEqual(await shownData(page), { dashboardHidden: true, pools: 0, requests: 0, accounts: 0 });

  // A wrong token is refused and asked for again.
  await page.type('#auth-token', 'not-the-token');
  await page.click('#auth button[type="submit"]');
  await waitFor('the prompt again, saying why', () => page.$eval('#auth-why', (e) => /not accepted/.test(e.textContent)));
  assert.equal((await shownData(page)).pools, 0);

  await page.type('#auth-token', TOKEN);
  await page.click('#auth button[type="submit"]');
  await waitFor('the pools', () => page.$('#pools [data-pool="kimi-k2p6"]'));
  await waitFor('the feed live', () => page.$eval('#feed-status', (e) => e.dataset.state === 'live'));
  assert.equal(await page.$eval('#auth', (f) => f.hidden), true);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('fleetmock.adminToken')), TOKEN);

  // Every call after the token was entered carried it as a bearer, none in its URL.
  await waitFor('the 2 s polls', () => calls.some((c) => c.url.includes('/admin/accounts') && c.auth === `Bearer ${TOKEN}`));
  assert.ok(calls.every((c) => !c.url.includes(TOKEN)), 'the token is never in a URL');
  const withToken = calls.filter((c) => c.auth === `Bearer ${TOKEN}`).map((c) => new URL(c.url).pathname);
  for (const path of ['/admin/state', '/admin/events', '/admin/faults', '/admin/replies', '/admin/accounts', '/admin/requests']) {
    assert.ok(withToken.includes(path), `${path} with the bearer token`);
  }
  assert.ok(!page.url().includes(TOKEN));

  // A reload in the same tab keeps the token (sessionStorage): no prompt.
  await page.reload({ waitUntil: 'load' });
  await waitFor('the pools after a reload', () => page.$('#pools [data-pool]'));
  assert.equal(await page.$eval('#auth', (f) => f.hidden), true);
  assert.deepEqual(problems, []);
  await page.close();
});

// The bounded account table (server.max_accounts, docs/config.md): past the
// bound, idle accounts the config does not name are evicted least recently
// used first, and their totals are kept, so /admin/accounts totals and
// /metrics stay exact. GET /admin/accounts pages in key id order with limit
// and after (docs/control-plane.md). Everything here is counted, not timed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, admin, assertNoSlotsHeld, stopChecked, sleep } from '../lib/server.mjs';
import { scrape, sum } from '../lib/metrics.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const bearer = (key) => ({ Authorization: `Bearer ${key}` });

function chat(server, key, extra = {}, headers = {}) {
  return post(server, CHAT, {
    model: KIMI, messages: [{ role: 'user', content: `hello from ${key}` }], max_tokens: 3, ignore_eos: true, ...extra,
  }, { ...bearer(key), ...headers });
}

async function withServer(config, fn) {
  const server = await startServer({ args: ['--timing', 'instant', '--seed', '5'], config });
  try {
    await fn(server);
  } finally {
    await assertNoSlotsHeld(server);
    await stopChecked(server);
  }
}

/** Walks every page of GET /admin/accounts with this limit; returns the pages. */
async function walk(server, limit) {
  const pages = [];
  let after = null;
  for (let i = 0; i < 100; i++) {
    const q = `?limit=${limit}${after ? `&after=${after}` : ''}`;
    const r = await admin(server, 'GET', `/admin/accounts${q}`);
    assert.equal(r.status, 200, r.text);
    pages.push(r.json);
    if (!r.json.has_more) return pages;
    after = r.json.next_after;
  }
  throw new Error('more than 100 pages');
}

test('20 keys on a table of 5: 15 evicted, the 5 most recent listed, every total exact', async () => {
  await withServer({ server: { max_accounts: 5 } }, async (server) => {
    const ids = [];
    let generated = 0;
    for (let i = 0; i < 20; i++) {
      const extra = i % 2 ? { service_tier: 'priority' } : {};
      const r = await chat(server, `sk-evict-${i}`, extra);
      assert.equal(r.status, 200, r.text);
      ids.push(r.headers.get('x-fleetmock-key-id'));
      generated += r.json.usage.completion_tokens;
    }
    const list = await admin(server, 'GET', '/admin/accounts');
    assert.equal(list.status, 200, list.text);
    const listed = list.json.accounts.map((a) => a.key_id);
    assert.ok(listed.length <= 5, `${listed.length} accounts listed`);
    assert.deepEqual([...listed].sort(), ids.slice(15).sort(), 'the five most recently used survive');
    assert.equal(list.json.has_more, false);
    assert.equal(list.json.next_after, null);

    // The evicted accounts' usage is folded into the totals, not lost.
    const totals = list.json.totals;
    assert.equal(totals.accounts, 5);
    assert.equal(totals.accounts_evicted, 15);
    assert.equal(totals.max_accounts, 5);
    assert.equal(totals.total.requests, 20);
    assert.equal(totals.total.status_200, 20);
    assert.equal(totals.tiers.standard.requests, 10);
    assert.equal(totals.tiers.priority.requests, 10);
    assert.equal(totals.total.generated_tokens, generated);
    assert.equal(totals.cache.lookups, 20);
    assert.equal(totals.evicted.total.requests, 15, 'the part the evicted accounts had');
    const listedRequests = list.json.accounts.reduce((n, a) => n + a.total.requests, 0);
    assert.equal(totals.evicted.total.requests + listedRequests, totals.total.requests);

    const m = await scrape(server);
    assert.equal(sum(m, 'fleetmock_accounts_evicted_total'), 15);
    assert.equal(sum(m, 'fleetmock_accounts'), 5);
    assert.equal(sum(m, 'fleetmock_requests_total', { tier: 'standard', status: '200' }), 10);
    assert.equal(sum(m, 'fleetmock_requests_total', { tier: 'priority', status: '200' }), 10);
    assert.equal(sum(m, 'fleetmock_tokens_total', { kind: 'generated' }), generated);
    assert.ok(Math.abs(sum(m, 'fleetmock_cost_usd_total') - totals.total.cost_usd) < 1e-9,
      `cost: /metrics ${sum(m, 'fleetmock_cost_usd_total')} vs totals ${totals.total.cost_usd}`);

    // An evicted account is gone from the one-account route; a survivor is there.
    assert.equal((await admin(server, 'GET', `/admin/accounts/${ids[0]}`)).status, 404);
    const last = await admin(server, 'GET', `/admin/accounts/${ids[19]}`);
    assert.equal(last.status, 200);
    assert.equal(last.json.total.requests, 1);

    // A returning key starts a fresh account; the totals keep counting.
    assert.equal((await chat(server, 'sk-evict-0')).status, 200);
    const again = (await admin(server, 'GET', '/admin/accounts')).json.totals;
    assert.equal(again.total.requests, 21);
    assert.equal(again.accounts_evicted, 16);

    // /admin/reset zeroes the totals and the eviction count.
    assert.equal((await admin(server, 'POST', '/admin/reset')).status, 200);
    const reset = (await admin(server, 'GET', '/admin/accounts')).json.totals;
    assert.equal(reset.total.requests, 0);
    assert.equal(reset.accounts_evicted, 0);
    assert.equal(sum(await scrape(server), 'fleetmock_accounts_evicted_total'), 0);
  });
});

test('pages walk every account exactly once, in key id order, with limit and after', async () => {
  await withServer({ server: { max_accounts: 50 } }, async (server) => {
    const ids = new Set();
    for (let i = 0; i < 23; i++) {
      const r = await chat(server, `sk-page-${i}`);
      assert.equal(r.status, 200, r.text);
      ids.add(r.headers.get('x-fleetmock-key-id'));
    }
    const pages = await walk(server, 4);
    assert.equal(pages.length, 6, '5 full pages of 4 and one of 3');
    const seen = pages.flatMap((p) => p.accounts.map((a) => a.key_id));
    assert.equal(seen.length, 23);
    assert.deepEqual(new Set(seen), ids, 'every account, each once');
    assert.deepEqual(seen, [...seen].sort(), 'in key id order');
    for (const p of pages.slice(0, -1)) {
      assert.equal(p.accounts.length, 4);
      assert.equal(p.limit, 4);
      assert.equal(p.order, 'key_id');
      assert.equal(p.next_after, p.accounts.at(-1).key_id);
    }
    assert.equal(pages.at(-1).has_more, false);
    assert.equal(pages.at(-1).next_after, null);
    // The same walk with the largest page is one page.
    assert.equal((await walk(server, 1000)).length, 1);
    // A cursor need not be an account that still exists: it marks a place in the order.
    const gone = await admin(server, 'GET', '/admin/accounts?after=k-000000000000&limit=1');
    assert.equal(gone.json.accounts[0].key_id, seen[0]);
  });
});

test('bad limit, after or an unknown parameter answer 400 naming it', async () => {
  await withServer({}, async (server) => {
    for (const bad of ['0', '1001', 'abc', '-5', '2.5', '', '10x']) {
      const r = await admin(server, 'GET', `/admin/accounts?limit=${bad}`);
      assert.equal(r.status, 400, `limit=${bad}: ${r.text}`);
      assert.equal(r.json.error.param, 'limit');
      assert.match(r.json.error.message, /^limit: must be a whole number from 1 to 1000/);
    }
    for (const bad of ['nope', 'k-XYZ', 'k-3f9a1c2b7d4']) {
      const r = await admin(server, 'GET', `/admin/accounts?after=${bad}`);
      assert.equal(r.status, 400, `after=${bad}: ${r.text}`);
      assert.equal(r.json.error.param, 'after');
      assert.match(r.json.error.message, /after: must be a key id/);
    }
    const r = await admin(server, 'GET', '/admin/accounts?limt=5');
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.param, 'limt');
    assert.match(r.json.error.message, /unknown query parameter "limt".*limit/);
  });
});

test('a named account and one with a request in flight are never evicted', async () => {
  const config = { server: { max_accounts: 2 }, accounts: { keys: { 'sk-named': { name: 'team-a' } } } };
  await withServer(config, async (server) => {
    const named = await chat(server, 'sk-named');
    assert.equal(named.status, 200, named.text);
    // A stream that stalls holds its account until the client leaves.
    const ctl = new AbortController();
    try {
      const stalled = await fetch(server.baseURL + CHAT, {
        method: 'POST',
        signal: ctl.signal,
        headers: { 'Content-Type': 'application/json', ...bearer('sk-busy'), 'x-fleetmock-fault': 'stall@0' },
        body: JSON.stringify({ model: KIMI, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, stream: true }),
      });
      assert.equal(stalled.status, 200);
      const busyId = stalled.headers.get('x-fleetmock-key-id');
      const namedId = named.headers.get('x-fleetmock-key-id');
      for (let i = 0; i < 10; i++) assert.equal((await chat(server, `sk-churn-${i}`)).status, 200);

      // Named and busy fill the bound, so each churn key was served over it by
      // one and evicted as soon as its own request ended.
      let list = (await admin(server, 'GET', '/admin/accounts')).json;
      assert.deepEqual(list.accounts.map((a) => a.key_id).sort(), [namedId, busyId].sort());
      assert.equal(list.accounts.find((a) => a.key_id === namedId).name, 'team-a');
      assert.equal(list.totals.accounts_evicted, 10);
      assert.equal(list.totals.total.requests, 11, 'the stalled stream is not billed until it ends');

      // Once the stream ends its account is idle, and the next new key takes its place.
      ctl.abort();
      await stalled.body?.cancel().catch(() => {});
      for (let i = 0; i < 200; i++) { // bounded: a hang-up is seen within a poll or two
        list = (await admin(server, 'GET', '/admin/accounts')).json;
        if (list.totals.total.requests === 12) break;
        await sleep(25);
      }
      assert.equal(list.totals.total.requests, 12, 'the stream ended and was billed');
      assert.equal(list.totals.accounts_evicted, 10, 'at the bound: nothing more to evict');
      const next = await chat(server, 'sk-churn-next');
      assert.equal(next.status, 200);
      list = (await admin(server, 'GET', '/admin/accounts')).json;
      assert.deepEqual(list.accounts.map((a) => a.key_id).sort(), [namedId, next.headers.get('x-fleetmock-key-id')].sort());
      assert.equal(list.totals.accounts_evicted, 11);
      assert.equal(list.totals.total.requests, 13);
    } finally {
      ctl.abort(); // a failed check must not leave the stall holding the server
    }
  });
});

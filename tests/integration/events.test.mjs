// The dashboard's server side (docs/dashboard.md, docs/control-plane.md
// "GET /admin/events"): the live feed's windows count every request that
// finished, by serving path and outcome, and list the newest; its bounds
// (subscribers, interval); the admin token; a feed ends at shutdown; /ui
// serves the embedded files and Chart.js.
//
// Assertions are on what the feed and the server report, summed over
// windows, never on how many windows a busy machine managed to send.
import { test } from 'node:test';
import { readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { startServer, post, get, patchPool, stopChecked, sleep, NO_LIMITS, WRAPPED } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/v1/chat/completions';
const TOKEN = 'dash-5c8e21a9f0';

/** Opens the feed; collects its events until stop(). */
function openFeed(srv, { query = '', headers = {} } = {}) {
  const ctl = new AbortController();
  const events = [];
  let status = 0;
  const done = (async () => {
    const res = await fetch(`${srv.baseURL}/admin/events${query}`, { headers, signal: ctl.signal });
    status = res.status;
    if (res.status !== 200) return res.text();
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (let i = 0; i < 100000; i++) {
        const r = await reader.read();
        if (r.done) break;
        buf += dec.decode(r.value, { stream: true });
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, k);
          buf = buf.slice(k + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          events.push({ event: ev, data: JSON.parse(data) });
        }
      }
    } catch (e) {
      if (e.name !== 'AbortError') throw e;
    }
    return 'ended';
  })().catch((e) => (e.name === 'AbortError' ? 'aborted' : Promise.reject(e)));
  return { events, status: () => status, stop: () => ctl.abort(), done };
}

/** Waits (bounded) until pred(events) holds. */
async function until(feed, pred, what, ms = 5000) {
  ms *= WRAPPED ? 5 : 1; /* under valgrind everything is slower */
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (pred(feed.events)) return;
    await sleep(25);
  }
  assert.fail(`${what}: not seen within ${ms} ms (${feed.events.length} events)`);
}

const sum = (events, path, outcome) =>
  events.filter((e) => e.event === 'requests').reduce((s, e) => s + e.data.counts[path][outcome], 0);

test('the feed: state snapshots, and request counts by path and outcome that add up to what was sent', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS });
  try {
    const feed = openFeed(srv, { query: '?interval_ms=100' });
    await until(feed, (ev) => ev.some((e) => e.event === 'state'), 'a first state');
    const state = feed.events.find((e) => e.event === 'state').data;
    const direct = (await get(srv, '/admin/state', {})).json;
    assert.deepEqual(Object.keys(state.pools), Object.keys(direct.pools));
    assert.equal(state.requests_in_progress, 0, 'the feed does not count itself');
    assert.equal(state.pools['kimi-k2p6'].settings.slots, direct.pools['kimi-k2p6'].settings.slots);

    await patchPool(srv, 'kimi-k2p6', { tenant_load: 1.3, tenant_priority_share: 0.1 });
    let ok = 0, shed = 0;
    for (let i = 0; i < 20; i++) {
      const std = await post(srv, CHAT, { model: KIMI, messages: [{ role: 'user', content: `s${i}` }], max_tokens: 2 }, { 'x-fleetmock-test-id': 'dash' });
      if (std.status === 503) shed++;
      const pri = await post(srv, CHAT, { model: KIMI, messages: [{ role: 'user', content: `p${i}` }], max_tokens: 2, service_tier: 'priority' });
      if (pri.status === 200) ok++;
    }
    assert.equal(shed, 20, 'every Standard request shed at 1.3');
    assert.equal(ok, 20, 'every Priority request served');
    await until(feed, (ev) => sum(ev, 'standard', '503') >= 20 && sum(ev, 'priority', '200') >= 20, 'the counts');
    assert.equal(sum(feed.events, 'standard', '503'), 20);
    assert.equal(sum(feed.events, 'priority', '200'), 20);
    assert.equal(sum(feed.events, 'standard', '200'), 0);
    const listed = feed.events.filter((e) => e.event === 'requests').flatMap((e) => e.data.requests);
    const omitted = feed.events.filter((e) => e.event === 'requests').reduce((s, e) => s + e.data.omitted, 0);
    assert.equal(listed.length + omitted, 40, 'every request listed or counted as omitted');
    const one = listed.find((r) => r.test_id === 'dash');
    assert.ok(one, 'the test id is listed');
    assert.equal(one.tier, 'standard');
    assert.equal(one.status, 503);
    assert.equal(one.model, KIMI);
    assert.match(one.key_id, /^k-[0-9a-f]{12}$/);
    const later = feed.events.filter((e) => e.event === 'state').at(-1).data;
    assert.equal(later.pools['kimi-k2p6'].tenant_load, 1.3, 'the state follows the pool change');
    feed.stop();
    await feed.done;
  } finally {
    await stopChecked(srv);
  }
});

test('a flood lists at most 50 a window and counts every request', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS });
  try {
    // a long window, so the flood lands in few of them
    const feed = openFeed(srv, { query: '?interval_ms=2000' });
    await until(feed, (ev) => ev.length >= 2, 'the first window');
    const N = 300;
    for (let i = 0; i < N; i += 30)
      await Promise.all(Array.from({ length: 30 }, (_, k) => post(srv, CHAT, { model: KIMI, messages: [{ role: 'user', content: `f${i + k}` }], max_tokens: 1 })));
    await until(feed, (ev) => sum(ev, 'standard', '200') >= N, 'every request counted', 10000);
    const windows = feed.events.filter((e) => e.event === 'requests').map((e) => e.data);
    assert.equal(sum(feed.events, 'standard', '200'), N);
    for (const w of windows) assert.ok(w.requests.length <= 50, `a window listed ${w.requests.length}`);
    assert.equal(windows.reduce((s, w) => s + w.requests.length + w.omitted, 0), N);
    feed.stop();
    await feed.done;
  } finally {
    await stopChecked(srv);
  }
});

test('bounds and errors: interval_ms, unknown parameters, 16 feeds at most, the method', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'] });
  try {
    for (const q of ['?interval_ms=50', '?interval_ms=6000', '?interval_ms=abc']) {
      const r = await get(srv, `/admin/events${q}`, {});
      assert.equal(r.status, 400, q);
      assert.equal(r.json.error.param, 'interval_ms');
    }
    assert.equal((await get(srv, '/admin/events?colour=red', {})).json.error.param, 'colour');
    assert.equal((await get(srv, '/admin/events', {}, 'POST')).status, 405);
    const feeds = Array.from({ length: 16 }, () => openFeed(srv, { query: '?interval_ms=1000' }));
    await Promise.all(feeds.map((f) => until(f, (ev) => ev.length > 0, 'a feed')));
    const extra = await get(srv, '/admin/events', {});
    assert.equal(extra.status, 503, extra.text);
    assert.equal(extra.json.error.code, 'TOO_MANY_FEEDS');
    feeds[0].stop();
    await feeds[0].done;
    // its place is free once the server sees it gone
    let again = null;
    for (let i = 0; i < 100; i++) {
      again = openFeed(srv, { query: '?interval_ms=1000' });
      await sleep(50);
      if (again.status() === 200 || again.events.length) break;
      await again.done;
      again = null;
      await sleep(50);
    }
    assert.ok(again, 'a closed feed frees its place');
    for (const f of [...feeds.slice(1), again]) f.stop();
    await Promise.all([...feeds.slice(1), again].map((f) => f.done));
  } finally {
    await stopChecked(srv);
  }
});

test('with --admin-token the feed needs the token; /ui is served; a feed ends when the server stops', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], env: { FLEETMOCK_ADMIN_TOKEN: TOKEN } });
  let stopped = false;
  try {
    assert.equal((await get(srv, '/admin/events', {})).status, 401);
    const feed = openFeed(srv, { headers: { Authorization: `Bearer ${TOKEN}` } });
    await until(feed, (ev) => ev.length > 0, 'the feed with the token');
    // the page holds no data: served to anyone when a token guards the data
    const page = await get(srv, '/ui', {});
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    const chart = await get(srv, '/ui/chart.js', {});
    assert.equal(chart.status, 200);
    assert.match(chart.headers.get('content-type'), /^text\/javascript/);
    assert.match(chart.text, /Chart/);
    assert.equal((await get(srv, '/ui/nothing.js', {})).status, 404);
    // the shipped scenarios the page offers: every file of scenarios/, by name
    const sc = await get(srv, '/admin/scenarios', { Authorization: `Bearer ${TOKEN}` });
    assert.equal(sc.status, 200, sc.text);
    const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scenarios');
    assert.deepEqual(sc.json.scenarios.map((x) => x.name),
      readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort());
    assert.ok(sc.json.scenarios.every((x) => typeof x.description === 'string' && x.description.length > 0));
    assert.equal((await get(srv, '/ui', {}, 'POST')).status, 405);
    stopped = true;
    const r = await srv.stop();
    assert.equal(r.code, 0, 'a drain with a feed open exits 0');
    assert.equal(await feed.done, 'ended', 'the feed ended with the server');
  } finally {
    if (!stopped) await stopChecked(srv);
  }
});

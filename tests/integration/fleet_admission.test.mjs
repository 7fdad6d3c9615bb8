// Fleet admission (SPEC §4): shed curves per tier, Priority shed last,
// Background shed first, and seeded, replayable decisions.
// One server, --timing instant --seed 7: queue timeouts are zero, so a shed
// request gets its 503 at once and every draw is visible in the status.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, admin, patchPool, assertNoSlotsHeld, NO_LIMITS, assertAtOnce } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);
// Under valgrind fewer requests, with bounds widened to match (about 3.5 sigma).
const N = WRAPPED ? 200 : 1000;
const TOL = WRAPPED ? 0.12 : 0.05;


let server;



function chat(extra = {}) {
  return { model: KIMI, messages: [{ role: 'user', content: 'hello fleet' }], max_tokens: 4, ignore_eos: true, ...extra };
}

/** Sends n requests, `concurrency` at a time; resolves the results in send order. */
async function inBatches(n, concurrency, send) {
  const out = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + concurrency); k++) batch.push(send(k));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** Sends n requests one after another; resolves the list of statuses. */
async function sequence(srv, n, body, key) {
  const statuses = [];
  for (let i = 0; i < n; i++) {
    const r = await post(srv, CHAT, body, { Authorization: `Bearer ${key}` });
    statuses.push(r.status);
  }
  return statuses;
}

function countBy(list) {
  const m = {};
  for (const x of list) m[x] = (m[x] || 0) + 1;
  return m;
}

async function assertIdle(srv) {
  const r = await admin(srv, 'GET', '/admin/state');
  assert.equal(r.status, 200);
  for (const [name, p] of Object.entries(r.json.pools)) {
    assert.deepEqual(p.in_flight, { priority: 0, standard: 0, background: 0 }, `in_flight of ${name}`);
    assert.deepEqual(p.queued, { priority: 0, standard: 0, background: 0 }, `queued of ${name}`);
  }
}

before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '7'], config: NO_LIMITS });
});

after(async () => {
  if (!server) return;
  await assertIdle(server);
  await assertNoSlotsHeld(server);
  const res = await server.stop();
  assert.equal(res.code, 0, res.stderr);
});

beforeEach(async () => {
  const r = await admin(server, 'POST', '/admin/reset');
  assert.equal(r.status, 200, r.text);
});

test('tenant_load 1.2 share 0.2: every Standard request is shed, every Priority request runs', async () => {
  const pool = await patchPool(server, 'kimi-k2p6', { tenant_load: 1.2, tenant_priority_share: 0.2 });
  assert.equal(pool.tenant_load, 1.2);
  assert.equal(pool.tenant_priority_share, 0.2);
  assert.equal(pool.shed_probability.standard, 1);
  assert.equal(pool.shed_probability.priority, 0);
  assert.equal(pool.shed_probability.background, 1);

  const auth = { Authorization: 'Bearer adm-saturated' };
  const std = await inBatches(N, 50, () => post(server, CHAT, chat(), auth));
  assert.equal(std.length, N);
  for (const r of std) {
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.object, 'error');
    assert.equal(r.json.error.type, 'server_error');
    assert.equal(r.json.error.code, 'SERVICE_OVERLOADED');
    assert.match(r.json.error.message, /shedding/);
    assert.match(r.json.error.message, /Priority/);
    assert.match(r.json.error.message, /kimi-k2p6/);
    assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p6');
    assert.equal(r.headers.get('x-fleetmock-service-tier'), 'standard');
    // Shed at once (no queue under --timing instant): only processing time shows.
    assertAtOnce(r.headers.get('x-fleetmock-queue-ms'), 'x-fleetmock-queue-ms of a shed request');
  }

  const pri = await inBatches(N, 50, () => post(server, CHAT, chat({ service_tier: 'priority' }), auth));
  assert.equal(pri.length, N);
  for (const r of pri) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.service_tier, 'priority');
    assert.equal(r.headers.get('x-fleetmock-service-tier'), 'priority');
    assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p6');
    assert.equal(r.json.usage.completion_tokens, 4);
  }

  const keyId = std[0].headers.get('x-fleetmock-key-id');
  const acc = await admin(server, 'GET', `/admin/accounts/${keyId}`);
  assert.equal(acc.status, 200, acc.text);
  assert.equal(acc.json.tiers.standard.requests, N);
  assert.equal(acc.json.tiers.standard.status_503, N);
  assert.equal(acc.json.tiers.standard.status_200, 0);
  assert.equal(acc.json.tiers.priority.requests, N);
  assert.equal(acc.json.tiers.priority.status_200, N);
  assert.equal(acc.json.tiers.priority.status_503, 0);
});

test('Priority is shed too once Priority demand alone fills the pool', async () => {
  const pool = await patchPool(server, 'kimi-k2p6', { tenant_load: 1.0, tenant_priority_share: 1.0 });
  assert.equal(pool.shed_probability.priority, 1);
  const auth = { Authorization: 'Bearer adm-priority-storm' };
  const pri = await inBatches(100, 50, () => post(server, CHAT, chat({ service_tier: 'priority' }), auth));
  for (const r of pri) {
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'SERVICE_OVERLOADED');
    assert.equal(r.headers.get('x-fleetmock-service-tier'), 'priority');
  }
});

test('Standard curve at probability 0.5 (tenant_load 0.925) sheds about half', async (t) => {
  const pool = await patchPool(server, 'kimi-k2p6', { tenant_load: 0.925, tenant_priority_share: 0 });
  assert.ok(Math.abs(pool.shed_probability.standard - 0.5) < 1e-9, `p = ${pool.shed_probability.standard}`);
  assert.equal(pool.shed_probability.priority, 0);
  const statuses = await sequence(server, N, chat(), 'adm-curve');
  const c = countBy(statuses);
  assert.deepEqual(Object.keys(c).sort(), ['200', '503'], JSON.stringify(c));
  assert.equal(c[200] + c[503], N);
  const rate = c[503] / N;
  t.diagnostic(`Standard 503 rate ${rate}`);
  assert.ok(rate >= 0.5 - TOL && rate <= 0.5 + TOL, `503 rate ${rate} not within 0.5 ± ${TOL}`);
  // Priority on the same pool sees no Priority demand: never shed.
  const pri = await sequence(server, 100, chat({ service_tier: 'priority' }), 'adm-curve');
  assert.deepEqual(countBy(pri), { 200: 100 });
});

test('Background: echoes its tier; tenant_load 0.7 sheds about half of it and no Standard', async (t) => {
  const pool = await patchPool(server, 'kimi-k2p6', { tenant_load: 0.7, tenant_priority_share: 0 });
  assert.ok(Math.abs(pool.shed_probability.background - 0.5) < 1e-9, `p = ${pool.shed_probability.background}`);
  assert.equal(pool.shed_probability.standard, 0);

  const auth = { Authorization: 'Bearer adm-background' };
  const one = await post(server, CHAT, chat({ service_tier: 'background' }), auth);
  // Draw until one is served (p = 0.5 each; 40 tries fail together with 2^-40).
  let served = one;
  for (let i = 0; i < 40 && served.status !== 200; i++) served = await post(server, CHAT, chat({ service_tier: 'background' }), auth);
  assert.equal(served.status, 200, served.text);
  assert.equal(served.json.service_tier, 'background');
  assert.equal(served.headers.get('x-fleetmock-service-tier'), 'background');
  assert.equal(served.headers.get('x-fleetmock-pool'), 'kimi-k2p6');

  const bg = await sequence(server, N, chat({ service_tier: 'background' }), 'adm-background-2');
  const c = countBy(bg);
  assert.equal((c[200] || 0) + (c[503] || 0), N, JSON.stringify(c));
  const rate = c[503] / N;
  t.diagnostic(`Background 503 rate ${rate}`);
  assert.ok(rate >= 0.5 - TOL && rate <= 0.5 + TOL, `Background 503 rate ${rate} not within 0.5 ± ${TOL}`);

  const std = await inBatches(N, 50, () => post(server, CHAT, chat(), auth));
  for (const r of std) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.service_tier, 'default');
    assert.equal(r.headers.get('x-fleetmock-service-tier'), 'standard');
  }
});

test('Background with no load runs; at tenant_load 0.8 it is always shed and Standard never', async () => {
  const auth = { Authorization: 'Bearer adm-background-3' };
  const idle = await sequence(server, 50, chat({ service_tier: 'background' }), 'adm-background-3');
  assert.deepEqual(countBy(idle), { 200: 50 });
  const pool = await patchPool(server, 'kimi-k2p6', { tenant_load: 0.8 });
  assert.equal(pool.shed_probability.background, 1);
  assert.equal(pool.shed_probability.standard, 0);
  const bg = await inBatches(200, 50, () => post(server, CHAT, chat({ service_tier: 'background' }), auth));
  for (const r of bg) {
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'SERVICE_OVERLOADED');
    assert.equal(r.headers.get('x-fleetmock-service-tier'), 'background');
  }
  const std = await inBatches(200, 50, () => post(server, CHAT, chat(), auth));
  assert.deepEqual(countBy(std.map((r) => r.status)), { 200: 200 });
});

test('same seed and request sequence → identical 200/503 sequence; another seed → a different one', async () => {
  const M = 300;
  async function run(seed) {
    const srv = await startServer({ args: ['--timing', 'instant', '--seed', String(seed)], config: NO_LIMITS });
    try {
      const pool = await patchPool(srv, 'kimi-k2p6', { tenant_load: 0.925 });
      assert.ok(Math.abs(pool.shed_probability.standard - 0.5) < 1e-9);
      return await sequence(srv, M, chat(), 'adm-determinism');
    } finally {
      const res = await srv.stop();
      assert.equal(res.code, 0, res.stderr);
    }
  }
  const a = await run(7);
  const b = await run(7);
  const other = await run(8);
  assert.equal(a.length, M);
  const c = countBy(a);
  assert.ok(c[200] > 0 && c[503] > 0, `both outcomes should occur at p = 0.5: ${JSON.stringify(c)}`);
  assert.deepEqual(b, a, 'same seed, same sequence: the decisions must repeat exactly');
  assert.notDeepEqual(other, a, 'a different seed should decide differently');

  // POST /admin/reset re-seeds: the main server (seed 7, fresh after reset) replays run(7).
  await patchPool(server, 'kimi-k2p6', { tenant_load: 0.925 });
  const replay = await sequence(server, M, chat(), 'adm-determinism-replay');
  assert.deepEqual(replay, a, 'after /admin/reset the seed-7 server should replay the seed-7 sequence');
});

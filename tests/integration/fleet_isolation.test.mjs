// Fleet isolation (SPEC §4): Fast routers have pools of their own, so
// congestion on kimi-k2p6 never touches kimi-k2p6-fast, and the reverse.
// Checked both with virtual tenant load (--timing instant) and with real
// slots held by fleetmock's own streams (realistic timing).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, streamRequest, admin, patchPool, NO_LIMITS, assertNoSlotsHeld, sleep, assertAtOnce } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const FAST = 'accounts/fireworks/routers/kimi-k2p6-fast';
const CHAT = '/inference/v1/chat/completions';
const N = process.env.FLEETMOCK_WRAPPER ? 100 : 500;

let server;



async function state(srv) {
  const r = await admin(srv, 'GET', '/admin/state');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function chat(model, extra = {}) {
  return { model, messages: [{ role: 'user', content: 'isolation check' }], max_tokens: 3, ignore_eos: true, ...extra };
}

async function inBatches(n, concurrency, send) {
  const out = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + concurrency); k++) batch.push(send(k));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}


/** Polls /admin/state (bounded) until pred(state) holds; returns the last state. */
async function waitState(srv, pred, maxMs = 5000) {
  const deadline = performance.now() + maxMs * (process.env.FLEETMOCK_WRAPPER ? 5 : 1);
  let s;
  for (let i = 0; i < 10000 && performance.now() < deadline; i++) {
    s = await state(srv);
    if (pred(s)) return s;
    await sleep(20);
  }
  return s;
}

function assertIdleState(s) {
  for (const [name, p] of Object.entries(s.pools)) {
    assert.deepEqual(p.in_flight, { priority: 0, standard: 0, background: 0 }, `in_flight of ${name}`);
    assert.deepEqual(p.queued, { priority: 0, standard: 0, background: 0 }, `queued of ${name}`);
  }
}

before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '11'], config: NO_LIMITS });
});

after(async () => {
  if (!server) return;
  assertIdleState(await state(server));
  await assertNoSlotsHeld(server);
  const res = await server.stop();
  assert.equal(res.code, 0, res.stderr);
});

beforeEach(async () => {
  const r = await admin(server, 'POST', '/admin/reset');
  assert.equal(r.status, 200, r.text);
});

test('kimi-k2p6 saturated (tenant_load 2): Fast model requests all succeed', async () => {
  const kimi = await patchPool(server, 'kimi-k2p6', { tenant_load: 2 });
  assert.equal(kimi.shed_probability.standard, 1);
  assert.equal(kimi.shed_probability.background, 1);
  const s = await state(server);
  assert.equal(s.pools['kimi-k2p6-fast'].tenant_load, 0);
  assert.equal(s.pools['kimi-k2p6-fast'].shed_probability.standard, 0);

  const auth = { Authorization: 'Bearer iso-1' };
  // The congestion is real: Standard and Background on kimi-k2p6 are shed.
  const std = await inBatches(50, 25, () => post(server, CHAT, chat(KIMI), auth));
  for (const r of std) assert.equal(r.status, 503, r.text);
  const bg = await inBatches(50, 25, () => post(server, CHAT, chat(KIMI, { service_tier: 'background' }), auth));
  for (const r of bg) assert.equal(r.status, 503, r.text);

  const fast = await inBatches(N, 50, () => post(server, CHAT, chat(FAST), auth));
  for (const r of fast) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p6-fast');
    assert.equal(r.headers.get('x-fleetmock-service-tier'), 'fast');
    assert.equal(r.json.usage.completion_tokens, 3);
  }
  const acc = await admin(server, 'GET', `/admin/accounts/${fast[0].headers.get('x-fleetmock-key-id')}`);
  assert.equal(acc.json.tiers.fast.status_200, N);
  assert.equal(acc.json.tiers.fast.status_503, 0);
  assert.equal(acc.json.tiers.standard.status_503, 50);
  assert.equal(acc.json.tiers.background.status_503, 50);
});

test('kimi-k2p6-fast saturated (tenant_load 2): kimi-k2p6 Standard requests all succeed', async () => {
  const fastPool = await patchPool(server, 'kimi-k2p6-fast', { tenant_load: 2 });
  assert.equal(fastPool.shed_probability.standard, 1);
  const s = await state(server);
  assert.equal(s.pools['kimi-k2p6'].tenant_load, 0);
  assert.equal(s.pools['kimi-k2p6'].shed_probability.standard, 0);

  const auth = { Authorization: 'Bearer iso-2' };
  const fast = await inBatches(50, 25, () => post(server, CHAT, chat(FAST), auth));
  for (const r of fast) {
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'SERVICE_OVERLOADED');
    assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p6-fast');
    assert.match(r.json.error.message, /kimi-k2p6-fast/);
  }
  const std = await inBatches(N, 50, () => post(server, CHAT, chat(KIMI), auth));
  for (const r of std) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p6');
    assert.equal(r.headers.get('x-fleetmock-service-tier'), 'standard');
  }
});

test('PATCH of one pool leaves the other untouched; PATCH * changes every pool', async () => {
  await patchPool(server, 'kimi-k2p6', { tenant_load: 2 });
  let s = await state(server);
  assert.equal(s.pools['kimi-k2p6'].tenant_load, 2);
  for (const [name, p] of Object.entries(s.pools)) if (name !== 'kimi-k2p6') assert.equal(p.tenant_load, 0, name);
  const r = await admin(server, 'PATCH', '/admin/pools/*', { tenant_load: 0.5 });
  assert.equal(r.status, 200, r.text);
  s = await state(server);
  for (const [name, p] of Object.entries(s.pools)) assert.equal(p.tenant_load, 0.5, name);
  assert.deepEqual(Object.keys(r.json.pools).sort(), Object.keys(s.pools).sort());
});

test('slots held by own streams on kimi-k2p6 do not queue Fast requests (realistic timing)', async () => {
  const srv = await startServer({
    args: ['--seed', '3'],
    config: {
      ...NO_LIMITS,
      pools: {
        'kimi-k2p6': { slots: 2, ttft_ms: 20, decode_tps: 50, jitter: 0, queue_timeout_ms: { standard: 100 } },
        'kimi-k2p6-fast': { ttft_ms: 20, decode_tps: 200, jitter: 0 },
      },
    },
  });
  try {
    const ac = new AbortController();
    const body = { ...chat(KIMI), max_tokens: 500, stream: true };
    const long = [0, 1].map(() => streamRequest(srv, CHAT, body, { signal: ac.signal, maxMs: 30000 }));
    const full = await waitState(srv, (s) => s.pools['kimi-k2p6'].in_flight.standard === 2);
    assert.equal(full.pools['kimi-k2p6'].in_flight.standard, 2);
    assert.equal(full.pools['kimi-k2p6'].utilisation, 1);
    // A third Standard request has no slot: it waits 100 ms, then 503.
    const third = await post(srv, CHAT, chat(KIMI));
    assert.equal(third.status, 503, third.text);
    // Fast has its own slots: served at once.
    const fast = await inBatches(20, 10, () => post(srv, CHAT, chat(FAST)));
    for (const r of fast) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p6-fast');
      assertAtOnce(r.headers.get('x-fleetmock-queue-ms'), 'Fast is served without queueing');
    }
    const mid = await state(srv);
    assert.equal(mid.pools['kimi-k2p6-fast'].utilisation, 0);
    assert.equal(mid.pools['kimi-k2p6'].in_flight.standard, 2);
    ac.abort();
    await Promise.allSettled(long);
    const idle = await waitState(srv, (s) => s.pools['kimi-k2p6'].in_flight.standard === 0);
    assertIdleState(idle);
  } finally {
    const res = await srv.stop();
    assert.equal(res.code, 0, res.stderr);
  }
});

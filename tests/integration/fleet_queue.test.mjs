// Fleet queues (SPEC §4), realistic timing: a pool of 4 slots that
// fleetmock's own streams fill by themselves. A request that finds no slot
// waits in its tier's queue; queues are served Priority first; a request still
// waiting at its queue timeout gets 503.
//
// slowdown_at_full is 0 so a 100-token stream takes 50 ms + 100 × 20 ms ≈ 2 s
// whatever the utilisation, well inside the 3 s queue timeout.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, streamRequest, admin, assertNoSlotsHeld, NO_LIMITS, sleep } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);
const CONFIG = {
  ...NO_LIMITS,
  pools: {
    'kimi-k2p6': {
      slots: 4, ttft_ms: 50, decode_tps: 50, jitter: 0, slowdown_at_full: 0,
      queue_timeout_ms: { standard: 3000, priority: 3000 },
    },
  },
};

let server;


async function kimiState(srv) {
  const r = await admin(srv, 'GET', '/admin/state');
  assert.equal(r.status, 200, r.text);
  return r.json.pools['kimi-k2p6'];
}

/** Polls the kimi-k2p6 pool state (bounded) until pred holds; returns the last one seen. */
async function waitPool(srv, pred, maxMs = 5000) {
  const deadline = performance.now() + maxMs * (WRAPPED ? 5 : 1);
  let p;
  for (let i = 0; i < 10000 && performance.now() < deadline; i++) {
    p = await kimiState(srv);
    if (pred(p)) return p;
    await sleep(10);
  }
  return p;
}

const T = { priority: 0, standard: 0, background: 0 };

/**
 * Starts a stream and records, in ms on the shared performance clock, when
 * its response headers came (fetch resolved is not visible, so the first SSE
 * event stands in) and when its first content token arrived.
 */
function startStream(srv, { maxTokens, tier, signal, key = 'queue-test' }) {
  const body = {
    model: KIMI, messages: [{ role: 'user', content: `queue ${tier || 'standard'}` }],
    max_tokens: maxTokens, ignore_eos: true, stream: true,
  };
  if (tier) body.service_tier = tier;
  const info = { firstEvent: null, firstToken: null, sent: performance.now() };
  const done = streamRequest(srv, CHAT, body, {
    headers: { Authorization: `Bearer ${key}` },
    signal,
    maxMs: 30000,
    onEvent: (ev) => {
      const now = performance.now();
      if (info.firstEvent === null) info.firstEvent = now;
      const delta = ev.json?.choices?.[0]?.delta;
      if (info.firstToken === null && delta && typeof delta.content === 'string' && delta.content.length) info.firstToken = now;
    },
  }).then((r) => Object.assign(info, r));
  info.done = done;
  return info;
}

function contentTokens(events) {
  return events.filter((e) => e.json?.choices?.[0]?.delta?.content).length;
}

before(async () => {
  server = await startServer({ args: ['--seed', '5'], config: CONFIG });
});

after(async () => {
  if (!server) return;
  const p = await waitPool(server, (x) => x.in_flight.standard + x.in_flight.priority + x.queued.standard + x.queued.priority === 0);
  assert.deepEqual(p.in_flight, T);
  assert.deepEqual(p.queued, T);
  await assertNoSlotsHeld(server);
  const res = await server.stop();
  assert.equal(res.code, 0, res.stderr);
});

beforeEach(async () => {
  const r = await admin(server, 'POST', '/admin/reset');
  assert.equal(r.status, 200, r.text);
  const p = await kimiState(server);
  assert.equal(p.slots, 4);
  assert.deepEqual(p.in_flight, T);
  assert.deepEqual(p.queued, T);
});

test('4 streams fill 4 slots; 2 more Standard streams queue, then are served when slots free', async () => {
  const t0 = performance.now();
  const long = [0, 1, 2, 3].map(() => startStream(server, { maxTokens: 100 }));
  let p = await waitPool(server, (x) => x.in_flight.standard === 4);
  assert.equal(p.in_flight.standard, 4);
  assert.equal(p.utilisation, 1);

  const waiting = [0, 1].map(() => startStream(server, { maxTokens: 10 }));
  p = await waitPool(server, (x) => x.queued.standard === 2);
  assert.deepEqual(p.in_flight, { priority: 0, standard: 4, background: 0 });
  assert.deepEqual(p.queued, { priority: 0, standard: 2, background: 0 });
  if (!WRAPPED) assert.ok(performance.now() - t0 < 1500, 'the queue should be seen while the long streams still run');

  const results = await Promise.all([...long, ...waiting].map((s) => s.done));
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.aborted, false);
    assert.equal(r.events.at(-1).data, '[DONE]');
  }
  for (const r of results.slice(0, 4)) {
    assert.equal(contentTokens(r.events), 100);
    assert.ok(Number(r.headers.get('x-fleetmock-queue-ms')) < (WRAPPED ? 1000 : 50), 'the first four are admitted at once');
  }
  for (const r of results.slice(4)) {
    assert.equal(contentTokens(r.events), 10);
    const q = Number(r.headers.get('x-fleetmock-queue-ms'));
    assert.ok(q > 0, `queued stream should report its wait, got x-fleetmock-queue-ms ${q}`);
    if (!WRAPPED) assert.ok(q >= 1500 && q <= 3000, `queued about 2 s behind the long streams, got ${q} ms`);
    // A queued request starts only after a long one has finished.
    if (!WRAPPED) assert.ok(r.firstToken >= Math.min(...results.slice(0, 4).map((x) => x.sent + x.tEnd)) - 50);
  }
  p = await waitPool(server, (x) => x.in_flight.standard === 0);
  assert.deepEqual(p.in_flight, T);
  assert.deepEqual(p.queued, T);
});

test('queue_timeout_ms standard 300: a 5th request waits ~300 ms then gets 503', async () => {
  const r0 = await admin(server, 'PATCH', '/admin/pools/kimi-k2p6', { queue_timeout_ms: { standard: 300 } });
  assert.equal(r0.status, 200, r0.text);
  assert.equal(r0.json.pools['kimi-k2p6'].settings.queue_timeout_ms.standard, 300);
  assert.equal(r0.json.pools['kimi-k2p6'].settings.queue_timeout_ms.priority, 3000);

  const ac = new AbortController();
  const long = [0, 1, 2, 3].map(() => startStream(server, { maxTokens: 100, signal: ac.signal }));
  const p = await waitPool(server, (x) => x.in_flight.standard === 4);
  assert.equal(p.in_flight.standard, 4);

  const t = performance.now();
  const fifth = await post(server, CHAT, { model: KIMI, messages: [{ role: 'user', content: 'fifth' }], max_tokens: 5 });
  const elapsed = performance.now() - t;
  assert.equal(fifth.status, 503, fifth.text);
  assert.equal(fifth.json.error.code, 'SERVICE_OVERLOADED');
  assert.equal(fifth.json.error.type, 'server_error');
  assert.match(fifth.json.error.message, /Priority/);
  assert.equal(fifth.headers.get('x-fleetmock-service-tier'), 'standard');
  const q = Number(fifth.headers.get('x-fleetmock-queue-ms'));
  if (!WRAPPED) {
    assert.ok(elapsed >= 280 && elapsed < 1500, `503 after ${elapsed.toFixed(0)} ms, expected ~300`);
    assert.ok(q >= 295 && q <= 800, `x-fleetmock-queue-ms ${q}, expected ~300`);
  }
  // The long streams were never disturbed.
  const mid = await kimiState(server);
  assert.equal(mid.in_flight.standard, 4);
  assert.equal(mid.queued.standard, 0);
  ac.abort();
  await Promise.allSettled(long.map((s) => s.done));
  const idle = await waitPool(server, (x) => x.in_flight.standard === 0);
  assert.deepEqual(idle.in_flight, T);
});

test('Priority first: with a Standard and then a Priority request queued, the freed slot goes to Priority', async (t) => {
  const ac = new AbortController();
  // Three ~2 s streams and one ~0.45 s stream: one slot frees well before the others.
  const long = [0, 1, 2].map(() => startStream(server, { maxTokens: 100, signal: ac.signal }));
  const short = startStream(server, { maxTokens: 20 });
  let p = await waitPool(server, (x) => x.in_flight.standard === 4);
  assert.equal(p.in_flight.standard, 4);

  const std = startStream(server, { maxTokens: 5, key: 'queue-std' });
  p = await waitPool(server, (x) => x.queued.standard === 1);
  assert.equal(p.queued.standard, 1);
  const pri = startStream(server, { maxTokens: 40, tier: 'priority', key: 'queue-pri' });
  p = await waitPool(server, (x) => x.queued.priority === 1);
  assert.deepEqual(p.queued, { priority: 1, standard: 1, background: 0 });
  assert.deepEqual(p.in_flight, { priority: 0, standard: 4, background: 0 });

  const shortRes = await short.done;
  assert.equal(shortRes.status, 200);
  // The short stream's slot went to the Priority request; Standard still waits.
  p = await waitPool(server, (x) => x.in_flight.priority === 1 || x.queued.priority === 0);
  assert.equal(p.queued.priority, 0);
  assert.equal(p.queued.standard, 1, 'Standard must still be waiting: the one free slot went to Priority');

  const priRes = await pri.done;
  assert.equal(priRes.status, 200);
  assert.equal(priRes.headers.get('x-fleetmock-service-tier'), 'priority');
  // Free the other slots so the Standard request gets one.
  ac.abort();
  await Promise.allSettled(long.map((s) => s.done));
  const stdRes = await std.done;
  assert.equal(stdRes.status, 200);
  assert.equal(contentTokens(stdRes.events), 5);
  assert.equal(contentTokens(priRes.events), 40);

  assert.ok(pri.firstToken !== null && std.firstToken !== null);
  assert.ok(pri.firstToken < std.firstToken,
    `Priority queued after Standard must start first (priority ${pri.firstToken.toFixed(0)} vs standard ${std.firstToken.toFixed(0)})`);
  const qp = Number(priRes.headers.get('x-fleetmock-queue-ms'));
  const qs = Number(stdRes.headers.get('x-fleetmock-queue-ms'));
  t.diagnostic(`x-fleetmock-queue-ms: priority ${qp}, standard ${qs}`);
  assert.ok(qp > 0 && qs > 0);
  assert.ok(qp < qs, `Priority arrived later yet must wait less: priority ${qp} ms, standard ${qs} ms`);
  if (!WRAPPED) {
    // Priority waited for the short stream (< 0.45 s); Standard until Priority's 40 tokens were out too.
    assert.ok(qp <= 1000, `priority queue-ms ${qp}`);
    assert.ok(std.firstToken - pri.firstToken >= 500, 'Standard starts only after the Priority stream finished');
  }
  const idle = await waitPool(server, (x) => x.in_flight.standard + x.in_flight.priority === 0);
  assert.deepEqual(idle.in_flight, T);
  assert.deepEqual(idle.queued, T);
});

test('a client that hangs up while queued leaves the queue at once', async () => {
  const ac = new AbortController();
  const long = [0, 1, 2, 3].map(() => startStream(server, { maxTokens: 100, signal: ac.signal }));
  let p = await waitPool(server, (x) => x.in_flight.standard === 4);
  assert.equal(p.in_flight.standard, 4);
  const qac = new AbortController();
  const queued = [0, 1, 2].map(() => startStream(server, { maxTokens: 5, signal: qac.signal }));
  p = await waitPool(server, (x) => x.queued.standard === 3);
  assert.equal(p.queued.standard, 3);
  qac.abort();
  await Promise.allSettled(queued.map((s) => s.done));
  p = await waitPool(server, (x) => x.queued.standard === 0, 1000);
  assert.equal(p.queued.standard, 0);
  assert.equal(p.in_flight.standard, 4);
  ac.abort();
  await Promise.allSettled(long.map((s) => s.done));
  p = await waitPool(server, (x) => x.in_flight.standard === 0);
  assert.deepEqual(p.in_flight, T);
});

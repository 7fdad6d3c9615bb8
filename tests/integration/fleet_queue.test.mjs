// Fleet queues (SPEC §4), realistic timing: a pool of 4 slots that
// fleetmock's own streams fill by themselves. A request that finds no slot
// waits in its tier's queue; queues are served Priority first; a request still
// waiting at its queue timeout gets 503.
//
// slowdown_at_full is 0 so an n-token stream ends 50 ms + (n - 1) × 20 ms
// after it is admitted, never earlier, whatever the utilisation: 2.03 s for
// 100 tokens. A busy machine makes it late by up to LATE_MS
// (tests/lib/server.mjs), so the queue timeout is 3 s + LATE_MS. Streams
// that a test aborts are 1000 tokens long, so none ends on its own while it runs.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, streamRequest, admin, assertNoSlotsHeld, assertAtOnce, assertOnTime, NO_LIMITS, LATE_MS, WRAPPED, sleep } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const TTFT_MS = 50;
const GAP_MS = 20; // 50 tok/s
const streamMs = (tokens) => TTFT_MS + (tokens - 1) * GAP_MS; // admission to last token, at the earliest
const QUEUE_TIMEOUT_MS = 3000 + LATE_MS;
const ABORTED = 1000; // tokens of a stream the test aborts: 20 s
const CONFIG = {
  ...NO_LIMITS,
  pools: {
    'kimi-k2p6': {
      slots: 4, ttft_ms: TTFT_MS, decode_tps: 50, jitter: 0, slowdown_at_full: 0,
      queue_timeout_ms: { standard: QUEUE_TIMEOUT_MS, priority: QUEUE_TIMEOUT_MS },
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
  // One snapshot: the queue is seen while the four long streams still run.
  assert.deepEqual(p.in_flight, { priority: 0, standard: 4, background: 0 });
  assert.deepEqual(p.queued, { priority: 0, standard: 2, background: 0 });

  const results = await Promise.all([...long, ...waiting].map((s) => s.done));
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.aborted, false);
    assert.equal(r.events.at(-1).data, '[DONE]');
  }
  for (const r of results.slice(0, 4)) {
    assert.equal(contentTokens(r.events), 100);
    assertAtOnce(r.headers.get('x-fleetmock-queue-ms'), 'the first four are admitted at once');
  }
  // The long streams' ends as the client saw them, earliest first: the k-th
  // queued stream gets the slot the k-th one frees.
  const freed = results.slice(0, 4).map((x) => x.sent + x.tEnd).sort((a, b) => a - b);
  const queued = results.slice(4).sort((a, b) => a.firstToken - b.firstToken);
  queued.forEach((r, k) => {
    assert.equal(contentTokens(r.events), 10);
    const q = Number(r.headers.get('x-fleetmock-queue-ms'));
    assert.ok(q > 0, `queued stream should report its wait, got x-fleetmock-queue-ms ${q}`);
    // What it reports waiting, the client saw too (the server's clock is never ahead).
    assert.ok(q + TTFT_MS <= r.firstToken - r.sent + 1, `reports ${q} ms queued, its first token came ${(r.firstToken - r.sent).toFixed(0)} ms after sending`);
    // A slot frees only once a long stream has sent its 100 tokens, 2.03 s
    // after t0 at the earliest; then the queued one needs its own 50 ms.
    // It is served as soon as one frees: at most LATE_MS later.
    assert.ok(r.firstToken - t0 >= streamMs(100) + TTFT_MS,
      `queued stream ${k + 1}'s first token ${(r.firstToken - t0).toFixed(0)} ms after t0, before any slot could free`);
    assert.ok(r.firstToken <= freed[k] + TTFT_MS + LATE_MS,
      `queued stream ${k + 1} started ${(r.firstToken - freed[k]).toFixed(0)} ms after the slot it took was freed`);
  });
  p = await waitPool(server, (x) => x.in_flight.standard === 0);
  assert.deepEqual(p.in_flight, T);
  assert.deepEqual(p.queued, T);
});

test('queue_timeout_ms standard 300: a 5th request waits 300 ms, then gets 503', async () => {
  const r0 = await admin(server, 'PATCH', '/admin/pools/kimi-k2p6', { queue_timeout_ms: { standard: 300 } });
  assert.equal(r0.status, 200, r0.text);
  assert.equal(r0.json.pools['kimi-k2p6'].settings.queue_timeout_ms.standard, 300);
  assert.equal(r0.json.pools['kimi-k2p6'].settings.queue_timeout_ms.priority, QUEUE_TIMEOUT_MS);

  const ac = new AbortController();
  const long = [0, 1, 2, 3].map(() => startStream(server, { maxTokens: ABORTED, signal: ac.signal }));
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
  // The server never sheds before the timeout: both are exact lower bounds.
  assertOnTime(Number(fifth.headers.get('x-fleetmock-queue-ms')), 300, 'x-fleetmock-queue-ms');
  assertOnTime(elapsed, 300, 'the 503');
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
  // Three streams the test ends itself and one of 0.43 s: one slot frees
  // first, for Priority. The Priority stream outlasts LATE_MS, so the client
  // sees Standard still queued behind it however late it looks.
  const PRI = Math.ceil(LATE_MS / GAP_MS) + 5;
  const long = [0, 1, 2].map(() => startStream(server, { maxTokens: ABORTED, signal: ac.signal }));
  const short = startStream(server, { maxTokens: 20 });
  let p = await waitPool(server, (x) => x.in_flight.standard === 4);
  assert.equal(p.in_flight.standard, 4);

  const std = startStream(server, { maxTokens: 5, key: 'queue-std' });
  p = await waitPool(server, (x) => x.queued.standard === 1);
  assert.equal(p.queued.standard, 1);
  const pri = startStream(server, { maxTokens: PRI, tier: 'priority', key: 'queue-pri' });
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
  assert.equal(contentTokens(priRes.events), PRI);

  assert.ok(pri.firstToken !== null && std.firstToken !== null);
  assert.ok(pri.firstToken < std.firstToken,
    `Priority queued after Standard must start first (priority ${pri.firstToken.toFixed(0)} vs standard ${std.firstToken.toFixed(0)})`);
  const qp = Number(priRes.headers.get('x-fleetmock-queue-ms'));
  const qs = Number(stdRes.headers.get('x-fleetmock-queue-ms'));
  t.diagnostic(`x-fleetmock-queue-ms: priority ${qp}, standard ${qs}`);
  assert.ok(qp > 0 && qs > 0);
  assert.ok(qp < qs, `Priority arrived later yet must wait less: priority ${qp} ms, standard ${qs} ms`);
  // Priority waited for the short stream (0.43 s, and at most LATE_MS late).
  assert.ok(qp <= streamMs(20) + 1 + LATE_MS, `priority queue-ms ${qp}`);
  // Standard starts only after the Priority stream finished: that one was
  // admitted qp ms after it was sent and streamed for streamMs(PRI) at least.
  const priEnd = pri.sent + qp - 0.5 + streamMs(PRI);
  assert.ok(std.firstToken >= priEnd + TTFT_MS,
    `Standard's first token ${(std.firstToken - priEnd).toFixed(0)} ms after the Priority stream could have ended`);
  const idle = await waitPool(server, (x) => x.in_flight.standard + x.in_flight.priority === 0);
  assert.deepEqual(idle.in_flight, T);
  assert.deepEqual(idle.queued, T);
});

test('a client that hangs up while queued leaves the queue at once', async () => {
  const ac = new AbortController();
  const long = [0, 1, 2, 3].map(() => startStream(server, { maxTokens: ABORTED, signal: ac.signal }));
  let p = await waitPool(server, (x) => x.in_flight.standard === 4);
  assert.equal(p.in_flight.standard, 4);
  const qac = new AbortController();
  const queued = [0, 1, 2].map(() => startStream(server, { maxTokens: 5, signal: qac.signal }));
  p = await waitPool(server, (x) => x.queued.standard === 3);
  assert.equal(p.queued.standard, 3);
  qac.abort();
  await Promise.allSettled(queued.map((s) => s.done));
  p = await waitPool(server, (x) => x.queued.standard === 0, LATE_MS);
  assert.equal(p.queued.standard, 0);
  assert.equal(p.in_flight.standard, 4);
  ac.abort();
  await Promise.allSettled(long.map((s) => s.done));
  p = await waitPool(server, (x) => x.in_flight.standard === 0);
  assert.deepEqual(p.in_flight, T);
});

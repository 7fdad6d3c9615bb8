// Cancellation frees slots (SPEC §4, docs/fleet-model.md): a request holds its
// slot from admission until it ends for any reason, and a client that hangs
// up ends it. 500 long streams mid-flight are aborted at once; the pool must
// report nothing in flight promptly: within LATE_MS (tests/lib/server.mjs),
// the allowance for a busy machine, since the server has nothing to wait for.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, streamRequest, assertNoSlotsHeld, assertAtOnce, NO_LIMITS, LATE_MS, WRAPPED, sleep } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const STREAMS = WRAPPED ? 100 : 500;
const CONFIG = {
  ...NO_LIMITS,
  pools: { 'kimi-k2p6': { slots: 1000, ttft_ms: 50, decode_tps: 50, jitter: 0 } },
};
const IDLE = { priority: 0, standard: 0, background: 0 };

let server;

async function state(srv) {
  const res = await fetch(srv.baseURL + '/admin/state');
  assert.equal(res.status, 200);
  return res.json();
}

function nothingInFlight(s) {
  return Object.values(s.pools).every((p) =>
    p.in_flight.priority + p.in_flight.standard + p.in_flight.background === 0 &&
    p.queued.priority + p.queued.standard + p.queued.background === 0);
}

function assertNothingInFlight(s) {
  for (const [name, p] of Object.entries(s.pools)) {
    assert.deepEqual(p.in_flight, IDLE, `in_flight of ${name}`);
    assert.deepEqual(p.queued, IDLE, `queued of ${name}`);
  }
}

/** Polls (bounded) until pred(state); returns {state, ms} with ms since `since`. */
async function waitFor(srv, pred, maxMs, since = performance.now()) {
  const deadline = performance.now() + maxMs * (WRAPPED ? 10 : 1);
  let s;
  for (let i = 0; i < 100000 && performance.now() < deadline; i++) {
    s = await state(srv);
    if (pred(s)) return { state: s, ms: performance.now() - since, ok: true };
    await sleep(10);
  }
  return { state: s, ms: performance.now() - since, ok: false };
}

before(async () => {
  server = await startServer({ args: ['--seed', '9'], config: CONFIG });
});

after(async () => {
  if (!server) return;
  const s = await state(server);
  assertNothingInFlight(s);
  await assertNoSlotsHeld(server);
  const res = await server.stop();
  assert.equal(res.code, 0, res.stderr);
});

beforeEach(async () => {
  const res = await fetch(server.baseURL + '/admin/reset', { method: 'POST' });
  assert.equal(res.status, 200);
});

test(`${STREAMS} streams aborted mid-stream free every slot at once`, async (t) => {
  const ac = new AbortController();
  const tokens = new Array(STREAMS).fill(0);
  const body = {
    model: KIMI, messages: [{ role: 'user', content: 'a very long answer please' }],
    max_tokens: 2000, ignore_eos: true, stream: true,
  };
  const streams = [];
  for (let i = 0; i < STREAMS; i++) {
    streams.push(streamRequest(server, CHAT, body, {
      headers: { Authorization: 'Bearer cancel-streams' },
      signal: ac.signal,
      maxMs: 120000,
      onEvent: (ev) => { if (ev.json?.choices?.[0]?.delta?.content) tokens[i]++; },
    }));
  }
  // Every stream admitted and producing tokens (2000 tokens at 50 tok/s ≈ 40 s: none ends on its own).
  const full = await waitFor(server, (s) => s.pools['kimi-k2p6'].in_flight.standard === STREAMS, 20000);
  assert.ok(full.ok, `in_flight.standard reached ${full.state.pools['kimi-k2p6'].in_flight.standard}, not ${STREAMS}`);
  const deadline = performance.now() + 20000 * (WRAPPED ? 10 : 1);
  for (let i = 0; i < 2000 && tokens.some((n) => n === 0) && performance.now() < deadline; i++) await sleep(10);
  assert.equal(tokens.filter((n) => n === 0).length, 0, 'every stream should have received tokens before the abort');
  const before = await state(server);
  const pool = before.pools['kimi-k2p6'];
  assert.deepEqual(pool.in_flight, { priority: 0, standard: STREAMS, background: 0 });
  assert.deepEqual(pool.queued, IDLE);
  assert.equal(pool.utilisation, STREAMS / 1000);

  const tAbort = performance.now();
  ac.abort();
  const drained = await waitFor(server, nothingInFlight, 5000, tAbort);
  t.diagnostic(`all ${STREAMS} slots free ${drained.ms.toFixed(0)} ms after the abort`);
  assert.ok(drained.ok, `slots still held after the abort: ${JSON.stringify(drained.state.pools['kimi-k2p6'].in_flight)}`);
  assert.ok(drained.ms <= LATE_MS, `slots freed ${drained.ms.toFixed(0)} ms after the abort (LATE_MS ${LATE_MS})`);
  assertNothingInFlight(drained.state);

  const results = await Promise.all(streams);
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.aborted, true);
    assert.equal(r.events.some((e) => e.data === '[DONE]'), false);
  }

  // Cut-short streams are billed for what they produced: at least what the
  // client saw, far less than the 2000 asked for.
  const keyId = results[0].headers.get('x-fleetmock-key-id');
  const accRes = await fetch(`${server.baseURL}/admin/accounts/${keyId}`);
  assert.equal(accRes.status, 200);
  const acc = (await accRes.json()).tiers.standard;
  assert.equal(acc.requests, STREAMS);
  assert.equal(acc.status_200, STREAMS);
  assert.equal(acc.status_503, 0);
  const seen = tokens.reduce((a, b) => a + b, 0);
  assert.ok(acc.generated_tokens >= seen, `billed ${acc.generated_tokens} generated tokens, client saw ${seen}`);
  assert.ok(acc.generated_tokens < STREAMS * 2000, `billed ${acc.generated_tokens}: aborted streams billed in full`);

  // The pool is usable again at once.
  const again = await streamRequest(server, CHAT, { ...body, max_tokens: 3 }, { maxMs: 10000 });
  assert.equal(again.status, 200);
  assertAtOnce(again.headers.get('x-fleetmock-queue-ms'), 'served without queueing');
});

test('aborted non-streaming requests waiting for their last token free their slots at once', async (t) => {
  const n = WRAPPED ? 20 : 100;
  const ac = new AbortController();
  const body = JSON.stringify({
    model: KIMI, messages: [{ role: 'user', content: 'take your time' }], max_tokens: 2000, ignore_eos: true,
  });
  const reqs = [];
  for (let i = 0; i < n; i++) {
    reqs.push(fetch(server.baseURL + CHAT, {
      method: 'POST', signal: ac.signal,
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer cancel-plain' },
      body,
    }).then((r) => r.text()).then((text) => ({ text }), (error) => ({ error })));
  }
  const full = await waitFor(server, (s) => s.pools['kimi-k2p6'].in_flight.standard === n, 20000);
  assert.ok(full.ok, `in_flight.standard reached ${full.state.pools['kimi-k2p6'].in_flight.standard}, not ${n}`);
  await sleep(200);
  const tAbort = performance.now();
  ac.abort();
  const drained = await waitFor(server, nothingInFlight, 5000, tAbort);
  t.diagnostic(`all ${n} slots free ${drained.ms.toFixed(0)} ms after the abort`);
  assert.ok(drained.ok, `slots still held: ${JSON.stringify(drained.state.pools['kimi-k2p6'].in_flight)}`);
  assert.ok(drained.ms <= LATE_MS, `slots freed ${drained.ms.toFixed(0)} ms after the abort (LATE_MS ${LATE_MS})`);
  const settled = await Promise.all(reqs);
  for (const s of settled) assert.equal(s.error?.name, 'AbortError', `expected an aborted request, got ${JSON.stringify(s)}`);
});

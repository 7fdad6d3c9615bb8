// --workers N: connections spread over several event loops (threads) that
// share one fleet. What only exists with more than one worker: connections
// land on different loops, a queue place freed on one loop wakes a request
// waiting on another, a scenario started from any loop runs on the main one,
// SIGTERM drains every loop, and SO_REUSEPORT never lets a second server
// join a port that is in use. The rest of the suite also runs with
// FLEETMOCK_WORKERS=3 (the workers3.* tests in CMakeLists.txt).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, streamRequest, runCli, admin, patchPool, stopChecked, assertNoSlotsHeld, assertAtOnce, NO_LIMITS, LATE_MS, WRAPPED, sleep } from '../lib/server.mjs';

const K26 = 'accounts/fireworks/models/kimi-k2p6';
const contentOf = (events) => events.filter((e) => e.json?.choices?.[0]?.delta?.content);

/** Polls /admin/state until `pred` holds, for LATE_MS at most; returns the last state. */
async function stateWhen(server, pred) {
  const deadline = performance.now() + LATE_MS;
  let st;
  for (let i = 0; i < 10000; i++) {
    st = (await admin(server, 'GET', '/admin/state')).json;
    if (pred(st) || performance.now() > deadline) return st;
    await sleep(10);
  }
  return st;
}

function stream(server, tokens, extra = {}) {
  return streamRequest(server, '/v1/chat/completions', {
    model: K26, messages: [{ role: 'user', content: 'Hello' }], max_tokens: tokens, ignore_eos: true, stream: true, ...extra,
  }, { maxMs: 60000 });
}

test('--workers 3: streams land on several loops and all run to [DONE] with every token', async () => {
  const server = await startServer({
    args: ['--workers', '3'],
    config: { ...NO_LIMITS, pools: { 'kimi-k2p6': { ttft_ms: 50, decode_tps: 50, jitter: 0, slots: 200 } } },
  });
  try {
    const N = 24;
    // Each stream lasts 0.6 s longer than LATE_MS, so however late the
    // client looks, it finds them all open at once.
    const TOKENS = Math.ceil(LATE_MS / 20) + 30;
    const all = Promise.all(Array.from({ length: N }, () => stream(server, TOKENS)));
    const st = await stateWhen(server, (s) => s.requests_in_progress >= N);
    assert.ok(st.requests_in_progress >= N, `all streams open at once: ${st.requests_in_progress}`);
    const byWorker = st.requests_by_worker;
    const results = await all;
    assert.equal(byWorker.length, 3, `requests_by_worker has one entry per worker: ${JSON.stringify(byWorker)}`);
    const used = byWorker.filter((n) => n > 0).length;
    assert.ok(used >= 2, `${N} connections spread over at least 2 of 3 loops: ${JSON.stringify(byWorker)}`);
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(contentOf(r.events).length, TOKENS);
      assert.equal(r.events.at(-1).data, '[DONE]');
    }
    await assertNoSlotsHeld(server);
  } finally {
    await stopChecked(server);
  }
});

test('--workers 3: a slot freed on one loop serves requests queued on the others, in order', async () => {
  const server = await startServer({
    args: ['--workers', '3'],
    config: { ...NO_LIMITS, pools: { 'kimi-k2p6': { ttft_ms: 20, decode_tps: 100, jitter: 0, slots: 1, tenant_load: 0,
      queue_timeout_ms: { standard: 30000, priority: 30000, background: 30000 } } } },
  });
  try {
    // One slot, 9 streams of 10 tokens (~0.12 s each): one runs, eight queue,
    // spread over the three loops; each finish must wake the next, wherever it waits.
    const N = 9;
    const results = await Promise.all(Array.from({ length: N }, () => stream(server, 10)));
    const queueMs = [];
    const firstTokens = [];
    for (const r of results) {
      assert.equal(r.status, 200, r.raw.slice(0, 300));
      assert.equal(contentOf(r.events).length, 10);
      queueMs.push(Number(r.headers.get('x-fleetmock-queue-ms')));
      firstTokens.push(r.sentAt + contentOf(r.events)[0].t);
    }
    queueMs.sort((a, b) => a - b);
    assertAtOnce(queueMs[0], `the first is served at once (${queueMs})`);
    // Served one after another: each holds the slot 20 ms + 9 gaps of 14 ms
    // (10 ms slowed 40 % by a full pool) at the least, so the k-th to start
    // cannot start before k of those have ended (exact).
    const HOLD_MS = 20 + 9 * 14;
    const t0 = Math.min(...results.map((r) => r.sentAt));
    firstTokens.sort((a, b) => a - b).forEach((at, k) => assert.ok(at - t0 >= k * HOLD_MS + 20,
      `stream ${k + 1} started ${(at - t0).toFixed(0)} ms after the first was sent, before ${k} streams of ${HOLD_MS} ms could end`));
    await assertNoSlotsHeld(server);
  } finally {
    await stopChecked(server);
  }
});

test('--workers 3: a scenario started and stopped from any loop drives the shared pools', async () => {
  const server = await startServer({ args: ['--workers', '3', '--time-scale', '20'], config: NO_LIMITS });
  try {
    for (let i = 0; i < 3; i++) { // several connections: the requests reach different loops
      const start = await admin(server, 'POST', '/admin/scenario', { name: 'launch-spike' });
      assert.equal(start.status, 200, start.text);
      const st = await admin(server, 'GET', '/admin/state');
      assert.equal(st.json.scenario?.name, 'launch-spike', JSON.stringify(st.json.scenario));
      await sleep(100);
      const stop = await admin(server, 'DELETE', '/admin/scenario');
      assert.equal(stop.status, 200, stop.text);
      const after = await admin(server, 'GET', '/admin/state');
      assert.equal(after.json.scenario, null);
    }
    const r = await post(server, '/v1/chat/completions', { model: K26, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
    assert.equal(r.status, 200, r.text);
  } finally {
    await stopChecked(server);
  }
});

test('--workers 3: SIGTERM drains streams on every loop and exits 0', async () => {
  const server = await startServer({
    args: ['--workers', '3', '--grace-period', '10'],
    config: { ...NO_LIMITS, pools: { 'kimi-k2p6': { ttft_ms: 50, decode_tps: 40, jitter: 0 } } },
  });
  const N = 12;
  const streams = Array.from({ length: N }, () => stream(server, 80)); // ~2.05 s each
  const byWorker = (await stateWhen(server, (s) => s.requests_in_progress >= N)).requests_by_worker;
  assert.ok(byWorker.filter((n) => n > 0).length >= 2, `streams on several loops: ${JSON.stringify(byWorker)}`);
  const exit = server.stop(); // SIGTERM
  const results = await Promise.all(streams);
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(contentOf(r.events).length, 80, 'a stream running at SIGTERM finishes');
    assert.equal(r.events.at(-1).data, '[DONE]');
  }
  const { code, stderr } = await exit;
  assert.equal(code, 0, stderr.slice(-2000));
});

test('--workers 2 refuses a port another server already listens on', async () => {
  const first = await startServer({ args: ['--workers', '2'] });
  try {
    const port = new URL(first.baseURL).port;
    const second = await runCli(['--port', port, '--workers', '2'], { timeoutMs: 10000 });
    assert.equal(second.code, 1, `second server must fail: ${second.stderr}`);
    assert.match(second.stderr, /cannot listen/);
    const r = await post(first, '/v1/chat/completions', { model: K26, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
    assert.equal(r.status, 200, 'the first server still serves');
  } finally {
    await stopChecked(first);
  }
});

test('--workers rejects 0, 65 and words with a clear message', async () => {
  for (const v of ['0', '65', 'two']) {
    const r = await runCli(['--workers', v]);
    assert.equal(r.code, 2, `--workers ${v}: ${r.stderr}`);
    assert.match(r.stderr, /--workers .*must be a number of loops between 1 and 64/);
  }
});

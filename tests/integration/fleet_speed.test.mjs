// Serving speed (SPEC §4 "Speed"), realistic timing, --time-scale 1, the
// default pools. Fast is fast; Priority changes admission, never speed;
// utilisation slows a pool down (default 40 % slower at u = 1).
//
// Speed is not taken as tokens per second on the client, which a busy machine
// distorts both ways (a stall, then a burst). Each token is held to its
// pool's schedule instead: the k-th gap is one gap of the pool, 1/decode_tps
// slowed by slowdown_at_full × utilisation and moved by up to ±jitter, so token
// k comes no earlier than TTFT + k of the shortest such gaps (exact: fleetmock
// never sends early) and no later than TTFT + k of the longest + LATE_MS
// (tests/lib/server.mjs). TTFT is the server's own header (exact, nothing
// queues here). Streams have GAPS gaps, enough that a stream at Standard's
// speed cannot pass for Fast however late it is (the gaps differ by > 10 ms).
// Every bound is wall-clock time: skipped under a wrapper.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, streamRequest, admin, patchPool, assertNoSlotsHeld, NO_LIMITS, LATE_MS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const FAST = 'accounts/fireworks/routers/kimi-k2p6-fast';
const CHAT = '/inference/v1/chat/completions';
const SKIP = process.env.FLEETMOCK_WRAPPER ? 'wall-clock speed is meaningless under a wrapper' : false;
const GAPS = Math.ceil(LATE_MS / 10);

let server;

/**
 * The shortest and longest gap (ms) the pool can draw while its utilisation
 * is between uMin and uMax, from the settings /admin/state reports.
 */
async function gapBand(pool, uMin, uMax = uMin) {
  const { settings: c } = (await admin(server, 'GET', '/admin/state')).json.pools[pool];
  const gap = (u, j) => (1000 / c.decode_tps) * (1 + c.slowdown_at_full * u) * (1 + j * c.jitter);
  return { min: gap(uMin, -1) - 0.001, max: gap(uMax, 1) + 0.001, slots: c.slots }; // 0.001: gaps are whole µs
}

/** Streams GAPS + 1 tokens; resolves the response with `times` (ms after sending) and `ttft` (the server's, ms). */
async function measure(model, extra = {}) {
  const r = await streamRequest(server, CHAT, {
    model, messages: [{ role: 'user', content: 'how fast are you' }],
    max_tokens: GAPS + 1, ignore_eos: true, stream: true, ...extra,
  }, { maxMs: 60000 });
  assert.equal(r.status, 200, r.raw);
  const times = r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).map((e) => e.t);
  assert.equal(times.length, GAPS + 1, 'one SSE chunk per token');
  return Object.assign(r, { times, ttft: Number(r.headers.get('fireworks-server-time-to-first-token')) * 1000 });
}

/** Every token of `m` within its schedule for gaps in `band` (see the top of the file). */
function assertPaced(m, band, what) {
  m.times.forEach((t, k) => {
    const earliest = m.ttft - 0.5 + k * band.min;
    const latest = m.ttft + 0.5 + k * band.max + LATE_MS;
    assert.ok(t >= earliest && t <= latest,
      `${what}: token ${k + 1} at ${t.toFixed(1)} ms, want ${earliest.toFixed(1)}..${latest.toFixed(1)} (gaps ${band.min.toFixed(2)}..${band.max.toFixed(2)} ms)`);
  });
}

/** Tokens per second over the stream's gaps, for the diagnostics only. */
const tps = (m) => (GAPS * 1000) / (m.times[GAPS] - m.times[0]);

before(async () => {
  server = await startServer({ args: ['--time-scale', '1', '--seed', '21'], config: NO_LIMITS });
});

after(async () => {
  if (!server) return;
  const r = await admin(server, 'GET', '/admin/state');
  for (const [name, p] of Object.entries(r.json.pools)) {
    assert.deepEqual(p.in_flight, { priority: 0, standard: 0, background: 0 }, `in_flight of ${name}`);
    assert.deepEqual(p.queued, { priority: 0, standard: 0, background: 0 }, `queued of ${name}`);
  }
  await assertNoSlotsHeld(server);
  const res = await server.stop();
  assert.equal(res.code, 0, res.stderr);
});

beforeEach(async () => {
  const r = await admin(server, 'POST', '/admin/reset');
  assert.equal(r.status, 200, r.text);
});

test('state reports realistic timing at time scale 1', async () => {
  const r = await admin(server, 'GET', '/admin/state');
  assert.equal(r.json.timing, 'realistic');
  assert.equal(r.json.time_scale, 1);
  assert.equal(r.json.seed, 21);
});

test('Fast model streams on its own pool\'s schedule, and is done before Standard could be', { skip: SKIP }, async (t) => {
  const [fast, std] = await Promise.all([measure(FAST), measure(KIMI)]);
  assert.equal(fast.headers.get('x-fleetmock-pool'), 'kimi-k2p6-fast');
  assert.equal(fast.headers.get('x-fleetmock-service-tier'), 'fast');
  t.diagnostic(`Fast ${tps(fast).toFixed(1)} tok/s, Standard ${tps(std).toFixed(1)} tok/s over ${GAPS} gaps`);
  // Each stream is the only one on its pool: utilisation 1/slots.
  const fastBand = await gapBand('kimi-k2p6-fast', 1 / 32);
  const stdBand = await gapBand('kimi-k2p6', 1 / 64);
  assertPaced(fast, fastBand, 'Fast (140 tok/s)');
  assertPaced(std, stdBand, 'Standard (45 tok/s)');
  // So Fast's GAPS gaps, however late, take less than Standard's could at the earliest.
  const fastTook = fast.times[GAPS] - fast.ttft;
  assert.ok(fastTook < GAPS * stdBand.min, `Fast took ${fastTook.toFixed(0)} ms for ${GAPS} gaps; Standard takes ${(GAPS * stdBand.min).toFixed(0)} at least`);
});

test('Priority and Standard on kimi-k2p6 at the same load run on the same schedule', { skip: SKIP }, async (t) => {
  await patchPool(server, 'kimi-k2p6', { tenant_load: 0.5 });
  const [pri, std] = await Promise.all([measure(KIMI, { service_tier: 'priority' }), measure(KIMI)]);
  assert.equal(pri.headers.get('x-fleetmock-service-tier'), 'priority');
  assert.equal(std.headers.get('x-fleetmock-service-tier'), 'standard');
  t.diagnostic(`Priority ${tps(pri).toFixed(1)} tok/s, Standard ${tps(std).toFixed(1)} tok/s`);
  // 45 tok/s slowed by 1 + 0.4 × u, u = 0.5 + 1 or 2 streams of 64 slots: about 37 tok/s.
  const band = await gapBand('kimi-k2p6', 0.5 + 1 / 64, 0.5 + 2 / 64);
  assertPaced(pri, band, 'Priority');
  assertPaced(std, band, 'Standard');
});

test('Standard at tenant_load 1.0 is slower than at 0.3: its gaps are longer than 0.3 allows', { skip: SKIP }, async (t) => {
  const pool = await patchPool(server, 'kimi-k2p6', { tenant_load: 0.3, shed: { standard: { start: 5, end: 6 } } });
  assert.equal(pool.settings.shed.standard.start, 5);
  assert.equal(pool.settings.shed.standard.end, 6);
  const light = await measure(KIMI);
  const busy = await patchPool(server, 'kimi-k2p6', { tenant_load: 1.0 });
  assert.equal(busy.shed_probability.standard, 0);
  const heavy = await measure(KIMI);
  t.diagnostic(`load 0.3: ${tps(light).toFixed(1)} tok/s, load 1.0: ${tps(heavy).toFixed(1)} tok/s`);
  // Expected gaps (1 + 0.4 × u) / 45 s ± 5 %: the two bands do not overlap, so
  // heavy's tokens arriving no earlier than its band is the slowdown shown.
  const lightBand = await gapBand('kimi-k2p6', 0.3 + 1 / 64);
  const heavyBand = await gapBand('kimi-k2p6', 1.0 + 1 / 64);
  assert.ok(heavyBand.min > lightBand.max, 'the slowdown model separates the two loads');
  assertPaced(light, lightBand, 'load 0.3');
  assertPaced(heavy, heavyBand, 'load 1.0');
});

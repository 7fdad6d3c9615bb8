// Serving speed (SPEC §4 "Speed"), realistic timing, --time-scale 1, the
// default pools: decode speed measured from the client side over 60 tokens
// after the first one. Fast is fast; Priority changes admission, never
// speed; utilisation slows a pool down (default 40 % slower at u = 1).
// Every assertion here is about wall-clock time: skipped under a wrapper.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, streamRequest, admin, patchPool, assertNoSlotsHeld, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const FAST = 'accounts/fireworks/routers/kimi-k2p6-fast';
const CHAT = '/inference/v1/chat/completions';
const SKIP = process.env.FLEETMOCK_WRAPPER ? 'wall-clock speed is meaningless under a wrapper' : false;

let server;



/**
 * Streams 61 tokens and returns the time from the first content token to the
 * last one (60 token gaps), in ms, and the rate in tokens per second.
 */
async function measure(model, extra = {}) {
  const times = [];
  const r = await streamRequest(server, CHAT, {
    model, messages: [{ role: 'user', content: 'how fast are you' }],
    max_tokens: 61, ignore_eos: true, stream: true, ...extra,
  }, {
    maxMs: 20000,
    onEvent: (ev) => { if (ev.json?.choices?.[0]?.delta?.content) times.push(performance.now()); },
  });
  assert.equal(r.status, 200, r.raw);
  assert.equal(times.length, 61, 'one SSE chunk per token');
  const ms = times[60] - times[0];
  return { ms, tps: (60 * 1000) / ms, res: r };
}

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

test('Fast model decodes at >= 100 tokens/s', { skip: SKIP }, async (t) => {
  const m = await measure(FAST);
  assert.equal(m.res.headers.get('x-fleetmock-pool'), 'kimi-k2p6-fast');
  assert.equal(m.res.headers.get('x-fleetmock-service-tier'), 'fast');
  assert.ok(m.tps >= 100, `Fast: ${m.tps.toFixed(1)} tok/s over 60 tokens`);
  // Default 140 tok/s ± 5 % jitter: not absurdly fast either.
  assert.ok(m.tps <= 160, `Fast: ${m.tps.toFixed(1)} tok/s is faster than the pool's 140`);
  // And faster than Standard Kimi (45 tok/s).
  const std = await measure(KIMI);
  t.diagnostic(`Fast ${m.tps.toFixed(1)} tok/s, Standard ${std.tps.toFixed(1)} tok/s`);
  assert.ok(m.tps > 2 * std.tps, `Fast ${m.tps.toFixed(1)} vs Standard ${std.tps.toFixed(1)} tok/s`);
});

test('Priority and Standard on kimi-k2p6 at the same load run at the same speed (±10 %)', { skip: SKIP }, async (t) => {
  await patchPool(server, 'kimi-k2p6', { tenant_load: 0.5 });
  const [pri, std] = await Promise.all([measure(KIMI, { service_tier: 'priority' }), measure(KIMI)]);
  assert.equal(pri.res.headers.get('x-fleetmock-service-tier'), 'priority');
  assert.equal(std.res.headers.get('x-fleetmock-service-tier'), 'standard');
  const ratio = pri.ms / std.ms;
  t.diagnostic(`Priority ${pri.tps.toFixed(1)} tok/s, Standard ${std.tps.toFixed(1)} tok/s`);
  assert.ok(ratio >= 0.9 && ratio <= 1.1,
    `Priority ${pri.tps.toFixed(1)} vs Standard ${std.tps.toFixed(1)} tok/s (duration ratio ${ratio.toFixed(3)})`);
  // 45 tok/s slowed by 1 + 0.4 × u (u ≈ 0.53): about 37 tok/s.
  assert.ok(std.tps > 30 && std.tps < 45, `Standard at u≈0.5: ${std.tps.toFixed(1)} tok/s`);
});

test('Standard at tenant_load 1.0 is measurably slower than at 0.3', { skip: SKIP }, async (t) => {
  const pool = await patchPool(server, 'kimi-k2p6', { tenant_load: 0.3, shed: { standard: { start: 5, end: 6 } } });
  assert.equal(pool.settings.shed.standard.start, 5);
  assert.equal(pool.settings.shed.standard.end, 6);
  const light = await measure(KIMI);
  const busy = await patchPool(server, 'kimi-k2p6', { tenant_load: 1.0 });
  assert.equal(busy.shed_probability.standard, 0);
  const heavy = await measure(KIMI);
  const ratio = heavy.ms / light.ms;
  t.diagnostic(`load 0.3: ${light.tps.toFixed(1)} tok/s, load 1.0: ${heavy.tps.toFixed(1)} tok/s, ratio ${ratio.toFixed(3)}`);
  // Expected (1 + 0.4 × 1.0) / (1 + 0.4 × 0.3) = 1.25.
  assert.ok(ratio > 1.15, `duration at load 1.0 / at 0.3 = ${ratio.toFixed(3)} (${heavy.tps.toFixed(1)} vs ${light.tps.toFixed(1)} tok/s)`);
  assert.ok(ratio < 1.4, `duration ratio ${ratio.toFixed(3)} is more than the slowdown model allows`);
});

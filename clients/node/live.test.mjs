// The Node wrapper (openai SDK, maxRetries 0, the pattern on top) against the
// real fleetmock binary, started through tests/lib/server.mjs on port 0.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startServer } from '../../tests/lib/server.mjs';
import { FleetClient, Policy, STANDARD, PRIORITY, STATUS_NETWORK, STATUS_STREAM_ERROR } from './client.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const MSGS = [{ role: 'user', content: 'hello fleet' }];
const skip = process.env.FLEETMOCK_BIN ? false : 'FLEETMOCK_BIN is not set';

const makeClient = (server, opts = {}, policyOpts = {}) =>
  new FleetClient({ baseURL: server.baseURL, apiKey: 'node-live', model: KIMI, policy: new Policy(policyOpts), ...opts });

/**
 * A client clock (ms) the test moves by hand: a Priority window opens and
 * ends when the test says, not when a busy machine gets round to the next
 * call. The server's side (what is shed) does not depend on time here.
 */
function manualClock(ms = 1_000_000) {
  const clock = () => ms;
  clock.advance = (by) => { ms += by; };
  return clock;
}

describe('saturated pool', { skip }, () => {
  let server;
  // At --time-scale 3600 the 30-minute window lasts 500 real ms.
  before(async () => { server = await startServer({ args: ['--timing', 'instant', '--time-scale', '3600'] }); });
  after(async () => { await server?.stop(); });
  beforeEach(async () => {
    const c = makeClient(server);
    assert.equal((await c.admin('POST', '/admin/reset')).status, 200);
    const r = await c.admin('PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 1.2, tenant_priority_share: 0.2 });
    assert.equal(r.status, 200);
  });

  test('escalates on 503 and succeeds on Priority', async () => {
    const c = makeClient(server, { apiKey: 'node-escalate' }, { clock: manualClock() });
    const r = await c.chat({ messages: MSGS, max_tokens: 5 });
    assert.equal(r.ok, true, r.error);
    assert.equal(r.status, 200);
    assert.equal(r.tier, PRIORITY);
    assert.equal(r.data.service_tier, 'priority');
    assert.deepEqual(r.history.map((h) => h.status), [503, 200]);
    assert.deepEqual(r.history.map((h) => h.tier), [STANDARD, PRIORITY]);
    assert.equal(r.escalated, true);
    const m = c.policy.metrics();
    assert.deepEqual([m.escalations, m.tier, m.status503, m.requests, m.rate503], [1, PRIORITY, 1, 2, 0.5]);
    // The window is open (the clock has not moved): the next call starts on Priority, no new 503.
    const r2 = await c.chat({ messages: MSGS, max_tokens: 5 });
    assert.deepEqual([r2.history.map((h) => h.status), r2.tier], [[200], PRIORITY]);
    assert.equal(c.policy.escalations, 1);
    const acct = await c.admin('GET', `/admin/accounts/${r.headers.get('x-fleetmock-key-id')}`);
    assert.equal(acct.json.tiers.standard.status_503, 1);
    assert.equal(acct.json.tiers.priority.status_200, 2);
  });

  test('streaming escalates too', async () => {
    const c = makeClient(server, { apiKey: 'node-stream' });
    const tokens = [];
    const r = await c.chat({ messages: MSGS, stream: true, max_tokens: 6, ignore_eos: true, stream_options: { include_usage: true } },
      { onToken: (t) => tokens.push(t) });
    assert.equal(r.ok, true, r.error);
    assert.equal(r.tier, PRIORITY);
    assert.equal(tokens.length, 6);
    assert.equal(r.text, tokens.join(''));
    assert.equal(r.usage.completion_tokens, 6);
    assert.equal(c.policy.escalations, 1);
  });

  test('a broken stream is retried whole on the same tier', async () => {
    const c = makeClient(server, { apiKey: 'node-midstream', sleep: async () => {} });
    await c.admin('PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 0 });
    const fault = await c.admin('POST', '/admin/faults', { match: { api_key: 'node-midstream' }, action: { stream: 'error', after_tokens: 2 }, count: 1 });
    assert.equal(fault.status, 200);
    const tokens = [];
    const r = await c.chat({ messages: MSGS, stream: true, max_tokens: 6, ignore_eos: true }, { onToken: (t) => tokens.push(t) });
    assert.equal(r.ok, true, r.error);
    assert.deepEqual(r.history.map((h) => [h.tier, h.status]), [[STANDARD, STATUS_STREAM_ERROR], [STANDARD, 200]]);
    assert.equal(tokens.length, 2 + 6); // two from the broken attempt, then the whole answer
    assert.equal(r.text.split(' ').length, 6);
    assert.deepEqual([c.policy.escalations, c.policy.errors], [0, 1]);
  });

  test('batch never escalates', async () => {
    const c = makeClient(server, { apiKey: 'node-batch', route: 'batch' }, { maxAttempts: 3, backoffBaseMs: 10 });
    const r = await c.chat({ messages: MSGS, max_tokens: 5 });
    assert.equal(r.ok, false);
    assert.deepEqual([r.status, r.outcome], [503, 'shed']);
    assert.deepEqual(r.history.map((h) => h.tier), [STANDARD, STANDARD, STANDARD]);
    assert.equal(c.policy.escalations, 0);
    assert.equal(c.policy.priorityUntilMs, 0);
  });

  test('client errors do not escalate', async () => {
    const c = makeClient(server, { apiKey: 'node-4xx' });
    let r = await c.chat({ messages: MSGS, model: 'accounts/fireworks/models/no-such-model', max_tokens: 5 });
    assert.deepEqual([r.status, r.attempts, r.ok, r.outcome], [404, 1, false, 'error']);
    r = await c.chat({ messages: MSGS, max_tokens: -5 });
    assert.deepEqual([r.status, r.attempts], [400, 1]);
    assert.match(r.error, /max_tokens/);
    // The SDK refuses an empty key before sending; a blank one reaches the server.
    const bad = makeClient(server, { apiKey: ' ' });
    r = await bad.chat({ messages: MSGS, max_tokens: 5 });
    assert.deepEqual([r.status, r.attempts], [401, 1]);
    assert.equal(c.policy.escalations + bad.policy.escalations, 0);
    assert.equal(c.policy.start('interactive'), STANDARD);
  });

  test('a network error does not escalate', async () => {
    // A loopback port that was free a moment ago: nobody listens there.
    const probe = createServer();
    await new Promise((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address();
    await new Promise((r) => probe.close(r));
    const slept = [];
    const c = new FleetClient({ baseURL: `http://127.0.0.1:${port}`, apiKey: 'k', model: KIMI, timeScale: 1, timeoutMs: 2000,
      policy: new Policy({ maxAttempts: 2 }), sleep: async (s) => { slept.push(s); } });
    const r = await c.chat({ messages: MSGS, max_tokens: 5 });
    assert.equal(r.ok, false);
    assert.deepEqual([r.status, r.outcome], [STATUS_NETWORK, 'error']);
    assert.equal(r.attempts, 2);
    assert.equal(slept.length, 1);
    assert.equal(c.policy.escalations, 0);
    assert.equal(c.policy.errors, 2);
  });

  test('reads the time scale for the window', async () => {
    const c = makeClient(server);
    assert.equal(await c.syncTimeScale(), 3600);
    assert.equal(c.policy.windowMs(), 500);
  });

  test('drifts back after the window and alerts on back-to-back windows', async () => {
    const alerts = [];
    const clock = manualClock();
    const c = makeClient(server, { apiKey: 'node-alert' }, { alertWindows: 2, onAlert: (a) => alerts.push(a), clock });
    let r = await c.chat({ messages: MSGS, max_tokens: 5 });
    assert.deepEqual([r.history.map((h) => h.tier), r.tier], [[STANDARD, PRIORITY], PRIORITY]);
    assert.equal(c.policy.windowMs(), 500);
    clock.advance(c.policy.windowMs() + 50); // the window ends: the next call tries Standard again
    assert.equal(c.policy.start('interactive'), STANDARD);
    r = await c.chat({ messages: MSGS, max_tokens: 5 });
    assert.deepEqual(r.history.map((h) => h.tier), [STANDARD, PRIORITY]); // still shedding
    assert.deepEqual([c.policy.escalations, c.policy.consecutiveWindows], [2, 2]);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].consecutiveWindows, 2);
    assert.equal(r.history[0].decision.alert, true);
  });
});

describe('rate limited', { skip }, () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--timing', 'instant', '--time-scale', '60'],
      config: { accounts: { limits: { requests_per_min: { start: 1, ceiling: 1 } } } } });
  });
  after(async () => { await server?.stop(); });

  test('backs off for at least Retry-After, then succeeds', async () => {
    const slept = [];
    const c = makeClient(server, {
      apiKey: 'node-429',
      sleep: async (ms) => { slept.push(ms); await new Promise((r) => setTimeout(r, ms)); },
    });
    const first = await c.chat({ messages: MSGS, max_tokens: 5 });
    assert.deepEqual([first.status, first.attempts], [200, 1]);
    assert.equal(c.policy.windowMs(), 30_000); // 1800 s / --time-scale 60
    const t0 = performance.now();
    const r = await c.chat({ messages: MSGS, max_tokens: 5 });
    const elapsed = performance.now() - t0;
    assert.equal(r.ok, true, r.error);
    assert.equal(r.history[0].status, 429);
    assert.equal(r.history.at(-1).status, 200);
    assert.deepEqual([...new Set(r.history.map((h) => h.tier))], [STANDARD]);
    assert.equal(c.policy.escalations, 0);
    assert.equal(r.history[0].decision.outcome, 'limited');
    const waited = r.history[0].decision.delayMs;
    const retryAfterMs = r.history[0].retryAfterMs; // from retry-after-ms, e.g. 936
    assert.ok(waited > 500, `waited ${waited}`); // ~1 real s: one request a simulated minute at 60x
    assert.ok(waited >= retryAfterMs && waited <= retryAfterMs * 1.2, `waited ${waited}, Retry-After ${retryAfterMs}`);
    assert.equal(slept[0], waited);
    assert.ok(elapsed >= slept.reduce((a, b) => a + b, 0) - 5);
  });
});

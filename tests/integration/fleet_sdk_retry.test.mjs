// The official `openai` Node SDK meets a saturated pool (SPEC §4, §6).
// The SDK retries 5xx by itself with exponential backoff (0.5 s, then 1 s,
// each minus up to 25 % jitter) when the server sends no Retry-After, which
// fleetmock's 503 does not by default. /admin/accounts counts the requests
// that actually reached the server. --timing instant: a shed request is
// answered 503 at once, so all the elapsed time is the SDK's own backoff.
// A spent budget answers 402, which neither SDK retries.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertNoSlotsHeld, NO_LIMITS, LATE_MS } from '../lib/server.mjs';

// The SDK is installed once, for the conformance tests (npm ci in tests/conformance).
let OpenAI = null;
let InternalServerError = null;
try {
  const mod = await import('../conformance/node_modules/openai/index.mjs');
  OpenAI = mod.default;
  InternalServerError = mod.InternalServerError;
} catch { /* not installed: the tests below are skipped */ }
const SKIP = OpenAI ? false : 'openai SDK not installed: run npm ci in tests/conformance';
// The SDK's own backoff: retry n sleeps 0.5 s × 2^n × (0.75..1]. Node's
// millisecond timers may fire up to 1 ms early, hence 1 ms a sleep.
const backoffMs = (retries) => Array.from({ length: retries }, (_, n) => 500 * 2 ** n);
const minBackoffMs = (retries) => backoffMs(retries).reduce((a, b) => a + 0.75 * b - 1, 0);
const maxBackoffMs = (retries) => backoffMs(retries).reduce((a, b) => a + b, 0);

const KIMI = 'accounts/fireworks/models/kimi-k2p6';

let server;

async function admin(method, path, body) {
  const res = await fetch(server.baseURL + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

async function saturate(load = 2) {
  const r = await admin('PATCH', '/admin/pools/kimi-k2p6', { tenant_load: load });
  assert.equal(r.status, 200, r.text);
  return r.json.pools['kimi-k2p6'];
}

/** A client with its own API key; `seen` collects the status of every HTTP attempt. */
function makeClient(apiKey, maxRetries, onResponse = null) {
  const seen = [];
  const client = new OpenAI({
    apiKey,
    baseURL: `${server.baseURL}/inference/v1`,
    maxRetries,
    timeout: 20000,
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      seen.push(res.status);
      if (onResponse) await onResponse(res, seen);
      return res;
    },
  });
  return { client, seen };
}

const ask = (client, extra = {}) => client.chat.completions.create({
  model: KIMI, messages: [{ role: 'user', content: 'are you there?' }], max_tokens: 5, ...extra,
});

async function expect503(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('the SDK call should have thrown');
}

async function account(keyId) {
  const r = await admin('GET', `/admin/accounts/${keyId}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

before(async () => {
  if (SKIP) return;
  server = await startServer({ args: ['--timing', 'instant', '--seed', '17'], config: NO_LIMITS });
});

after(async () => {
  if (!server) return;
  const st = await admin('GET', '/admin/state');
  for (const [name, p] of Object.entries(st.json.pools)) {
    assert.deepEqual(p.in_flight, { priority: 0, standard: 0, background: 0 }, `in_flight of ${name}`);
  }
  await assertNoSlotsHeld(server);
  const res = await server.stop();
  assert.equal(res.code, 0, res.stderr);
});

beforeEach(async () => {
  if (SKIP) return;
  const r = await admin('POST', '/admin/reset');
  assert.equal(r.status, 200, r.text);
});

test('maxRetries 0: one request reaches the server, the SDK throws InternalServerError 503', { skip: SKIP }, async () => {
  const pool = await saturate();
  assert.equal(pool.shed_probability.standard, 1);
  const { client, seen } = makeClient('sdk-retry-0', 0);
  const err = await expect503(ask(client));
  assert.ok(err instanceof InternalServerError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 503);
  assert.equal(err.code, 'SERVICE_OVERLOADED');
  assert.equal(err.type, 'server_error');
  assert.match(err.message, /Priority is shed last/);
  assert.equal(err.headers.get('x-fleetmock-service-tier'), 'standard');
  assert.equal(err.headers.get('retry-after'), null, 'no Retry-After on 503 unless the config asks');
  assert.deepEqual(seen, [503]);

  const acc = await account(err.headers.get('x-fleetmock-key-id'));
  assert.equal(acc.tiers.standard.requests, 1);
  assert.equal(acc.tiers.standard.status_503, 1);
  assert.equal(acc.tiers.standard.status_200, 0);
  assert.equal(acc.total.requests, 1);
  assert.equal(acc.total.cost_usd, 0);
});

test('maxRetries 2: the SDK tries exactly 3 times with backoff, then throws', { skip: SKIP }, async (t) => {
  await saturate();
  const { client, seen } = makeClient('sdk-retry-2', 2);
  const t0 = performance.now();
  const err = await expect503(ask(client));
  const elapsed = performance.now() - t0;
  t.diagnostic(`3 attempts in ${elapsed.toFixed(0)} ms`);
  assert.ok(err instanceof InternalServerError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 503);
  assert.equal(err.code, 'SERVICE_OVERLOADED');
  assert.deepEqual(seen, [503, 503, 503]);

  const acc = await account(err.headers.get('x-fleetmock-key-id'));
  assert.equal(acc.tiers.standard.requests, 3);
  assert.equal(acc.tiers.standard.status_503, 3);
  assert.equal(acc.total.requests, 3);
  assert.equal(acc.total.cost_usd, 0);
  // Backoff 0.5 s × (0.75..1] + 1 s × (0.75..1]: at least 1.125 s, an exact
  // bound; the server answers at once, so beyond 1.5 s it is only lateness.
  assert.ok(elapsed >= minBackoffMs(2), `3 attempts took ${elapsed.toFixed(0)} ms: the SDK's backoff should show (>= 1.125 s)`);
  assert.ok(elapsed <= maxBackoffMs(2) + LATE_MS, `3 attempts took ${elapsed.toFixed(0)} ms (at most 1.5 s + LATE_MS)`);
});

test('load drops after the first 503: the SDK retry succeeds (2 requests, 1 × 503 then 200)', { skip: SKIP }, async () => {
  await saturate();
  const { client, seen } = makeClient('sdk-retry-recover', 2, async (res, list) => {
    if (list.length === 1 && res.status === 503) {
      const r = await admin('PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 0 });
      assert.equal(r.status, 200, r.text);
    }
  });
  const t0 = performance.now();
  const { data, response } = await ask(client).withResponse();
  const elapsed = performance.now() - t0;
  assert.deepEqual(seen, [503, 200]);
  assert.equal(response.status, 200);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.service_tier, 'default');
  assert.equal(data.choices.length, 1);
  assert.ok(elapsed >= minBackoffMs(1), `one backoff (>= 375 ms) expected, took ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed <= maxBackoffMs(1) + LATE_MS, `one backoff (<= 500 ms + LATE_MS), took ${elapsed.toFixed(0)} ms`);

  const acc = await account(response.headers.get('x-fleetmock-key-id'));
  assert.equal(acc.tiers.standard.requests, 2);
  assert.equal(acc.tiers.standard.status_503, 1);
  assert.equal(acc.tiers.standard.status_200, 1);
  assert.equal(acc.tiers.standard.generated_tokens, data.usage.completion_tokens);
  assert.ok(acc.tiers.standard.cost_usd > 0);
});

test('escalating to Priority on the saturated pool succeeds at the first try', { skip: SKIP }, async () => {
  await saturate(1.2);
  const { client, seen } = makeClient('sdk-retry-priority', 2);
  const err = await expect503(ask(client, { max_tokens: 3 }));
  assert.ok(err instanceof InternalServerError);
  const { data, response } = await ask(client, { service_tier: 'priority' }).withResponse();
  assert.deepEqual(seen, [503, 503, 503, 200]);
  assert.equal(data.service_tier, 'priority');
  assert.equal(response.headers.get('x-fleetmock-service-tier'), 'priority');
  const acc = await account(response.headers.get('x-fleetmock-key-id'));
  assert.equal(acc.tiers.standard.status_503, 3);
  assert.equal(acc.tiers.priority.requests, 1);
  assert.equal(acc.tiers.priority.status_200, 1);
});

test('a streaming call is retried the same way before any byte is streamed', { skip: SKIP }, async () => {
  await saturate();
  const { client, seen } = makeClient('sdk-retry-stream', 1);
  const err = await expect503(ask(client, { stream: true }));
  assert.ok(err instanceof InternalServerError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 503);
  assert.deepEqual(seen, [503, 503]);
  const acc = await account(err.headers.get('x-fleetmock-key-id'));
  assert.equal(acc.tiers.standard.status_503, 2);
});

test('a spent budget (402) is never retried: one attempt, APIError 402, by either SDK', { skip: SKIP }, async () => {
  // Its own server: one key whose budget the first request spends.
  const fixed = { start: 1e9, ceiling: 1e9 };
  const limits = { requests_per_min: fixed, prompt_tps: fixed, uncached_prompt_tps: fixed, generated_tps: fixed };
  const srv = await startServer({
    args: ['--timing', 'instant', '--seed', '17'],
    config: { accounts: { limits, keys: { 'sdk-budget': { name: 'budget', limits: { budget_usd: 1e-9 } } } } },
  });
  try {
    const seen = [];
    const client = new OpenAI({
      apiKey: 'sdk-budget', baseURL: `${srv.baseURL}/inference/v1`, maxRetries: 3, timeout: 20000,
      fetch: async (url, init) => { const res = await fetch(url, init); seen.push(res.status); return res; },
    });
    await ask(client); // spends past the budget
    const err = await ask(client).then(() => null, (e) => e);
    assert.equal(err?.status, 402, `got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.code, 'BUDGET_EXCEEDED');
    assert.equal(err.type, 'insufficient_quota');
    assert.match(err.message, /budget_usd/);
    assert.deepEqual(seen, [200, 402], 'maxRetries 3, yet one attempt: the SDK does not retry a 402');

    let Anthropic = null;
    try { Anthropic = (await import('../conformance/node_modules/@anthropic-ai/sdk/index.mjs')).default; } catch { /* optional */ }
    if (Anthropic) {
      const aseen = [];
      const an = new Anthropic({
        apiKey: 'sdk-budget', baseURL: `${srv.baseURL}/inference`, maxRetries: 3, timeout: 20000,
        fetch: async (url, init) => { const res = await fetch(url, init); aseen.push(res.status); return res; },
      });
      const aerr = await an.messages.create({ model: KIMI, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })
        .then(() => null, (e) => e);
      assert.equal(aerr?.status, 402, `got ${aerr?.constructor?.name}: ${aerr?.message}`);
      assert.equal(aerr.error?.error?.type, 'billing_error');
      assert.deepEqual(aseen, [402]);
    }
    const acc = (await (await fetch(`${srv.baseURL}/admin/accounts`)).json()).accounts.find((a) => a.name === 'budget');
    assert.equal(acc.total.status_402, Anthropic ? 2 : 1);
    assert.equal(acc.total.status_429, 0);
  } finally {
    await assertNoSlotsHeld(srv);
    const res = await srv.stop();
    assert.equal(res.code, 0, res.stderr);
  }
});

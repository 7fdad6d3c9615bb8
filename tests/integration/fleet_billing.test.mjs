// Billing (SPEC §5) through the control plane (SPEC §6): every serving path
// is costed from its model's price row, and /admin/accounts/{key_id} totals
// match what the responses reported and what the price table says, to 1e-9.
// --timing instant; one API key per test so accounts never mix.
//
// Prompt tokens (chat): ceil(bytes/4) per message content + 4 per message + 3.
// cost_usd = (uncached × input + cached × cached_price + generated × output) / 1e6,
// prices in USD per million tokens.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, streamRequest, admin, patchPool, assertNoSlotsHeld, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const FAST = 'accounts/fireworks/routers/kimi-k2p6-fast';
const OSS = 'accounts/fireworks/models/gpt-oss-120b';
const CHAT = '/inference/v1/chat/completions';

// USD per 1M tokens: input, cached input, output.
const PRICES = {
  kimiStandard: { input: 0.95, cached: 0.16, output: 4.0 },
  kimiPriority: { input: 1.5, cached: 0.22, output: 6.0 },
  kimiBackground: { input: 0.95 * 0.25, cached: 0.16 * 0.25, output: 4.0 * 0.25 },
  kimiFast: { input: 2.0, cached: 0.3, output: 8.0 },
  ossStandard: { input: 0.15, cached: 0.015, output: 0.6 },
};

const PATHS = [
  { name: 'Standard on kimi-k2p6', model: KIMI, tier: undefined, path: 'standard', echo: 'default', pool: 'kimi-k2p6', price: PRICES.kimiStandard },
  { name: 'Priority on kimi-k2p6', model: KIMI, tier: 'priority', path: 'priority', echo: 'priority', pool: 'kimi-k2p6', price: PRICES.kimiPriority },
  { name: 'Background on kimi-k2p6', model: KIMI, tier: 'background', path: 'background', echo: 'background', pool: 'kimi-k2p6', price: PRICES.kimiBackground },
  { name: 'Fast on kimi-k2p6-fast', model: FAST, tier: undefined, path: 'fast', echo: 'default', pool: 'kimi-k2p6-fast', price: PRICES.kimiFast },
  { name: 'Standard on gpt-oss-120b', model: OSS, tier: undefined, path: 'standard', echo: 'default', pool: 'gpt-oss-120b', price: PRICES.ossStandard },
];

// Known requests: messages, max_tokens, and the prompt tokens the rule gives.
// None is long enough to fill a 64-byte cache block, so nothing is ever cached.
const REQUESTS = [
  { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 7, prompt: 8 },                        // ceil(2/4)=1 +4 +3
  { messages: [{ role: 'user', content: 'Count the bytes, please.' }], max_tokens: 13, prompt: 13 }, // 24 B → 6
  { messages: [{ role: 'user', content: 'naïve café' }], max_tokens: 1, prompt: 10 },              // 12 B (UTF-8) → 3
  { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is 2+2?' }], max_tokens: 25, prompt: 17 }, // 3+3 +8 +3
  { messages: [{ role: 'user', content: 'streamed' }], max_tokens: 9, prompt: 9, stream: true },  // 8 B → 2
];

const ZERO = { requests: 0, status_200: 0, status_402: 0, status_429: 0, status_503: 0, prompt_tokens: 0, cached_tokens: 0, generated_tokens: 0, cost_usd: 0 };

let server;



function promptRule(messages) {
  return messages.reduce((n, m) => n + Math.ceil(Buffer.byteLength(m.content, 'utf8') / 4) + 4, 3);
}

function cost(price, prompt, cached, generated) {
  return ((prompt - cached) * price.input + cached * price.cached + generated * price.output) / 1e6;
}

/** Sends one chat request (streamed or not); resolves {status, headers, usage, tier}. */
async function send(p, key, req) {
  const body = { model: p.model, messages: req.messages, max_tokens: req.max_tokens, ignore_eos: true };
  if (p.tier) body.service_tier = p.tier;
  const headers = { Authorization: `Bearer ${key}` };
  if (req.stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
    const r = await streamRequest(server, CHAT, body, { headers, maxMs: 10000 });
    const usageChunk = r.events.find((e) => e.json && Array.isArray(e.json.choices) && e.json.choices.length === 0 && e.json.usage);
    const content = r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).length;
    assert.equal(content, req.max_tokens, 'one chunk per token');
    return { status: r.status, headers: r.headers, usage: usageChunk?.json.usage, tier: usageChunk?.json.service_tier, text: r.raw };
  }
  const r = await post(server, CHAT, body, headers);
  return { status: r.status, headers: r.headers, usage: r.json?.usage, tier: r.json?.service_tier, text: r.text };
}

function assertClose(actual, expected, what) {
  assert.ok(Math.abs(actual - expected) <= 1e-9, `${what}: got ${actual}, expected ${expected}`);
}

function assertUsage(actual, expected, what) {
  for (const k of ['requests', 'status_200', 'status_429', 'status_503', 'prompt_tokens', 'cached_tokens', 'generated_tokens']) {
    assert.equal(actual[k], expected[k], `${what}.${k}`);
  }
  assertClose(actual.cost_usd, expected.cost_usd, `${what}.cost_usd`);
}

before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '13'], config: NO_LIMITS });
});

after(async () => {
  if (!server) return;
  const r = await admin(server, 'GET', '/admin/state');
  for (const [name, p] of Object.entries(r.json.pools)) {
    assert.deepEqual(p.in_flight, { priority: 0, standard: 0, background: 0 }, `in_flight of ${name}`);
  }
  await assertNoSlotsHeld(server);
  const res = await server.stop();
  assert.equal(res.code, 0, res.stderr);
});

beforeEach(async () => {
  const r = await admin(server, 'POST', '/admin/reset');
  assert.equal(r.status, 200, r.text);
});

test('the known requests follow the prompt-token rule', () => {
  for (const req of REQUESTS) assert.equal(promptRule(req.messages), req.prompt, JSON.stringify(req.messages));
});

for (const [i, p] of PATHS.entries()) {
  test(`billing: ${p.name}`, async () => {
    const key = `billing-key-${i}-${p.path}`;
    let prompt = 0;
    let generated = 0;
    let expectedCost = 0;
    let keyId = null;
    for (const req of REQUESTS) {
      const r = await send(p, key, req);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-fleetmock-pool'), p.pool);
      assert.equal(r.headers.get('x-fleetmock-service-tier'), p.path);
      assert.equal(r.tier, p.echo);
      assert.equal(r.usage.prompt_tokens, req.prompt);
      assert.equal(r.usage.completion_tokens, req.max_tokens);
      assert.equal(r.usage.total_tokens, req.prompt + req.max_tokens);
      assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);
      assert.equal(r.headers.get('fireworks-prompt-tokens'), String(req.prompt));
      assert.equal(r.headers.get('fireworks-cached-prompt-tokens'), '0');
      const id = r.headers.get('x-fleetmock-key-id');
      assert.match(id, /^k-[0-9a-f]{12}$/);
      if (keyId) assert.equal(id, keyId, 'one key, one key id');
      keyId = id;
      prompt += r.usage.prompt_tokens;
      generated += r.usage.completion_tokens;
      expectedCost += cost(p.price, r.usage.prompt_tokens, 0, r.usage.completion_tokens);
    }
    const n = REQUESTS.length;
    // Hand-computed from the table above, independent of the responses.
    assert.equal(prompt, 8 + 13 + 10 + 17 + 9);
    assert.equal(generated, 7 + 13 + 1 + 25 + 9);
    assertClose(expectedCost, (57 * p.price.input + 55 * p.price.output) / 1e6, 'hand-computed cost');

    const acc = await admin(server, 'GET', `/admin/accounts/${keyId}`);
    assert.equal(acc.status, 200, acc.text);
    assert.equal(acc.json.key_id, keyId);
    assert.deepEqual(Object.keys(acc.json.tiers).sort(), ['background', 'fast', 'priority', 'standard']);
    const want = { ...ZERO, requests: n, status_200: n, prompt_tokens: prompt, generated_tokens: generated, cost_usd: expectedCost };
    assertUsage(acc.json.tiers[p.path], want, `tiers.${p.path}`);
    for (const other of Object.keys(acc.json.tiers)) {
      if (other !== p.path) assert.deepEqual(acc.json.tiers[other], ZERO, `tiers.${other} must be untouched`);
    }
    assertUsage(acc.json.total, want, 'total');

    // The account is listed in GET /admin/accounts with the same numbers.
    const list = await admin(server, 'GET', '/admin/accounts');
    assert.equal(list.status, 200);
    const listed = list.json.accounts.filter((a) => a.key_id === keyId);
    assert.equal(listed.length, 1);
    assert.deepEqual(listed[0], acc.json);

    // 503s count and cost nothing.
    await patchPool(server, p.pool, { tenant_load: 2, tenant_priority_share: 1 });
    for (let k = 0; k < 3; k++) {
      const r = await send(p, key, REQUESTS[0]);
      assert.equal(r.status, 503, r.text);
      assert.equal(r.headers.get('x-fleetmock-key-id'), keyId);
    }
    const after503 = await admin(server, 'GET', `/admin/accounts/${keyId}`);
    const want503 = { ...want, requests: n + 3, status_503: 3 };
    assertUsage(after503.json.tiers[p.path], want503, `tiers.${p.path} after 503s`);
    assertUsage(after503.json.total, want503, 'total after 503s');
  });
}

test('billing: cached prompt tokens are billed at the cached price (Standard and Priority on kimi-k2p6)', async () => {
  const key = 'billing-key-cache';
  // 300 bytes of content: long enough to fill cache blocks. Same affinity key → same replica.
  const content = 'The quick brown fox jumps over the lazy dog. '.repeat(7).slice(0, 300);
  assert.equal(Buffer.byteLength(content), 300);
  const messages = [{ role: 'user', content }];
  const promptTokens = 75 + 4 + 3;
  assert.equal(promptRule(messages), promptTokens);
  const rows = [];
  for (const tier of [undefined, undefined, 'priority']) {
    const body = { model: KIMI, messages, max_tokens: 5, ignore_eos: true, prompt_cache_key: 'billing-cache' };
    if (tier) body.service_tier = tier;
    const r = await post(server, CHAT, body, { Authorization: `Bearer ${key}` });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.usage.prompt_tokens, promptTokens);
    const cached = r.json.usage.prompt_tokens_details.cached_tokens;
    assert.equal(r.headers.get('fireworks-cached-prompt-tokens'), String(cached));
    rows.push({ tier: tier || 'standard', cached, keyId: r.headers.get('x-fleetmock-key-id') });
  }
  assert.equal(rows[0].cached, 0, 'first sight of the prompt: nothing cached');
  assert.ok(rows[1].cached > 0 && rows[1].cached <= promptTokens, `repeat on the same replica should hit the cache, got ${rows[1].cached}`);
  assert.equal(rows[1].cached % 16, 0);
  assert.equal(rows[2].cached, rows[1].cached, 'Priority shares the pool and its cache');

  const acc = await admin(server, 'GET', `/admin/accounts/${rows[0].keyId}`);
  const c = rows[1].cached;
  const std = { ...ZERO, requests: 2, status_200: 2, prompt_tokens: 2 * promptTokens, cached_tokens: c, generated_tokens: 10,
    cost_usd: cost(PRICES.kimiStandard, promptTokens, 0, 5) + cost(PRICES.kimiStandard, promptTokens, c, 5) };
  const pri = { ...ZERO, requests: 1, status_200: 1, prompt_tokens: promptTokens, cached_tokens: c, generated_tokens: 5,
    cost_usd: cost(PRICES.kimiPriority, promptTokens, c, 5) };
  assertUsage(acc.json.tiers.standard, std, 'tiers.standard');
  assertUsage(acc.json.tiers.priority, pri, 'tiers.priority');
  assertUsage(acc.json.total, {
    requests: 3, status_200: 3, status_429: 0, status_503: 0, prompt_tokens: 3 * promptTokens, cached_tokens: 2 * c,
    generated_tokens: 15, cost_usd: std.cost_usd + pri.cost_usd,
  }, 'total');
});

test('billing: the completions route bills prompt tokens as ceil(bytes/4)', async () => {
  const key = 'billing-key-completions';
  const prompt = 'Once upon a time'; // 16 bytes → 4 tokens
  const r = await post(server, '/inference/v1/completions', { model: OSS, prompt, max_tokens: 6, ignore_eos: true },
    { Authorization: `Bearer ${key}` });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.prompt_tokens, 4);
  assert.equal(r.json.usage.completion_tokens, 6);
  const acc = await admin(server, 'GET', `/admin/accounts/${r.headers.get('x-fleetmock-key-id')}`);
  assertUsage(acc.json.tiers.standard, { ...ZERO, requests: 1, status_200: 1, prompt_tokens: 4, generated_tokens: 6,
    cost_usd: cost(PRICES.ossStandard, 4, 0, 6) }, 'tiers.standard');
});

test('accounts: reset zeroes the counters; an unknown key id is 404', async () => {
  const key = 'billing-key-reset';
  const r = await post(server, CHAT, { model: KIMI, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, ignore_eos: true },
    { Authorization: `Bearer ${key}` });
  assert.equal(r.status, 200, r.text);
  const id = r.headers.get('x-fleetmock-key-id');
  let acc = await admin(server, 'GET', `/admin/accounts/${id}`);
  assert.equal(acc.json.total.requests, 1);
  assert.equal((await admin(server, 'POST', '/admin/reset')).status, 200);
  acc = await admin(server, 'GET', `/admin/accounts/${id}`);
  assert.equal(acc.status, 200);
  assert.deepEqual(acc.json.total, ZERO);
  const missing = await admin(server, 'GET', '/admin/accounts/k-000000000000');
  assert.equal(missing.status, 404, missing.text);
  assert.equal(missing.json.error.code, 'NOT_FOUND');
});

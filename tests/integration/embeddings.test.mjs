// POST embeddings (SPEC §9, docs/api.md "Embeddings"): the OpenAI shape,
// base64 float32, dimensions, every bad input a 400 naming its field, and
// the request through the fleet like any other: billed on input tokens only,
// journaled, counted in /metrics, limited by the account's prompt tokens
// (429 with the rate-limit headers), shed Standard-first on a congested
// embeddings pool, hit by injected faults. Every assertion is on counts,
// on what the server reports, or on simulated time it computes.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, admin, patchPool, stopChecked, assertNoSlotsHeld, assertScheduled } from '../lib/server.mjs';

const NOMIC = 'nomic-ai/nomic-embed-text-v1.5';
const QWEN = 'fireworks/qwen3-embedding-8b';
const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const PATHS = ['/v1/embeddings', '/inference/v1/embeddings'];
const EMB = '/inference/v1/embeddings';
const fixed = (n) => ({ start: n, ceiling: n });
const BIG = fixed(1e9);
const KEYS = { one: 'sk-emb-one-51c0', limited: 'sk-emb-limited-9e2a', free: 'sk-emb-free-33d7' };
// Per-token prices of the default config, USD per 1M tokens (docs/api.md).
const PRICE = { [NOMIC]: { standard: 0.008, priority: 0.012 }, [QWEN]: { standard: 0.1, priority: 0.15 } };

let server;

async function send(path, body, { key = KEYS.one, headers = {} } = {}) {
  const res = await fetch(server.baseURL + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

const tokensOf = (s) => Math.ceil(Buffer.byteLength(s, 'utf8') / 4);
const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);

function decodeBase64(s) {
  const buf = Buffer.from(s, 'base64');
  assert.equal(buf.length % 4, 0, 'base64 holds whole float32 values');
  const out = [];
  for (let i = 0; i < buf.length; i += 4) out.push(buf.readFloatLE(i));
  return out;
}

before(async () => {
  server = await startServer({
    config: {
      accounts: {
        limits: { requests_per_min: BIG, prompt_tps: BIG, uncached_prompt_tps: BIG, generated_tps: BIG },
        // 10 prompt tokens per second. A request bigger than the bucket passes when it is
        // full and leaves it in debt: after 500 tokens the next request waits 49 s, so
        // the 429 does not depend on how fast this machine sends the second request.
        keys: { [KEYS.limited]: { name: 'limited', limits: { prompt_tps: fixed(10) } } },
      },
    },
  });
});

after(async () => {
  if (!server) return;
  await assertNoSlotsHeld(server);
  await stopChecked(server);
});

beforeEach(async () => {
  const r = await admin(server, 'POST', '/admin/reset');
  assert.equal(r.status, 200, r.text);
});

for (const path of PATHS) {
  test(`POST ${path}: one vector per input in the OpenAI shape, usage counts input tokens`, async () => {
    const input = ['How do I retry a request?', 'Prompt caching discounts repeated prefixes.', 'x'];
    const r = await send(path, { model: NOMIC, input });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'list');
    assert.equal(r.json.model, NOMIC);
    assert.equal(r.json.data.length, 3);
    r.json.data.forEach((d, i) => {
      assert.deepEqual(Object.keys(d).sort(), ['embedding', 'index', 'object']);
      assert.equal(d.object, 'embedding');
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, 768);
      assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5, `data[${i}] has unit length`);
    });
    const tokens = input.reduce((n, s) => n + tokensOf(s), 0);
    assert.deepEqual(r.json.usage, { prompt_tokens: tokens, total_tokens: tokens });
    assert.equal(r.headers.get('fireworks-prompt-tokens'), String(tokens));
    assert.equal(r.headers.get('fireworks-cached-prompt-tokens'), '0');
    assert.equal(r.headers.get('x-fleetmock-pool'), 'embeddings');
    // Answered at the first-token time: ttft 30 ms + the inputs' prefill at 200000 tokens/s.
    assertScheduled(Number(r.headers.get('fireworks-server-time-to-first-token')) * 1000,
      Math.round(30 + (1000 * tokens) / 200000), 'time to first token');
  });
}

test('vectors are deterministic per (model, text) and shared words mean higher cosine', async () => {
  const input = ['The cat sat on the warm mat', 'A cat likes a warm mat', 'Quarterly revenue grew in Europe'];
  const a = await send(EMB, { model: NOMIC, input });
  const b = await send(EMB, { model: NOMIC, input: input[0] });
  const q = await send(EMB, { model: QWEN, input: input[0] });
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(b.json.data[0].embedding, a.json.data[0].embedding, 'same text, same vector');
  const [x, y, z] = a.json.data.map((d) => d.embedding);
  assert.ok(dot(x, y) > dot(x, z) + 0.3, `shared words closer: ${dot(x, y)} vs ${dot(x, z)}`);
  assert.equal(q.json.data[0].embedding.length, 4096);
  assert.equal(q.json.model, QWEN);
});

test('encoding_format base64: little-endian float32 of the same vector', async () => {
  const body = { model: NOMIC, input: ['base64 round trip', 'second input'], dimensions: 256 };
  const f = await send(EMB, body);
  const b = await send(EMB, { ...body, encoding_format: 'base64' });
  assert.equal(b.status, 200, b.text);
  for (let i = 0; i < 2; i++) {
    assert.equal(typeof b.json.data[i].embedding, 'string');
    const v = decodeBase64(b.json.data[i].embedding);
    assert.equal(v.length, 256);
    v.forEach((x, k) => assert.ok(Math.abs(x - f.json.data[i].embedding[k]) < 1e-6, `value ${k}`));
  }
});

test('dimensions cuts the vector to its first k values and renormalizes; normalize false keeps raw sums', async () => {
  const text = 'Exponential backoff with jitter spreads retries out';
  const full = (await send(EMB, { model: NOMIC, input: text })).json.data[0].embedding;
  const cut = (await send(EMB, { model: NOMIC, input: text, dimensions: 64 })).json.data[0].embedding;
  assert.equal(cut.length, 64);
  assert.ok(Math.abs(norm(cut) - 1) < 1e-5);
  const head = norm(full.slice(0, 64));
  cut.forEach((x, k) => assert.ok(Math.abs(x - full[k] / head) < 1e-5, `value ${k}`));
  const raw = (await send(EMB, { model: NOMIC, input: text, normalize: false })).json.data[0].embedding;
  assert.ok(norm(raw) > 2, `raw sums are not unit length (${norm(raw)})`);
  raw.forEach((x, k) => assert.ok(Math.abs(x / norm(raw) - full[k]) < 1e-5));
});

test('token-id inputs count one token per id and embed as their decimal ids', async () => {
  const ids = await send(EMB, { model: NOMIC, input: [[101, 2023, 102], [7]] });
  assert.equal(ids.status, 200, ids.text);
  assert.equal(ids.json.usage.prompt_tokens, 4);
  const flat = await send(EMB, { model: NOMIC, input: [101, 2023, 102] });
  assert.equal(flat.json.data.length, 1);
  assert.equal(flat.json.usage.prompt_tokens, 3);
  const text = await send(EMB, { model: NOMIC, input: '101 2023 102' });
  assert.deepEqual(flat.json.data[0].embedding, text.json.data[0].embedding);
  assert.deepEqual(ids.json.data[0].embedding, text.json.data[0].embedding);
});

test('every bad input is a 400 naming its field, and the server keeps serving', async () => {
  const long = 'word '.repeat(8192); // 10240 tokens: over nomic's 8192
  const cases = [
    [{ input: 'x' }, 'model', /is required.*embedding model/],
    [{ model: 7, input: 'x' }, 'model', /must be a string/],
    [{ model: KIMI, input: 'x' }, 'model', /is a chat model; use an embedding model such as "nomic-ai\/nomic-embed-text-v1\.5"/],
    [{ model: NOMIC }, 'input', /is required/],
    [{ model: NOMIC, input: '' }, 'input', /empty string/],
    [{ model: NOMIC, input: [] }, 'input', /empty array/],
    [{ model: NOMIC, input: 5 }, 'input', /a string, an array of strings, an array of token ids, or an array of token-id arrays/],
    [{ model: NOMIC, input: { text: 'x' } }, 'input', /a string, an array of strings/],
    [{ model: NOMIC, input: [{ text: 'x' }] }, 'input[0]', /must be a string, a token id or an array of token ids/],
    [{ model: NOMIC, input: ['a', 3] }, 'input[1]', /must be a string like input\[0\]/],
    [{ model: NOMIC, input: ['a', ''] }, 'input[1]', /empty string/],
    [{ model: NOMIC, input: [[1, 2], 'b'] }, 'input[1]', /must be an array of token ids/],
    [{ model: NOMIC, input: [[1, -2]] }, 'input[0][1]', /token id: a whole number from 0/],
    [{ model: NOMIC, input: [1, 2.5] }, 'input[1]', /token id/],
    [{ model: NOMIC, input: [[]] }, 'input[0]', /empty token-id array/],
    [{ model: NOMIC, input: Array(2049).fill('a') }, 'input', /2049 inputs, more than the 2048/],
    [{ model: NOMIC, input: ['ok', long] }, 'input[1]', /10240 tokens, more than the context length of nomic-ai\/nomic-embed-text-v1\.5 \(8192 tokens\)/],
    [{ model: QWEN, input: Array(600).fill('a') }, 'input', /600 inputs of 4096 dimensions.*send at most 512 inputs/],
    [{ model: NOMIC, input: 'x', dimensions: 0 }, 'dimensions', /from 1 to 768/],
    [{ model: NOMIC, input: 'x', dimensions: 769 }, 'dimensions', /from 1 to 768/],
    [{ model: NOMIC, input: 'x', dimensions: 1.5 }, 'dimensions', /whole number/],
    [{ model: NOMIC, input: 'x', dimensions: '64' }, 'dimensions', /whole number/],
    [{ model: NOMIC, input: 'x', encoding_format: 'int8' }, 'encoding_format', /"float".*"base64"/],
    [{ model: NOMIC, input: 'x', encoding_format: 1 }, 'encoding_format', /must be a string/],
    [{ model: NOMIC, input: 'x', normalize: 'yes' }, 'normalize', /true or false/],
    [{ model: NOMIC, input: 'x', user: 3 }, 'user', /must be a string/],
    [{ model: NOMIC, input: 'x', service_tier: 'gold' }, 'service_tier', /unknown value/],
  ];
  for (const [body, param, re] of cases) {
    const r = await send(EMB, body);
    const what = JSON.stringify(body).slice(0, 120);
    assert.equal(r.status, 400, `${what}: ${r.text.slice(0, 300)}`);
    assert.equal(r.json.error.type, 'invalid_request_error', what);
    assert.equal(r.json.error.code, 'INVALID_ARGUMENT', what);
    assert.equal(r.json.error.param, param, what);
    assert.ok(r.json.error.message.startsWith(`${param}: `), `${what}: ${r.json.error.message}`);
    assert.match(r.json.error.message, re, what);
  }
  const unknown = await send(EMB, { model: 'nomic-ai/no-such-model', input: 'x' });
  assert.equal(unknown.status, 404, unknown.text);
  assert.equal(unknown.json.error.param, 'model');
  for (const bad of ['', '{', '[1]', '{"model": "x"} extra']) {
    const r = await send(EMB, bad);
    assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
  }
  const ok = await send(EMB, { model: NOMIC, input: 'still serving' });
  assert.equal(ok.status, 200, ok.text);
});

test('an embedding model on chat, completions or messages is a 400 naming model', async () => {
  const bodies = {
    '/v1/chat/completions': { model: NOMIC, messages: [{ role: 'user', content: 'hi' }] },
    '/v1/completions': { model: NOMIC, prompt: 'hi' },
    '/v1/messages': { model: NOMIC, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] },
  };
  for (const [path, body] of Object.entries(bodies)) {
    const r = await send(path, body);
    assert.equal(r.status, 400, `${path}: ${r.text}`);
    assert.match(r.json.error.message, /"nomic-ai\/nomic-embed-text-v1\.5" is an embedding model: send it to POST \/v1\/embeddings, or use a chat model such as "accounts\/fireworks\/models\//, path);
    if (path !== '/v1/messages') assert.equal(r.json.error.param, 'model');
  }
});

test('/v1/models lists the embedding models with their dimensions, not as chat models', async () => {
  const r = await fetch(`${server.baseURL}/v1/models`, { headers: { Authorization: `Bearer ${KEYS.one}` } });
  const byId = Object.fromEntries((await r.json()).data.map((m) => [m.id, m]));
  for (const [id, dims, ctx] of [[NOMIC, 768, 8192], [QWEN, 4096, 32768]]) {
    assert.equal(byId[id].embedding, true, id);
    assert.equal(byId[id].dimensions, dims, id);
    assert.equal(byId[id].context_length, ctx, id);
    assert.equal(byId[id].supports_chat, false, id);
    assert.equal(byId[id].supports_tools, false, id);
    assert.deepEqual(byId[id].serving_paths, ['standard', 'priority'], id);
  }
  assert.equal(byId[KIMI].embedding, false);
  assert.equal(byId[KIMI].dimensions, undefined);
});

test('billing: input tokens only at the embedding price, per tier, in /admin/accounts', async () => {
  const key = 'sk-emb-billing-0a11';
  const a = await send(EMB, { model: NOMIC, input: ['one two three four', 'five six'] }, { key });
  const b = await send(EMB, { model: QWEN, input: 'seven eight nine ten eleven', service_tier: 'priority' }, { key });
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  assert.equal(b.headers.get('x-fleetmock-service-tier'), 'priority');
  const keyId = a.headers.get('x-fleetmock-key-id');
  const acc = await admin(server, 'GET', `/admin/accounts/${keyId}`);
  assert.equal(acc.status, 200, acc.text);
  const std = acc.json.tiers.standard, pri = acc.json.tiers.priority;
  assert.equal(std.requests, 1);
  assert.equal(std.status_200, 1);
  assert.equal(std.prompt_tokens, a.json.usage.prompt_tokens);
  assert.equal(std.cached_tokens, 0);
  assert.equal(std.generated_tokens, 0);
  assert.ok(Math.abs(std.cost_usd - (a.json.usage.prompt_tokens * PRICE[NOMIC].standard) / 1e6) < 1e-15, `${std.cost_usd}`);
  assert.equal(pri.prompt_tokens, b.json.usage.prompt_tokens);
  assert.equal(pri.generated_tokens, 0);
  assert.ok(Math.abs(pri.cost_usd - (b.json.usage.prompt_tokens * PRICE[QWEN].priority) / 1e6) < 1e-15, `${pri.cost_usd}`);
  // Embeddings never look in the prompt cache.
  assert.equal(acc.json.cache.lookups, 0);
});

test('journal: an embeddings request is recorded with its route, model, tokens and status', async () => {
  const headers = { 'x-fleetmock-test-id': 'emb-journal' };
  const ok = await send(EMB, { model: NOMIC, input: ['journal me', 'and me'] }, { headers });
  const bad = await send(EMB, { model: NOMIC, input: '' }, { headers });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(bad.status, 400, bad.text);
  const j = await admin(server, 'GET', '/admin/requests?test_id=emb-journal');
  assert.equal(j.status, 200, j.text);
  assert.equal(j.json.data.length, 2);
  const [refused, done] = j.json.data; // newest first
  assert.equal(done.route, 'embeddings');
  assert.equal(done.model, NOMIC);
  assert.equal(done.tier, 'standard');
  assert.equal(done.status, 200);
  assert.equal(done.prompt_tokens, ok.json.usage.prompt_tokens);
  assert.equal(done.cached_tokens, 0);
  assert.equal(done.completion_tokens, 0);
  assert.equal(done.ttft_ms, 30);
  assert.equal(refused.route, 'embeddings');
  assert.equal(refused.status, 400);
  assert.equal(refused.error.code, 'INVALID_ARGUMENT');
});

test('metrics: fleetmock_requests_total counts route="embeddings" and its prompt tokens', async () => {
  const before = await (await fetch(`${server.baseURL}/metrics`)).text();
  const count = (text, re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : 0;
  };
  const reqRe = /^fleetmock_requests_total\{route="embeddings",model="nomic-ai\/nomic-embed-text-v1\.5",tier="standard",status="200"\} (\d+)$/m;
  const r1 = await send(EMB, { model: NOMIC, input: 'count me' });
  const r2 = await send(EMB, { model: NOMIC, input: ['count', 'me too'] });
  assert.equal(r1.status, 200);
  assert.equal(r2.status, 200);
  const text = await (await fetch(`${server.baseURL}/metrics`)).text();
  assert.equal(count(text, reqRe) - count(before, reqRe), 2);
});

test('rate limits: a key over its prompt tokens per second gets a 429 with the rate-limit headers; others pass', async () => {
  const input = 'x'.repeat(2000); // 500 tokens
  const a = await send(EMB, { model: NOMIC, input }, { key: KEYS.limited });
  assert.equal(a.status, 200, a.text);
  assert.equal(a.headers.get('X-Ratelimit-Limit-Tokens-Prompt'), '10');
  assert.equal(a.headers.get('x-ratelimit-remaining-tokens-prompt'), '0');
  const b = await send(EMB, { model: NOMIC, input: 'small' }, { key: KEYS.limited });
  assert.equal(b.status, 429, b.text);
  assert.equal(b.json.error.type, 'rate_limit_error');
  assert.equal(b.json.error.code, 'RATE_LIMITED');
  assert.match(b.json.error.message, /prompt tokens per second for nomic-ai\/nomic-embed-text-v1\.5 on this account is 10 \(limit "prompt"\)/);
  assert.match(b.headers.get('retry-after') ?? '', /^\d+$/);
  assert.match(b.headers.get('retry-after-ms') ?? '', /^\d+$/);
  assert.ok(Number(b.headers.get('retry-after')) >= 40, `Retry-After ${b.headers.get('retry-after')}: the debt takes ~49 s`);
  assert.equal(b.headers.get('X-Ratelimit-Limit-Tokens-Prompt'), '10');
  // A key under its limits is not affected.
  const c = await send(EMB, { model: NOMIC, input }, { key: KEYS.free });
  assert.equal(c.status, 200, c.text);
  const acc = await admin(server, 'GET', `/admin/accounts/${a.headers.get('x-fleetmock-key-id')}`);
  assert.equal(acc.json.tiers.standard.status_429, 1);
  assert.equal(acc.json.tiers.standard.prompt_tokens, 500, 'a 429 is not billed');
});

test('a congested embeddings pool sheds Standard (503) while Priority passes', async () => {
  const pool = await patchPool(server, 'embeddings', { tenant_load: 1.2, tenant_priority_share: 0.2 });
  assert.equal(pool.shed_probability.standard, 1);
  assert.equal(pool.shed_probability.priority, 0);
  const std = await send(EMB, { model: NOMIC, input: 'shed me' });
  assert.equal(std.status, 503, std.text);
  assert.equal(std.json.error.type, 'server_error');
  assert.equal(std.json.error.code, 'SERVICE_OVERLOADED');
  assert.match(std.json.error.message, /pool embeddings is shedding standard traffic/);
  assert.equal(std.headers.get('x-fleetmock-pool'), 'embeddings');
  const pri = await send(EMB, { model: NOMIC, input: 'keep me', service_tier: 'priority' });
  assert.equal(pri.status, 200, pri.text);
  assert.equal(pri.headers.get('x-fleetmock-service-tier'), 'priority');
  // Chat pools are untouched by the embeddings pool's load.
  const chat = await send('/v1/chat/completions', { model: KIMI, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  assert.equal(chat.status, 200, chat.text);
  const acc = await admin(server, 'GET', `/admin/accounts/${std.headers.get('x-fleetmock-key-id')}`);
  assert.equal(acc.json.tiers.standard.status_503, 1);
  assert.equal(acc.json.tiers.priority.status_200, 1);
});

test('faults: a status fault from x-fleetmock-fault or /admin/faults answers the embeddings request', async () => {
  const h = await send(EMB, { model: NOMIC, input: 'fault me' }, { headers: { 'x-fleetmock-fault': '429' } });
  assert.equal(h.status, 429, h.text);
  assert.match(h.json.error.message, /injected fault/);
  const f = await admin(server, 'POST', '/admin/faults', { match: { route: 'embeddings' }, action: { status: 500 }, count: 1 });
  assert.ok(f.status === 200 || f.status === 201, f.text);
  const a = await send(EMB, { model: NOMIC, input: 'first' });
  const b = await send(EMB, { model: NOMIC, input: 'second' });
  assert.equal(a.status, 500, a.text);
  assert.equal(b.status, 200, b.text);
  // Chat is not matched by a route "embeddings" fault.
  await admin(server, 'POST', '/admin/faults', { match: { route: 'embeddings' }, action: { status: 500 } });
  const chat = await send('/v1/chat/completions', { model: KIMI, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  assert.equal(chat.status, 200, chat.text);
  await admin(server, 'DELETE', '/admin/faults');
});

test('reply rules: a rule matching route "embeddings" applies its fault and usage, never its text', async () => {
  const add = (rule) => admin(server, 'POST', '/admin/replies', rule);
  const f = await add({ match: { route: 'embeddings' }, reply: { content: 'ignored', fault: { stream: 'error', after_tokens: 0 } }, count: 1 });
  assert.ok(f.status === 200 || f.status === 201, f.text);
  const faulted = await send(EMB, { model: NOMIC, input: 'rule me' });
  assert.equal(faulted.status, 503, faulted.text);
  assert.match(faulted.json.error.message, /injected fault/);
  const u = await add({ match: { route: 'embeddings' }, reply: { content: 'ignored', usage: { prompt_tokens: 99 } } });
  assert.ok(u.status === 200 || u.status === 201, u.text);
  const counted = await send(EMB, { model: NOMIC, input: 'rule me' });
  assert.equal(counted.status, 200, counted.text);
  assert.equal(counted.json.usage.prompt_tokens, 99);
  assert.equal(counted.json.data[0].embedding.length, 768, 'still a vector, not the rule\'s text');
  await admin(server, 'DELETE', '/admin/replies');
});

test('a full embeddings pool queues the next request until the slot frees', async () => {
  // One slot, 3 s per request: the second request, sent once the first holds
  // the slot, waits in the Standard queue (seen in /admin/state, not timed).
  await patchPool(server, 'embeddings', { slots: 1, ttft_ms: 3000, queue_timeout_ms: { standard: 60000 } });
  const pools = async () => (await admin(server, 'GET', '/admin/state')).json.pools.embeddings;
  const until = async (what, ok) => {
    for (let i = 0; i < 400; i++) {
      const p = await pools();
      if (ok(p)) return p;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.fail(`embeddings pool never showed ${what}`);
  };
  const a = send(EMB, { model: NOMIC, input: 'first in line' });
  await until('the first request in flight', (p) => p.in_flight.standard === 1);
  const b = send(EMB, { model: NOMIC, input: 'second in line' });
  await until('the second request queued', (p) => p.queued.standard === 1);
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.status, 200, ra.text);
  assert.equal(rb.status, 200, rb.text);
  assert.ok(Number(rb.headers.get('x-fleetmock-queue-ms')) > 0, `queued ${rb.headers.get('x-fleetmock-queue-ms')} ms`);
  const p = await pools();
  assert.equal(p.in_flight.standard, 0);
  assert.equal(p.queued.standard, 0);
});

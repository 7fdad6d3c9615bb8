// Account rate limits (SPEC §3 "429", §5 "Rate limits"): each limit —
// requests, prompt, uncached_prompt, generated — hit on its own with small
// limits and --timing instant. Every 429 names its limit, carries
// Retry-After (whole real seconds, >= 1) consistent with retry-after-ms, and
// a client that sleeps Retry-After succeeds where one that does not wait
// keeps getting 429. Limits use start == ceiling so adaptation stays out.
// A spent budget is not a rate limit: it answers 402, as the real API does,
// with nothing that tells a client to retry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, get, assertNoSlotsHeld, sleep } from '../lib/server.mjs';

const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);
import { scrape, sum, has } from '../lib/metrics.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const fixed = (n) => ({ start: n, ceiling: n });
const bearer = (key) => ({ Authorization: `Bearer ${key}` });

/** Exactly `bytes` ASCII bytes starting with `tag`, so prompts differ from their first block. */
function text(tag, bytes) {
  const s = `${tag} ` + 'lorem ipsum dolor sit amet '.repeat(Math.ceil(bytes / 27) + 1);
  return s.slice(0, bytes);
}

/** Prompt tokens by the documented rule: ceil(bytes/4) + 4 per message, + 3. */
const promptTokens = (bytes) => Math.ceil(bytes / 4) + 4 + 3;

/** A chat request with one user message of `bytes` bytes and exactly `out` output tokens. */
function chat(server, key, tag, { bytes = 600, out = 5, headers = {}, extra = {} } = {}) {
  return post(server, CHAT, {
    model: KIMI,
    messages: [{ role: 'user', content: text(tag, bytes) }],
    max_tokens: out,
    ignore_eos: true,
    ...extra,
  }, { ...bearer(key), ...headers });
}

/** Checks a 429 against the contract and returns its {retryAfter, ms}. */
function assert429(res, limit) {
  assert.equal(res.status, 429, `expected 429 on "${limit}", got ${res.status}: ${res.text}`);
  const err = res.json && res.json.error;
  assert.ok(err, `429 body is an error object: ${res.text}`);
  assert.equal(err.type, 'rate_limit_error');
  assert.equal(err.code, 'RATE_LIMITED');
  assert.ok(err.message.includes(`(limit "${limit}")`), `message names limit "${limit}": ${err.message}`);
  const ra = res.headers.get('retry-after');
  const ms = res.headers.get('retry-after-ms');
  assert.match(ra ?? '', /^\d+$/, `Retry-After is whole seconds, got ${ra}`);
  assert.match(ms ?? '', /^\d+$/, `retry-after-ms is a whole number, got ${ms}`);
  const retryAfter = Number(ra);
  const retryMs = Number(ms);
  assert.ok(retryAfter >= 1, `Retry-After >= 1, got ${retryAfter}`);
  assert.equal(retryAfter, Math.max(1, Math.ceil(retryMs / 1000)),
    `Retry-After ${retryAfter} matches retry-after-ms ${retryMs}`);
  return { retryAfter, ms: retryMs };
}

/** Sends `fn()` and notes when it was sent and answered (performance.now() ms). */
async function timed(fn) {
  const sent = performance.now();
  const res = await fn();
  return Object.assign(res, { sent, received: performance.now() });
}

/**
 * A wait the server computes from a bucket charged at `from.sent` or later:
 * `baseMs` if asked at once, shrinking one-to-one with the real time since.
 */
function assertWait(ms, baseMs, from, to) {
  const since = to.received - from.sent;
  assert.ok(ms <= baseMs + 1 && ms >= baseMs - since - 1,
    `retry-after-ms ${ms}, expected ${(baseMs - since).toFixed(0)}..${baseMs} (${since.toFixed(0)} ms passed)`);
}

/**
 * A client that does not wait keeps getting 429 (a 429 is not charged, so
 * nothing changes) until the bucket charged at `from.sent` can have refilled,
 * `refillMs` later at the earliest. Sends up to `n` requests while that moment
 * is ahead, so a busy machine sends fewer, never a wrong one: each answered
 * before it must be 429; one answered after may be either. Returns the counts.
 */
async function assertKeptOut(send, limit, from, refillMs, n) {
  const seen = { limited: 0, ok: 0 };
  for (let i = 0; i < n && performance.now() < from.sent + refillMs; i++) {
    const r = await timed(() => send(i));
    if (r.status === 200 && r.received >= from.sent + refillMs) { seen.ok++; continue; }
    assert429(r, limit);
    seen.limited++;
  }
  return seen;
}

async function withServer(args, config, fn) {
  const server = await startServer({ args: ['--timing', 'instant', '--seed', '11', ...args], config });
  try {
    await fn(server);
  } finally {
    await assertNoSlotsHeld(server);
    const r = await server.stop();
    assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
  }
}

/** Limits config: everything out of the way except `over`. */
function limitsConfig(over, extra = {}) {
  const big = fixed(1e9);
  return {
    accounts: {
      limits: {
        requests_per_min: big, prompt_tps: big, uncached_prompt_tps: big, generated_tps: big,
        ...over,
      },
      ...extra,
    },
  };
}

async function accountTiers(server, keyId) {
  const r = await get(server, `/admin/accounts/${keyId}`, {});
  assert.equal(r.status, 200, r.text);
  return r.json.tiers;
}

test('requests per minute: 429 names "requests"; waiting Retry-After succeeds, not waiting does not', async () => {
  // 2 requests a simulated minute; at --time-scale 60 the bucket refills one
  // request every 0.5 s real (5 s at --time-scale 6 under valgrind, where
  // three requests alone can take longer than half a second).
  const scale = WRAPPED ? 6 : 60;
  const refillMs = 30000 / scale;
  await withServer(['--time-scale', String(scale)], limitsConfig({ requests_per_min: fixed(2) }), async (server) => {
    const key = 'acct-requests';
    const a = await timed(() => chat(server, key, 'r1'));
    const b = await chat(server, key, 'r2');
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.equal(a.headers.get('x-ratelimit-limit-requests'), '2');
    const keyId = a.headers.get('x-fleetmock-key-id');
    assert.match(keyId, /^k-[0-9a-f]{12}$/);

    const c = await timed(() => chat(server, key, 'r3'));
    const { retryAfter, ms } = assert429(c, 'requests');
    assert.ok(c.json.error.message.includes('requests per minute'), c.json.error.message);
    // One request short, refilling at 2 per 60 s simulated = 30 s simulated.
    assertWait(ms, refillMs, a, c);
    assert.equal(retryAfter, Math.ceil(refillMs / 1000));
    assert.equal(c.headers.get('x-ratelimit-remaining-requests'), '0');

    // A client that does not wait keeps getting 429 (a 429 is not charged, so nothing changes).
    const again = await assertKeptOut((i) => chat(server, key, `again${i}`), 'requests', a, refillMs, 5);

    // One that sleeps Retry-After gets through.
    await sleep(retryAfter * 1000);
    const d = await chat(server, key, 'r4');
    assert.equal(d.status, 200, d.text);

    const tiers = await accountTiers(server, keyId);
    assert.equal(tiers.standard.status_200, 3 + again.ok);
    assert.equal(tiers.standard.status_429, 1 + again.limited);
  });
});

test('prompt tokens per second: 429 names "prompt"; waiting Retry-After succeeds', async () => {
  const P = promptTokens(600); // 157
  assert.equal(P, 157);
  await withServer([], limitsConfig({ prompt_tps: fixed(200) }), async (server) => {
    const key = 'acct-prompt';
    const a = await timed(() => chat(server, key, 'p1'));
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.usage.prompt_tokens, P);
    assert.equal(a.headers.get('x-ratelimit-remaining-tokens-prompt'), String(200 - P));

    const b = await timed(() => chat(server, key, 'p2'));
    const { retryAfter, ms } = assert429(b, 'prompt');
    assert.ok(b.json.error.message.includes('prompt tokens per second'), b.json.error.message);
    assert.ok(b.json.error.message.includes('is 200'), `message gives the limit's value: ${b.json.error.message}`);
    // 157 needed, 43 held, refilling at 200/s: 0.57 s.
    assertWait(ms, 570, a, b);
    assert.equal(retryAfter, 1);

    await assertKeptOut((i) => chat(server, key, `again${i}`), 'prompt', a, 570, 3);
    await sleep(retryAfter * 1000);
    const c = await chat(server, key, 'p3');
    assert.equal(c.status, 200, c.text);

    // A prompt bigger than the whole bucket still passes when the bucket is full.
    await sleep(1100);
    const big = await chat(server, key, 'big', { bytes: 2000 });
    assert.equal(big.status, 200, big.text);
    assert.equal(big.headers.get('x-ratelimit-remaining-tokens-prompt'), '0');
  });
});

test('uncached prompt tokens per second: 429 names "uncached_prompt"; cached tokens do not count', async () => {
  const P = promptTokens(600); // 157; "user\n" + 600 + "\n" = 606 bytes = 9 blocks = 144 cached
  await withServer([], limitsConfig({ uncached_prompt_tps: fixed(200) }), async (server) => {
    const key = 'acct-uncached';
    const aff = { 'x-session-affinity': 'u-session' };
    const a = await timed(() => chat(server, key, 'u1', { headers: aff }));
    assert.equal(a.status, 200, a.text);
    assert.equal(a.headers.get('x-ratelimit-remaining-tokens-cache-adjusted-prompt'), String(200 - P));

    // The same prompt again on the same replica: 144 cached, only 13 uncached to charge.
    const b = await timed(() => chat(server, key, 'u1', { headers: aff }));
    assert.equal(b.status, 200, b.text);
    assert.equal(b.json.usage.prompt_tokens_details.cached_tokens, 144);
    // 43 left, 13 charged, plus what refilled (200/s) in between.
    const left = Number(b.headers.get('x-ratelimit-remaining-tokens-cache-adjusted-prompt'));
    const refillMax = Math.ceil(200 * (b.received - a.sent) / 1000);
    assert.ok(left >= 200 - P - (P - 144) && left <= 200 - P - (P - 144) + refillMax,
      `remaining uncached ${left}, expected 30..${30 + refillMax}`);

    // A fresh prompt needs all 157 uncached: refused on "uncached_prompt".
    const c = await timed(() => chat(server, key, 'u2', { headers: aff }));
    const { retryAfter, ms } = assert429(c, 'uncached_prompt');
    assert.ok(c.json.error.message.includes('uncached prompt tokens per second'), c.json.error.message);
    assertWait(ms, 635, a, c); // (157 - 30) / 200 s

    await assertKeptOut((i) => chat(server, key, `again${i}`), 'uncached_prompt', a, 635, 3);
    await sleep(retryAfter * 1000);
    const d = await chat(server, key, 'u3');
    assert.equal(d.status, 200, d.text);
  });
});

test('generated tokens per second: a 200-token answer on a 50/s limit puts the next request in debt', async () => {
  await withServer(['--time-scale', '10'], limitsConfig({ generated_tps: fixed(50) }), async (server) => {
    const key = 'acct-generated';
    const a = await timed(() => chat(server, key, 'g1', { out: 200 }));
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.usage.completion_tokens, 200);
    assert.equal(a.json.choices[0].finish_reason, 'length');

    const b = await timed(() => chat(server, key, 'g2'));
    const { retryAfter, ms } = assert429(b, 'generated');
    assert.ok(b.json.error.message.includes('generated tokens per second'), b.json.error.message);
    assert.equal(b.headers.get('x-ratelimit-remaining-tokens-generated'), '0');
    // 150 tokens of debt at 50/s = 3 s simulated = 0.3 s real at --time-scale 10.
    assertWait(ms, 300, a, b);
    assert.equal(retryAfter, 1);

    await assertKeptOut((i) => chat(server, key, `again${i}`), 'generated', a, 300, 3);
    await sleep(retryAfter * 1000);
    const c = await chat(server, key, 'g3');
    assert.equal(c.status, 200, c.text);
  });
});

/**
 * Checks a spent-budget answer: 402 in the route's error shape, saying what
 * to change, and nothing an SDK would retry on (Stainless SDKs retry 408,
 * 409, 429, >= 500 and x-should-retry: true; never 402).
 */
function assert402(res, shape = 'openai') {
  assert.equal(res.status, 402, `expected 402 for a spent budget, got ${res.status}: ${res.text}`);
  if (shape === 'openai') {
    const err = res.json && res.json.error;
    assert.ok(err, `402 body is an error object: ${res.text}`);
    assert.equal(err.type, 'insufficient_quota');
    assert.equal(err.code, 'BUDGET_EXCEEDED');
    assert.match(err.message, /budget_usd/, 'the message names the setting to raise');
  } else {
    assert.equal(res.json.type, 'error');
    assert.equal(res.json.error.type, 'billing_error');
    assert.match(res.json.error.message, /budget_usd/);
  }
  assert.equal(res.headers.get('retry-after'), null, 'no Retry-After on a 402');
  assert.equal(res.headers.get('retry-after-ms'), null, 'no retry-after-ms on a 402');
  assert.equal(res.headers.get('x-should-retry'), 'false');
}

test('budget: spending past budget_usd answers 402 BUDGET_EXCEEDED, with no retry advice', async () => {
  // Each request: 407 prompt tokens at $0.95/M + 5 output at $4/M = $0.00040665.
  const P = promptTokens(1600);
  assert.equal(P, 407);
  const cost = (P * 0.95 + 5 * 4.0) / 1e6;
  await withServer([], limitsConfig({ budget_usd: 0.001 }), async (server) => {
    const key = 'acct-budget';
    let keyId = null;
    for (let i = 0; i < 3; i++) { // spent before each: 0, 0.00041, 0.00081 — all under $0.001
      const r = await chat(server, key, `b${i}`, { bytes: 1600 });
      assert.equal(r.status, 200, `request ${i}: ${r.text}`);
      keyId = r.headers.get('x-fleetmock-key-id');
    }
    // A request is billed as it ends, which on several loops (workers3) may be a
    // moment after its answer reached us: wait (bounded) for the third bill.
    let tiers = await accountTiers(server, keyId);
    for (let k = 0; k < 200 && tiers.standard.cost_usd < 3 * cost - 1e-9; k++) {
      await new Promise((r) => setTimeout(r, 10));
      tiers = await accountTiers(server, keyId);
    }
    assert.ok(Math.abs(tiers.standard.cost_usd - 3 * cost) < 1e-9, `cost ${tiers.standard.cost_usd} vs ${3 * cost}`);

    for (let i = 0; i < 3; i++) {
      const r = await chat(server, key, `over${i}`, { bytes: 1600 });
      assert402(r);
      assert.ok(r.json.error.message.includes('0.0012'), `message gives the spend: ${r.json.error.message}`);
    }
    // The budget is the account's, not the model's.
    const other = await post(server, CHAT, {
      model: 'accounts/fireworks/models/glm-5p1', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1,
    }, bearer(key));
    assert402(other);
    // The Anthropic route answers in its own shape.
    const msg = await post(server, '/inference/v1/messages', {
      model: KIMI, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }],
    }, { 'x-api-key': key, Authorization: '' });
    assert402(msg, 'anthropic');
    // Another account is unaffected.
    const fresh = await chat(server, 'acct-budget-2', 'b0', { bytes: 1600 });
    assert.equal(fresh.status, 200, fresh.text);

    // Billed as 402s, not 429s: the account, its refusals by limit, and /metrics agree.
    tiers = await accountTiers(server, keyId);
    assert.equal(tiers.standard.status_402, 5);
    assert.equal(tiers.standard.status_429, 0);
    assert.equal(tiers.standard.status_200, 3);
    assert.ok(Math.abs(tiers.standard.cost_usd - 3 * cost) < 1e-9, 'a 402 costs nothing');
    const acc = (await get(server, `/admin/accounts/${keyId}`, {})).json;
    assert.equal(acc.limited_by.budget, 5);
    const m = await scrape(server);
    assert.equal(sum(m, 'fleetmock_budget_exceeded_total'), 5);
    assert.equal(sum(m, 'fleetmock_rate_limited_total'), 0, 'a 402 is not a 429');
    assert.ok(!has(m, 'fleetmock_rate_limited_total', { limit: 'budget' }));
    assert.equal(sum(m, 'fleetmock_requests_total', { status: '402' }), 5);
  });
});

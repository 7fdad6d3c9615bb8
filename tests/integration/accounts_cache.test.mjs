// Prompt cache (SPEC §5 "Prompt cache"): replica-local, per account and
// isolation key, in blocks of 64 bytes of the serialized prompt
// ("role\n" + content + "\n" per message) = 16 tokens. The replica is picked
// by x-session-affinity, else prompt_cache_key, else user, else a seeded
// random draw — so without an affinity key a follow-up turn lands on its
// first turn's replica about 1 time in 4 (default pool: 4 replicas).
// Cached tokens show in fireworks-cached-prompt-tokens,
// usage.prompt_tokens_details.cached_tokens and perf_metrics, and skip
// prefill: TTFT = ttft_ms + uncached / prefill_tps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, assertNoSlotsHeld } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const BIG = { start: 1e9, ceiling: 1e9 };
const NO_LIMITS = { requests_per_min: BIG, prompt_tps: BIG, uncached_prompt_tps: BIG, generated_tps: BIG };
const bearer = (key) => ({ Authorization: `Bearer ${key}` });
const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);

function text(tag, bytes) {
  const s = `${tag} ` + 'the quick brown fox jumps over the lazy dog '.repeat(Math.ceil(bytes / 44) + 1);
  return s.slice(0, bytes);
}
const serializedBytes = (messages) => messages.reduce((n, m) => n + Buffer.byteLength(m.role) + 1 + Buffer.byteLength(m.content) + 1, 0);
const promptTokens = (messages) => messages.reduce((n, m) => n + Math.ceil(Buffer.byteLength(m.content) / 4) + 4, 3);
/** Tokens a cache holding exactly these messages' blocks serves: whole 64-byte blocks x 16. */
const blockTokens = (messages) => Math.floor(serializedBytes(messages) / 64) * 16;

function chat(server, key, messages, { headers = {}, extra = {} } = {}) {
  return post(server, CHAT, { model: KIMI, messages, max_tokens: 4, ...extra }, { ...bearer(key), ...headers });
}
const cachedHeader = (r) => Number(r.headers.get('fireworks-cached-prompt-tokens'));

async function withServer(args, config, fn) {
  const server = await startServer({ args: ['--seed', '21', ...args], config });
  try {
    await fn(server);
  } finally {
    await assertNoSlotsHeld(server);
    const r = await server.stop();
    assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
  }
}

test('a long prompt sent twice with the same x-session-affinity is cached and prefills faster', async () => {
  // Realistic timing with a slow prefill, so the uncached part dominates TTFT.
  const config = {
    pools: { 'kimi-k2p6': { ttft_ms: 100, prefill_tps: 2000, jitter: 0, decode_tps: 200 } },
    accounts: { limits: NO_LIMITS },
  };
  await withServer([], config, async (server) => {
    const messages = [{ role: 'user', content: text('long-prompt', 4000) }];
    const P = promptTokens(messages); // 1007
    const cached = blockTokens(messages); // 4006 bytes -> 62 blocks -> 992
    assert.equal(P, 1007);
    assert.equal(cached, 992);
    const opts = { headers: { 'x-session-affinity': 'session-long' }, extra: { perf_metrics_in_response: true } };

    const a = await chat(server, 'cache-long', messages, opts);
    const b = await chat(server, 'cache-long', messages, opts);
    for (const r of [a, b]) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.usage.prompt_tokens, P);
      assert.equal(r.headers.get('fireworks-prompt-tokens'), String(P));
    }
    assert.equal(a.headers.get('x-fleetmock-replica'), b.headers.get('x-fleetmock-replica'), 'same affinity, same replica');

    assert.equal(cachedHeader(a), 0);
    assert.equal(a.json.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(a.json.perf_metrics['cached-prompt-tokens'], 0);

    assert.equal(cachedHeader(b), cached);
    assert.equal(b.json.usage.prompt_tokens_details.cached_tokens, cached);
    assert.equal(b.json.perf_metrics['cached-prompt-tokens'], cached);
    assert.equal(b.json.perf_metrics['prompt-tokens'], P);
    assert.ok(cached >= 0.9 * P, `cached ${cached} of ${P}`);

    // TTFT = ttft_ms + uncached / prefill_tps.
    const ttftA = Number(a.headers.get('fireworks-server-time-to-first-token'));
    const ttftB = Number(b.headers.get('fireworks-server-time-to-first-token'));
    const tol = WRAPPED ? 0.05 : 0.003;
    assert.ok(Math.abs(ttftA - (0.1 + P / 2000)) <= tol, `first TTFT ${ttftA}, expected ${0.1 + P / 2000}`);
    assert.ok(Math.abs(ttftB - (0.1 + (P - cached) / 2000)) <= tol, `second TTFT ${ttftB}, expected ${0.1 + (P - cached) / 2000}`);
    assert.ok(ttftB < ttftA - 0.4, `cached prompt skips prefill: ${ttftA} s -> ${ttftB} s`);
    assert.equal(b.json.perf_metrics['server-time-to-first-token'], ttftB);
  });
});

/** Runs `n` two-turn conversations; returns how many second turns reported cached tokens. */
async function conversations(server, key, n, affinity) {
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const headers = affinity ? { 'x-session-affinity': `conv-${key}-${i}` } : {};
    // Every conversation differs from its first byte, so only its own turn 1 can be hit.
    const turn1 = [{ role: 'user', content: text(`conversation ${i} of ${key}:`, 300) }];
    const r1 = await chat(server, key, turn1, { headers });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.json.usage.prompt_tokens_details.cached_tokens, 0, `turn 1 of ${i} has nothing cached`);
    const turn2 = [...turn1, { role: 'assistant', content: r1.json.choices[0].message.content },
      { role: 'user', content: 'Thanks. And what happens next?' }];
    const r2 = await chat(server, key, turn2, { headers });
    assert.equal(r2.status, 200, r2.text);
    const c = r2.json.usage.prompt_tokens_details.cached_tokens;
    assert.equal(cachedHeader(r2), c);
    if (c > 0) {
      hits++;
      assert.equal(c, blockTokens(turn1), `a hit serves turn 1's whole blocks (conversation ${i})`);
      assert.equal(r2.headers.get('x-fleetmock-replica'), r1.headers.get('x-fleetmock-replica'));
    }
  }
  return hits;
}

test('two-turn conversations: 20-30 % hit without an affinity key, 100 % with one', async (t) => {
  const N = WRAPPED ? 100 : 400;
  await withServer(['--timing', 'instant'], { accounts: { limits: NO_LIMITS } }, async (server) => {
    const random = await conversations(server, 'cache-conv-random', N, false);
    t.diagnostic(`without affinity: ${random}/${N} second turns cached`);
    assert.ok(random >= 0.2 * N && random <= 0.3 * N,
      `without affinity ${random}/${N} second turns hit (4 replicas: about 1 in 4)`);
    const pinned = await conversations(server, 'cache-conv-pinned', N, true);
    assert.equal(pinned, N, 'with a per-conversation x-session-affinity every second turn hits');
  });
});

test('prompt_cache_key and user pick the replica when there is no x-session-affinity', async () => {
  await withServer(['--timing', 'instant'], { accounts: { limits: NO_LIMITS } }, async (server) => {
    for (const [field, value] of [['prompt_cache_key', 'pck-1'], ['user', 'user-1']]) {
      const messages = [{ role: 'user', content: text(`by ${field}`, 1000) }];
      for (let i = 0; i < 3; i++) {
        const r = await chat(server, 'cache-fields', messages, { extra: { [field]: value } });
        assert.equal(r.status, 200, r.text);
        assert.equal(cachedHeader(r), i === 0 ? 0 : blockTokens(messages), `${field}, call ${i}`);
      }
    }
    // x-session-affinity wins over prompt_cache_key, which wins over user.
    const messages = [{ role: 'user', content: text('precedence', 1000) }];
    const pick = async (headers, extra) => (await chat(server, 'cache-fields', messages, { headers, extra })).headers.get('x-fleetmock-replica');
    const byHeader = await pick({ 'x-session-affinity': 'h-1' }, {});
    for (let i = 0; i < 5; i++) {
      assert.equal(await pick({ 'x-session-affinity': 'h-1' }, { prompt_cache_key: `p-${i}`, user: `u-${i}` }), byHeader);
    }
    const byKey = await pick({}, { prompt_cache_key: 'p-1' });
    for (let i = 0; i < 5; i++) assert.equal(await pick({}, { prompt_cache_key: 'p-1', user: `u-${i}` }), byKey);
  });
});

test('caches are per account and per isolation key', async () => {
  await withServer(['--timing', 'instant'], { accounts: { limits: NO_LIMITS } }, async (server) => {
    const messages = [{ role: 'user', content: text('shared prompt', 2000) }];
    const full = blockTokens(messages);
    const aff = { 'x-session-affinity': 'shared-session' };
    assert.equal(cachedHeader(await chat(server, 'cache-acct-a', messages, { headers: aff })), 0);
    const again = await chat(server, 'cache-acct-a', messages, { headers: aff });
    assert.equal(cachedHeader(again), full);

    // Another account, same prompt, same replica: nothing cached.
    const other = await chat(server, 'cache-acct-b', messages, { headers: aff });
    assert.equal(other.headers.get('x-fleetmock-replica'), again.headers.get('x-fleetmock-replica'));
    assert.equal(cachedHeader(other), 0, "another account never hits this account's prefixes");
    assert.equal(other.json.usage.prompt_tokens_details.cached_tokens, 0);

    // Same account with an isolation key (header): a separate cache.
    const iso = { ...aff, 'x-prompt-cache-isolation-key': 'tenant-1' };
    assert.equal(cachedHeader(await chat(server, 'cache-acct-a', messages, { headers: iso })), 0);
    assert.equal(cachedHeader(await chat(server, 'cache-acct-a', messages, { headers: iso })), full);
    // The body field names the same isolation key as the header.
    assert.equal(cachedHeader(await chat(server, 'cache-acct-a', messages,
      { headers: aff, extra: { prompt_cache_isolation_key: 'tenant-1' } })), full);
    // A different isolation key in the body: separate again.
    assert.equal(cachedHeader(await chat(server, 'cache-acct-a', messages,
      { headers: aff, extra: { prompt_cache_isolation_key: 'tenant-2' } })), 0);
    // No isolation key still finds the account's own prefixes.
    assert.equal(cachedHeader(await chat(server, 'cache-acct-a', messages, { headers: aff })), full);
  });
});

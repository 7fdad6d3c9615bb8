// What a rate limit applies to (SPEC §5): per account (API key) and per
// model id — Fast router ids counted apart from regular ids, Priority and
// Standard sharing one set of buckets. Limits come before the fleet: a 429
// never takes a slot or a queue place, and a request the fleet sheds (503)
// is not charged. reject_unknown_keys turns unlisted keys away with 401.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, get, assertNoSlotsHeld, sleep, LATE_MS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const KIMI_FAST = 'accounts/fireworks/routers/kimi-k2p6-fast';
const KIMI_K2P5 = 'accounts/fireworks/models/kimi-k2p5';
const CHAT = '/inference/v1/chat/completions';
const fixed = (n) => ({ start: n, ceiling: n });
const bearer = (key) => ({ Authorization: `Bearer ${key}` });

function body(model, tag, extra = {}) {
  return { model, messages: [{ role: 'user', content: `${tag}: say something short` }], max_tokens: 3, ...extra };
}
const chat = (server, key, model, tag, extra = {}) => post(server, CHAT, body(model, tag, extra), bearer(key));

function assertLimited(res, limit = 'requests') {
  assert.equal(res.status, 429, res.text);
  assert.equal(res.json.error.code, 'RATE_LIMITED');
  assert.ok(res.json.error.message.includes(`(limit "${limit}")`), res.json.error.message);
}

async function withServer(args, config, fn) {
  const server = await startServer({ args: ['--seed', '9', ...args], config });
  try {
    await fn(server);
  } finally {
    await assertNoSlotsHeld(server);
    const r = await server.stop();
    assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
  }
}

async function admin(server, method, path, payload) {
  const res = await fetch(server.baseURL + path, {
    method,
    headers: payload === undefined ? {} : { 'Content-Type': 'application/json' },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${method} ${path}: ${text}`);
  return JSON.parse(text);
}
const poolState = async (server, pool = 'kimi-k2p6') => (await admin(server, 'GET', '/admin/state')).pools[pool];

// Two requests a minute for every account and model; nothing refills noticeably during a test.
const TWO_RPM = { accounts: { limits: { requests_per_min: fixed(2) } } };

test('Fast and regular model ids are counted apart', async () => {
  await withServer(['--timing', 'instant'], TWO_RPM, async (server) => {
    for (let i = 0; i < 2; i++) assert.equal((await chat(server, 'scope-fast', KIMI, `r${i}`)).status, 200);
    assertLimited(await chat(server, 'scope-fast', KIMI, 'r2'));
    for (let i = 0; i < 2; i++) {
      const r = await chat(server, 'scope-fast', KIMI_FAST, `f${i}`);
      assert.equal(r.status, 200, `kimi-k2p6-fast has its own limit: ${r.text}`);
      assert.equal(r.headers.get('x-ratelimit-remaining-requests'), String(1 - i));
    }
    assertLimited(await chat(server, 'scope-fast', KIMI_FAST, 'f2'));
    // A different regular model is a different model too.
    assert.equal((await chat(server, 'scope-fast', KIMI_K2P5, 'k0')).status, 200);
  });
});

test('Priority and Standard share one limit', async () => {
  await withServer(['--timing', 'instant'], TWO_RPM, async (server) => {
    // Exhausted on Standard: Priority is refused too.
    for (let i = 0; i < 2; i++) assert.equal((await chat(server, 'scope-std', KIMI, `s${i}`)).status, 200);
    const p = await chat(server, 'scope-std', KIMI, 'p', { service_tier: 'priority' });
    assertLimited(p);
    // And the other way round.
    const a = await chat(server, 'scope-pri', KIMI, 'p0', { service_tier: 'priority' });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.service_tier, 'priority');
    assert.equal(a.headers.get('x-ratelimit-remaining-requests'), '1');
    const b = await chat(server, 'scope-pri', KIMI, 's0');
    assert.equal(b.status, 200, b.text);
    assert.equal(b.headers.get('x-ratelimit-remaining-requests'), '0', 'Standard counts what Priority used');
    assertLimited(await chat(server, 'scope-pri', KIMI, 's1'));
    assertLimited(await chat(server, 'scope-pri', KIMI, 'p1', { service_tier: 'priority' }));
  });
});

test('two API keys have independent limits', async () => {
  await withServer(['--timing', 'instant'], TWO_RPM, async (server) => {
    const a1 = await chat(server, 'scope-key-a', KIMI, 'a0');
    const a2 = await chat(server, 'scope-key-a', KIMI, 'a1');
    assert.equal(a1.status, 200);
    assert.equal(a2.status, 200);
    assertLimited(await chat(server, 'scope-key-a', KIMI, 'a2'));
    const b = await chat(server, 'scope-key-b', KIMI, 'b0');
    assert.equal(b.status, 200, b.text);
    assert.equal(b.headers.get('x-ratelimit-remaining-requests'), '1', 'key b starts with its own full bucket');
    assert.notEqual(b.headers.get('x-fleetmock-key-id'), a1.headers.get('x-fleetmock-key-id'));
    const accA = await admin(server, 'GET', `/admin/accounts/${a1.headers.get('x-fleetmock-key-id')}`);
    const accB = await admin(server, 'GET', `/admin/accounts/${b.headers.get('x-fleetmock-key-id')}`);
    assert.equal(accA.tiers.standard.status_200, 2);
    assert.equal(accA.tiers.standard.status_429, 1);
    assert.equal(accB.tiers.standard.status_200, 1);
    assert.equal(accB.tiers.standard.status_429, 0);
  });
});

/** Opens a streaming request and resolves once its headers arrived; `done` resolves with the body text. */
async function openStream(server, key, payload) {
  const res = await fetch(server.baseURL + CHAT, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...bearer(key) },
    body: JSON.stringify({ ...payload, stream: true }),
  });
  return { status: res.status, done: res.text() };
}

test('a 429 never occupies a slot or a queue place, even on a saturated pool', async () => {
  // Two slots, a long Standard queue timeout: a request that queued would wait seconds.
  const config = {
    pools: { 'kimi-k2p6': { slots: 2, ttft_ms: 50, decode_tps: 50, jitter: 0, queue_timeout_ms: { standard: 10000 } } },
    accounts: { keys: { 'scope-limited': { name: 'limited', limits: { requests_per_min: fixed(1) } } } },
  };
  await withServer([], config, async (server) => {
    const first = await chat(server, 'scope-limited', KIMI, 'l0', { max_tokens: 1 });
    assert.equal(first.status, 200, first.text);
    const keyId = first.headers.get('x-fleetmock-key-id');

    // Fill both slots with 100-token streams (about 3 s at 50 tokens/s, slowed at full).
    const payload = body(KIMI, 'hog', { max_tokens: 100, ignore_eos: true });
    const hogs = [await openStream(server, 'scope-hog', payload), await openStream(server, 'scope-hog', payload)];
    for (const h of hogs) assert.equal(h.status, 200);
    let st = await poolState(server);
    assert.equal(st.in_flight.standard, 2);

    // An unlimited request now has to queue.
    const queued = chat(server, 'scope-other', KIMI, 'q0', { max_tokens: 1 });
    for (let i = 0; i < 100 && (st = await poolState(server)).queued.standard < 1; i++) await sleep(10);
    assert.equal(st.queued.standard, 1, 'the pool is saturated: an ordinary request queues');

    // The limited account is refused at once, before the queue.
    const t0 = performance.now();
    const refused = await Promise.all([0, 1, 2, 3, 4].map((i) => chat(server, 'scope-limited', KIMI, `l${i + 1}`)));
    const elapsed = performance.now() - t0;
    for (const r of refused) {
      assertLimited(r);
      assert.equal(r.headers.get('x-fleetmock-queue-ms'), null, 'a 429 never reached the fleet');
    }
    // No queue-ms header is the server's own word that they never queued; a
    // queued one would wait seconds for a hog to end. So this is lateness only.
    assert.ok(elapsed <= LATE_MS, `429s came back in ${elapsed.toFixed(0)} ms, not after queueing`);
    st = await poolState(server);
    assert.equal(st.in_flight.standard, 2, 'no slot taken by a 429');
    assert.equal(st.queued.standard, 1, 'no queue place taken by a 429');

    const acc = await admin(server, 'GET', `/admin/accounts/${keyId}`);
    assert.equal(acc.tiers.standard.status_200, 1);
    assert.equal(acc.tiers.standard.status_429, 5);
    assert.equal(acc.tiers.standard.status_503, 0);

    // The queued request gets a slot once a stream ends.
    const q = await queued;
    assert.equal(q.status, 200, q.text);
    for (const h of hogs) assert.match(await h.done, /data: \[DONE\]/);
    st = await poolState(server);
    assert.equal(st.in_flight.standard + st.queued.standard, 0);
  });
});

test('a request shed with 503 is not charged', async () => {
  // --time-scale 0.000001: refill is negligible (0.06 prompt token a real
  // second at the default 60000/s), so the remaining counts are exact.
  await withServer(['--timing', 'instant', '--time-scale', '0.000001'], null, async (server) => {
    const a = await chat(server, 'scope-shed', KIMI, 'x0');
    assert.equal(a.status, 200, a.text);
    const P = a.json.usage.prompt_tokens;
    const remPrompt = a.headers.get('x-ratelimit-remaining-tokens-prompt');
    const remUncached = a.headers.get('x-ratelimit-remaining-tokens-cache-adjusted-prompt');
    const remRequests = a.headers.get('x-ratelimit-remaining-requests');
    assert.equal(Number(remPrompt), 60000 - P);

    await admin(server, 'PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 2 });
    const shed = await chat(server, 'scope-shed', KIMI, 'x1');
    assert.equal(shed.status, 503, shed.text);
    assert.equal(shed.json.error.code, 'SERVICE_OVERLOADED');
    assert.equal(shed.headers.get('x-ratelimit-remaining-tokens-prompt'), remPrompt, 'prompt tokens not charged');
    assert.equal(shed.headers.get('x-ratelimit-remaining-tokens-cache-adjusted-prompt'), remUncached);
    assert.equal(shed.headers.get('x-ratelimit-remaining-requests'), remRequests, 'request not charged');

    await admin(server, 'PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 0 });
    const b = await chat(server, 'scope-shed', KIMI, 'x2');
    assert.equal(b.status, 200, b.text);
    assert.equal(Number(b.headers.get('x-ratelimit-remaining-tokens-prompt')), 60000 - P - b.json.usage.prompt_tokens);
    assert.equal(Number(b.headers.get('x-ratelimit-remaining-requests')), Number(remRequests) - 1);

    const acc = await admin(server, 'GET', `/admin/accounts/${a.headers.get('x-fleetmock-key-id')}`);
    assert.equal(acc.tiers.standard.status_503, 1);
    assert.equal(acc.tiers.standard.status_200, 2);
    assert.equal(acc.tiers.standard.prompt_tokens, P + b.json.usage.prompt_tokens);
  });
});

test('reject_unknown_keys: an unlisted key gets 401, a listed key 200', async () => {
  const config = { accounts: { reject_unknown_keys: true, keys: { 'scope-listed-key': { name: 'alice' } } } };
  await withServer(['--timing', 'instant'], config, async (server) => {
    const ok = await chat(server, 'scope-listed-key', KIMI, 'hello');
    assert.equal(ok.status, 200, ok.text);
    for (const key of ['test-key-123', 'scope-listed-key2', 'scope-listed-ke']) {
      const r = await chat(server, key, KIMI, 'hello');
      assert.equal(r.status, 401, `${key}: ${r.text}`);
      assert.equal(r.json.error.code, 'UNAUTHENTICATED');
      assert.equal(r.json.error.type, 'authentication_error');
      assert.equal(r.headers.get('x-fleetmock-key-id'), null);
    }
    const list = await admin(server, 'GET', '/admin/accounts');
    assert.deepEqual(list.accounts.map((a) => a.key_id), [ok.headers.get('x-fleetmock-key-id')],
      'only the listed key has an account');
  });
});

// SPEC §3: 401 for a "missing or unknown API key". Today only the inference
// routes consult accounts.keys; GET /v1/models answers 200 to any key.
test('reject_unknown_keys: GET /v1/models refuses an unlisted key too', async () => {
  const config = { accounts: { reject_unknown_keys: true, keys: { 'scope-listed-key': { name: 'alice' } } } };
  await withServer(['--timing', 'instant'], config, async (server) => {
    assert.equal((await get(server, '/v1/models', bearer('scope-listed-key'))).status, 200);
    const models = await get(server, '/v1/models', bearer('not-listed'));
    assert.equal(models.status, 401, `unlisted key on GET /v1/models: ${models.text}`);
  });
});

// Scripted faults (SPEC §6): POST/GET/DELETE /admin/faults and the
// x-fleetmock-fault header. Count faults fire exactly N times; probability 0
// never fires and 1 always does; the draws come from --seed; faults match by
// model, tier, API key and route; status faults answer in the route's own
// error shape; stream faults break real SDK streams the way a broken fleet
// would (an error event, a dropped connection, a stall).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, admin, stopChecked, assertNoSlotsHeld, NO_LIMITS, sleep, LATE_MS } from '../lib/server.mjs';

// The SDKs are installed once, for the conformance tests (npm ci in tests/conformance).
const NM = '../conformance/node_modules';
let oa = null;
let an = null;
let sdkError = null;
try {
  oa = await import(`${NM}/openai/index.mjs`);
  an = await import(`${NM}/@anthropic-ai/sdk/index.mjs`);
} catch (e) { sdkError = e; }
const needSdk = () => assert.ok(oa && an, `the openai and @anthropic-ai/sdk packages are missing: run \`npm ci --prefix tests/conformance\` (${sdkError?.message})`);

const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);
const SLOW = WRAPPED ? 5 : 1;
const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const GLM = 'accounts/fireworks/models/glm-5p1';
const KIMI_FAST = 'accounts/fireworks/routers/kimi-k2p6-fast';
const CHAT = '/inference/v1/chat/completions';
const COMPLETIONS = '/inference/v1/completions';
const MESSAGES = '/inference/v1/messages';




async function addFault(srv, body) {
  const r = await admin(srv, 'POST', '/admin/faults', body);
  assert.equal(r.status, 200, r.text);
  assert.ok(Number.isInteger(r.json.id) && r.json.id > 0, r.text);
  return r.json;
}

async function listFaults(srv) {
  const r = await admin(srv, 'GET', '/admin/faults');
  assert.equal(r.status, 200, r.text);
  return r.json.faults;
}

/** One inference request on any route; resolves {status, headers, json, text}. */
async function call(srv, { path = CHAT, model = KIMI, tier = null, key = 'chaos-faults', headers = {}, stream = false, maxTokens = 2 } = {}) {
  let body;
  if (path.endsWith('/completions') && !path.endsWith('/chat/completions')) body = { model, prompt: 'hello', max_tokens: maxTokens };
  else body = { model, max_tokens: maxTokens, messages: [{ role: 'user', content: 'hello' }] };
  if (tier) body.service_tier = tier;
  if (stream) body.stream = true;
  const res = await fetch(srv.baseURL + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

/** Runs fn(i) for i in [0, n) with at most `concurrency` at a time; resolves the results in order. */
async function pool(n, concurrency, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    for (let k = 0; k < n; k++) {
      const i = next++;
      if (i >= n) return;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

async function inFlight(srv, pool = 'kimi-k2p6') {
  const r = await admin(srv, 'GET', '/admin/state');
  return r.json.pools[pool].in_flight;
}

/** Polls (bounded) until the pool holds no slot; returns the last in_flight seen. */
async function waitIdle(srv, poolName = 'kimi-k2p6', maxMs = 3000) {
  const deadline = performance.now() + maxMs * SLOW;
  let f;
  for (let i = 0; i < 1000 && performance.now() < deadline; i++) {
    f = await inFlight(srv, poolName);
    if (f.priority + f.standard + f.background === 0) return f;
    await sleep(10);
  }
  return f;
}

let server;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '21'], config: NO_LIMITS });
});
after(async () => {
  await assertNoSlotsHeld(server);
  const r = await server.stop();
  assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
});

const reset = async () => assert.equal((await admin(server, 'POST', '/admin/reset')).status, 200);

// ---------------------------------------------------------------------------

test('count fault: the next 3 Standard calls to glm-5p1 get 503, then it recovers', async () => {
  await reset();
  const f = await addFault(server, { match: { model: GLM, tier: 'standard' }, action: { status: 503 }, count: 3 });
  assert.deepEqual(f, { id: f.id, match: { model: GLM, tier: 'standard' }, action: { status: 503 }, count_left: 3, fired: 0 });
  // Calls the fault does not match leave its count alone.
  assert.equal((await call(server, { model: GLM, tier: 'priority' })).status, 200);
  assert.equal((await call(server, { model: KIMI })).status, 200);
  assert.equal((await call(server, { model: GLM, tier: 'background' })).status, 200);
  const statuses = [];
  for (let i = 0; i < 6; i++) {
    const r = await call(server, { model: GLM });
    statuses.push(r.status);
    if (r.status === 503) {
      assert.equal(r.json.error.code, 'SERVICE_OVERLOADED');
      assert.equal(r.json.error.type, 'server_error');
      assert.match(r.json.error.message, /injected fault: status 503/);
    }
  }
  assert.deepEqual(statuses, [503, 503, 503, 200, 200, 200]);
  const [listed] = await listFaults(server);
  assert.equal(listed.id, f.id);
  assert.equal(listed.fired, 3);
  assert.equal(listed.count_left, 0);
  // The account saw three 503s on Standard.
  const acc = (await admin(server, 'GET', '/admin/accounts')).json.accounts[0];
  assert.equal(acc.tiers.standard.status_503, 3);
  assert.equal(acc.tiers.standard.status_200, 4);
});

test('probability 0 never fires and 1 always fires over 10 000 requests (concurrency 100)', async () => {
  await reset();
  const never = await addFault(server, { match: { route: 'chat/completions' }, action: { status: 500 }, probability: 0 });
  const always = await addFault(server, { match: { route: 'chat/completions' }, action: { status: 502 }, probability: 1 });
  assert.equal(never.probability, 0);
  assert.equal(always.probability, 1);
  const N = 10000;
  const t0 = performance.now();
  const statuses = await pool(N, 100, async (i) => (await call(server, { key: `p-${i % 7}` })).status);
  const counts = {};
  for (const s of statuses) counts[s] = (counts[s] || 0) + 1;
  assert.deepEqual(counts, { 502: N }, `statuses over ${N} requests`);
  const listed = await listFaults(server);
  assert.equal(listed.find((f) => f.id === never.id).fired, 0);
  assert.equal(listed.find((f) => f.id === always.id).fired, N);
  const metrics = await (await fetch(server.baseURL + '/metrics')).text();
  assert.match(metrics, new RegExp(`^fleetmock_faults_fired_total ${N}$`, 'm'));
  assert.ok(performance.now() - t0 < 120000 * SLOW);
});

test('the same --seed gives the same fired sequence of a 0.5 fault over 300 requests; another seed differs; reset replays it', async () => {
  const fault = { match: { model: KIMI }, action: { status: 503 }, probability: 0.5 };
  async function sequence(srv) {
    await addFault(srv, fault);
    let s = '';
    for (let i = 0; i < 300; i++) s += (await call(srv, {})).status === 503 ? '1' : '0';
    return s;
  }
  const servers = [];
  try {
    for (const seed of [31, 31, 32]) servers.push(await startServer({ args: ['--timing', 'instant', '--seed', String(seed)], config: NO_LIMITS }));
    const [a, b, c] = [await sequence(servers[0]), await sequence(servers[1]), await sequence(servers[2])];
    const ones = [...a].filter((x) => x === '1').length;
    assert.ok(ones > 100 && ones < 200, `${ones}/300 fired at p = 0.5`);
    assert.equal(a, b, 'same seed, same sequence');
    assert.notEqual(a, c, 'another seed, another sequence');
    assert.equal((await listFaults(servers[0]))[0].fired, ones);
    // POST /admin/reset reseeds the fault generator: the run replays exactly.
    assert.equal((await admin(servers[0], 'POST', '/admin/reset')).status, 200);
    assert.deepEqual(await listFaults(servers[0]), []);
    assert.equal(await sequence(servers[0]), a, 'after reset, the same sequence again');
  } finally {
    for (const s of servers) await stopChecked(s);
  }
});

test('match by model, tier, api_key and route; every field must match', async () => {
  await reset();
  // model
  let f = await addFault(server, { match: { model: GLM }, action: { status: 500 } });
  assert.equal(f.probability, 1, 'neither count nor probability: every matching request');
  assert.equal((await call(server, { model: GLM })).status, 500);
  assert.equal((await call(server, { model: GLM, tier: 'priority' })).status, 500);
  assert.equal((await call(server, { model: KIMI })).status, 200);
  assert.equal((await admin(server, 'DELETE', `/admin/faults/${f.id}`)).status, 200);
  // tier
  f = await addFault(server, { match: { tier: 'priority' }, action: { status: 503 } });
  assert.equal((await call(server, { tier: 'priority' })).status, 503);
  assert.equal((await call(server, { model: GLM, tier: 'priority' })).status, 503);
  assert.equal((await call(server, {})).status, 200);
  assert.equal((await call(server, { tier: 'background' })).status, 200);
  assert.equal((await call(server, { model: KIMI_FAST })).status, 200);
  await admin(server, 'DELETE', `/admin/faults/${f.id}`);
  f = await addFault(server, { match: { tier: 'fast' }, action: { status: 503 } });
  assert.equal((await call(server, { model: KIMI_FAST })).status, 503);
  assert.equal((await call(server, {})).status, 200);
  await admin(server, 'DELETE', `/admin/faults/${f.id}`);
  // api_key: shown only as its key id, never the key itself
  f = await addFault(server, { match: { api_key: 'sk-victim-7f3a' }, action: { status: 429 } });
  const victim = await call(server, { key: 'sk-victim-7f3a' });
  assert.equal(victim.status, 429);
  assert.equal(victim.json.error.code, 'RATE_LIMITED');
  assert.equal(victim.headers.get('retry-after'), '1');
  assert.equal((await call(server, { key: 'sk-bystander' })).status, 200);
  assert.equal((await call(server, { key: 'sk-victim-7f3' })).status, 200, 'a prefix of the key is another key');
  const listed = await admin(server, 'GET', '/admin/faults');
  assert.equal(listed.json.faults[0].match.key_id, victim.headers.get('x-fleetmock-key-id'));
  assert.ok(!listed.text.includes('sk-victim'), `the key leaks into GET /admin/faults: ${listed.text}`);
  assert.ok(!f.match.api_key && f.match.key_id, 'the POST answer shows the key id, not the key');
  await admin(server, 'DELETE', `/admin/faults/${f.id}`);
  // route
  f = await addFault(server, { match: { route: 'messages' }, action: { status: 503 } });
  assert.equal((await call(server, { path: MESSAGES })).status, 503);
  assert.equal((await call(server, { path: '/v1/messages' })).status, 503);
  assert.equal((await call(server, {})).status, 200);
  assert.equal((await call(server, { path: COMPLETIONS })).status, 200);
  await admin(server, 'DELETE', `/admin/faults/${f.id}`);
  f = await addFault(server, { match: { route: 'completions' }, action: { status: 500 } });
  assert.equal((await call(server, { path: COMPLETIONS })).status, 500);
  assert.equal((await call(server, { path: '/v1/completions' })).status, 500);
  assert.equal((await call(server, {})).status, 200);
  assert.equal((await call(server, { path: MESSAGES })).status, 200);
  await admin(server, 'DELETE', `/admin/faults/${f.id}`);
  // all of them at once
  f = await addFault(server, { match: { model: GLM, tier: 'priority', api_key: 'sk-all', route: 'chat/completions' }, action: { status: 503 } });
  assert.equal((await call(server, { model: GLM, tier: 'priority', key: 'sk-all' })).status, 503);
  assert.equal((await call(server, { model: KIMI, tier: 'priority', key: 'sk-all' })).status, 200);
  assert.equal((await call(server, { model: GLM, key: 'sk-all' })).status, 200);
  assert.equal((await call(server, { model: GLM, tier: 'priority', key: 'sk-other' })).status, 200);
  assert.equal((await call(server, { path: COMPLETIONS, model: GLM, tier: 'priority', key: 'sk-all' })).status, 200);
  assert.equal((await listFaults(server))[0].fired, 1);
});

test('GET lists faults with their fired counts; DELETE one, then all; unknown ids 404; other methods 405', async () => {
  await reset();
  const a = await addFault(server, { match: { model: GLM }, action: { status: 500 }, count: 5 });
  const b = await addFault(server, { match: { model: KIMI }, action: { status: 503 }, probability: 1 });
  const c = await addFault(server, { match: { route: 'messages' }, action: { stream: 'error', after_tokens: 4 }, probability: 0.25 });
  assert.deepEqual([a.id, b.id, c.id], [a.id, a.id + 1, a.id + 2], 'ids count up');
  for (let i = 0; i < 2; i++) await call(server, { model: GLM });
  for (let i = 0; i < 3; i++) await call(server, { model: KIMI });
  const listed = await listFaults(server);
  assert.deepEqual(listed, [
    { id: a.id, match: { model: GLM }, action: { status: 500 }, count_left: 3, fired: 2 },
    { id: b.id, match: { model: KIMI }, action: { status: 503 }, probability: 1, fired: 3 },
    { id: c.id, match: { route: 'messages' }, action: { stream: 'error', after_tokens: 4 }, probability: 0.25, fired: 0 },
  ]);
  assert.deepEqual((await admin(server, 'DELETE', `/admin/faults/${b.id}`)).json, { status: 'deleted' });
  assert.deepEqual((await listFaults(server)).map((f) => f.id), [a.id, c.id]);
  assert.equal((await call(server, { model: KIMI })).status, 200, 'the deleted fault no longer fires');
  const again = await admin(server, 'DELETE', `/admin/faults/${b.id}`);
  assert.equal(again.status, 404);
  assert.equal(again.json.error.code, 'NOT_FOUND');
  assert.equal(again.json.error.param, 'id');
  assert.equal((await admin(server, 'DELETE', '/admin/faults/abc')).status, 404);
  assert.equal((await admin(server, 'DELETE', '/admin/faults/0')).status, 404);
  // An id past 32 bits names no fault: it must not wrap around to fault a.
  for (const alias of [`${2 ** 32 + a.id}`, '-1', `+${a.id}`, `${a.id}x`])
    assert.equal((await admin(server, 'DELETE', `/admin/faults/${alias}`)).status, 404, alias);
  assert.deepEqual((await listFaults(server)).map((f) => f.id), [a.id, c.id], 'nothing deleted by an alias');
  assert.deepEqual((await admin(server, 'DELETE', '/admin/faults')).json, { status: 'deleted' });
  assert.deepEqual(await listFaults(server), []);
  assert.equal((await call(server, { model: GLM })).status, 200);
  const d = await addFault(server, { match: { model: GLM }, action: { status: 500 }, count: 1 });
  assert.ok(d.id > c.id, 'ids are not reused');
  const put = await admin(server, 'PUT', '/admin/faults', {});
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'GET, POST, DELETE');
  const get1 = await admin(server, 'GET', `/admin/faults/${d.id}`);
  assert.equal(get1.status, 405);
  assert.equal(get1.headers.get('allow'), 'DELETE');
});

test('bad fault bodies answer 400 naming the field, and add nothing', async () => {
  await reset();
  const cases = [
    [{ match: { model: KIMI } }, /^action: is required/],
    [{ action: { status: 99 } }, /^action\.status: must be a final HTTP error status between 400 and 599/],
    [{ action: { status: 101 } }, /^action\.status: must be a final HTTP error status between 400 and 599/],
    [{ action: { status: 204 } }, /^action\.status: /],
    [{ action: { status: 1e300 } }, /^action\.status: /],
    [{ action: { stream: 'error', after_tokens: 1e20 } }, /^action\.after_tokens: must be a whole number between 0 and 10000000/],
    [{ action: { status: 503.5 } }, /^action\.status: /],
    [{ action: { status: '503' } }, /^action\.status: /],
    [{ action: { stream: 'explode' } }, /^action\.stream: must be "error", "disconnect" or "stall"/],
    [{ action: { stream: 'error', after_tokens: -1 } }, /^action\.after_tokens: must be a whole number between 0 and/],
    [{ action: { stream: 'error', after_tokens: 2.5 } }, /^action\.after_tokens: /],
    [{ action: { status: 503, stream: 'error' } }, /^action: needs exactly one of "status" or "stream"/],
    [{ action: {} }, /^action: needs exactly one of "status" or "stream"/],
    [{ action: { status: 503, color: 'red' } }, /^action\.color: unknown field/],
    [{ match: { tier: 'gold' }, action: { status: 503 } }, /^match\.tier: must be "standard", "priority", "background" or "fast"/],
    [{ match: { model: 'accounts/fireworks/models/nope' }, action: { status: 503 } }, /^match\.model: no model "accounts\/fireworks\/models\/nope"/],
    [{ match: { route: 'rerank' }, action: { status: 503 } }, /^match\.route: must be "chat\/completions", "completions", "messages", "responses" or "embeddings"/],
    [{ match: { api_key: '' }, action: { status: 503 } }, /^match\.api_key: must be a non-empty string/],
    [{ match: { api_key: 7 }, action: { status: 503 } }, /^match\.api_key: must be a non-empty string/],
    [{ match: { models: KIMI }, action: { status: 503 } }, /^match\.models: unknown field/],
    [{ match: 'kimi', action: { status: 503 } }, /^match: must be an object/],
    [{ action: { status: 503 }, probability: 1.5 }, /^probability: must be a number between 0 and 1/],
    [{ action: { status: 503 }, probability: -0.1 }, /^probability: must be a number between 0 and 1/],
    [{ action: { status: 503 }, count: -1 }, /^count: must be a whole number >= 0/],
    [{ action: { status: 503 }, count: 1.5 }, /^count: must be a whole number >= 0/],
    [{ action: { status: 503 }, count: 2, probability: 0.5 }, /^count: send either count or probability, not both/],
    [{ action: { status: 503 }, times: 2 }, /^times: unknown field/],
    [[], /must be a JSON object/],
  ];
  for (const [body, re] of cases) {
    const r = await admin(server, 'POST', '/admin/faults', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
    assert.equal(r.json.error.code, 'INVALID_ARGUMENT');
    assert.match(r.json.error.message, re, JSON.stringify(body));
  }
  // Several problems: every one is named.
  const many = await admin(server, 'POST', '/admin/faults', { match: { tier: 'gold', route: 'x' }, action: { status: 1 }, probability: 3 });
  assert.equal(many.status, 400);
  for (const field of ['match.tier', 'match.route', 'action.status', 'probability'])
    assert.ok(many.json.error.message.includes(`${field}: `), `${field} in ${many.json.error.message}`);
  assert.equal((await admin(server, 'POST', '/admin/faults', '{"match":')).status, 400);
  assert.deepEqual(await listFaults(server), []);
});

test('x-fleetmock-fault header: any error status 400-599, in each route\'s own error shape; 1xx-3xx and malformed values 400', async () => {
  await reset();
  const r503 = await call(server, { headers: { 'x-fleetmock-fault': '503' } });
  assert.equal(r503.status, 503);
  assert.deepEqual(Object.keys(r503.json), ['error']);
  assert.equal(r503.json.error.object, 'error');
  assert.equal(r503.json.error.type, 'server_error');
  assert.equal(r503.json.error.code, 'SERVICE_OVERLOADED');
  assert.equal(r503.json.error.param, null);
  const r429 = await call(server, { headers: { 'x-fleetmock-fault': '429' } });
  assert.equal(r429.status, 429);
  assert.equal(r429.json.error.code, 'RATE_LIMITED');
  assert.equal(r429.headers.get('retry-after'), '1');
  const r418 = await call(server, { headers: { 'x-fleetmock-fault': '418' } });
  assert.equal(r418.status, 418);
  assert.equal(r418.json.error.object, 'error');
  // Anthropic route: {"type":"error","error":{"type":...}}
  const a503 = await call(server, { path: MESSAGES, headers: { 'x-fleetmock-fault': '503' } });
  assert.equal(a503.status, 503);
  assert.equal(a503.json.type, 'error');
  assert.equal(a503.json.error.type, 'overloaded_error');
  assert.equal(typeof a503.json.error.message, 'string');
  assert.equal(a503.headers.get('request-id'), a503.json.request_id);
  const a429 = await call(server, { path: MESSAGES, headers: { 'x-fleetmock-fault': '429' } });
  assert.equal(a429.json.error.type, 'rate_limit_error');
  const a500 = await call(server, { path: MESSAGES, headers: { 'x-fleetmock-fault': '500' } });
  assert.equal(a500.json.error.type, 'api_error');
  // A stored status fault answers in the route's shape too.
  await addFault(server, { match: { route: 'messages' }, action: { status: 503 }, count: 1 });
  const stored = await call(server, { path: MESSAGES });
  assert.equal(stored.status, 503);
  assert.deepEqual(Object.keys(stored.json).sort(), ['error', 'request_id', 'type']);
  assert.equal(stored.json.error.type, 'overloaded_error');
  // The header wins over stored faults, which then do not fire.
  const f = await addFault(server, { match: { model: KIMI }, action: { status: 500 } });
  assert.equal((await call(server, { headers: { 'x-fleetmock-fault': '502' } })).status, 502);
  assert.equal((await listFaults(server)).find((x) => x.id === f.id).fired, 0);
  await admin(server, 'DELETE', '/admin/faults');
  // A stream fault on a non-streaming request: error → 503, disconnect → dropped.
  const nsErr = await call(server, { headers: { 'x-fleetmock-fault': 'error@3' } });
  assert.equal(nsErr.status, 503);
  assert.equal(nsErr.json.error.code, 'SERVICE_OVERLOADED');
  await assert.rejects(call(server, { headers: { 'x-fleetmock-fault': 'disconnect@3' } }), /fetch failed|terminated|socket/i);
  // 1xx, 2xx and 3xx are not answers a fault can give: a 101 would leave the
  // client waiting for the real answer.
  for (const bad of ['boom', '99', '100', '101', '200', '302', '399', '600', '99999999999999999999',
    'error@', 'error@x', 'explode@3', 'stall@-1', 'error@99999999999999999999', '5o3', 'error@3x']) {
    const r = await call(server, { headers: { 'x-fleetmock-fault': bad } });
    assert.equal(r.status, 400, `x-fleetmock-fault: ${bad} → ${r.status}`);
    assert.match(r.json.error.message, /^x-fleetmock-fault: /);
  }
  assert.equal((await call(server, {})).status, 200, 'the server keeps serving');
});

// ---------------------------------------------------------------------------
// Stream faults through the official SDKs

function openai(srv, opts = {}) {
  return new oa.default({ apiKey: 'sdk-fault-key', baseURL: `${srv.baseURL}/inference/v1`, maxRetries: 0, timeout: 20000, ...opts });
}
function anthropic(srv, opts = {}) {
  return new an.default({ apiKey: 'sdk-fault-key', baseURL: `${srv.baseURL}/inference`, maxRetries: 0, timeout: 20000, ...opts });
}
const chatReq = { model: KIMI, messages: [{ role: 'user', content: 'tell me a story' }], max_tokens: 20, ignore_eos: true, stream: true };
const msgReq = { model: KIMI, messages: [{ role: 'user', content: 'tell me a story' }], max_tokens: 20, stream: true };

/** Iterates an SDK stream, counting content deltas; resolves {deltas, error}. */
async function drain(stream, isDelta) {
  let deltas = 0;
  try {
    for await (const ev of stream) if (isDelta(ev)) deltas++;
    return { deltas, error: null };
  } catch (error) {
    return { deltas, error };
  }
}
const oaDelta = (c) => Boolean(c.choices?.[0]?.delta?.content);
const anDelta = (e) => e.type === 'content_block_delta' && e.delta?.type === 'text_delta';

test('openai SDK: error@3 → APIError after 3 content deltas; the same through a stored fault', async () => {
  needSdk();
  await reset();
  const client = openai(server);
  const s = await client.chat.completions.create(chatReq, { headers: { 'x-fleetmock-fault': 'error@3' } });
  const r = await drain(s, oaDelta);
  assert.equal(r.deltas, 3);
  assert.ok(r.error instanceof oa.APIError, `got ${r.error?.constructor?.name}: ${r.error?.message}`);
  assert.equal(r.error.error.code, 'SERVICE_OVERLOADED');
  assert.match(r.error.message, /injected fault: the stream failed mid-way/);
  // A stored stream fault behaves the same; error@0 fails before any token.
  await addFault(server, { match: { route: 'chat/completions' }, action: { stream: 'error', after_tokens: 0 }, count: 1 });
  const r0 = await drain(await client.chat.completions.create(chatReq), oaDelta);
  assert.equal(r0.deltas, 0);
  assert.ok(r0.error instanceof oa.APIError);
  const ok = await drain(await client.chat.completions.create(chatReq), oaDelta);
  assert.equal(ok.error, null, 'count 1: the next stream is whole');
  assert.equal(ok.deltas, 20);
  assert.deepEqual(await waitIdle(server), { priority: 0, standard: 0, background: 0 });
});

test('openai SDK: disconnect@3 → a connection error (not an APIError) after 3 content deltas', async () => {
  needSdk();
  await reset();
  const s = await openai(server).chat.completions.create(chatReq, { headers: { 'x-fleetmock-fault': 'disconnect@3' } });
  const r = await drain(s, oaDelta);
  assert.equal(r.deltas, 3);
  assert.ok(r.error, 'the iterator throws');
  assert.ok(!(r.error instanceof oa.APIError), `a transport error, not an API error: ${r.error.constructor.name}`);
  // undici reports the dropped body as TypeError("terminated") caused by "other side closed".
  assert.equal(r.error.name, 'TypeError');
  assert.equal(r.error.message, 'terminated');
  assert.equal(r.error.cause?.code, 'UND_ERR_SOCKET');
  assert.deepEqual(await waitIdle(server), { priority: 0, standard: 0, background: 0 });
});

test('openai SDK: stall@3 — non-streaming times out (APIConnectionTimeoutError); a stream stops after 3 deltas and holds its slot until the client gives up', async () => {
  needSdk();
  await reset();
  const client = openai(server, { timeout: 1000 });
  const t0 = performance.now();
  const err = await client.chat.completions.create({ ...chatReq, stream: false }, { headers: { 'x-fleetmock-fault': 'stall@3' } }).then(() => null, (e) => e);
  const took = performance.now() - t0;
  assert.ok(err instanceof oa.APIConnectionTimeoutError, `got ${err?.constructor?.name}: ${err?.message}`);
  // The SDK's 1 s timeout (a Node timer may fire up to 1 ms early), at most LATE_MS late.
  assert.ok(took >= 999 && took <= 1000 + LATE_MS, `timed out after ${took.toFixed(0)} ms, want 1000..${1000 + LATE_MS}`);
  assert.deepEqual(await waitIdle(server), { priority: 0, standard: 0, background: 0 }, 'the stalled request freed its slot when the client left');

  // Streaming: the SDK's timeout covers the wait for the response headers only,
  // and a stalled stream has sent them, so the caller needs its own idle timeout.
  const ac = new AbortController();
  const s = await client.chat.completions.create(chatReq, { headers: { 'x-fleetmock-fault': 'stall@3' }, signal: ac.signal });
  const it = s[Symbol.asyncIterator]();
  let deltas = 0;
  let idle = false;
  for (let i = 0; i < 100; i++) {
    // Nothing for LATE_MS is a stall, not a busy machine's lateness.
    const next = await Promise.race([it.next(), sleep(LATE_MS).then(() => 'idle')]);
    if (next === 'idle') { idle = true; break; }
    if (next.done) break;
    if (oaDelta(next.value)) deltas++;
  }
  assert.equal(deltas, 3);
  assert.equal(idle, true, `no more tokens for LATE_MS (${LATE_MS} ms): stalled`);
  assert.deepEqual(await inFlight(server), { priority: 0, standard: 1, background: 0 }, 'the stall holds its slot');
  ac.abort();
  assert.deepEqual(await waitIdle(server), { priority: 0, standard: 0, background: 0 }, 'the slot is freed when the client gives up');
});

test('Anthropic SDK: error@N → APIError overloaded_error after N deltas; disconnect → connection error; stall → timeout (non-streaming)', async () => {
  needSdk();
  await reset();
  const client = anthropic(server);
  for (const n of [1, 4]) {
    const s = await client.messages.create(msgReq, { headers: { 'x-fleetmock-fault': `error@${n}` } });
    const r = await drain(s, anDelta);
    assert.equal(r.deltas, n);
    assert.ok(r.error instanceof an.APIError, `got ${r.error?.constructor?.name}: ${r.error?.message}`);
    assert.equal(r.error.error?.type, 'error');
    assert.equal(r.error.error?.error?.type, 'overloaded_error');
  }
  const d = await drain(await client.messages.create(msgReq, { headers: { 'x-fleetmock-fault': 'disconnect@3' } }), anDelta);
  assert.equal(d.deltas, 3);
  assert.ok(d.error && !(d.error instanceof an.APIError), `transport error: ${d.error?.constructor?.name}`);
  assert.equal(d.error.message, 'terminated');
  // A stored status fault on the messages route: the SDK maps it by status (503 → ServiceUnavailableError).
  await addFault(server, { match: { route: 'messages' }, action: { status: 503 }, count: 1 });
  const e503 = await client.messages.create({ ...msgReq, stream: false }).then(() => null, (e) => e);
  assert.ok(e503 instanceof an.ServiceUnavailableError, `got ${e503?.constructor?.name}`);
  assert.equal(e503.status, 503);
  assert.equal(e503.error.error.type, 'overloaded_error');
  const timed = anthropic(server, { timeout: 1000 });
  const eStall = await timed.messages.create({ ...msgReq, stream: false }, { headers: { 'x-fleetmock-fault': 'stall@3' } }).then(() => null, (e) => e);
  assert.ok(eStall instanceof an.APIConnectionTimeoutError, `got ${eStall?.constructor?.name}: ${eStall?.message}`);
  assert.deepEqual(await waitIdle(server), { priority: 0, standard: 0, background: 0 });
});

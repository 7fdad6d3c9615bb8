// Conformance: the official `@anthropic-ai/sdk` Node SDK against the real
// fleetmock binary, on the Anthropic-compatible Messages API (SPEC §3).
// The SDK's baseURL is `${server}/inference`, as for the real Fireworks API;
// it posts to /inference/v1/messages. The SDK never retries (maxRetries 0),
// so each error reaches the test exactly as the server sent it.
// One shared server (--timing instant, fixed --seed) serves the plain tests;
// tests that change the fleet or the config start their own server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic, {
  APIError,
  AuthenticationError,
  BadRequestError,
  ContentTooLargeError,
  InternalServerError,
  NotFoundError,
  OverloadedError,
  RateLimitError,
  ServiceUnavailableError,
} from '@anthropic-ai/sdk';
import { startServer, assertScheduled, LATE_MS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const POOL = 'kimi-k2p6';
const SEED = ['--seed', '7'];
const INSTANT = ['--timing', 'instant', ...SEED];
const REQUEST_ID = /^[0-9a-f]{24}$/;

let server;
let client;

function makeClient(srv, opts = {}) {
  return new Anthropic({
    apiKey: 'test-key-anthropic',
    baseURL: `${srv.baseURL}/inference`,
    maxRetries: 0,
    timeout: 20000,
    ...opts,
  });
}

/** Starts a server for one test, runs fn(srv), and always stops it. */
async function withServer(opts, fn) {
  const srv = await startServer(opts);
  try {
    return await fn(srv);
  } finally {
    const res = await srv.stop();
    assert.equal(res.code, 0, `server exited cleanly:\n${res.stderr}`);
  }
}

/** Loopback admin (no token configured): PATCH one pool's settings. */
async function patchPool(srv, body) {
  const res = await fetch(`${srv.baseURL}/admin/pools/${POOL}`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `PATCH /admin/pools/${POOL}: ${await res.clone().text()}`);
  return res.json();
}

// Contract: ceil(bytes/4) per message (text blocks' bytes summed) + 4 per
// message + 3 per request; `system` counts as one more message.
function contentBytes(content) {
  if (typeof content === 'string') return Buffer.byteLength(content);
  return content.reduce((n, b) => n + Buffer.byteLength(b.text), 0);
}
function inputTokens({ system, messages }) {
  const all = system === undefined ? messages : [{ content: system }, ...messages];
  return all.reduce((sum, m) => sum + Math.ceil(contentBytes(m.content) / 4) + 4, 3);
}

/** Awaits a promise that must reject; returns the error. */
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('the request was expected to fail');
}

function assertErrorBody(err, status, type) {
  assert.ok(err instanceof APIError, `an APIError, got ${err?.constructor?.name}: ${err}`);
  assert.equal(err.status, status);
  assert.equal(err.error?.type, 'error', 'body is {"type":"error",...}');
  assert.equal(err.error?.error?.type, type, `error.type is ${type}`);
  assert.equal(err.type, type, 'the SDK exposes error.type');
  assert.equal(typeof err.error.error.message, 'string');
  assert.ok(err.error.error.message.length > 20, 'the message says what was wrong');
}

/**
 * A fetch for the SDK that tees every response body, so a test sees the raw
 * SSE (pings included, which the SDK drops) while the SDK consumes its copy.
 */
function recordingFetch(log) {
  return async (url, init) => {
    const res = await fetch(url, init);
    if (!res.body) return res;
    const [mine, theirs] = res.body.tee();
    log.raw = new Response(mine).text();
    return new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** Parses raw SSE text into [{event, json}]; checks each data's type matches its event name. */
function parseSSE(raw) {
  const out = [];
  for (const block of raw.replace(/\r\n/g, '\n').split('\n\n')) {
    if (!block.trim()) continue;
    let event = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (event === null && !data.length) continue; // comment
    const json = JSON.parse(data.join('\n'));
    assert.equal(json.type, event, `data type matches "event: ${event}"`);
    out.push({ event, json });
  }
  return out;
}

before(async () => {
  server = await startServer({ args: INSTANT });
  client = makeClient(server);
});

after(async () => {
  if (server) await server.stop();
});

// ---- 1. messages.create -------------------------------------------------------

test('messages.create: shape, ignore_eos + max_tokens, input_tokens rule, request-id', async () => {
  const messages = [{ role: 'user', content: 'Conformance one: tell me a story.' }];
  const { data: msg, response, request_id } = await client.messages
    .create({ model: KIMI, max_tokens: 20, ignore_eos: true, messages })
    .withResponse();

  assert.equal(response.status, 200);
  assert.match(msg.id, /^msg_/);
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.model, KIMI);
  assert.equal(msg.content.length, 1);
  assert.equal(msg.content[0].type, 'text');
  assert.ok(msg.content[0].text.length > 0, 'text is non-empty');
  assert.equal(msg.content[0].text.split(' ').length, 20, 'one word per output token');
  assert.equal(msg.stop_reason, 'max_tokens');
  assert.equal(msg.stop_sequence, null);
  assert.deepEqual(msg.usage, {
    input_tokens: inputTokens({ messages }),
    output_tokens: 20,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    service_tier: 'standard',
  });

  const rid = response.headers.get('request-id');
  assert.match(rid ?? '', REQUEST_ID, 'request-id header present');
  assert.equal(response.headers.get('x-request-id'), rid, 'x-request-id is the same id');
  assert.equal(request_id, rid, 'the SDK reads request-id');
  assert.equal(msg.id, `msg_${rid}`);
  assert.equal(response.headers.get('x-fleetmock-service-tier'), 'standard');
});

test('messages.create: max_tokens is optional (default 4096), ends by itself with end_turn', async () => {
  const messages = [{ role: 'user', content: 'Conformance one: no max_tokens here.' }];
  const msg = await client.messages.create({ model: KIMI, messages });
  assert.equal(msg.stop_reason, 'end_turn');
  assert.ok(msg.usage.output_tokens > 0 && msg.usage.output_tokens < 4096, `output_tokens ${msg.usage.output_tokens}`);
  assert.equal(msg.content[0].text.split(' ').length, msg.usage.output_tokens);
  assert.equal(msg.usage.input_tokens, inputTokens({ messages }));
});

test('messages.create: system as a string and as text blocks counts as one more message', async () => {
  const messages = [
    { role: 'user', content: 'Conformance system: first turn, please.' },
    { role: 'assistant', content: 'Sure.' },
    { role: 'user', content: [{ type: 'text', text: 'And a second ' }, { type: 'text', text: 'turn in blocks.' }] },
  ];
  const cases = [
    { system: 'You are a terse assistant for the string case.' },
    { system: [{ type: 'text', text: 'You are terse, ' }, { type: 'text', text: 'in blocks (odd length).' }] },
    {},
  ];
  for (const c of cases) {
    const msg = await client.messages.create({ model: KIMI, max_tokens: 5, ignore_eos: true, messages, ...c });
    const what = JSON.stringify(c.system ?? null);
    assert.equal(msg.usage.input_tokens + msg.usage.cache_read_input_tokens,
      inputTokens({ system: c.system, messages }), `input tokens for system ${what}`);
    assert.equal(msg.usage.output_tokens, 5, what);
    assert.equal(msg.stop_reason, 'max_tokens', what);
  }
  // Exact numbers for the rule, not only the helper: 3 + (ceil(46/4)+4) + (ceil(39/4)+4) + (ceil(5/4)+4) + (ceil(28/4)+4)
  assert.equal(inputTokens({ system: cases[0].system, messages }), 3 + 16 + 14 + 6 + 11);
});

test('messages.create: stop_sequences cut the deterministic text and echo the stop', async () => {
  const messages = [{ role: 'user', content: 'Conformance stop: count some words.' }];
  const base = { model: KIMI, max_tokens: 20, ignore_eos: true, messages };
  const full = (await client.messages.create(base)).content[0].text;
  // Same prompt and server seed give the same text.
  assert.equal((await client.messages.create(base)).content[0].text, full, 'text is deterministic');

  const words = full.split(' ');
  assert.equal(words.length, 20);
  let k = -1;
  for (let i = 3; i < words.length && k < 0; i++) {
    const at = words.slice(0, i).join(' ').length;
    if (full.indexOf(' ' + words[i]) === at) k = i;
  }
  assert.ok(k > 0, `found a word to stop on in ${JSON.stringify(full)}`);
  const stop = ' ' + words[k];
  const expected = full.slice(0, full.indexOf(stop));

  for (const stop_sequences of [[stop], ['zz-not-there', stop, 'qq-nor-this', 'xx-nope']]) {
    const msg = await client.messages.create({ ...base, stop_sequences });
    const what = JSON.stringify(stop_sequences);
    assert.equal(msg.content[0].text, expected, `text before the stop, ${what}`);
    assert.equal(msg.stop_reason, 'stop_sequence', what);
    assert.equal(msg.stop_sequence, stop, `the matched stop is echoed, ${what}`);
    // The token that completed the stop was generated: it is counted.
    assert.equal(msg.usage.output_tokens, k + 1, what);
  }

  // More than 4 stop sequences is a 400.
  const err = await rejection(client.messages.create({ ...base, stop_sequences: ['a', 'b', 'c', 'd', 'e'] }));
  assert.ok(err instanceof BadRequestError, `${err}`);
  assertErrorBody(err, 400, 'invalid_request_error');
  assert.match(err.error.error.message, /stop_sequences/);
});

test('messages.create: x-api-key and Bearer auth reach the same account; /v1/messages works too', async () => {
  const messages = [{ role: 'user', content: 'Conformance auth.' }];
  const body = { model: KIMI, max_tokens: 3, messages };
  const a = await client.messages.create(body).withResponse();
  const b = await makeClient(server, { apiKey: null, authToken: 'test-key-anthropic' }).messages.create(body).withResponse();
  assert.equal(a.response.status, 200);
  assert.equal(b.response.status, 200);
  const keyId = a.response.headers.get('x-fleetmock-key-id');
  assert.match(keyId ?? '', /^k-[0-9a-f]{12}$/);
  assert.equal(b.response.headers.get('x-fleetmock-key-id'), keyId, 'same key, same account either way');

  const direct = await makeClient(server, { baseURL: server.baseURL }).messages.create(body).withResponse();
  assert.equal(direct.response.status, 200, 'POST /v1/messages');
  assert.equal(direct.data.usage.input_tokens + direct.data.usage.cache_read_input_tokens, inputTokens({ messages }));
});

test('messages.create: metadata.user_id pins a replica, so a repeated prompt reads the cache', async () => {
  // 200 bytes of content: "user\n" + content + "\n" = 206 serialized bytes = 3 cache blocks of 16 tokens.
  const content = 'Conformance cache affinity. '.padEnd(200, 'abcdefgh ');
  const messages = [{ role: 'user', content }];
  const body = { model: KIMI, max_tokens: 3, messages, metadata: { user_id: 'conformance-user-1' } };
  const total = inputTokens({ messages });
  assert.equal(total, 57);
  const first = await client.messages.create(body).withResponse();
  const second = await client.messages.create(body).withResponse();
  assert.equal(first.response.headers.get('x-fleetmock-replica'), second.response.headers.get('x-fleetmock-replica'));
  assert.equal(first.data.usage.input_tokens, total);
  assert.equal(first.data.usage.cache_read_input_tokens, 0);
  assert.equal(second.data.usage.cache_read_input_tokens, 48);
  assert.equal(second.data.usage.input_tokens, total - 48, 'input_tokens counts only uncached tokens');
  assert.equal(second.data.usage.cache_creation_input_tokens, 0);
});

// ---- 2. messages.stream ---------------------------------------------------------

const STREAM_ORDER_HEAD = ['message_start', 'content_block_start', 'ping'];
const STREAM_ORDER_TAIL = ['content_block_stop', 'message_delta', 'message_stop'];

async function streamAndRecord(srv, body, what) {
  const log = {};
  const c = makeClient(srv, { fetch: recordingFetch(log) });
  const stream = c.messages.stream(body);
  const texts = [];
  const sdkEvents = [];
  stream.on('text', (delta) => texts.push(delta));
  stream.on('streamEvent', (ev) => sdkEvents.push(ev.type));
  const { response } = await stream.withResponse();
  const final = await stream.finalMessage();
  const events = parseSSE(await log.raw);
  assert.equal(response.status, 200, what);
  return { response, final, texts, sdkEvents, events };
}

function assertStreamShape({ final, texts, sdkEvents, events }, { inTokens, outTokens, tier = 'standard' }, what) {
  const names = events.map((e) => e.event);
  const deltas = events.filter((e) => e.event === 'content_block_delta');
  const firstDelta = names.indexOf('content_block_delta');
  // message_start, content_block_start, ping (at once), [ping...], delta..., stop, message_delta, message_stop
  assert.deepEqual(names.slice(0, 3), STREAM_ORDER_HEAD, `${what}: head ${names.slice(0, 4)}`);
  assert.ok(firstDelta >= 3, `${what}: a delta follows`);
  assert.ok(names.slice(3, firstDelta).every((n) => n === 'ping'), `${what}: only pings before the first delta`);
  assert.ok(names.slice(firstDelta, -3).every((n) => n === 'content_block_delta'), `${what}: deltas are contiguous`);
  assert.deepEqual(names.slice(-3), STREAM_ORDER_TAIL, `${what}: tail`);
  assert.equal(deltas.length, outTokens, `${what}: one text delta per output token`);

  for (const d of deltas) {
    assert.equal(d.json.index, 0);
    assert.equal(d.json.delta.type, 'text_delta');
  }
  const start = events[0].json.message;
  assert.equal(start.role, 'assistant');
  assert.equal(start.model, KIMI);
  assert.deepEqual(start.content, []);
  assert.equal(start.stop_reason, null);
  assert.equal(start.usage.input_tokens, inTokens, `${what}: input_tokens in message_start`);
  assert.equal(start.usage.service_tier, tier);
  assert.deepEqual(events[1].json.content_block, { type: 'text', text: '' });
  const md = events.at(-2).json;
  assert.equal(md.usage.output_tokens, outTokens);

  // The SDK's view: text events join to the final text; the SDK hides pings.
  assert.deepEqual(sdkEvents, names.filter((n) => n !== 'ping'), `${what}: SDK saw every non-ping event in order`);
  assert.equal(texts.length, outTokens);
  assert.equal(texts.join(''), deltas.map((d) => d.json.delta.text).join(''));
  assert.equal(final.content.length, 1);
  assert.equal(final.content[0].text, texts.join(''), `${what}: text deltas concatenate to finalMessage()`);
  assert.equal(final.usage.output_tokens, deltas.length, `${what}: usage.output_tokens = number of text deltas`);
  assert.equal(final.usage.input_tokens, inTokens);
  assert.equal(final.usage.service_tier, tier);
  assert.equal(final.stop_reason, md.delta.stop_reason);
  return { names, firstDelta };
}

test('messages.stream (instant): event order, text deltas, finalMessage and usage', async () => {
  const messages = [{ role: 'user', content: 'Conformance stream: instant please.' }];
  const r = await streamAndRecord(server, { model: KIMI, max_tokens: 12, ignore_eos: true, messages }, 'instant');
  const { names } = assertStreamShape(r, { inTokens: inputTokens({ messages }), outTokens: 12 }, 'instant');
  assert.equal(names.filter((n) => n === 'ping').length, 1, 'instant timing: only the opening ping');
  assert.equal(r.final.stop_reason, 'max_tokens');
  assert.match(r.response.headers.get('request-id') ?? '', REQUEST_ID);
  assert.equal(r.final.id, `msg_${r.response.headers.get('request-id')}`);

  // Same prompt without streaming gives the same text.
  const same = await client.messages.create({ model: KIMI, max_tokens: 12, ignore_eos: true, messages });
  assert.equal(same.content[0].text, r.final.content[0].text, 'stream and non-stream texts agree');
});

test('messages.stream (realistic timing): pings while waiting for the first token', async () => {
  // A ping is due 200 ms after the last one until the first token: a stall
  // delays the ones after it, so a busy machine may cost up to LATE_MS of
  // pings. The first token waits 1 s longer than that: five pings at least.
  const TTFT_MS = 1000 + LATE_MS;
  const config = { pools: { [POOL]: { ttft_ms: TTFT_MS } } };
  await withServer({ args: ['--timing', 'realistic', ...SEED], config }, async (srv) => {
    const messages = [{ role: 'user', content: 'Conformance stream: realistic timing.' }];
    const t0 = performance.now();
    const r = await streamAndRecord(srv, { model: KIMI, max_tokens: 8, ignore_eos: true, messages }, 'realistic');
    const elapsed = performance.now() - t0;
    const inTokens = inputTokens({ messages });
    const { names, firstDelta } = assertStreamShape(r, { inTokens, outTokens: 8 }, 'realistic');
    const pingsBefore = names.slice(0, firstDelta).filter((n) => n === 'ping').length;
    assert.ok(pingsBefore >= 1, 'at least one ping before the first delta');
    // The server's TTFT is its schedule: ttft_ms + the prompt at 8000 tokens/s (to the ms).
    const ttft = Number(r.response.headers.get('fireworks-server-time-to-first-token'));
    assertScheduled(ttft * 1000, TTFT_MS + inTokens / 8, 'fireworks-server-time-to-first-token');
    // The opening ping, then one per 200 ms: never early (so at most one per 200 ms), at most LATE_MS of them lost.
    assert.ok(pingsBefore >= 1 + Math.floor((ttft - LATE_MS / 1000 - 0.1) / 0.2), `${pingsBefore} pings for a ${ttft} s ttft`);
    assert.ok(pingsBefore <= 1 + Math.ceil(ttft / 0.2), `${pingsBefore} pings for a ${ttft} s ttft`);
    assert.equal(names.filter((n) => n === 'ping').length, pingsBefore, 'no pings once tokens flow');
    assert.ok(elapsed >= ttft * 1000 - 0.5, `the stream took ${elapsed.toFixed(0)} ms for a ${ttft} s ttft`);
  });
});

// ---- 3. errors as SDK error classes --------------------------------------------------

test('a shed request (tenant_load 2) is a 503 overloaded_error (ServiceUnavailableError)', async () => {
  await withServer({ args: INSTANT }, async (srv) => {
    await patchPool(srv, { tenant_load: 2 });
    const c = makeClient(srv);
    const body = { model: KIMI, max_tokens: 5, messages: [{ role: 'user', content: 'Conformance shed.' }] };
    const err = await rejection(c.messages.create(body));
    assertErrorBody(err, 503, 'overloaded_error');
    assert.ok(err instanceof InternalServerError, 'a 5xx class');
    assert.ok(err instanceof ServiceUnavailableError, `ServiceUnavailableError, got ${err.constructor.name}`);
    assert.match(err.error.error.message, /priority/i, 'says Priority sheds last');

    // Streaming requests are shed before the stream opens: same error.
    const serr = await rejection(c.messages.stream(body).finalMessage());
    assertErrorBody(serr, 503, 'overloaded_error');
  });
});

test('with server.anthropic_overload_status 529 a shed request is the SDK OverloadedError', async () => {
  const config = { server: { anthropic_overload_status: 529 } };
  await withServer({ args: INSTANT, config }, async (srv) => {
    const c = makeClient(srv);
    const body = { model: KIMI, max_tokens: 5, messages: [{ role: 'user', content: 'Conformance 529.' }] };
    assert.equal((await c.messages.create(body)).stop_reason, 'max_tokens', 'served before the pool saturates');
    await patchPool(srv, { tenant_load: 2 });
    const err = await rejection(c.messages.create(body));
    assertErrorBody(err, 529, 'overloaded_error');
    assert.ok(err instanceof OverloadedError, `OverloadedError, got ${err.constructor.name}`);
    assert.ok(err instanceof InternalServerError);
    // Only overload moves to 529; other errors keep their status.
    const nf = await rejection(c.messages.create({ ...body, model: 'accounts/fireworks/models/nope' }));
    assertErrorBody(nf, 404, 'not_found_error');
  });
});

test('an account rate limit is a 429 rate_limit_error (RateLimitError) with Retry-After', async () => {
  const config = { accounts: { limits: { requests_per_min: { start: 2, ceiling: 2 } } } };
  await withServer({ args: INSTANT, config }, async (srv) => {
    const c = makeClient(srv);
    const body = { model: KIMI, max_tokens: 3, messages: [{ role: 'user', content: 'Conformance 429.' }] };
    await c.messages.create(body);
    await c.messages.create(body);
    const err = await rejection(c.messages.create(body));
    assert.ok(err instanceof RateLimitError, `RateLimitError, got ${err.constructor.name}`);
    assertErrorBody(err, 429, 'rate_limit_error');
    assert.match(err.error.error.message, /requests per minute/);
    const retry = Number(err.headers.get('retry-after'));
    assert.ok(Number.isInteger(retry) && retry >= 1, `Retry-After ${err.headers.get('retry-after')}`);
    assert.ok(Number(err.headers.get('retry-after-ms')) > 0);
    // Another key is another account, still within its limit.
    const other = await makeClient(srv, { apiKey: 'test-key-anthropic-2' }).messages.create(body);
    assert.equal(other.type, 'message');
  });
});

test('401 missing key (AuthenticationError), 404 unknown model (NotFoundError), 400 bad max_tokens (BadRequestError)', async () => {
  const body = { model: KIMI, max_tokens: 5, messages: [{ role: 'user', content: 'Conformance errors.' }] };
  const stripKeys = (url, init) => {
    const headers = new Headers(init?.headers);
    headers.delete('x-api-key');
    headers.delete('authorization');
    return fetch(url, { ...init, headers });
  };
  const e401 = await rejection(makeClient(server, { fetch: stripKeys }).messages.create(body));
  assert.ok(e401 instanceof AuthenticationError, `AuthenticationError, got ${e401.constructor.name}`);
  assertErrorBody(e401, 401, 'authentication_error');
  assert.match(e401.error.error.message, /x-api-key/, 'says how to send the key');

  const e404 = await rejection(client.messages.create({ ...body, model: 'accounts/fireworks/models/no-such-model' }));
  assert.ok(e404 instanceof NotFoundError, `NotFoundError, got ${e404.constructor.name}`);
  assertErrorBody(e404, 404, 'not_found_error');
  assert.match(e404.error.error.message, /no-such-model/);

  for (const max_tokens of [0, -1, 1.5, 'ten', 10_000_000]) {
    const e400 = await rejection(client.messages.create({ ...body, max_tokens }));
    assert.ok(e400 instanceof BadRequestError, `max_tokens ${max_tokens}: BadRequestError, got ${e400.constructor.name}`);
    assertErrorBody(e400, 400, 'invalid_request_error');
    assert.match(e400.error.error.message, /max_tokens/);
  }

  const bad = [
    { messages: [] },
    { messages: [{ role: 'system', content: 'x' }] },
    { service_tier: 'flex-ish' },
    { metadata: { user_id: 5 } },
    { system: 7 },
  ];
  for (const extra of bad) {
    const e = await rejection(client.messages.create({ ...body, ...extra }));
    assertErrorBody(e, 400, 'invalid_request_error');
  }
  for (const service_tier of ['auto', 'standard_only']) {
    const m = await client.messages.create({ ...body, service_tier });
    assert.equal(m.usage.service_tier, 'standard', service_tier);
  }
});

test('413: a body over the limit is request_too_large (ContentTooLargeError)', async () => {
  await withServer({ args: [...INSTANT, '--max-body-bytes', '2048'] }, async (srv) => {
    const body = { model: KIMI, max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(4096) }] };
    const err = await rejection(makeClient(srv).messages.create(body));
    assert.ok(err instanceof ContentTooLargeError, `ContentTooLargeError, got ${err.constructor.name}`);
    assertErrorBody(err, 413, 'request_too_large');
  });
});

test('error responses carry exactly one request-id, the one in the body', async () => {
  // Each error path: 400 (reader), 404 (model), 503 (shed), 429 (limit).
  const config = { accounts: { limits: { requests_per_min: { start: 1, ceiling: 1 } } } };
  await withServer({ args: INSTANT, config }, async (srv) => {
    const body = { model: KIMI, max_tokens: 3, messages: [{ role: 'user', content: 'Conformance request-id.' }] };
    const errs = {};
    errs[400] = await rejection(makeClient(srv).messages.create({ ...body, max_tokens: 0 }));
    errs[404] = await rejection(makeClient(srv).messages.create({ ...body, model: 'nope' }));
    await makeClient(srv, { apiKey: 'k-limited' }).messages.create(body);
    errs[429] = await rejection(makeClient(srv, { apiKey: 'k-limited' }).messages.create(body));
    await patchPool(srv, { tenant_load: 2 });
    errs[503] = await rejection(makeClient(srv).messages.create(body));
    const seen = {};
    for (const [status, err] of Object.entries(errs)) {
      assert.equal(err.status, Number(status));
      seen[status] = err.requestID;
      assert.match(err.headers.get('x-request-id') ?? '', REQUEST_ID, `${status}: x-request-id`);
      assert.equal(err.error.request_id, err.headers.get('x-request-id'), `${status}: body request_id is x-request-id`);
    }
    // The SDK reads request-id (a repeated header arrives joined by ", ").
    const want = Object.fromEntries(Object.entries(errs).map(([s, e]) => [s, e.headers.get('x-request-id')]));
    assert.deepEqual(seen, want, 'err.requestID is the single request-id of each error response');
  });
});

// ---- 4. service_tier priority survives where Standard is shed ------------------------

test('service_tier priority is admitted where Standard is shed (tenant_load 1.2, share 0.2)', async () => {
  await withServer({ args: INSTANT }, async (srv) => {
    const state = await patchPool(srv, { tenant_load: 1.2, tenant_priority_share: 0.2 });
    assert.equal(state.pools[POOL].tenant_load, 1.2);
    const c = makeClient(srv);
    const messages = [{ role: 'user', content: 'Conformance priority.' }];
    const body = { model: KIMI, max_tokens: 6, ignore_eos: true, messages };

    for (const service_tier of [undefined, 'auto', 'standard_only']) {
      const err = await rejection(c.messages.create({ ...body, service_tier }));
      assertErrorBody(err, 503, 'overloaded_error');
      assert.equal(err.headers.get('x-fleetmock-service-tier'), 'standard', `${service_tier}`);
    }

    const { data: msg, response } = await c.messages.create({ ...body, service_tier: 'priority' }).withResponse();
    assert.equal(response.status, 200);
    assert.equal(msg.usage.service_tier, 'priority');
    assert.equal(msg.usage.output_tokens, 6);
    assert.equal(msg.usage.input_tokens + msg.usage.cache_read_input_tokens, inputTokens({ messages }));
    assert.equal(response.headers.get('x-fleetmock-service-tier'), 'priority');

    const r = await streamAndRecord(srv, { ...body, service_tier: 'priority' }, 'priority stream');
    assertStreamShape(r, { inTokens: r.final.usage.input_tokens, outTokens: 6, tier: 'priority' }, 'priority stream');
  });
});

// ---- 5. mid-stream fault ------------------------------------------------------------------

test('x-fleetmock-fault error@N: event: error with overloaded_error after N text deltas, then the stream ends',
  async () => {
    const N = 3;
    const log = {};
    const c = makeClient(server, { fetch: recordingFetch(log) });
    const messages = [{ role: 'user', content: 'Conformance fault.' }];
    const stream = c.messages.stream(
      { model: KIMI, max_tokens: 20, ignore_eos: true, messages },
      { headers: { 'x-fleetmock-fault': `error@${N}` } },
    );
    const texts = [];
    stream.on('text', (d) => texts.push(d));
    const err = await rejection(stream.finalMessage());
    assert.ok(err instanceof APIError, `an APIError, got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, undefined, 'a mid-stream error has no HTTP status');
    assert.equal(err.type, 'overloaded_error');
    assert.equal(err.error?.type, 'error');
    assert.equal(err.error?.error?.type, 'overloaded_error');
    assert.equal(texts.length, N, 'the SDK saw exactly N text deltas');

    const events = parseSSE(await log.raw);
    const names = events.map((e) => e.event);
    assert.deepEqual(names, [
      ...STREAM_ORDER_HEAD,
      ...Array(N).fill('content_block_delta'),
      'error',
    ], 'N deltas, then the error, then nothing');
    assert.equal(events.at(-1).json.error.type, 'overloaded_error');
  });

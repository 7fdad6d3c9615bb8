// Inference routes of fleetmock against the contract (brief.md, SPEC §3):
// health, model listing, chat and text completions, usage, determinism,
// stop strings, headers and perf_metrics. Runs with --timing instant so the
// suite is fast; timing itself is covered in streaming.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, get, streamRequest, AUTH, NO_LIMITS, stopChecked, assertOnTime, assertAtOnce } from '../lib/server.mjs';

const K26 = 'accounts/fireworks/models/kimi-k2p6';
const K25 = 'accounts/fireworks/models/kimi-k2p5';
const K26_FAST = 'accounts/fireworks/routers/kimi-k2p6-fast';
const DEFAULT_MODELS = [
  'accounts/fireworks/models/kimi-k2p6',
  'accounts/fireworks/models/kimi-k2p5',
  'accounts/fireworks/models/glm-5p1',
  'accounts/fireworks/models/gpt-oss-120b',
  'accounts/fireworks/models/gpt-oss-20b',
  'accounts/fireworks/routers/kimi-k2p6-fast',
  'accounts/fireworks/routers/glm-5p1-fast',
];
const PATHS = new Set(['standard', 'priority', 'background', 'fast']);

let server;
before(async () => { server = await startServer({ args: ['--timing', 'instant', '--seed', '42'] }); });
after(async () => {
  const r = await server.stop();
  assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
});

/** Prompt tokens of a chat request by the documented rule. */
function chatPromptTokens(messages) {
  let n = 3;
  for (const m of messages) n += Math.ceil(Buffer.byteLength(m.content, 'utf8') / 4) + 4;
  return n;
}

/** Words of generated text: first has no leading space, later ones " word". */
function words(text) {
  assert.equal(typeof text, 'string');
  if (text === '') return [];
  assert.doesNotMatch(text, /^\s/, 'first token must not start with a space');
  const w = text.split(' ');
  for (const x of w) assert.ok(x.length > 0, `empty word in ${JSON.stringify(text)}`);
  return w;
}

function assertUsage(usage, promptTokens) {
  assert.ok(usage && typeof usage === 'object', 'usage present');
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
    assert.ok(Number.isInteger(usage[k]) && usage[k] >= 0, `usage.${k} is a non-negative integer`);
  }
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, 'total = prompt + completion');
  if (promptTokens !== undefined) assert.equal(usage.prompt_tokens, promptTokens);
  assert.ok(usage.prompt_tokens_details && Number.isInteger(usage.prompt_tokens_details.cached_tokens));
  assert.ok(usage.prompt_tokens_details.cached_tokens >= 0);
  assert.ok(usage.prompt_tokens_details.cached_tokens <= usage.prompt_tokens);
}

// x-fleetmock-service-tier may name the tier as the body does or by its serving path.
const HEADER_TIERS = { default: ['default', 'standard'], priority: ['priority'], background: ['background'] };

/** Checks a full chat.completion and returns its first choice's content. The
 * served tier is checked only when `tier` is given (the dedicated tier tests). */
function assertChatCompletion(r, { model, tier, promptTokens, n = 1, fast = false, counted = true }) {
  assert.equal(r.status, 200, r.text);
  const b = r.json;
  assert.ok(b, `body is JSON: ${r.text}`);
  assert.match(b.id, /^chatcmpl-./);
  assert.equal(b.object, 'chat.completion');
  assert.ok(Number.isInteger(b.created));
  assert.ok(Math.abs(b.created - Date.now() / 1000) < 120, `created ${b.created} is about now`);
  assert.equal(b.model, model);
  if (tier !== undefined) assert.equal(b.service_tier, tier);
  assert.ok(Array.isArray(b.choices));
  assert.equal(b.choices.length, n);
  let total = 0;
  b.choices.forEach((c, i) => {
    assert.equal(c.index, i);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
    total += words(c.message.content).length;
  });
  assertUsage(b.usage, promptTokens);
  // A stop string may cut a generated token out of the text, so stop tests skip this.
  if (counted) assert.equal(b.usage.completion_tokens, total, 'completion_tokens = tokens generated over all choices');
  if (tier !== undefined) {
    const ok = [...HEADER_TIERS[tier], ...(fast ? ['fast'] : [])];
    assert.ok(ok.includes(r.headers.get('x-fleetmock-service-tier')),
      `x-fleetmock-service-tier ${r.headers.get('x-fleetmock-service-tier')} names the ${tier} tier`);
  }
  return b.choices[0].message.content;
}

const chat = (body, path = '/inference/v1/chat/completions', headers) => post(server, path, body, headers);
const msgs = (content) => [{ role: 'user', content }];

test('healthz answers 200 {"status":"ok"} without a key', async () => {
  const r = await get(server, '/healthz', {});
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ok' });
});

for (const prefix of ['/v1', '/inference/v1']) {
  test(`GET ${prefix}/models lists every default model with its shape`, async () => {
    const r = await get(server, `${prefix}/models`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'list');
    assert.ok(Array.isArray(r.json.data));
    const ids = r.json.data.map((m) => m.id);
    for (const id of DEFAULT_MODELS) assert.ok(ids.includes(id), `${id} listed`);
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');
    for (const m of r.json.data) {
      assert.equal(typeof m.id, 'string');
      assert.equal(m.object, 'model');
      assert.equal(typeof m.owned_by, 'string');
      assert.ok(m.owned_by.length > 0);
      assert.ok(Number.isInteger(m.context_length) && m.context_length > 0, `${m.id} context_length`);
      assert.equal(typeof m.supports_chat, 'boolean');
      assert.ok(Array.isArray(m.serving_paths) && m.serving_paths.length > 0);
      for (const p of m.serving_paths) assert.ok(PATHS.has(p), `${m.id} path ${p}`);
    }
    const byId = Object.fromEntries(r.json.data.map((m) => [m.id, m]));
    assert.deepEqual(byId[K26].serving_paths, ['standard', 'priority', 'background']);
    assert.equal(byId[K26].context_length, 262144);
    assert.equal(byId[K26].owned_by, 'fireworks');
    assert.equal(byId[K26].supports_chat, true);
    assert.deepEqual(byId['accounts/fireworks/models/gpt-oss-20b'].serving_paths, ['standard']);
    assert.deepEqual(byId[K26_FAST].serving_paths, ['fast']);
  });
}

test('GET /v1/models and /inference/v1/models return the same list', async () => {
  const a = await get(server, '/v1/models');
  const b = await get(server, '/inference/v1/models');
  assert.deepEqual(a.json, b.json);
});

for (const id of [K26, K26_FAST, 'accounts/fireworks/models/gpt-oss-20b']) {
  for (const prefix of ['/v1', '/inference/v1']) {
    test(`GET ${prefix}/models/${id} (id with slashes) returns that model`, async () => {
      const r = await get(server, `${prefix}/models/${id}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.id, id);
      assert.equal(r.json.object, 'model');
      const list = await get(server, `${prefix}/models`);
      assert.deepEqual(r.json, list.json.data.find((m) => m.id === id));
    });
  }
}

test('GET models/{unknown id} is 404 NOT_FOUND with param model', async () => {
  for (const path of ['/v1/models/accounts/fireworks/models/no-such-model', '/inference/v1/models/nope']) {
    const r = await get(server, path);
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.error.object, 'error');
    assert.equal(r.json.error.code, 'NOT_FOUND');
    assert.equal(r.json.error.param, 'model');
    assert.ok(r.json.error.message.length > 0);
  }
});

test('chat with an unknown model is 404 NOT_FOUND with param model', async () => {
  const r = await chat({ model: 'accounts/fireworks/models/no-such-model', messages: msgs('Hello') });
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.error.code, 'NOT_FOUND');
  assert.equal(r.json.error.param, 'model');
  assert.match(r.json.error.message, /no-such-model|model/);
});

// The three requests shown in docs.fireworks.ai/serverless/serving-paths, byte for byte.
test('documented curl: kimi-k2p5 with service_tier priority', async () => {
  const body = '{\n    "model": "accounts/fireworks/models/kimi-k2p5",\n    "service_tier": "priority",\n    "messages": [{"role": "user", "content": "Hello"}]\n  }';
  const r = await chat(body);
  assertChatCompletion(r, { model: K25, tier: 'priority', promptTokens: 9 });
  assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p5');
});

test('documented curl: kimi-k2p5 without service_tier is served Standard', async () => {
  const body = '{\n    "model": "accounts/fireworks/models/kimi-k2p5",\n    "messages": [{"role": "user", "content": "Hello"}]\n  }';
  const r = await chat(body);
  assertChatCompletion(r, { model: K25, tier: 'default', promptTokens: 9 });
  assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p5');
});

test('documented curl: Fast router kimi-k2p6-fast', async () => {
  const body = '{\n    "model": "accounts/fireworks/routers/kimi-k2p6-fast",\n    "messages": [{"role": "user", "content": "Hello"}]\n  }';
  const r = await chat(body);
  assertChatCompletion(r, { model: K26_FAST, tier: 'default', promptTokens: 9, fast: true });
  assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p6-fast');
});

test('service_tier auto, default and flex are served Standard; background is Background', async () => {
  for (const tier of ['auto', 'default', 'flex']) {
    const r = await chat({ model: K26, service_tier: tier, messages: msgs('Hello'), max_tokens: 4 });
    assertChatCompletion(r, { model: K26, tier: 'default', promptTokens: 9 });
  }
  const r = await chat({ model: K26, service_tier: 'background', messages: msgs('Hello'), max_tokens: 4 });
  assertChatCompletion(r, { model: K26, tier: 'background', promptTokens: 9 });
});

test('prompt tokens follow ceil(bytes/4) + 4 per message + 3', async () => {
  const messages = [
    { role: 'system', content: 'You are terse.' }, // 14 bytes -> 4
    { role: 'user', content: 'héllo wörld, 12345' }, // 20 bytes -> 5
    { role: 'assistant', content: '' }, // 0 -> 0
  ];
  assert.equal(chatPromptTokens(messages), 3 + 4 + 4 + 5 + 4 + 0 + 4);
  const r = await chat({ model: K26, messages, max_tokens: 3 });
  assertChatCompletion(r, { model: K26, promptTokens: 24 });
  assert.equal(r.headers.get('fireworks-prompt-tokens'), '24');
});

test('content given as [{type:"text",text}] parts is accepted', async () => {
  const r = await chat({ model: K26, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello' }] }], max_tokens: 3 });
  assertChatCompletion(r, { model: K26 });
});

test('POST /v1/completions returns a text_completion', async () => {
  for (const prefix of ['/v1', '/inference/v1']) {
    const r = await post(server, `${prefix}/completions`, { model: K26, prompt: 'Say hi', max_tokens: 10 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'text_completion');
    assert.equal(typeof r.json.id, 'string');
    assert.ok(r.json.id.length > 0);
    assert.equal(r.json.model, K26);
    assert.equal(r.json.choices.length, 1);
    const c = r.json.choices[0];
    assert.equal(c.index, 0);
    assert.equal(typeof c.text, 'string');
    assert.ok(['stop', 'length'].includes(c.finish_reason));
    const n = words(c.text).length;
    assert.ok(n >= 1 && n <= 10, `1..10 tokens, got ${n}`);
    assertUsage(r.json.usage, 2); // ceil(6/4)
    assert.equal(r.json.usage.completion_tokens, n);
    assert.equal(c.finish_reason, n === 10 ? 'length' : 'stop');
  }
});

test('completions with ignore_eos gives exactly max_tokens tokens', async () => {
  const r = await post(server, '/v1/completions', { model: K26, prompt: 'Once upon a time', max_tokens: 25, ignore_eos: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(words(r.json.choices[0].text).length, 25);
  assert.equal(r.json.choices[0].finish_reason, 'length');
  assertUsage(r.json.usage, 4);
  assert.equal(r.json.usage.completion_tokens, 25);
});

test('completions accepts prompt as an array of strings', async () => {
  const r = await post(server, '/v1/completions', { model: K26, prompt: ['Say hi'], max_tokens: 5 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'text_completion');
});

test('ignore_eos with max_tokens 50 gives exactly 50 tokens and finish_reason length', async () => {
  const r = await chat({ model: K26, messages: msgs('Write a long story.'), max_tokens: 50, ignore_eos: true });
  const content = assertChatCompletion(r, { model: K26, promptTokens: chatPromptTokens(msgs('Write a long story.')) });
  assert.equal(words(content).length, 50);
  assert.equal(r.json.usage.completion_tokens, 50);
  assert.equal(r.json.choices[0].finish_reason, 'length');
});

test('max_completion_tokens works like max_tokens', async () => {
  const r = await chat({ model: K26, messages: msgs('Hi'), max_completion_tokens: 7, ignore_eos: true });
  const content = assertChatCompletion(r, { model: K26 });
  assert.equal(words(content).length, 7);
  assert.equal(r.json.choices[0].finish_reason, 'length');
});

test('without ignore_eos the length is at most max_tokens; finish_reason says which', async () => {
  for (const [seed, max] of [[1, 5], [2, 1000], [3, 20]]) {
    const r = await chat({ model: K26, messages: msgs('Tell me something.'), max_tokens: max, seed });
    const n = words(assertChatCompletion(r, { model: K26 })).length;
    assert.ok(n >= 1 && n <= max, `1..${max}, got ${n}`);
    assert.equal(r.json.choices[0].finish_reason, n === max ? 'length' : 'stop');
  }
});

test('same seed and prompt give the same text; a different prompt gives different text', async () => {
  const body = { model: K26, messages: msgs('Determinism check'), max_tokens: 30, ignore_eos: true, seed: 1234 };
  const a = assertChatCompletion(await chat(body), { model: K26 });
  const b = assertChatCompletion(await chat(body, '/v1/chat/completions'), { model: K26 });
  assert.equal(a, b);
  const c = assertChatCompletion(await chat({ ...body, messages: msgs('Determinism check!') }), { model: K26 });
  assert.notEqual(c, a);
});

test('without a request seed, the text follows --seed: same seed same text, other seed other text', async () => {
  const body = { model: K26, messages: msgs('Seed check'), max_tokens: 20, ignore_eos: true };
  const a = assertChatCompletion(await chat(body), { model: K26 });
  const a2 = assertChatCompletion(await chat(body), { model: K26 });
  assert.equal(a2, a, 'same server seed, same prompt');
  const same = await startServer({ args: ['--timing', 'instant', '--seed', '42'] });
  const other = await startServer({ args: ['--timing', 'instant', '--seed', '43'] });
  try {
    const b = (await post(same, '/v1/chat/completions', body)).json.choices[0].message.content;
    const c = (await post(other, '/v1/chat/completions', body)).json.choices[0].message.content;
    assert.equal(b, a, 'another server with --seed 42 gives the same text');
    assert.notEqual(c, a, '--seed 43 gives other text');
  } finally {
    await same.stop();
    await other.stop();
  }
});

test('n=3 gives 3 choices with indices 0..2', async () => {
  const r = await chat({ model: K26, messages: msgs('Hello'), n: 3, max_tokens: 5, ignore_eos: true });
  assertChatCompletion(r, { model: K26, n: 3, promptTokens: 9 });
  for (const c of r.json.choices) {
    assert.equal(words(c.message.content).length, 5);
    assert.equal(c.finish_reason, 'length');
  }
  assert.equal(r.json.usage.completion_tokens, 15);
});

test('a stop string truncates the text before it with finish_reason stop', async () => {
  const base = { model: K26, messages: msgs('Stop test'), max_tokens: 40, seed: 99 };
  const full = assertChatCompletion(await chat(base), { model: K26 });
  const w = words(full);
  assert.ok(w.length >= 5, `need some words to cut, got ${w.length}`);
  // First word, from the fourth on, whose " word" occurrence is its first.
  let cut = -1;
  for (let i = 3; i < w.length && cut < 0; i++) {
    const at = full.indexOf(' ' + w[i]);
    if (at === w.slice(0, i).join(' ').length) cut = i;
  }
  assert.ok(cut > 0, 'found a word to stop on');
  const stop = ' ' + w[cut];
  const expected = full.slice(0, full.indexOf(stop));
  for (const s of [stop, [stop], ['zzzz-not-there', stop]]) {
    const r = await chat({ ...base, stop: s });
    const content = assertChatCompletion(r, { model: K26, counted: false });
    assert.ok(r.json.usage.completion_tokens >= cut && r.json.usage.completion_tokens <= cut + 1,
      `completion_tokens ${r.json.usage.completion_tokens}: the ${cut} tokens kept, plus at most the one cut`);
    assert.equal(content, expected, `stop ${JSON.stringify(s)}`);
    assert.equal(r.json.choices[0].finish_reason, 'stop');
  }
});

test('a stop string spanning two tokens is never streamed, not even its first part', async () => {
  const base = { model: K26, messages: msgs('Stop test'), max_tokens: 40, ignore_eos: true, seed: 99 };
  const full = assertChatCompletion(await chat(base), { model: K26 });
  const w = words(full);
  // The end of one word, the space, the start of the next: e.g. "rs ma".
  let stop = null;
  for (let i = 3; i < w.length && !stop; i++) {
    if (w[i - 1].length < 2 || w[i].length < 2) continue;
    const s = `${w[i - 1].slice(-2)} ${w[i].slice(0, 2)}`;
    if (full.indexOf(s) === w.slice(0, i).join(' ').length - 2) stop = s;
  }
  assert.ok(stop, 'found a stop that spans two tokens');
  const expected = full.slice(0, full.indexOf(stop));
  const r = await streamRequest(server, '/v1/chat/completions', { ...base, stream: true, stop });
  assert.equal(r.status, 200);
  const deltas = r.events.map((e) => e.json?.choices?.[0]?.delta?.content).filter((c) => typeof c === 'string');
  assert.equal(deltas.join(''), expected, `streamed text ends right before ${JSON.stringify(stop)}`);
  const finish = r.events.map((e) => e.json?.choices?.[0]?.finish_reason).filter(Boolean);
  assert.deepEqual(finish, ['stop']);
  const nonStream = await chat({ ...base, stop });
  assert.equal(nonStream.json.choices[0].message.content, expected, 'non-streaming says the same');
});

test('max_tokens past the context is lowered to what is left (context_length_exceeded_behavior "truncate", the default)', async () => {
  const ctx = 262144; // kimi-k2p6
  // Its own server without account limits: a quarter-million generated tokens
  // would put the shared server's key in generated-token debt.
  const own = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS });
  try {
    for (const extra of [{}, { context_length_exceeded_behavior: 'truncate' }]) {
      const r = await post(own, '/v1/chat/completions',
        { model: K26, messages: msgs('Hello'), max_tokens: ctx, ignore_eos: true, ...extra });
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.equal(r.json.usage.prompt_tokens, 9);
      assert.equal(r.json.usage.completion_tokens, ctx - 9, 'generation fills the context exactly');
      assert.equal(r.json.choices[0].finish_reason, 'length');
    }
  } finally {
    await stopChecked(own);
  }
});

test('non-stream response carries the documented headers', async () => {
  const r = await chat({ model: K26, messages: msgs('Hello'), max_tokens: 5 });
  assertChatCompletion(r, { model: K26, promptTokens: 9 });
  const h = r.headers;
  assert.ok((h.get('x-request-id') || '').length > 0, 'x-request-id');
  assert.equal(h.get('fireworks-prompt-tokens'), '9');
  assert.equal(h.get('fireworks-cached-prompt-tokens'), String(r.json.usage.prompt_tokens_details.cached_tokens));
  for (const k of ['fireworks-server-time-to-first-token', 'fireworks-server-processing-time']) {
    assert.ok(h.get(k) !== null, `${k} present`);
    assert.ok(Number.isFinite(Number(h.get(k))) && Number(h.get(k)) >= 0, `${k}=${h.get(k)} is a number`);
  }
  assert.equal(h.get('x-fleetmock-pool'), 'kimi-k2p6');
  assert.ok(HEADER_TIERS.default.includes(h.get('x-fleetmock-service-tier')));
  assert.match(h.get('content-type') || '', /^application\/json/);
  const r2 = await chat({ model: K26, messages: msgs('Hello'), max_tokens: 5 });
  assert.notEqual(r2.headers.get('x-request-id'), h.get('x-request-id'), 'request ids differ');
});

test('stream response carries the headers except fireworks-server-processing-time', async () => {
  const r = await streamRequest(server, '/v1/chat/completions', { model: K26, messages: msgs('Hello'), max_tokens: 5, stream: true });
  assert.equal(r.status, 200);
  assert.ok((r.headers.get('x-request-id') || '').length > 0, 'x-request-id');
  assert.equal(r.headers.get('fireworks-prompt-tokens'), '9');
  assert.ok(r.headers.get('fireworks-cached-prompt-tokens') !== null, 'fireworks-cached-prompt-tokens');
  assert.equal(r.headers.get('fireworks-server-processing-time'), null);
  assert.equal(r.headers.get('x-fleetmock-pool'), 'kimi-k2p6');
  assert.equal(r.events.at(-1).data, '[DONE]');
});

test('perf_metrics_in_response puts perf_metrics in the body; without it there is none', async () => {
  const r = await chat({ model: K26, messages: msgs('Hello'), max_tokens: 5, perf_metrics_in_response: true });
  assertChatCompletion(r, { model: K26, promptTokens: 9 });
  const pm = r.json.perf_metrics;
  assert.ok(pm && typeof pm === 'object', `perf_metrics in ${r.text}`);
  for (const k of ['prompt-tokens', 'cached-prompt-tokens', 'server-time-to-first-token', 'server-processing-time']) {
    assert.ok(k in pm, `perf_metrics.${k}`);
    assert.ok(Number.isFinite(Number(pm[k])), `perf_metrics.${k}=${pm[k]} is a number`);
  }
  assert.equal(Number(pm['prompt-tokens']), 9);
  assert.equal(Number(pm['cached-prompt-tokens']), r.json.usage.prompt_tokens_details.cached_tokens);
  const plain = await chat({ model: K26, messages: msgs('Hello'), max_tokens: 5 });
  assert.equal(plain.status, 200);
  assert.equal(plain.json.perf_metrics, undefined);
});

test('unknown request fields are ignored', async () => {
  const r = await chat({ model: K26, messages: msgs('Hello'), max_tokens: 3, tools: [], logprobs: false, frobnicate: { a: 1 } });
  assertChatCompletion(r, { model: K26, promptTokens: 9 });
});

test('FLEETMOCK_TIMING=instant works like --timing instant', async (t) => {
  const config = { pools: { 'kimi-k2p6': { ttft_ms: 300, decode_tps: 50, jitter: 0 } } };
  const envServer = await startServer({ config, env: { FLEETMOCK_TIMING: 'instant' } });
  const flagServer = await startServer({ config, args: ['--timing', 'instant'] });
  try {
    const body = { model: K26, messages: msgs('Hello'), max_tokens: 100, ignore_eos: true, seed: 5 };
    const timed = async (s) => {
      await post(s, '/v1/chat/completions', { ...body, max_tokens: 1 }); // warm the connection
      const t0 = performance.now();
      const r = await post(s, '/v1/chat/completions', body);
      return { r, ms: performance.now() - t0 };
    };
    const a = await timed(envServer);
    const b = await timed(flagServer);
    assert.equal(a.r.status, 200, a.r.text);
    assert.equal(b.r.status, 200, b.r.text);
    assert.equal(a.r.json.choices[0].message.content, b.r.json.choices[0].message.content);
    assert.equal(a.r.json.usage.completion_tokens, 100);
    // The server reports no simulated time at all, where realistic would
    // report 0.301 s to the first token and 2.281 s in all.
    for (const [name, { r }] of [['env', a], ['flag', b]]) {
      assertAtOnce(Number(r.headers.get('fireworks-server-time-to-first-token')) * 1000, `${name} instant TTFT`);
      assertAtOnce(Number(r.headers.get('fireworks-server-processing-time')) * 1000, `${name} instant processing time`);
    }
    if (process.env.FLEETMOCK_WRAPPER) { t.skip('timing not checked under FLEETMOCK_WRAPPER'); return; }
    // Realistic could not answer before 2.28 s; instant is only ever late.
    assertOnTime(a.ms, 0, 'env instant answer');
    assertOnTime(b.ms, 0, 'flag instant answer');
  } finally {
    const ra = await envServer.stop();
    const rb = await flagServer.stop();
    assert.equal(ra.code, 0);
    assert.equal(rb.code, 0);
  }
});

test('a request with the AUTH key on /healthz still answers 200', async () => {
  const r = await get(server, '/healthz', AUTH);
  assert.equal(r.status, 200);
});

// Conformance: the official `openai` Node SDK against the real fleetmock binary.
// One server (--timing instant) serves every test; the SDK never retries, so
// each error reaches the test exactly as the server sent it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AuthenticationError, NotFoundError, BadRequestError } from 'openai';
import { startServer } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const KIMI_K2P5 = 'accounts/fireworks/models/kimi-k2p5';
const KIMI_FAST = 'accounts/fireworks/routers/kimi-k2p6-fast';
const DEFAULT_MODELS = [
  'accounts/fireworks/models/kimi-k2p6',
  'accounts/fireworks/models/kimi-k2p5',
  'accounts/fireworks/models/glm-5p1',
  'accounts/fireworks/models/gpt-oss-120b',
  'accounts/fireworks/models/gpt-oss-20b',
  'accounts/fireworks/routers/kimi-k2p6-fast',
  'accounts/fireworks/routers/glm-5p1-fast',
  'nomic-ai/nomic-embed-text-v1.5',
  'fireworks/qwen3-embedding-8b',
];

let server;
let client;

function makeClient(opts = {}) {
  return new OpenAI({
    apiKey: 'test-key',
    baseURL: `${server.baseURL}/inference/v1`,
    maxRetries: 0,
    timeout: 20000,
    ...opts,
  });
}

// Contract: ceil(bytes/4) per message content + 4 per message + 3.
function chatPromptTokens(messages) {
  return messages.reduce((sum, m) => sum + Math.ceil(Buffer.byteLength(m.content) / 4) + 4, 3);
}

// Contract: plain words, one token each; first without a leading space, later ones " word".
function assertWordTokens(text, count, what) {
  assert.equal(typeof text, 'string', `${what}: text is a string`);
  assert.ok(text.length > 0, `${what}: text is non-empty`);
  assert.ok(!text.startsWith(' '), `${what}: first word has no leading space: ${JSON.stringify(text.slice(0, 40))}`);
  assert.equal(text.split(' ').length, count, `${what}: one word per completion token`);
}

function assertUsage(usage, promptTokens, what) {
  assert.ok(usage, `${what}: usage present`);
  assert.equal(usage.prompt_tokens, promptTokens, `${what}: prompt_tokens by the contract formula`);
  assert.ok(Number.isInteger(usage.completion_tokens) && usage.completion_tokens > 0, `${what}: completion_tokens > 0`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, `${what}: total adds up`);
  assert.equal(typeof usage.prompt_tokens_details?.cached_tokens, 'number', `${what}: cached_tokens is a number`);
}

before(async () => {
  server = await startServer({ args: ['--timing', 'instant'] });
  client = makeClient();
});

after(async () => {
  if (server) await server.stop();
});

test('chat.completions.create (non-streaming): shape, usage, service_tier, headers', async () => {
  const messages = [
    { role: 'system', content: 'You are a terse assistant.' },
    { role: 'user', content: 'Name three colours.' },
  ];
  const { data: res, response } = await client.chat.completions
    .create({ model: KIMI, messages, seed: 7, max_tokens: 64 })
    .withResponse();

  assert.equal(response.status, 200);
  assert.equal(res.object, 'chat.completion');
  assert.match(res.id, /^chatcmpl-/);
  assert.equal(res.model, KIMI);
  assert.ok(Number.isInteger(res.created) && res.created > 1.6e9, 'created is a unix time in seconds');
  assert.equal(res.service_tier, 'default');
  assert.equal(res.choices.length, 1);
  const [choice] = res.choices;
  assert.equal(choice.index, 0);
  assert.equal(choice.message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(choice.finish_reason), `finish_reason ${choice.finish_reason}`);
  assertUsage(res.usage, chatPromptTokens(messages), 'chat');
  assert.ok(res.usage.completion_tokens <= 64, 'max_tokens respected');
  assert.equal(choice.finish_reason, res.usage.completion_tokens === 64 ? 'length' : 'stop');
  assertWordTokens(choice.message.content, res.usage.completion_tokens, 'chat content');

  assert.ok(response.headers.get('x-request-id'), 'x-request-id header');
  assert.equal(response.headers.get('fireworks-prompt-tokens'), String(res.usage.prompt_tokens));
  // SPEC §3 echoes the tier in service_tier and in x-fleetmock-service-tier; the header
  // names the serving path, so Standard may read "standard" there.
  assert.ok(['default', 'standard'].includes(response.headers.get('x-fleetmock-service-tier')),
    `x-fleetmock-service-tier: ${response.headers.get('x-fleetmock-service-tier')}`);
  assert.equal(response.headers.get('x-fleetmock-pool'), 'kimi-k2p6');
});

test('service_tier "priority" on kimi-k2p5 is served and echoed as "priority"', async () => {
  const { data: res, response } = await client.chat.completions
    .create({
      model: KIMI_K2P5,
      messages: [{ role: 'user', content: 'Hello there' }],
      service_tier: 'priority',
      max_tokens: 16,
    })
    .withResponse();
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.service_tier, 'priority');
  assert.equal(response.headers.get('x-fleetmock-service-tier'), 'priority');
  assert.ok(res.choices[0].message.content.length > 0);
});

test('streaming with include_usage: deltas concatenate to the non-streaming text', async () => {
  const messages = [{ role: 'user', content: 'Tell me a short story about a lighthouse.' }];
  const params = { model: KIMI, messages, seed: 4242 };

  const full = await client.chat.completions.create(params);
  const expected = full.choices[0].message.content;
  assert.ok(expected.length > 0);

  const stream = await client.chat.completions.create({
    ...params,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let contentChunks = 0;
  let finishReason = null;
  let usage = null;
  let sawRole = false;
  let afterUsage = 0;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, KIMI);
    if (usage) afterUsage += 1;
    if (chunk.choices.length === 0) {
      assert.ok(chunk.usage, 'a chunk with choices: [] carries usage');
      usage = chunk.usage;
      continue;
    }
    assert.equal(chunk.usage ?? null, null, 'non-usage chunks have usage null');
    const [c] = chunk.choices;
    assert.equal(c.index, 0);
    if (c.delta.role) {
      assert.equal(c.delta.role, 'assistant');
      sawRole = true;
    }
    if (c.delta.content) {
      contentChunks += 1;
      text += c.delta.content;
    }
    if (c.finish_reason) {
      assert.equal(finishReason, null, 'finish_reason arrives once');
      finishReason = c.finish_reason;
    }
  }
  assert.ok(sawRole, 'first delta carries role assistant');
  assert.equal(text, expected, 'stream text equals non-streaming text for the same seed and prompt');
  assert.equal(finishReason, full.choices[0].finish_reason);
  assert.ok(usage, 'final usage chunk present');
  assert.equal(afterUsage, 0, 'usage chunk is the last chunk');
  assert.deepEqual(
    { p: usage.prompt_tokens, c: usage.completion_tokens, t: usage.total_tokens },
    { p: full.usage.prompt_tokens, c: full.usage.completion_tokens, t: full.usage.total_tokens },
  );
  assertUsage(usage, chatPromptTokens(messages), 'stream');
  assert.equal(contentChunks, usage.completion_tokens, 'one content chunk per token');
  assert.ok(chunks >= contentChunks + 2, 'role chunk + content chunks + usage chunk');
});

test('ignore_eos with max_tokens 50 yields exactly 50 tokens and finish_reason length', async () => {
  // Fireworks extra field, passed the openai-node way: as an undocumented param in the body.
  const res = await client.chat.completions.create({
    model: KIMI,
    messages: [{ role: 'user', content: 'Say one word.' }],
    max_tokens: 50,
    ignore_eos: true,
    seed: 1,
  });
  assert.equal(res.usage.completion_tokens, 50);
  assert.equal(res.choices[0].finish_reason, 'length');
  assertWordTokens(res.choices[0].message.content, 50, 'ignore_eos content');

  const viaCompletionTokens = await client.chat.completions.create({
    model: KIMI,
    messages: [{ role: 'user', content: 'Say one word.' }],
    max_completion_tokens: 50,
    ignore_eos: true,
    seed: 1,
  });
  assert.equal(viaCompletionTokens.usage.completion_tokens, 50);
  assert.equal(viaCompletionTokens.choices[0].finish_reason, 'length');
});

test('completions.create with a prompt string returns a text_completion', async () => {
  const prompt = 'Once upon a time';
  const res = await client.completions.create({ model: KIMI, prompt, max_tokens: 20, seed: 3 });
  assert.equal(res.object, 'text_completion');
  assert.equal(res.model, KIMI);
  assert.equal(res.choices.length, 1);
  assert.equal(res.choices[0].index, 0);
  assert.ok(['stop', 'length'].includes(res.choices[0].finish_reason));
  assert.equal(res.usage.prompt_tokens, Math.ceil(Buffer.byteLength(prompt) / 4));
  assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);
  assert.ok(res.usage.completion_tokens <= 20);
  assertWordTokens(res.choices[0].text, res.usage.completion_tokens, 'completion text');
});

test('models.list lists the 9 default models; models.retrieve takes an id with slashes', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id).sort();
  assert.deepEqual(ids, [...DEFAULT_MODELS].sort());
  for (const m of page.data) {
    assert.equal(m.object, 'model', `${m.id}: object`);
    assert.equal(typeof m.owned_by, 'string', `${m.id}: owned_by`);
  }
  const all = [];
  for await (const m of client.models.list()) all.push(m.id);
  assert.ok(all.includes(KIMI_FAST), 'auto-pagination yields the fast router');

  // The SDK percent-encodes the slashes (accounts%2Ffireworks%2F...).
  const one = await client.models.retrieve(KIMI);
  assert.equal(one.id, KIMI);
  assert.equal(one.object, 'model');
  const fast = await client.models.retrieve(KIMI_FAST);
  assert.equal(fast.id, KIMI_FAST);
});

test('base URL ending in /v1 works as well as /inference/v1', async () => {
  const v1 = makeClient({ baseURL: `${server.baseURL}/v1` });
  const res = await v1.chat.completions.create({
    model: KIMI,
    messages: [{ role: 'user', content: 'ping' }],
    max_tokens: 8,
  });
  assert.equal(res.object, 'chat.completion');
  assert.ok(res.choices[0].message.content.length > 0);
  const models = await v1.models.list();
  assert.equal(models.data.length, DEFAULT_MODELS.length);
});

test('missing Authorization → AuthenticationError (401)', async () => {
  // The SDK refuses an empty apiKey, so strip the header on the way out.
  const noAuth = makeClient({
    fetch: (url, init) => {
      const headers = new Headers(init?.headers);
      headers.delete('authorization');
      return fetch(url, { ...init, headers });
    },
  });
  await assert.rejects(
    noAuth.chat.completions.create({ model: KIMI, messages: [{ role: 'user', content: 'hi' }] }),
    (err) => {
      assert.ok(err instanceof AuthenticationError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 401);
      assert.equal(err.code, 'UNAUTHENTICATED');
      assert.equal(err.type, 'authentication_error');
      return true;
    },
  );
});

test('unknown model → NotFoundError (404) with param model', async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: 'accounts/fireworks/models/no-such-model',
      messages: [{ role: 'user', content: 'hi' }],
    }),
    (err) => {
      assert.ok(err instanceof NotFoundError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'NOT_FOUND');
      assert.equal(err.param, 'model');
      assert.ok(err.headers?.get('x-request-id'), 'x-request-id on error responses too');
      return true;
    },
  );
  await assert.rejects(client.models.retrieve('accounts/fireworks/models/no-such-model'), NotFoundError);
});

test('max_tokens -5 → BadRequestError (400) naming max_tokens', async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: KIMI,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: -5,
    }),
    (err) => {
      assert.ok(err instanceof BadRequestError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 400);
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.equal(err.type, 'invalid_request_error');
      assert.equal(err.error?.object, 'error');
      assert.match(err.error?.message ?? '', /max_tokens/);
      assert.match(err.message, /max_tokens/);
      return true;
    },
  );
});

test('Fireworks fast router model id is served', async () => {
  const { data: res, response } = await client.chat.completions
    .create({ model: KIMI_FAST, messages: [{ role: 'user', content: 'quick one' }], max_tokens: 12 })
    .withResponse();
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.model, KIMI_FAST);
  assert.ok(res.choices[0].message.content.length > 0);
  assert.equal(response.headers.get('x-fleetmock-pool'), 'kimi-k2p6-fast');

  const stream = await client.chat.completions.create({
    model: KIMI_FAST,
    messages: [{ role: 'user', content: 'quick one' }],
    max_tokens: 12,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.ok(text.length > 0);
  assert.ok(usage && usage.completion_tokens > 0);
});

test('bad service_tier choices → BadRequestError (400) with param service_tier', async () => {
  const cases = [
    { model: KIMI, service_tier: 'bogus' },
    { model: KIMI_FAST, service_tier: 'priority' }, // Priority and Fast are not stackable
    { model: 'accounts/fireworks/models/gpt-oss-20b', service_tier: 'priority' }, // no Priority path
  ];
  for (const c of cases) {
    await assert.rejects(
      client.chat.completions.create({ ...c, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
      (err) => {
        assert.ok(err instanceof BadRequestError, `${JSON.stringify(c)}: got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 400);
        assert.equal(err.param, 'service_tier', JSON.stringify(c));
        return true;
      },
    );
  }
});

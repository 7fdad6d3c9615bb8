// Conformance: embeddings through unmodified clients against the real
// fleetmock binary: openai 7.x `client.embeddings.create` (which asks for
// base64 by default and decodes it) and the AI SDK's `embed`, `embedMany`
// and `cosineSimilarity` with @ai-sdk/fireworks' embeddingModel (built on
// @ai-sdk/openai-compatible). The RAG test retrieves the right one of three
// documents for 20 questions by cosine similarity alone: the property the
// vector rule exists for (shared words mean higher cosine, docs/api.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createFireworks } from '@ai-sdk/fireworks';
import { embed, embedMany, cosineSimilarity } from 'ai';
import { startServer, stopChecked, patchPool, NO_LIMITS } from '../lib/server.mjs';

const NOMIC = 'nomic-ai/nomic-embed-text-v1.5';
const QWEN = 'fireworks/qwen3-embedding-8b';
const KIMI = 'accounts/fireworks/models/kimi-k2p6';

let server;
let client;
let fireworks;

before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '5'] });
  client = new OpenAI({ baseURL: `${server.baseURL}/inference/v1`, apiKey: 'embeddings-test-key', maxRetries: 0 });
  fireworks = createFireworks({ baseURL: `${server.baseURL}/inference/v1`, apiKey: 'embeddings-test-key' });
});
after(async () => {
  const r = await server.stop();
  assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
});

const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const tokensOf = (s) => Math.ceil(Buffer.byteLength(s, 'utf8') / 4);

test('openai embeddings.create: the default (base64, decoded by the SDK) equals encoding_format float', async () => {
  const input = ['How do I retry a request?', 'Rate limits reset every second.'];
  const b64 = await client.embeddings.create({ model: NOMIC, input });
  const flt = await client.embeddings.create({ model: NOMIC, input, encoding_format: 'float' });
  assert.equal(b64.object, 'list');
  assert.equal(b64.model, NOMIC);
  assert.equal(b64.data.length, 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(b64.data[i].index, i);
    assert.equal(b64.data[i].object, 'embedding');
    assert.ok(Array.isArray(b64.data[i].embedding), 'the SDK decoded base64 into numbers');
    assert.equal(b64.data[i].embedding.length, 768);
    b64.data[i].embedding.forEach((x, k) => assert.ok(Math.abs(x - flt.data[i].embedding[k]) < 1e-6, `value ${k}`));
  }
  const tokens = input.reduce((n, s) => n + tokensOf(s), 0);
  assert.deepEqual(b64.usage, { prompt_tokens: tokens, total_tokens: tokens });
});

test('openai embeddings.create: dimensions, a single string, token ids, and the other model', async () => {
  const cut = await client.embeddings.create({ model: NOMIC, input: 'shorter vectors', dimensions: 256 });
  assert.equal(cut.data[0].embedding.length, 256);
  assert.ok(Math.abs(norm(cut.data[0].embedding) - 1) < 1e-5);
  const ids = await client.embeddings.create({ model: NOMIC, input: [[1, 2, 3], [4]] });
  assert.equal(ids.data.length, 2);
  assert.equal(ids.usage.prompt_tokens, 4);
  const qwen = await client.embeddings.create({ model: QWEN, input: 'a bigger model' });
  assert.equal(qwen.data[0].embedding.length, 4096);
});

test('openai embeddings.create: bad requests raise BadRequestError naming the field', async () => {
  const cases = [
    [{ model: KIMI, input: 'x' }, 'model', /is a chat model; use an embedding model such as/],
    [{ model: NOMIC, input: 'x', dimensions: 5000 }, 'dimensions', /from 1 to 768/],
    [{ model: NOMIC, input: [] }, 'input', /empty array/],
  ];
  for (const [body, param, re] of cases) {
    await assert.rejects(client.embeddings.create(body), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `${err}`);
      assert.equal(err.status, 400);
      assert.equal(err.param, param);
      assert.match(err.message, re);
      return true;
    });
  }
  await assert.rejects(client.embeddings.create({ model: 'nomic-ai/nope', input: 'x' }), OpenAI.NotFoundError);
  // And the other way round: an embedding model on chat.
  await assert.rejects(client.chat.completions.create({ model: NOMIC, messages: [{ role: 'user', content: 'hi' }] }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError, `${err}`);
    assert.equal(err.param, 'model');
    assert.match(err.message, /is an embedding model/);
    return true;
  });
});

test('AI SDK embed: one vector with its token usage; dimensions passes through', async () => {
  const value = 'sunny day at the beach';
  const r = await embed({ model: fireworks.embeddingModel(NOMIC), value, maxRetries: 0 });
  assert.equal(r.embedding.length, 768);
  assert.ok(Math.abs(norm(r.embedding) - 1) < 1e-5);
  assert.equal(r.usage.tokens, tokensOf(value));
  const again = await embed({ model: fireworks.textEmbeddingModel(NOMIC), value, maxRetries: 0 });
  assert.deepEqual(again.embedding, r.embedding, 'deterministic; textEmbeddingModel is the same factory');
  const cut = await embed({ model: fireworks.embeddingModel(NOMIC), value, maxRetries: 0, providerOptions: { fireworks: { dimensions: 128 } } });
  assert.equal(cut.embedding.length, 128);
});

// Three documents on clearly different topics, and 20 questions that each
// share content words with exactly one of them (none copied verbatim).
const DOCS = {
  baking: 'Sourdough bread starts with a starter of flour and water fermented by wild yeast. Knead the dough, ' +
    'let it rise overnight, then bake it in a hot oven until the crust turns golden brown.',
  mars: 'Mars is the fourth planet from the sun. Rovers such as Curiosity drive across its red, dusty surface, ' +
    'drilling rocks and sending photos back to Earth through orbiting satellites.',
  tennis: 'In tennis a player serves the ball over the net into the service box. Points go love, fifteen, thirty, ' +
    'forty, and a set is won by taking six games with a good racket and quick footwork.',
};
const QUESTIONS = [
  ['How long should sourdough dough rise?', 'baking'],
  ['What temperature should the oven be to bake bread?', 'baking'],
  ['Why does my crust never turn golden?', 'baking'],
  ['Which flour is best for a starter?', 'baking'],
  ['Does wild yeast need warm water?', 'baking'],
  ['How long do I knead the dough by hand?', 'baking'],
  ['Should the dough be fermented overnight?', 'baking'],
  ['How far is Mars from the sun?', 'mars'],
  ['What rocks do rovers drill on Mars?', 'mars'],
  ['Why is the surface of Mars red?', 'mars'],
  ['How does Curiosity send photos back to Earth?', 'mars'],
  ['Which satellites orbit the planet?', 'mars'],
  ['Is the dusty surface hard for a rover to drive on?', 'mars'],
  ['Which planet is fourth from the sun?', 'mars'],
  ['How does a tennis player serve?', 'tennis'],
  ['What does love mean in a tennis score?', 'tennis'],
  ['How many games win a set?', 'tennis'],
  ['Does footwork matter more than the racket?', 'tennis'],
  ['Where must the ball land on a serve?', 'tennis'],
  ['What comes after thirty and forty points?', 'tennis'],
];

for (const model of [NOMIC, QWEN]) {
  test(`RAG with embedMany and cosineSimilarity (${model}): all 20 questions retrieve their document`, async () => {
    const names = Object.keys(DOCS);
    const docs = await embedMany({ model: fireworks.embeddingModel(model), values: names.map((n) => DOCS[n]), maxRetries: 0 });
    const qs = await embedMany({ model: fireworks.embeddingModel(model), values: QUESTIONS.map(([q]) => q), maxRetries: 0 });
    assert.equal(docs.embeddings.length, 3);
    assert.equal(qs.embeddings.length, QUESTIONS.length);
    assert.equal(qs.usage.tokens, QUESTIONS.reduce((n, [q]) => n + tokensOf(q), 0));
    const wrong = [];
    QUESTIONS.forEach(([q, want], i) => {
      const scores = docs.embeddings.map((d) => cosineSimilarity(qs.embeddings[i], d));
      const best = names[scores.indexOf(Math.max(...scores))];
      if (best !== want) wrong.push(`"${q}" -> ${best} (want ${want}; scores ${scores.map((s) => s.toFixed(3)).join(', ')})`);
    });
    assert.deepEqual(wrong, [], 'every question retrieves the document it shares words with');
  });
}

test('congested embeddings pool: openai embeddings.create is shed on Standard and served with service_tier priority; the AI SDK cannot ask for Priority', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS });
  try {
    await patchPool(srv, 'embeddings', { tenant_load: 1.2, tenant_priority_share: 0.2 });
    const c = new OpenAI({ baseURL: `${srv.baseURL}/inference/v1`, apiKey: 'embeddings-congested', maxRetries: 0 });
    await assert.rejects(c.embeddings.create({ model: NOMIC, input: 'a sunny day' }), (err) => {
      assert.equal(err.status, 503, String(err));
      assert.equal(err.code, 'SERVICE_OVERLOADED');
      return true;
    });
    // The openai SDK sends extra body fields as given: the Fireworks service_tier.
    const r = await c.embeddings.create({ model: NOMIC, input: 'a sunny day', service_tier: 'priority' });
    assert.equal(r.data[0].embedding.length, 768);
    // @ai-sdk/fireworks (openai-compatible) sends only model, input,
    // encoding_format, dimensions and user: no service_tier, so under
    // congestion an AI SDK app's embeddings are shed (a finding about the
    // client, shown as the real fleet would show it).
    const fw = createFireworks({ baseURL: `${srv.baseURL}/inference/v1`, apiKey: 'embeddings-congested' });
    await assert.rejects(embed({ model: fw.embeddingModel(NOMIC), value: 'a sunny day', maxRetries: 0 }), (err) => {
      assert.equal(err.statusCode, 503, String(err));
      return true;
    });
  } finally {
    await stopChecked(srv);
  }
});

// Conformance: the Vercel AI SDK (`ai` streamText with @ai-sdk/fireworks,
// built on @ai-sdk/openai-compatible) against the real fleetmock binary.
// The provider streams with stream_options.include_usage and maps
// usage.prompt_tokens_details.cached_tokens to usage.inputTokenDetails.cacheReadTokens
// (raw usage in usage.raw). Both packages declare node >= 22; they run on the
// node these tests use, and a failure caused only by that would show here first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createFireworks } from '@ai-sdk/fireworks';
import { streamText } from 'ai';
import { startServer } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';

let server;
let fireworks;

before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '4'] });
  fireworks = createFireworks({ baseURL: `${server.baseURL}/inference/v1`, apiKey: 'aisdk-test-key' });
});
after(async () => {
  const r = await server.stop();
  assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
});

/** Streams one completion; returns {text, usage, finishReason, response}. */
async function run(prompt, { headers = {}, maxOutputTokens = 12, ...rest } = {}) {
  const errors = [];
  const result = streamText({
    model: fireworks(KIMI),
    prompt,
    maxOutputTokens,
    maxRetries: 0,
    headers,
    onError: ({ error }) => { errors.push(error); },
    ...rest,
  });
  let text = '';
  let parts = 0;
  for await (const delta of result.textStream) {
    text += delta;
    parts++;
  }
  assert.deepEqual(errors, [], 'no stream errors');
  return { text, parts, usage: await result.usage, finishReason: await result.finishReason, response: await result.response };
}

test('streamText: text arrives in pieces, with usage and finish reason', async () => {
  const prompt = 'Write a few words about streams.';
  const r = await run(prompt, { maxOutputTokens: 12 });
  assert.ok(r.text.length > 0, 'text arrived');
  assert.match(r.text, /^\S/, 'first token has no leading space');
  assert.equal(r.text.split(' ').length, r.usage.outputTokens, 'one word per token');
  assert.ok(r.parts >= 2, `arrived as ${r.parts} text parts`);
  // One user message: ceil(bytes/4) + 4 + 3.
  assert.equal(r.usage.inputTokens, Math.ceil(Buffer.byteLength(prompt) / 4) + 7);
  assert.ok(r.usage.outputTokens >= 1 && r.usage.outputTokens <= 12);
  assert.equal(r.usage.totalTokens, r.usage.inputTokens + r.usage.outputTokens);
  assert.ok(['stop', 'length'].includes(r.finishReason), `finish reason ${r.finishReason}`);
  assert.equal(r.finishReason, r.usage.outputTokens === 12 ? 'length' : 'stop');
  assert.equal(r.response.modelId, KIMI);
});

test('streamText: the same long prompt twice with x-session-affinity reports cached input tokens', async () => {
  const prompt = 'Summarise this document. ' + 'fleetmock serves a simulated fleet of replicas. '.repeat(80);
  const headers = { 'x-session-affinity': 'aisdk-session-1' };
  const first = await run(prompt, { headers });
  const second = await run(prompt, { headers });
  assert.equal(first.usage.inputTokens, second.usage.inputTokens);
  assert.equal(first.usage.inputTokenDetails.cacheReadTokens, 0, 'nothing cached the first time');
  const cached = second.usage.inputTokenDetails.cacheReadTokens;
  assert.ok(cached > 0, `second call reports cached tokens, got ${cached}`);
  // "user\n" + prompt + "\n", whole 64-byte blocks of 16 tokens.
  assert.equal(cached, Math.floor((5 + Buffer.byteLength(prompt) + 1) / 64) * 16);
  assert.ok(cached >= 0.9 * second.usage.inputTokens, `${cached} of ${second.usage.inputTokens} cached`);
  assert.equal(second.usage.inputTokenDetails.noCacheTokens, second.usage.inputTokens - cached);
  assert.equal(second.usage.raw.prompt_tokens_details.cached_tokens, cached, 'raw usage agrees');
  // The header reached the server: same replica both times.
  assert.equal(second.response.headers['x-fleetmock-replica'], first.response.headers['x-fleetmock-replica']);
  assert.equal(Number(second.response.headers['fireworks-cached-prompt-tokens']), cached);
});

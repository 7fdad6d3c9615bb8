// Streaming (SSE) shape and token cadence. One pool is pinned to an exact
// cadence (TTFT 300 ms, 50 tok/s, no jitter), so a 100-token stream takes
// 0.3 s + 100 × 20 ms = 2.3 s realistic, ~0 s instant, and 0.23 s at
// --time-scale 10. Cadence assertions are skipped under FLEETMOCK_WRAPPER.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, get, streamRequest } from '../lib/server.mjs';

const K26 = 'accounts/fireworks/models/kimi-k2p6';
const CADENCE = { pools: { 'kimi-k2p6': { ttft_ms: 300, decode_tps: 50, jitter: 0 } } };
const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);
const msgs = (content) => [{ role: 'user', content }];

let realistic; // realistic timing with the pinned cadence
let instant; // --timing instant, same config
let scaled; // realistic, --time-scale 10

before(async () => {
  [realistic, instant, scaled] = await Promise.all([
    startServer({ config: CADENCE, args: ['--seed', '7'] }),
    startServer({ config: CADENCE, args: ['--seed', '7', '--timing', 'instant'] }),
    startServer({ config: CADENCE, args: ['--seed', '7', '--time-scale', '10'] }),
  ]);
});
after(async () => {
  for (const s of [realistic, instant, scaled]) {
    if (!s) continue;
    const r = await s.stop();
    assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
  }
});

/** Checks the whole event sequence of a chat stream; returns {content, chunks, usage}. */
function checkChatStream(r, { tokens, finish, includeUsage, perf = false }) {
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /^text\/event-stream/);
  assert.equal(r.rest.trim(), '', 'nothing after the last event');
  const ev = r.events;
  assert.ok(ev.length >= 3, `got ${ev.length} events`);
  assert.equal(ev.at(-1).data, '[DONE]', '[DONE] is last');
  assert.equal(ev.filter((e) => e.data === '[DONE]').length, 1, 'one [DONE]');
  const chunks = ev.slice(0, -1);
  for (const e of chunks) assert.ok(e.json, `every event before [DONE] is JSON: ${e.data}`);
  const ids = new Set(chunks.map((e) => e.json.id));
  assert.equal(ids.size, 1, 'one id for the whole stream');
  assert.match([...ids][0], /^chatcmpl-./);
  for (const e of chunks) {
    assert.equal(e.json.object, 'chat.completion.chunk');
    assert.equal(e.json.model, K26);
    assert.ok(Number.isInteger(e.json.created));
  }
  const first = chunks[0].json;
  assert.equal(first.choices.length, 1);
  assert.deepEqual(first.choices[0].delta, { role: 'assistant', content: '' });
  assert.equal(first.choices[0].finish_reason, null);

  const usageChunks = includeUsage ? 1 : 0;
  const content = chunks.slice(1, chunks.length - usageChunks);
  // Tolerated here, and refused by its own test below: finish_reason on an
  // extra chunk with an empty delta after the last token (OpenAI's habit).
  let finishChunk = null;
  const tail = content.at(-1)?.json.choices?.[0];
  if (tail && !tail.delta?.content && tail.finish_reason) finishChunk = content.pop();
  assert.equal(content.length, tokens, `one chunk per token: ${tokens}`);
  let text = '';
  content.forEach((e, i) => {
    const c = e.json.choices;
    assert.equal(c.length, 1);
    assert.equal(c[0].index, 0);
    const piece = c[0].delta.content;
    assert.equal(typeof piece, 'string');
    assert.match(piece, i === 0 ? /^\S+$/ : /^ \S+$/, `token ${i} is one word: ${JSON.stringify(piece)}`);
    text += piece;
    const want = i === content.length - 1 && !finishChunk ? finish : null;
    assert.equal(c[0].finish_reason, want, `finish_reason of chunk ${i}`);
  });
  if (finishChunk) {
    assert.equal(finishChunk.json.choices[0].finish_reason, finish);
    assert.equal(finishChunk.json.choices[0].delta.content ?? '', '');
  }
  let usage = null;
  if (includeUsage) {
    for (const e of chunks.slice(0, -1)) assert.equal(e.json.usage, null, 'non-usage chunks carry "usage": null');
    const u = chunks.at(-1).json;
    assert.deepEqual(u.choices, []);
    usage = u.usage;
    assert.equal(usage.completion_tokens, tokens);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    assert.ok(Number.isInteger(usage.prompt_tokens_details.cached_tokens));
  } else {
    for (const e of chunks) {
      assert.ok(e.json.choices.length === 1, 'no usage chunk without include_usage');
      assert.ok(e.json.usage === undefined || e.json.usage === null, 'no usage without include_usage');
    }
  }
  const last = chunks.at(-1).json;
  if (perf) {
    const pm = last.perf_metrics;
    assert.ok(pm && typeof pm === 'object', `perf_metrics in the last chunk: ${JSON.stringify(last)}`);
    for (const k of ['prompt-tokens', 'cached-prompt-tokens', 'server-time-to-first-token', 'server-processing-time']) {
      assert.ok(k in pm, `perf_metrics.${k}`);
      assert.ok(Number.isFinite(Number(pm[k])), `perf_metrics.${k} is a number`);
    }
    for (const e of chunks.slice(0, -1)) assert.equal(e.json.perf_metrics, undefined, 'perf_metrics only in the last chunk');
  } else {
    for (const e of chunks) assert.equal(e.json.perf_metrics, undefined);
  }
  return { text, content, usage, separateFinish: Boolean(finishChunk) };
}

const body100 = { model: K26, messages: msgs('Hello'), max_tokens: 100, ignore_eos: true, stream: true };

test('stream: role chunk, one chunk per token, usage chunk with choices [], then [DONE]', async () => {
  const body = { model: K26, messages: msgs('Hello'), max_tokens: 20, ignore_eos: true, stream: true, seed: 11,
    stream_options: { include_usage: true } };
  const r = await streamRequest(instant, '/v1/chat/completions', body);
  const { text, usage } = checkChatStream(r, { tokens: 20, finish: 'length', includeUsage: true });
  assert.equal(usage.prompt_tokens, 9);
  // Same seed and prompt without streaming give the same text.
  const nonStream = await post(instant, '/v1/chat/completions', { ...body, stream: false, stream_options: undefined });
  assert.equal(nonStream.status, 200, nonStream.text);
  assert.equal(nonStream.json.choices[0].message.content, text);
  assert.deepEqual(nonStream.json.usage.prompt_tokens, usage.prompt_tokens);
});

// fleetmock streams like OpenAI: after the last token, one chunk with an empty
// delta carries finish_reason (docs/api.md). Pin that, so a change is deliberate.
test('finish_reason rides on its own chunk with an empty delta after the last token', async () => {
  for (const [max, finish] of [[6, 'length'], [1000, 'stop']]) {
    const r = await streamRequest(instant, '/v1/chat/completions',
      { model: K26, messages: msgs('Hello'), max_tokens: max, ignore_eos: max === 6, stream: true, seed: 3 });
    const tokens = r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).length;
    const { separateFinish } = checkChatStream(r, { tokens, finish, includeUsage: false });
    assert.equal(separateFinish, true, `finish_reason "${finish}" comes on a chunk of its own`);
  }
});

test('stream without include_usage has no usage chunk', async () => {
  const r = await streamRequest(instant, '/inference/v1/chat/completions',
    { model: K26, messages: msgs('Hello'), max_tokens: 12, ignore_eos: true, stream: true });
  checkChatStream(r, { tokens: 12, finish: 'length', includeUsage: false });
});

test('stream that ends on its own finishes with "stop" and matches usage', async () => {
  const r = await streamRequest(instant, '/v1/chat/completions',
    { model: K26, messages: msgs('Hello'), max_tokens: 1000, stream: true, seed: 3, stream_options: { include_usage: true } });
  const tokens = r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).length;
  assert.ok(tokens >= 1 && tokens < 1000);
  checkChatStream(r, { tokens, finish: 'stop', includeUsage: true });
});

test('perf_metrics_in_response puts perf_metrics in the last chunk (with and without usage)', async () => {
  const base = { model: K26, messages: msgs('Hello'), max_tokens: 8, ignore_eos: true, stream: true, perf_metrics_in_response: true };
  const a = await streamRequest(instant, '/v1/chat/completions', { ...base, stream_options: { include_usage: true } });
  checkChatStream(a, { tokens: 8, finish: 'length', includeUsage: true, perf: true });
  assert.equal(Number(a.events.at(-2).json.perf_metrics['prompt-tokens']), 9);
  const b = await streamRequest(instant, '/v1/chat/completions', base);
  checkChatStream(b, { tokens: 8, finish: 'length', includeUsage: false, perf: true });
});

test('text completions stream too', async () => {
  const r = await streamRequest(instant, '/v1/completions',
    { model: K26, prompt: 'Hello', max_tokens: 6, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  assert.equal(r.status, 200);
  assert.equal(r.events.at(-1).data, '[DONE]');
  const texts = r.events.filter((e) => e.json?.choices?.length).map((e) => e.json.choices[0].text).filter((t) => t);
  assert.equal(texts.length, 6);
  for (const e of r.events.slice(0, -1)) assert.equal(e.json.object, 'text_completion');
  assert.equal(r.events.at(-2).json.usage.completion_tokens, 6);
});

test('cadence: TTFT 300 ms + 100 tokens at 50 tok/s streams in 2.3 s ± 5 %', async (t) => {
  await get(realistic, '/healthz', {}); // warm the connection
  const r = await streamRequest(realistic, '/v1/chat/completions', { ...body100, stream_options: { include_usage: true } });
  checkChatStream(r, { tokens: 100, finish: 'length', includeUsage: true });
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  const done = r.events.at(-1).t / 1000;
  t.diagnostic(`[DONE] after ${done.toFixed(3)} s`);
  assert.ok(done >= 2.185 && done <= 2.415, `[DONE] after ${done.toFixed(3)} s, want 2.185..2.415`);
  const tokenTimes = r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).map((e) => e.t);
  assert.ok(tokenTimes[0] >= 250 && tokenTimes[0] <= 420, `first token at ${tokenTimes[0].toFixed(0)} ms, want ~300-340`);
  const gaps = tokenTimes.slice(1).map((x, i) => x - tokenTimes[i]).sort((a, b) => a - b);
  const median = gaps[Math.floor(gaps.length / 2)];
  t.diagnostic(`first token ${tokenTimes[0].toFixed(1)} ms, median gap ${median.toFixed(2)} ms`);
  assert.ok(median >= 15 && median <= 25, `median inter-token gap ${median.toFixed(1)} ms, want ~20`);
});

test('cadence: --timing instant streams the same 100 tokens in < 50 ms (warm)', async (t) => {
  await streamRequest(instant, '/v1/chat/completions', { ...body100, max_tokens: 2 }); // warm connection
  const r = await streamRequest(instant, '/v1/chat/completions', body100);
  checkChatStream(r, { tokens: 100, finish: 'length', includeUsage: false });
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  const ms = r.events.at(-1).t;
  t.diagnostic(`[DONE] after ${ms.toFixed(1)} ms`);
  assert.ok(ms < 50, `[DONE] after ${ms.toFixed(1)} ms, want < 50`);
});

test('cadence: non-streaming realistic takes the same simulated time (2.3 s ± 10 %)', async (t) => {
  await get(realistic, '/healthz', {}); // warm the connection
  const t0 = performance.now();
  const r = await post(realistic, '/v1/chat/completions', { ...body100, stream: false });
  const s = (performance.now() - t0) / 1000;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.completion_tokens, 100);
  assert.equal(r.json.choices[0].finish_reason, 'length');
  t.diagnostic(`non-stream took ${s.toFixed(3)} s`);
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  assert.ok(s >= 2.07 && s <= 2.53, `non-stream took ${s.toFixed(3)} s, want 2.07..2.53`);
});

test('cadence: --time-scale 10 makes the 2.3 s stream take ~0.23 s (± 25 %)', async (t) => {
  await streamRequest(scaled, '/v1/chat/completions', { ...body100, max_tokens: 1 }); // warm connection
  const r = await streamRequest(scaled, '/v1/chat/completions', body100);
  checkChatStream(r, { tokens: 100, finish: 'length', includeUsage: false });
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  const s = r.events.at(-1).t / 1000;
  t.diagnostic(`[DONE] after ${s.toFixed(3)} s`);
  assert.ok(s >= 0.1725 && s <= 0.2875, `[DONE] after ${s.toFixed(3)} s, want 0.1725..0.2875`);
});

test('two concurrent realistic streams keep their own cadence', async (t) => {
  const body = { ...body100, max_tokens: 25 }; // 0.3 s + 25 × 20 ms = 0.8 s
  await get(realistic, '/healthz', {}); // warm the connection
  const t0 = performance.now();
  const [a, b] = await Promise.all([
    streamRequest(realistic, '/v1/chat/completions', body),
    streamRequest(realistic, '/v1/chat/completions', { ...body, messages: msgs('Other') }),
  ]);
  const s = (performance.now() - t0) / 1000;
  checkChatStream(a, { tokens: 25, finish: 'length', includeUsage: false });
  checkChatStream(b, { tokens: 25, finish: 'length', includeUsage: false });
  t.diagnostic(`both done after ${s.toFixed(3)} s`);
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  assert.ok(s >= 0.72 && s <= 0.92, `both done after ${s.toFixed(3)} s, want ~0.8`);
});

test('FLEETMOCK_TIME_SCALE=10 in the environment works like --time-scale 10', async (t) => {
  const envScaled = await startServer({ config: CADENCE, env: { FLEETMOCK_TIME_SCALE: '10' } });
  try {
    await streamRequest(envScaled, '/v1/chat/completions', { ...body100, max_tokens: 1 }); // warm connection
    const r = await streamRequest(envScaled, '/v1/chat/completions', body100);
    checkChatStream(r, { tokens: 100, finish: 'length', includeUsage: false });
    const s = r.events.at(-1).t / 1000;
    t.diagnostic(`[DONE] after ${s.toFixed(3)} s`);
    if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
    assert.ok(s >= 0.1725 && s <= 0.2875, `[DONE] after ${s.toFixed(3)} s, want 0.1725..0.2875`);
  } finally {
    const res = await envScaled.stop();
    assert.equal(res.code, 0);
  }
});

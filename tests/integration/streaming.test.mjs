// Streaming (SSE) shape and token cadence. One pool is pinned to an exact
// cadence (TTFT 300 ms, 50 tok/s, no jitter), so token k of a stream is due
// 300 ms + (k - 1) × 20 ms after the request (plus ~1 ms of prefill, which the
// server reports in fireworks-server-time-to-first-token): a 100-token stream
// ends at 2.28 s realistic, at once instant, and at 0.228 s at --time-scale 10.
// The server never sends a token before it is due, so those are exact lower
// bounds; a busy machine can only make tokens late, by up to LATE_MS
// (tests/lib/server.mjs). Cadence assertions are skipped under FLEETMOCK_WRAPPER.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, get, streamRequest, assertOnTime, assertAtOnce, assertScheduled, WRAPPED } from '../lib/server.mjs';

const K26 = 'accounts/fireworks/models/kimi-k2p6';
const CADENCE = { pools: { 'kimi-k2p6': { ttft_ms: 300, decode_tps: 50, jitter: 0 } } };
const GAP_MS = 20; // 50 tok/s
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

/** Arrival times (ms since the request was sent) of a stream's content tokens. */
const tokenTimes = (r) => r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).map((e) => e.t);

/** The server's own TTFT for a request it admitted at once, in ms (rounded to 1 ms, so -0.5 for a bound). */
const ttftMs = (r) => Number(r.headers.get('fireworks-server-time-to-first-token')) * 1000;

/**
 * Every token of a stream on the pinned pool, at `scale` simulated seconds per
 * real second, arrives no earlier than the schedule has it (TTFT, then one
 * gap per token) and at most LATE_MS later; so does [DONE], with the last one.
 */
function assertPaced(r, scale = 1) {
  const ttft = ttftMs(r);
  assertScheduled(ttft, 301, 'TTFT (300 ms + 9 prompt tokens at 8000/s)');
  const times = tokenTimes(r);
  const due = (k) => (ttft - 0.5 + k * GAP_MS) / scale;
  times.forEach((t, k) => assertOnTime(t, due(k), `token ${k + 1}`));
  assertOnTime(r.events.at(-1).t, due(times.length - 1), '[DONE]');
}

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

test('cadence: TTFT 300 ms, then 100 tokens at 50 tok/s, each token on its schedule (2.28 s in all)', async (t) => {
  await get(realistic, '/healthz', {}); // warm the connection
  const r = await streamRequest(realistic, '/v1/chat/completions', { ...body100, stream_options: { include_usage: true } });
  checkChatStream(r, { tokens: 100, finish: 'length', includeUsage: true });
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  t.diagnostic(`first token ${tokenTimes(r)[0].toFixed(1)} ms, [DONE] after ${r.events.at(-1).t.toFixed(1)} ms`);
  assertPaced(r);
});

test('cadence: --timing instant streams the same 100 tokens at once', async (t) => {
  await streamRequest(instant, '/v1/chat/completions', { ...body100, max_tokens: 2 }); // warm connection
  const r = await streamRequest(instant, '/v1/chat/completions', body100);
  checkChatStream(r, { tokens: 100, finish: 'length', includeUsage: false });
  // The server's schedule is empty: no time to the first token.
  assertAtOnce(ttftMs(r), 'instant TTFT');
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  // Realistic would take 2.28 s at the earliest; instant is only ever late.
  const ms = r.events.at(-1).t;
  t.diagnostic(`[DONE] after ${ms.toFixed(1)} ms`);
  assertOnTime(ms, 0, '[DONE]');
});

test('cadence: non-streaming realistic answers when its last token is due (2.28 s)', async (t) => {
  await get(realistic, '/healthz', {}); // warm the connection
  const t0 = performance.now();
  const r = await post(realistic, '/v1/chat/completions', { ...body100, stream: false });
  const ms = performance.now() - t0;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.completion_tokens, 100);
  assert.equal(r.json.choices[0].finish_reason, 'length');
  t.diagnostic(`non-stream took ${ms.toFixed(1)} ms`);
  const ttft = ttftMs(r);
  assertScheduled(ttft, 301, 'TTFT (300 ms + 9 prompt tokens at 8000/s)');
  // The processing time is measured, not scheduled: at least the schedule, and no more than the client saw.
  const processing = Number(r.headers.get('fireworks-server-processing-time')) * 1000;
  assert.ok(processing >= ttft - 1 + 99 * GAP_MS && processing <= ms + 1, `processing time ${processing} ms`);
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  assertOnTime(ms, ttft - 0.5 + 99 * GAP_MS, 'the answer');
});

test('cadence: --time-scale 10 makes the 2.28 s stream take 0.228 s', async (t) => {
  await streamRequest(scaled, '/v1/chat/completions', { ...body100, max_tokens: 1 }); // warm connection
  const r = await streamRequest(scaled, '/v1/chat/completions', body100);
  checkChatStream(r, { tokens: 100, finish: 'length', includeUsage: false });
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  t.diagnostic(`[DONE] after ${r.events.at(-1).t.toFixed(1)} ms`);
  // 2.28 s unscaled would be later than 0.228 s + LATE_MS.
  assertPaced(r, 10);
});

test('two concurrent realistic streams keep their own cadence', async (t) => {
  // 100 tokens each: were the two to share one cadence (or run one after the
  // other), the last tokens would come more than LATE_MS after their schedule.
  await get(realistic, '/healthz', {}); // warm the connection
  const [a, b] = await Promise.all([
    streamRequest(realistic, '/v1/chat/completions', body100),
    streamRequest(realistic, '/v1/chat/completions', { ...body100, messages: msgs('Other') }),
  ]);
  checkChatStream(a, { tokens: 100, finish: 'length', includeUsage: false });
  checkChatStream(b, { tokens: 100, finish: 'length', includeUsage: false });
  t.diagnostic(`done after ${a.events.at(-1).t.toFixed(1)} and ${b.events.at(-1).t.toFixed(1)} ms`);
  if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
  assertPaced(a);
  assertPaced(b);
});

test('FLEETMOCK_TIME_SCALE=10 in the environment works like --time-scale 10', async (t) => {
  const envScaled = await startServer({ config: CADENCE, env: { FLEETMOCK_TIME_SCALE: '10' } });
  try {
    await streamRequest(envScaled, '/v1/chat/completions', { ...body100, max_tokens: 1 }); // warm connection
    const r = await streamRequest(envScaled, '/v1/chat/completions', body100);
    checkChatStream(r, { tokens: 100, finish: 'length', includeUsage: false });
    t.diagnostic(`[DONE] after ${r.events.at(-1).t.toFixed(1)} ms`);
    if (WRAPPED) { t.skip('cadence not checked under FLEETMOCK_WRAPPER'); return; }
    assertPaced(r, 10);
  } finally {
    const res = await envScaled.stop();
    assert.equal(res.code, 0);
  }
});

// Record and replay (docs/replies.md): a recording fleetmock proxies the
// openai SDK to a second fleetmock (the upstream) and writes each exchange
// as a reply rule; a third fleetmock replays the file with the upstream
// stopped. The app sees the same text, cut into the same chunks, the same
// tool-call arguments and finish reasons, streamed and not, at the recorded
// pace: nothing sooner than recorded less 10 %, and no later than recorded
// plus 10 % (and LATE_MS, what a busy machine may add).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, LATE_MS, WRAPPED, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', minLength: 40, maxLength: 40 } }, required: ['city'] } } }];

// The app's three calls; returns what it saw, with the time of each chunk.
async function session(client) {
  const t0 = performance.now();
  const s = await client.chat.completions.create({ model: KIMI, max_tokens: 40, stream: true, messages: [{ role: 'user', content: 'tell me a story' }] });
  const chunks = [];
  let finish;
  for await (const c of s) {
    const d = c.choices[0]?.delta?.content;
    if (d) chunks.push(d);
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  const streamMs = performance.now() - t0;
  const whole = await client.chat.completions.create({ model: KIMI, max_tokens: 20, messages: [{ role: 'user', content: 'one line please' }] });
  const ts = await client.chat.completions.create({ model: KIMI, stream: true, tools, tool_choice: 'required', messages: [{ role: 'user', content: 'weather?' }] });
  const args = [];
  let name;
  for await (const c of ts) {
    const call = c.choices[0]?.delta?.tool_calls?.[0];
    if (call?.function?.name) name = call.function.name;
    if (call?.function?.arguments) args.push(call.function.arguments);
  }
  return { chunks, finish, streamMs, whole: whole.choices[0].message.content, wholeFinish: whole.choices[0].finish_reason, name, args };
}

test('record against a second fleetmock, replay with it stopped: the same chunks at the recorded pace', { skip: WRAPPED && 'wall-clock pacing' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fm-record-'));
  const file = path.join(dir, 'session.jsonl');
  const upstream = await startServer({ config: NO_LIMITS, args: ['--seed', '9'] });
  let recorded;
  try {
    const recorder = await startServer({ args: ['--record', file, '--upstream', upstream.baseURL] });
    try {
      recorded = await session(new OpenAI({ apiKey: 'k', baseURL: `${recorder.baseURL}/inference/v1`, maxRetries: 0 }));
      const m = await (await fetch(`${recorder.baseURL}/metrics`)).text();
      assert.match(m, /fleetmock_recorded_total 3\b/);
    } finally {
      await recorder.stop();
    }
  } finally {
    await upstream.stop();
  }
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  assert.equal(lines[0].reply.pace, 'recorded');
  assert.deepEqual(lines[0].match.last_user, { equals: 'tell me a story' });
  assert.ok(recorded.chunks.length > 5, JSON.stringify(recorded));

  const replayer = await startServer({ config: NO_LIMITS, args: ['--replies', file] });
  try {
    const replayed = await session(new OpenAI({ apiKey: 'k', baseURL: `${replayer.baseURL}/inference/v1`, maxRetries: 0 }));
    assert.deepEqual(replayed.chunks, recorded.chunks);
    assert.equal(replayed.finish, recorded.finish);
    assert.equal(replayed.whole, recorded.whole);
    assert.equal(replayed.wholeFinish, recorded.wholeFinish);
    assert.equal(replayed.name, 'get_weather');
    assert.deepEqual(replayed.args, recorded.args);
    // The recorded pace: the stream is due when the recorded timing says (its
    // first chunk after ttft_ms, each next one token_ms later), never earlier,
    // and late by LATE_MS at most. The timing is the file's, not how long the
    // recording took to reach the client, which a busy machine stretches.
    const timing = lines.find((l) => l.match.last_user?.equals === 'tell me a story' && l.reply.timing)?.reply.timing;
    assert.ok(timing, JSON.stringify(lines.map((l) => l.reply)));
    const want = timing.ttft_ms + (timing.token_ms ?? []).reduce((a, b) => a + b, 0);
    assert.ok(replayed.streamMs >= 0.95 * want - 5, `replayed in ${replayed.streamMs.toFixed(0)} ms, due after ${want} ms`);
    assert.ok(replayed.streamMs <= 1.1 * want + LATE_MS, `replayed in ${replayed.streamMs.toFixed(0)} ms, due after ${want} ms`);
  } finally {
    await replayer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--record without --upstream is refused at once, saying they go together', async () => {
  const { runCli } = await import('../lib/server.mjs');
  const r = await runCli(['--record', '/tmp/x.jsonl']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--record FILE and --upstream URL go together/);
});

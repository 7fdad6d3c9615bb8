// Process lifecycle: drain on SIGTERM/SIGINT, the grace period, client
// disconnects, --check-config, --help, --version, and the logs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, post, get, streamRequest, probeConnect, runCli, sleep, assertNoSlotsHeld, LATE_MS, WRAPPED } from '../lib/server.mjs';

const K26 = 'accounts/fireworks/models/kimi-k2p6';
const SLOW = { pools: { 'kimi-k2p6': { ttft_ms: 100, decode_tps: 20, jitter: 0 } } };
const GAP_MS = 50; // 20 tok/s
const SCALE = WRAPPED ? 5 : 1;
const msgs = (content) => [{ role: 'user', content }];
const contentOf = (events) => events.filter((e) => e.json?.choices?.[0]?.delta?.content);
/** The server's own time to the first token, in ms (exact for a request admitted at once; rounded to 1 ms). */
const ttftMs = (r) => Number(r.headers.get('fireworks-server-time-to-first-token')) * 1000;

/** Resolves with the exit of `server`, or rejects after ms. */
function exitWithin(server, ms) {
  return Promise.race([
    server.exited,
    sleep(ms * SCALE).then(() => { throw new Error(`server still running after ${ms} ms`); }),
  ]);
}

function tempFile(name, content) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmock-lc-'));
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return { path, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('SIGTERM during a slow stream: the stream finishes, new connections are refused, exit 0', async (t) => {
  const server = await startServer({ config: SLOW });
  try {
    let termAt = null;
    // 60 tokens at 20 tok/s after a 100 ms TTFT: ~3.1 s. SIGTERM after 5 tokens.
    const streamP = streamRequest(server, '/v1/chat/completions',
      { model: K26, messages: msgs('Hello'), max_tokens: 60, ignore_eos: true, stream: true, stream_options: { include_usage: true } },
      {
        maxMs: 20000,
        onEvent: (ev, events) => {
          if (termAt === null && contentOf(events).length === 5) {
            termAt = performance.now();
            process.kill(server.pid, 'SIGTERM');
          }
        },
      });
    // While the stream drains, the listening socket must be gone: probed until
    // refused, at most LATE_MS after SIGTERM (the server handles it late on a busy machine).
    const probe = (async () => {
      for (let i = 0; i < 200 && termAt === null; i++) await sleep(20);
      assert.ok(termAt !== null, 'SIGTERM was sent');
      let seen = 'not probed';
      for (let i = 0; i < 1000 && (i === 0 || performance.now() < termAt + LATE_MS); i++) {
        seen = await probeConnect(server, 1000);
        if (seen === 'refused') break;
        await sleep(20);
      }
      return { seen, at: performance.now() };
    })();
    const [r, probed] = await Promise.all([streamP, probe]);
    assert.equal(probed.seen, 'refused', 'a new connection after SIGTERM is refused');
    assert.ok(probed.at < r.sentAt + r.tEnd, 'refused while the stream was still draining');
    assert.equal(r.status, 200);
    assert.equal(r.events.at(-1).data, '[DONE]', 'the stream ends with [DONE]');
    const tokens = contentOf(r.events);
    assert.equal(tokens.length, 60, 'all 60 tokens arrive');
    const finishes = r.events.map((e) => e.json?.choices?.[0]?.finish_reason).filter(Boolean);
    assert.deepEqual(finishes, ['length']);
    assert.equal(r.events.at(-2).json.usage.completion_tokens, 60);
    assert.ok(!r.events.some((e) => e.json?.error), 'no error event');
    const exit = await exitWithin(server, 5000);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr);
    // The drain keeps the cadence: no token after SIGTERM comes before its
    // schedule (an exact bound), so the last one is 3.05 s after the request.
    const ttft = ttftMs(r);
    tokens.forEach((e, k) => assert.ok(e.t >= ttft - 0.5 + k * GAP_MS,
      `token ${k + 1} at ${e.t.toFixed(0)} ms, due at ${(ttft + k * GAP_MS).toFixed(0)} ms: the drain did not flush the stream`));
    t.diagnostic(`stream drained for ${((r.sentAt + r.tEnd - termAt) / 1000).toFixed(2)} s after SIGTERM`);
  } finally {
    await server.stop('SIGKILL', 1000);
  }
});

test('--grace-period 1: a long stream is ended after ~1 s with a final SSE error event, exit 0', async (t) => {
  const server = await startServer({ config: SLOW, args: ['--grace-period', '1'] });
  try {
    let termAt = null;
    // 200 tokens at 20 tok/s would take 10 s; the grace period cuts it at ~1 s.
    const r = await streamRequest(server, '/v1/chat/completions',
      { model: K26, messages: msgs('Hello'), max_tokens: 200, ignore_eos: true, stream: true },
      {
        maxMs: 20000,
        onEvent: (ev, events) => {
          if (termAt === null && contentOf(events).length === 3) {
            termAt = performance.now();
            process.kill(server.pid, 'SIGTERM');
          }
        },
      });
    const endAfter = performance.now() - termAt;
    assert.equal(r.status, 200);
    const last = r.events.at(-1);
    assert.ok(last.json && last.json.error, `last event is a data: {"error":...} line, got ${JSON.stringify(last.data)}`);
    assert.equal(typeof last.json.error.message, 'string');
    assert.ok(last.json.error.message.length > 0);
    assert.equal(typeof last.json.error.code, 'string');
    assert.equal(r.events.filter((e) => e.json?.error).length, 1, 'exactly one error event');
    const tokens = contentOf(r.events).length;
    assert.ok(tokens >= 3 && tokens < 200, `stream cut short: ${tokens} tokens`);
    const exit = await exitWithin(server, 5000);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr);
    // The grace period let the stream go on (how many tokens fit in it depends
    // on how punctual a busy machine is), and no token came before its schedule.
    assert.ok(tokens > 3, `the stream went on after SIGTERM: ${tokens} tokens`);
    assert.ok(tokens <= 1 + Math.floor((r.tEnd - ttftMs(r) + 0.5) / GAP_MS), `${tokens} tokens in ${r.tEnd.toFixed(0)} ms at 20/s`);
    if (WRAPPED) { t.diagnostic('grace timing not checked under FLEETMOCK_WRAPPER'); return; }
    // The grace timer counts from SIGTERM on the server's millisecond loop
    // clock (hence 1 ms), so never earlier; the stream ends at its next token
    // due (within 50 ms), and at most LATE_MS late.
    assert.ok(endAfter >= 999 && endAfter <= 1000 + GAP_MS + LATE_MS,
      `stream ended ${endAfter.toFixed(0)} ms after SIGTERM, want 1000..${1000 + GAP_MS + LATE_MS}`);
  } finally {
    await server.stop('SIGKILL', 1000);
  }
});

test('a client that disconnects mid-stream does not hurt the server', async () => {
  const server = await startServer({ config: SLOW });
  try {
    for (let round = 0; round < 5; round++) {
      const ctl = new AbortController();
      const r = await streamRequest(server, '/v1/chat/completions',
        { model: K26, messages: msgs(`Round ${round}`), max_tokens: 100, ignore_eos: true, stream: true },
        { signal: ctl.signal, maxMs: 10000, onEvent: (ev, events) => { if (contentOf(events).length === 3) ctl.abort(); } });
      assert.equal(r.aborted, true, 'the client aborted');
      assert.equal(contentOf(r.events).length, 3);
    }
    const h = await get(server, '/healthz', {});
    assert.equal(h.status, 200);
    const g = await post(server, '/v1/chat/completions', { model: K26, messages: msgs('Hello'), max_tokens: 2, ignore_eos: true });
    assert.equal(g.status, 200, g.text);
    assert.equal(g.json.usage.completion_tokens, 2);
    const s = await streamRequest(server, '/v1/chat/completions', { model: K26, messages: msgs('Hello'), max_tokens: 3, ignore_eos: true, stream: true });
    assert.equal(s.events.at(-1).data, '[DONE]');
    assert.equal(contentOf(s.events).length, 3);
  } finally {
    const res = await server.stop();
    assert.equal(res.code, 0, res.stderr);
  }
});

test('a client that disconnects frees its slot at once (slots: 4, no leak)', async () => {
  // With 4 slots, Standard is shed from 85 % demand. If the 4 aborted streams
  // below leaked their slots, every later request would wait 250 ms and get 503.
  const server = await startServer({ config: { pools: { 'kimi-k2p6': { ...SLOW.pools['kimi-k2p6'], slots: 4 } } } });
  try {
    const body = { model: K26, messages: msgs('Hello'), max_tokens: 100, ignore_eos: true, stream: true };
    for (let round = 0; round < 2; round++) {
      const aborted = [0, 0, 2, 2].map(async (after, i) => {
        const ctl = new AbortController();
        if (after === 0) setTimeout(() => ctl.abort(), 40); // gone during TTFT
        const r = await streamRequest(server, '/v1/chat/completions', { ...body, messages: msgs(`r${round} c${i}`) },
          { signal: ctl.signal, maxMs: 10000, onEvent: (ev, events) => { if (after && contentOf(events).length === after) ctl.abort(); } });
        assert.equal(r.aborted, true);
      });
      await Promise.all(aborted);
      await assertNoSlotsHeld(server); // the hang-ups are seen (bounded), so nothing below waits
      const rs = await Promise.all([0, 1, 2].map((i) =>
        streamRequest(server, '/v1/chat/completions', { ...body, max_tokens: 4, messages: msgs(`after ${round} ${i}`) })));
      for (const r of rs) {
        assert.equal(r.status, 200, `admitted after the aborts: ${r.raw.slice(0, 300)}`);
        assert.equal(contentOf(r.events).length, 4);
        assert.equal(r.events.at(-1).data, '[DONE]');
      }
    }
  } finally {
    const res = await server.stop();
    assert.equal(res.code, 0, res.stderr);
  }
});

test('SIGTERM while a non-streaming request runs: it still gets its full answer', async () => {
  const server = await startServer({ config: SLOW });
  try {
    // 100 ms + 30 tokens at 20/s: ~1.6 s; SIGTERM once the server holds it.
    const p = post(server, '/v1/chat/completions', { model: K26, messages: msgs('Hello'), max_tokens: 30, ignore_eos: true });
    let held = 0;
    for (let i = 0; i < 500 && held === 0; i++) {
      held = (await get(server, '/admin/state', {})).json.pools['kimi-k2p6'].in_flight.standard;
      if (held === 0) await sleep(10);
    }
    assert.equal(held, 1, 'the request is running when SIGTERM comes');
    process.kill(server.pid, 'SIGTERM');
    const r = await p;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.usage.completion_tokens, 30);
    assert.equal(r.json.choices[0].finish_reason, 'length');
    const exit = await exitWithin(server, 5000);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr);
  } finally {
    await server.stop('SIGKILL', 1000);
  }
});

test('SIGTERM and SIGINT on an idle server exit 0 promptly', async () => {
  for (const sig of ['SIGTERM', 'SIGINT']) {
    const server = await startServer();
    const t0 = performance.now();
    const res = await server.stop(sig, 5000);
    assert.deepEqual({ code: res.code, signal: res.signal }, { code: 0, signal: null }, `${sig}: ${res.stderr}`);
    // Nothing to drain: all the time it takes is lateness.
    if (!WRAPPED) assert.ok(performance.now() - t0 <= LATE_MS, `${sig} exit took ${(performance.now() - t0).toFixed(0)} ms (LATE_MS ${LATE_MS})`);
  }
});

test('--check-config on a bad config exits 2 and prints every error with its JSON path', async () => {
  const f = tempFile('config.json', { pools: { 'kimi-k2p6': { decode_tps: -1, ttft_ms: 'slow' } } });
  try {
    const r = await runCli(['--check-config', f.path]);
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 2, out);
    // One line per error: "<file>: <json path>: <what is wrong>".
    assert.match(out, /config\.json: pools\.kimi-k2p6\.decode_tps: must be \S/);
    assert.match(out, /config\.json: pools\.kimi-k2p6\.ttft_ms: must be \S/);
  } finally { f.cleanup(); }
});

test('--check-config refuses decode_tps 0 and a negative slots count', async () => {
  const f = tempFile('config.json', { pools: { 'kimi-k2p6': { decode_tps: 0, slots: -4 } } });
  try {
    const r = await runCli(['--check-config', f.path]);
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 2, out);
    assert.match(out, /pools\.kimi-k2p6\.decode_tps: /);
    assert.match(out, /pools\.kimi-k2p6\.slots: /);
  } finally { f.cleanup(); }
});

test('--check-config on malformed JSON exits 2', async () => {
  const f = tempFile('config.json', '{"pools": {');
  try {
    const r = await runCli(['--check-config', f.path]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /config\.json/);
  } finally { f.cleanup(); }
});

// cJSON ends a string at \u0000, so a NUL in a config or scenario string
// would make the file mean something it does not say (issue 12, defect 7).
test('--check-config refuses a NUL in a config string, by path, and never prints an API key', async () => {
  const f = tempFile('config.json', '{"pools": {"kimi-k2p6": {"slots": 4}},' +
    ' "accounts": {"keys": {"sk-live-secret\\u0000": {"name": "x"}}}}');
  try {
    const r = await runCli(['--check-config', f.path]);
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 2, out);
    assert.match(out, /config\.json: accounts\.keys\[0\]: must not contain a NUL character \(\\u0000\); remove it/);
    assert.doesNotMatch(out, /secret/);
  } finally { f.cleanup(); }
});

test('--check-config refuses a scenario whose name holds a NUL, and --scenario never starts it', async () => {
  const scn = '{"name": "launch-spike\\u0000x", "description": "d", "duration_s": 10,' +
    ' "steps": [{"at_s": 0, "pools": {"kimi-k2p6": {"tenant_load": 1}}}]}';
  const f = tempFile('scn.json', scn);
  try {
    const r = await runCli(['--check-config', f.path]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /scn\.json: name: must not contain a NUL character \(\\u0000\); remove it/);
    const r2 = await runCli(['--port', '0', '--scenario', f.path], { timeoutMs: 10000 });
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /name: must not contain a NUL character/);
  } finally { f.cleanup(); }
});

test('--check-config on a good config exits 0', async () => {
  const f = tempFile('config.json', SLOW);
  try {
    const r = await runCli(['--check-config', f.path]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  } finally { f.cleanup(); }
});

test('a bad --config never starts: exit 2 with the JSON path', async () => {
  const f = tempFile('config.json', { pools: { 'kimi-k2p6': { decode_tps: -1 } } });
  try {
    const r = await runCli(['--port', '0', '--config', f.path], { timeoutMs: 10000 });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /pools\.kimi-k2p6\.decode_tps/);
    assert.doesNotMatch(r.stderr, /listening on/);
  } finally { f.cleanup(); }
});

test('--help exits 0 and lists every option', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout + r.stderr;
  for (const opt of ['--host', '--port', '--port-file', '--config', '--seed', '--time-scale', '--timing',
    '--admin-token', '--log-format', '--log-level', '--grace-period', '--max-body-bytes', '--check-config',
    '--workers', '--scenario', '--healthcheck', '--help', '--version']) {
    assert.ok(new RegExp(`${opt}(?![-\\w])`).test(out), `--help lists ${opt}`);
  }
});

test('docs/cli.md documents every option --help lists', async () => {
  const r = await runCli(['--help']);
  const listed = [...r.stdout.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(listed.length >= 18, `options found in --help: ${listed}`);
  const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
  for (const opt of listed) assert.ok(doc.includes('| `' + opt + '`'), `docs/cli.md has a row for ${opt}`);
});

test('--version prints a version and exits 0', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\d+\.\d+\.\d+/);
});

test('an unknown option exits non-zero with a message', async () => {
  const r = await runCli(['--no-such-option']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no-such-option/);
});

test('the first log line at info says "listening on http://127.0.0.1:PORT"', async () => {
  const server = await startServer({ args: ['--log-level', 'info'] });
  try {
    for (let i = 0; i < 100 && !server.stderr.includes('\n'); i++) await sleep(20);
    const first = server.stderr.split('\n').find((l) => l.trim().length > 0) || '';
    assert.ok(first.includes(`listening on http://127.0.0.1:${server.port}`), `first line: ${first}`);
  } finally {
    const res = await server.stop();
    assert.equal(res.code, 0);
  }
});

test('FLEETMOCK_LOG_FORMAT=json from the environment works like the flag', async () => {
  const server = await startServer({ env: { FLEETMOCK_LOG_FORMAT: 'json' }, args: ['--log-level', 'info'] });
  try {
    for (let i = 0; i < 100 && !server.stderr.includes('\n'); i++) await sleep(20);
    const first = server.stderr.split('\n').find((l) => l.trim().length > 0) || '';
    assert.doesNotThrow(() => JSON.parse(first), `FLEETMOCK_LOG_FORMAT=json gives JSON lines: ${first}`);
  } finally {
    await server.stop();
  }
});

test('--port-file holds the bound port and a newline', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmock-pf-'));
  const portFile = join(dir, 'port');
  const wrapper = (process.env.FLEETMOCK_WRAPPER || '').split(' ').filter(Boolean);
  const args = ['--port', '0', '--port-file', portFile, '--log-level', 'warn'];
  const child = wrapper.length
    ? spawn(wrapper[0], [...wrapper.slice(1), process.env.FLEETMOCK_BIN, ...args], { stdio: 'ignore' })
    : spawn(process.env.FLEETMOCK_BIN, args, { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    for (let i = 0; i < 500 * SCALE && !existsSync(portFile); i++) await sleep(20);
    const text = readFileSync(portFile, 'utf8');
    assert.match(text, /^[1-9]\d*\n$/, `port file ${JSON.stringify(text)}`);
    const port = Number(text.trim());
    assert.ok(port > 0 && port < 65536);
    const h = await get({ baseURL: `http://127.0.0.1:${port}` }, '/healthz', {});
    assert.equal(h.status, 200);
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    const exit = await exited;
    rmSync(dir, { recursive: true, force: true });
    assert.equal(exit.code, 0);
  }
});

test('--log-level warn keeps info lines out of the log', async () => {
  const server = await startServer({ args: ['--log-level', 'warn'] });
  await get(server, '/healthz', {});
  await post(server, '/v1/chat/completions', { model: K26, messages: msgs('Hello'), max_tokens: 2 });
  const res = await server.stop();
  assert.equal(res.code, 0);
  assert.doesNotMatch(res.stderr, /listening on/);
});

test('--log-format json: every log line parses as a JSON object', async () => {
  const server = await startServer({ args: ['--log-format', 'json', '--log-level', 'debug'] });
  let res;
  try {
    await get(server, '/healthz', {});
    await post(server, '/v1/chat/completions', { model: K26, messages: msgs('Hello'), max_tokens: 2 });
    await post(server, '/v1/chat/completions', '{bad json');
    await get(server, '/v1/nope');
  } finally {
    res = await server.stop();
  }
  assert.equal(res.code, 0);
  const lines = res.stderr.split('\n').filter((l) => l.trim().length > 0);
  assert.ok(lines.length >= 1, 'some log lines');
  for (const l of lines) {
    let obj;
    assert.doesNotThrow(() => { obj = JSON.parse(l); }, `not JSON: ${l}`);
    assert.equal(typeof obj, 'object');
    assert.ok(obj !== null && !Array.isArray(obj), `a JSON object: ${l}`);
  }
  assert.ok(lines.some((l) => l.includes(`listening on http://127.0.0.1:${server.port}`)), 'the listening line is logged');
});

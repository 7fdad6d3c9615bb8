// Starts the real fleetmock binary on port 0 and hands back its base URL.
// Every integration and conformance test goes through here, so the server
// is always found, started, awaited and stopped the same way.
//
//   FLEETMOCK_BIN           path of the binary (set by ctest)
//   FLEETMOCK_WRAPPER       optional command prefix, e.g. "valgrind --error-exitcode=99 -q"
//   FLEETMOCK_TEST_LATE_MS  how late a busy machine may make anything (LATE_MS below)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Resolves after ms milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Time on a busy machine. Users run this suite inside their own CI, beside
// other work, so a test may not depend on how fast the machine is.
//
// fleetmock never acts early: its token schedule is absolute (each token is
// due at the previous one's due time plus a gap), its timers round up, and
// nothing is sent before the simulated time it is due. So a LOWER bound on
// when a client sees something, taken from the schedule, is exact, whatever
// the load. Simulated times the server computes rather than measures are
// exact too: fireworks-server-time-to-first-token of a request admitted at
// once, x-fleetmock-queue-ms and the processing time of work done in one go
// (0 ms: two clock reads in the same call). Prefer those.
//
// What a busy machine adds is lateness: a stalled server catches up in a
// burst, a stalled client reads late. So every UPPER bound on wall-clock
// time gets this one allowance and no other slack: LATE_MS, 1.5 s unless
// FLEETMOCK_TEST_LATE_MS says otherwise, times 5 under FLEETMOCK_WRAPPER
// (valgrind), like every other bound in this file. A larger value trades
// sharpness for tolerance; it never turns a lower bound into a guess.
export const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);
export const LATE_MS = (Number(process.env.FLEETMOCK_TEST_LATE_MS) || 1500) * (WRAPPED ? 5 : 1);

/**
 * Fails unless `ms` (a wall-clock time) is no earlier than `dueMs`, when the
 * schedule allows it at the earliest, and no later than LATE_MS after that.
 */
export function assertOnTime(ms, dueMs, what) {
  assert.ok(ms >= dueMs && ms <= dueMs + LATE_MS,
    `${what} at ${ms.toFixed(2)} ms: due at ${dueMs.toFixed(2)} ms, never earlier, and at most LATE_MS (${LATE_MS}) late`);
}

/**
 * Fails unless the server reports `ms` (simulated milliseconds, rounded to
 * 1 ms), a time it computes from its schedule, as `dueMs`: e.g. the
 * fireworks-server-time-to-first-token of a request admitted at once. The
 * server reads its clock twice in one call for it; on a native build that
 * costs nothing, under a wrapper the call itself is slow, so there it may
 * add up to LATE_MS.
 */
export function assertScheduled(ms, dueMs, what) {
  const n = Number(ms);
  const hi = dueMs + (WRAPPED ? LATE_MS : 1);
  assert.ok(n >= dueMs - 1 && n <= hi, `${what}: ${ms} ms, want ${dueMs} (${dueMs - 1}..${hi})`);
}

/** Fails unless the server reports `ms` of work it does in one call: 0 on a native build (see assertScheduled). */
export function assertAtOnce(ms, what) {
  const n = Number(ms);
  assert.ok(WRAPPED ? n <= LATE_MS : n === 0, `${what}: ${ms} ms, want ${WRAPPED ? `<= ${LATE_MS}` : '0'}`);
}

export async function startServer({ args = [], config = null, env = {}, timeoutMs = 20000 } = {}) {
  const bin = process.env.FLEETMOCK_BIN;
  if (!bin) throw new Error('FLEETMOCK_BIN is not set: run through ctest or export it');
  const dir = mkdtempSync(join(tmpdir(), 'fleetmock-test-'));
  const portFile = join(dir, 'port');
  const fullArgs = ['--port', '0', '--port-file', portFile, '--log-level', 'warn', ...args];
  if (config) {
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, typeof config === 'string' ? config : JSON.stringify(config));
    fullArgs.push('--config', cfg);
  }
  const wrapper = (process.env.FLEETMOCK_WRAPPER || '').split(' ').filter(Boolean);
  const cmd = wrapper.length ? wrapper[0] : bin;
  const cmdArgs = wrapper.length ? [...wrapper.slice(1), bin, ...fullArgs] : fullArgs;
  const child = spawn(cmd, cmdArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.on('data', () => {});
  child.stderr.on('data', (d) => { stderr += d.toString(); });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

  const deadline = Date.now() + timeoutMs * (wrapper.length ? 5 : 1);
  let port = 0;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`fleetmock exited early (${child.exitCode}):\n${stderr}`);
    if (existsSync(portFile)) {
      const text = readFileSync(portFile, 'utf8').trim();
      if (/^\d+$/.test(text)) { port = Number(text); break; }
    }
    await sleep(20);
  }
  if (!port) { child.kill('SIGKILL'); throw new Error(`fleetmock did not write its port file:\n${stderr}`); }

  const server = {
    port,
    pid: child.pid,
    baseURL: `http://127.0.0.1:${port}`,
    get stderr() { return stderr; },
    exited,
    /** Sends SIGTERM (by PID, only our own child) and resolves with {code, signal, stderr}. */
    async stop(signal = 'SIGTERM', waitMs = 30000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), waitMs * (wrapper.length ? 3 : 1));
      const res = await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      return { ...res, stderr };
    },
  };
  return server;
}

export const AUTH = { Authorization: 'Bearer test-key-123' };

/** POST JSON with the test key; returns {status, headers, json, text}. */
export async function post(server, path, body, headers = {}) {
  const res = await fetch(server.baseURL + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...AUTH, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

// ---------------------------------------------------------------------------
// Helpers shared by the integration tests: plain GET, raw sockets, and SSE.
// Every loop here is bounded in time and in count.
import { connect } from 'node:net';

/** GET (or any method without a body) with the test key; returns {status, headers, json, text}. */
export async function get(server, path, headers = AUTH, method = 'GET') {
  const res = await fetch(server.baseURL + path, { method, headers });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

/**
 * Writes `data` (string or Buffer, or an array of them sent in turn) on a raw
 * loopback socket and collects what comes back until the peer closes or
 * timeoutMs passes. With `closeAfterWrite` the socket is destroyed right after
 * writing. Resolves {text, closedByPeer, error}.
 */
export function rawRequest(server, data, { timeoutMs = 3000, closeAfterWrite = false, endAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    const sock = connect({ host: '127.0.0.1', port: server.port });
    const finish = (closedByPeer, error = null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByPeer, error });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d) => { if (chunks.length < 10000) chunks.push(d); });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => finish(false, e));
    sock.on('connect', () => {
      for (const part of Array.isArray(data) ? data : [data]) sock.write(part);
      if (closeAfterWrite) finish(false);
      else if (endAfterWrite) sock.end();
    });
  });
}

/** Resolves 'refused' if a TCP connect to the server's port is refused, 'connected' otherwise. */
export function probeConnect(server, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port: server.port });
    const timer = setTimeout(() => { sock.destroy(); resolve('timeout'); }, timeoutMs);
    sock.on('connect', () => { clearTimeout(timer); sock.destroy(); resolve('connected'); });
    sock.on('error', (e) => { clearTimeout(timer); sock.destroy(); resolve(e.code === 'ECONNREFUSED' ? 'refused' : e.code); });
  });
}

/**
 * POSTs `body` and reads the answer as SSE. Each event is
 * {data, json, event, t} with t in ms since the request was sent.
 * onEvent(ev, events) runs as each event arrives (it may abort the request
 * through the `signal` it was given; no event is taken after that, even one
 * that came in the same read, as a late client gets a burst). Resolves {status, headers, events, raw,
 * tEnd, aborted, sentAt}, sentAt being performance.now() when the request
 * went out. Gives up (throws) after maxMs.
 */
export async function streamRequest(server, path, body, { headers = {}, onEvent = null, maxMs = 30000, signal = undefined } = {}) {
  const t0 = performance.now();
  let res;
  try {
    res = await fetch(server.baseURL + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...AUTH, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    // Aborted before the response headers arrived.
    if (e.name === 'AbortError') return { status: 0, headers: new Headers(), events: [], raw: '', rest: '', tEnd: performance.now() - t0, aborted: true, sentAt: t0 };
    throw e;
  }
  const events = [];
  let raw = '';
  let buf = '';
  let aborted = false;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const deadline = t0 + maxMs * (process.env.FLEETMOCK_WRAPPER ? 5 : 1);
  const watchdog = setTimeout(() => reader.cancel().catch(() => {}), Math.max(1, deadline - performance.now()));
  try {
    for (let i = 0; i < 1_000_000; i++) {
      let r;
      try { r = await reader.read(); } catch (e) { if (e.name === 'AbortError') { aborted = true; break; } throw e; }
      if (r.done) break;
      const now = performance.now() - t0;
      const text = decoder.decode(r.value, { stream: true });
      raw += text;
      buf += text.replace(/\r\n/g, '\n');
      let idx;
      while ((idx = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, idx);
        buf = buf.slice(idx + 2);
        const ev = { data: null, json: null, event: null, t: now };
        const dataLines = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('data:')) dataLines.push(line.slice(5).replace(/^ /, ''));
          else if (line.startsWith('event:')) ev.event = line.slice(6).trim();
        }
        if (!dataLines.length && ev.event === null) continue; // comment or keep-alive
        ev.data = dataLines.join('\n');
        try { ev.json = JSON.parse(ev.data); } catch { /* [DONE] or not JSON */ }
        events.push(ev);
        if (onEvent) onEvent(ev, events);
        if (signal?.aborted) break;
      }
      if (signal?.aborted) { aborted = true; break; }
      if (performance.now() > deadline) throw new Error(`stream did not end within ${maxMs} ms`);
    }
  } finally {
    clearTimeout(watchdog);
  }
  if (performance.now() > deadline) throw new Error(`stream did not end within ${maxMs} ms`);
  return { status: res.status, headers: res.headers, events, raw, rest: buf, tEnd: performance.now() - t0, aborted, sentAt: t0 };
}

/** Spawns the binary (through FLEETMOCK_WRAPPER if set) with args; resolves {code, signal, stdout, stderr}. */
export function runCli(args, { env = {}, timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const bin = process.env.FLEETMOCK_BIN;
    if (!bin) { reject(new Error('FLEETMOCK_BIN is not set')); return; }
    const wrapper = (process.env.FLEETMOCK_WRAPPER || '').split(' ').filter(Boolean);
    const cmd = wrapper.length ? wrapper[0] : bin;
    const cmdArgs = wrapper.length ? [...wrapper.slice(1), bin, ...args] : args;
    const child = spawn(cmd, cmdArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d.toString(); });
    child.stderr.on('data', (d) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs * (wrapper.length ? 5 : 1));
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** Account limits out of the way, for tests about the fleet rather than 429s. */
export const HUGE = { start: 1e9, ceiling: 1e9 };
export const NO_LIMITS = {
  accounts: { limits: { requests_per_min: HUGE, prompt_tps: HUGE, uncached_prompt_tps: HUGE, generated_tps: HUGE } },
};

/** Any control-plane call; body may be an object or a ready string. Returns {status, headers, json, text}. */
export async function admin(srv, method, path, body) {
  const res = await fetch(srv.baseURL + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

/** PATCH /admin/pools/{name}; asserts 200 and returns the pool's new state. */
export async function patchPool(srv, name, settings) {
  const r = await admin(srv, 'PATCH', `/admin/pools/${name}`, settings);
  if (r.status !== 200) throw new Error(`PATCH /admin/pools/${name}: ${r.status} ${r.text}`);
  return r.json.pools[name];
}

/** Stops a server a test started; a crash or a valgrind error (non-zero exit) fails the test. */
export async function stopChecked(srv) {
  const r = await srv.stop();
  if (r.code !== 0) throw new Error(`fleetmock exited with ${r.code}/${r.signal}:\n${r.stderr.slice(-4000)}`);
}

/**
 * Fails unless every pool is back to nothing in flight and nothing queued:
 * run before stopping a server, it proves no request leaked its slot.
 * Polls briefly, since a client that just hung up takes a moment to be seen.
 */
export async function assertNoSlotsHeld(srv, { waitMs = 2000 } = {}) {
  const deadline = Date.now() + waitMs * (process.env.FLEETMOCK_WRAPPER ? 5 : 1);
  let held = [];
  do {
    const r = await admin(srv, 'GET', '/admin/state');
    if (r.status !== 200) throw new Error(`GET /admin/state: ${r.status} ${r.text}`);
    held = [];
    for (const [name, p] of Object.entries(r.json.pools)) {
      for (const tier of ['priority', 'standard', 'background']) {
        if (p.in_flight[tier] || p.queued[tier])
          held.push(`${name}.${tier}: ${p.in_flight[tier]} in flight, ${p.queued[tier]} queued`);
      }
    }
    if (!held.length) return;
    await new Promise((res) => setTimeout(res, 50));
  } while (Date.now() < deadline);
  throw new Error(`slots still held after the tests: ${held.join('; ')}`);
}

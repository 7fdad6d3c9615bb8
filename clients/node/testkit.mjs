// The fleetmock test kit for Node: starts the real binary for a test suite
// (port 0, --port-file in a temp dir), hands back the base URLs an app's SDK
// needs, and wraps the control plane a test drives (congest a pool, script a
// reply or a fault, read the request journal, play a scenario, reset).
//
// It is thin on purpose: every method is one admin request, so what a test
// does is what docs/control-plane.md says, and an error is the server's own
// message. Node 20 built-ins only; works under node:test, Vitest and Jest
// (docs/testkits.md).
//
// Known limits: a child is stopped when its test process exits normally
// ('exit'); a parent killed by a signal it does not handle (SIGKILL, or a
// SIGTERM with no listener) leaves the server running until someone stops
// it, though Ctrl-C in a terminal reaches both, as they share a process group.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository this file lives in (clients/node/testkit.mjs → ../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The request header that scopes a request to one test (rules, faults, journal). */
export const TEST_ID_HEADER = 'x-fleetmock-test-id';

const TEST_ID_MAX = 128;
const STDERR_KEEP = 16 * 1024; // the tail of the server's stderr kept for error messages

/** An admin call the server refused, or a server that would not start. */
export class FleetmockError extends Error {
  constructor(message, { status = 0, code = null, param = null, body = null } = {}) {
    super(message);
    this.name = 'FleetmockError';
    this.status = status;
    this.code = code;
    this.param = param;
    this.body = body;
  }
}

const isExecutable = (p) => {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

function buildHint(root) {
  return `Build it from the repository (${root}) with \`bash .ci/dev.sh build\`, or ` +
    `\`cmake -S . -B build && cmake --build build -j2\`; or set FLEETMOCK_BIN=/path/to/fleetmock, ` +
    'or put fleetmock on PATH.';
}

/**
 * Finds the fleetmock binary: FLEETMOCK_BIN, then `fleetmock` on PATH, then
 * the repository's build directories (build/fleetmock, then build-something/fleetmock,
 * newest first). Returns its path; throws a FleetmockError saying how to build
 * it when there is none. `env` and `repoRoot` are for tests.
 */
export function findFleetmock({ env = process.env, repoRoot = REPO_ROOT } = {}) {
  if (env.FLEETMOCK_BIN) {
    if (isExecutable(env.FLEETMOCK_BIN)) return env.FLEETMOCK_BIN;
    throw new FleetmockError(`FLEETMOCK_BIN=${env.FLEETMOCK_BIN} is not an executable file. ${buildHint(repoRoot)}`);
  }
  for (const dir of (env.PATH || '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'fleetmock'))) return join(dir, 'fleetmock');
  }
  const looked = [join(repoRoot, 'build', 'fleetmock')];
  if (isExecutable(looked[0])) return looked[0];
  let others = [];
  try {
    others = readdirSync(repoRoot)
      .filter((d) => d.startsWith('build') && d !== 'build')
      .map((d) => join(repoRoot, d, 'fleetmock'))
      .filter(isExecutable)
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  } catch { /* no such root */ }
  if (others.length) return others[0];
  throw new FleetmockError('fleetmock binary not found (looked at FLEETMOCK_BIN, `fleetmock` on PATH, ' +
    `${looked[0]} and ${join(repoRoot, 'build*', 'fleetmock')}). ${buildHint(repoRoot)}`);
}

/** A fresh test id: `fm-<pid>-<8 hex>`. */
export function newTestId() {
  return `fm-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function checkTestId(id) {
  if (id === undefined || id === null || id === false) return null;
  if (id === true) return newTestId();
  if (typeof id !== 'string' || id.length < 1 || id.length > TEST_ID_MAX || !/^[\x21-\x7e]+$/.test(id))
    throw new FleetmockError(`testId must be 1 to ${TEST_ID_MAX} printable ASCII characters without spaces (got ${JSON.stringify(id)})`);
  return id;
}

// Every child still running, stopped at once if the test process exits
// without stopping it (a forgotten stop(), a thrown before()).
const live = new Set();
let exitHookSet = false;
function killAllOnExit() {
  for (const h of live) h._killNow();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts fleetmock and resolves with a handle once it listens.
 *   config   a config object (JSON merge patch over the default fleet) or a file path
 *   seed     --seed N
 *   timing   'instant' (the default here: tests need no simulated delays) or 'realistic'
 *   args     more command-line options, after the kit's own (so they win)
 *   testId   a string, or true for a generated one: scopes reply(), fault(),
 *            requests() and `headers` to that test; default none
 *   bin      the binary (default: findFleetmock())
 *   env      extra environment for the child
 *   startTimeoutMs, stopTimeoutMs, adminTimeoutMs  the bounds on each wait
 */
export async function startFleetmock({
  config = null, seed = null, timing = 'instant', args = [], testId = null, bin = null, env = {},
  startTimeoutMs = 20000, stopTimeoutMs = 5000, adminTimeoutMs = 30000,
} = {}) {
  const id = checkTestId(testId);
  const binary = bin ?? findFleetmock();
  if (bin && !isExecutable(bin)) throw new FleetmockError(`${bin} is not an executable file. ${buildHint(REPO_ROOT)}`);
  const dir = mkdtempSync(join(tmpdir(), 'fleetmock-kit-'));
  const portFile = join(dir, 'port');
  const argv = ['--host', '127.0.0.1', '--port', '0', '--port-file', portFile, '--log-level', 'warn'];
  if (config !== null && config !== undefined) {
    let path = config;
    if (typeof config !== 'string') {
      path = join(dir, 'config.json');
      writeFileSync(path, JSON.stringify(config));
    }
    argv.push('--config', path);
  }
  if (seed !== null && seed !== undefined) argv.push('--seed', String(seed));
  if (timing) argv.push('--timing', timing);
  argv.push(...args);

  let child;
  try {
    child = spawn(binary, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new FleetmockError(`cannot start ${binary}: ${e.message}`);
  }
  const handle = new Fleetmock({ child, dir, binary, testId: id, stopTimeoutMs, adminTimeoutMs });
  live.add(handle);
  if (!exitHookSet) {
    process.on('exit', killAllOnExit);
    exitHookSet = true;
  }

  // Wait for the port file (written atomically once listening), bounded.
  const deadline = Date.now() + startTimeoutMs;
  let port = 0;
  while (!port) {
    if (handle._spawnError) {
      await handle.stop();
      throw new FleetmockError(`cannot start ${binary}: ${handle._spawnError.message}`);
    }
    if (handle._exit) {
      const { code, signal } = handle._exit;
      await handle.stop();
      throw new FleetmockError(`fleetmock exited before listening (${signal ?? `exit ${code}`}): ${handle.stderr.trim()}`);
    }
    if (existsSync(portFile)) {
      const text = readFileSync(portFile, 'utf8').trim();
      if (/^\d+$/.test(text)) port = Number(text);
    }
    if (port) break;
    if (Date.now() > deadline) {
      await handle.stop();
      throw new FleetmockError(`fleetmock did not listen within ${startTimeoutMs} ms: ${handle.stderr.trim()}`);
    }
    await sleep(10);
  }
  handle._listen(port);
  // The handle must not keep the test process alive: a forgotten stop() ends
  // with the process ('exit' above), not with a hung test run.
  child.unref();
  child.stderr.unref?.();
  return handle;
}

/**
 * A handle on a server someone else started (a Vitest/Jest globalSetup, a
 * compose stack): the same methods, and stop() leaves the server alone.
 */
export function connectFleetmock({ url, testId = null, adminTimeoutMs = 30000 } = {}) {
  if (!url) throw new FleetmockError('connectFleetmock needs {url}');
  const h = new Fleetmock({ child: null, dir: null, binary: null, testId: checkTestId(testId), stopTimeoutMs: 0, adminTimeoutMs });
  h._setUrl(url.replace(/\/+$/, ''));
  return h;
}

class Fleetmock {
  constructor({ child, dir, binary, testId, stopTimeoutMs, adminTimeoutMs }) {
    this._child = child;
    this._dir = dir;
    this._stopTimeoutMs = stopTimeoutMs;
    this._adminTimeoutMs = adminTimeoutMs;
    this._stderr = '';
    this._exit = null;
    this._spawnError = null;
    this._stopping = null;
    this.binary = binary;
    this.pid = child ? child.pid : null;
    this.port = 0;
    this.testId = testId;
    this.headers = testId ? { [TEST_ID_HEADER]: testId } : {};
    if (child) {
      this._exited = new Promise((res) => child.on('exit', (code, signal) => { this._exit = { code, signal }; res(this._exit); }));
      child.on('error', (e) => { this._spawnError = e; if (!this._exit) this._exit = { code: null, signal: null }; });
      child.stderr.on('data', (d) => { this._stderr = (this._stderr + d.toString()).slice(-STDERR_KEEP); });
    }
  }

  _listen(port) {
    this.port = port;
    this._setUrl(`http://127.0.0.1:${port}`);
  }

  _setUrl(url) {
    this.url = url;
    this.openaiBaseURL = `${url}/inference/v1`;
    // The Anthropic SDK appends /v1/messages; fleetmock serves it under
    // /inference/v1/messages, like Fireworks (docs/api.md).
    this.anthropicBaseURL = `${url}/inference`;
  }

  /** The last 16 KiB the server wrote on stderr (its log, at --log-level warn). */
  get stderr() { return this._stderr; }

  /** Any control-plane call; resolves with the parsed JSON, throws FleetmockError on a non-2xx. */
  async admin(method, path, body) {
    let res;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this._adminTimeoutMs),
      });
    } catch (e) {
      throw new FleetmockError(`${method} ${path}: ${e.cause?.message ?? e.message}` +
        (this._exit ? ` (fleetmock exited: ${JSON.stringify(this._exit)}; ${this._stderr.trim()})` : ''));
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (res.ok) return json;
    const err = json?.error ?? {};
    const message = err.message ?? text;
    let hint = '';
    if (res.status === 404 && /^no admin route/.test(message))
      hint = ` (this fleetmock (${this.binary ?? this.url}) predates that route: rebuild it from a newer source)`;
    throw new FleetmockError(`${method} ${path}: ${res.status} ${message}${hint}`,
      { status: res.status, code: err.code ?? null, param: err.param ?? null, body: json ?? text });
  }

  /** GET /admin/state. */
  state() { return this.admin('GET', '/admin/state'); }

  /**
   * Other tenants' load on a pool, or on every pool with '*' (PATCH
   * /admin/pools/{pool}); resolves with the pool's new state ('*': every pool's).
   */
  async congest(pool, load, share) {
    const patch = { tenant_load: load };
    if (share !== undefined && share !== null) patch.tenant_priority_share = share;
    const r = await this.admin('PATCH', `/admin/pools/${encodeURIComponent(pool)}`, patch);
    return pool === '*' ? r.pools : r.pools[pool];
  }

  _scoped(rule) {
    if (!this.testId || rule?.match?.test_id !== undefined) return rule;
    return { ...rule, match: { ...(rule.match ?? {}), test_id: this.testId } };
  }

  /** A reply rule (POST /admin/replies) with this test's id in match.test_id; resolves with {id, ...}. */
  reply(rule) { return this.admin('POST', '/admin/replies', this._scoped(rule)); }

  /** The reply rules (GET /admin/replies), this test's only when it has an id. */
  async replies() {
    const all = (await this.admin('GET', '/admin/replies')).data;
    return this.testId ? all.filter((r) => r.match?.test_id === this.testId) : all;
  }

  /** Deletes one reply rule by id, or (no id) this test's rules, or every rule when the handle has no test id. */
  clearReplies(id) {
    if (id !== undefined) return this.admin('DELETE', `/admin/replies/${id}`);
    return this.admin('DELETE', this.testId ? `/admin/replies?test_id=${encodeURIComponent(this.testId)}` : '/admin/replies');
  }

  /** A scripted fault (POST /admin/faults) with this test's id in match.test_id; resolves with {id, ...}. */
  fault(rule) { return this.admin('POST', '/admin/faults', this._scoped(rule)); }

  /** Every fault with its fired count (GET /admin/faults). */
  faults() { return this.admin('GET', '/admin/faults'); }

  /** Deletes one fault, or every fault. */
  clearFaults(id) { return this.admin('DELETE', id === undefined ? '/admin/faults' : `/admin/faults/${id}`); }

  /**
   * The request journal, newest first (GET /admin/requests): filter by
   * key_id, model, status, since, limit, and test_id (this test's by
   * default; pass test_id: null for every test's). Resolves with the entries.
   */
  async requests(filter = {}) {
    const q = new URLSearchParams();
    const f = { ...filter };
    if (!('test_id' in f) && this.testId) f.test_id = this.testId;
    for (const [k, v] of Object.entries(f)) if (v !== undefined && v !== null) q.set(k, String(v));
    const qs = q.toString();
    return (await this.admin('GET', `/admin/requests${qs ? `?${qs}` : ''}`)).data;
  }

  /** Empties the journal: this test's entries, or all when the handle has no test id. */
  clearRequests() {
    return this.admin('DELETE', this.testId ? `/admin/requests?test_id=${encodeURIComponent(this.testId)}` : '/admin/requests');
  }

  /** Starts a scenario: a shipped one by name or a whole scenario object; resolves with its state. */
  scenario(nameOrBody) {
    return this.admin('POST', '/admin/scenario', typeof nameOrBody === 'string' ? { name: nameOrBody } : nameOrBody);
  }

  /** Stops the running scenario and restores the pools it changed. */
  stopScenario() { return this.admin('DELETE', '/admin/scenario'); }

  /** POST /admin/reset: the server back to its boot state (for every test sharing it). */
  reset() { return this.admin('POST', '/admin/reset'); }

  /** A handle on the same server for another test id (stop() on it does nothing). */
  withTestId(testId) {
    const h = connectFleetmock({ url: this.url, testId: testId ?? true, adminTimeoutMs: this._adminTimeoutMs });
    h.binary = this.binary;
    return h;
  }

  _killNow() {
    live.delete(this);
    if (this._child && !this._exit) {
      try { this._child.kill('SIGKILL'); } catch { /* gone */ }
    }
    if (this._dir) {
      rmSync(this._dir, { recursive: true, force: true });
      this._dir = null;
    }
  }

  /**
   * Stops the child this handle spawned (SIGTERM, then SIGKILL after
   * stopTimeoutMs) and removes its temp dir; resolves with {code, signal}.
   * Safe to call twice. On a connected handle it does nothing.
   */
  stop() {
    if (!this._child) return Promise.resolve({ code: null, signal: null });
    if (!this._stopping) {
      this._stopping = (async () => {
        if (!this._exit) {
          this._child.ref(); // keep the loop alive until the child is gone

          try { this._child.kill('SIGTERM'); } catch { /* gone */ }
          const timer = setTimeout(() => { try { this._child.kill('SIGKILL'); } catch { /* gone */ } }, this._stopTimeoutMs);
          // A spawn that failed never emits 'exit'.
          if (!this._spawnError) await this._exited;
          clearTimeout(timer);
        }
        this._killNow();
        return this._exit;
      })();
    }
    return this._stopping;
  }

  /** `await using fm = await startFleetmock()` stops it at the end of the block. */
  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() { await this.stop(); }
}

export { Fleetmock };

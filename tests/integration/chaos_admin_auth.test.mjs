// Admin auth (SPEC §6, docs/control-plane.md): with --admin-token every
// /admin/* route and /metrics need `Authorization: Bearer <token>` (else
// 401); without a token they are open to loopback peers only (else 403).
// Inference routes never depend on the admin token.
//
// A non-loopback peer needs a second network stack: the last tests build a
// network namespace joined to the root one by a veth pair (10.231.X.1 here,
// 10.231.X.2 inside), start fleetmock on 10.231.X.1 and call it with curl
// from inside the namespace. That needs root and `ip netns`; without them the
// test fails and says so. The after hook removes the namespace and the veth.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { startServer, stopChecked } from '../lib/server.mjs';

const TOKEN = 'adm-9f2c71d4e0b3a8';
const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT_BODY = JSON.stringify({ model: KIMI, max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] });


async function req(baseURL, method, path, { auth = undefined, body = undefined } = {}) {
  const headers = {};
  if (auth !== undefined) headers.Authorization = auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(baseURL + path, { method, headers, body });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

test('--admin-token: no token or a wrong one → 401 on /admin/* and /metrics; the right one → 200; inference unaffected', async () => {
  const srv = await startServer({ args: ['--timing', 'instant', '--admin-token', TOKEN] });
  try {
    const b = srv.baseURL;
    const wrong = [undefined, 'Bearer', 'Bearer ', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN.toUpperCase()}`, TOKEN, `Basic ${TOKEN}`, 'Bearer test-key-123'];
    const routes = [['GET', '/admin/state'], ['GET', '/metrics'], ['GET', '/admin/accounts'], ['GET', '/admin/faults'], ['GET', '/admin/scenario'],
      ['POST', '/admin/reset'], ['PATCH', '/admin/pools/kimi-k2p6', '{"tenant_load":1.5}'], ['POST', '/admin/faults', '{"action":{"status":503}}'],
      ['POST', '/admin/scenario', '{"name":"launch-spike"}'], ['DELETE', '/admin/faults'], ['GET', '/admin/requests'], ['DELETE', '/admin/requests']];
    for (const [method, path, body] of routes) {
      for (const auth of wrong) {
        const r = await req(b, method, path, { auth, body });
        assert.equal(r.status, 401, `${method} ${path} with ${JSON.stringify(auth)} → ${r.status} ${r.text}`);
        assert.equal(r.json.error.code, 'UNAUTHENTICATED');
        assert.match(r.json.error.message, /--admin-token/);
        assert.ok(!r.text.includes(TOKEN), 'the token is never echoed');
      }
    }
    // Nothing the refused requests asked for happened.
    const ok = { auth: `Bearer ${TOKEN}` };
    const state = await req(b, 'GET', '/admin/state', ok);
    assert.equal(state.status, 200, state.text);
    assert.equal(state.json.pools['kimi-k2p6'].tenant_load, 0);
    assert.equal(state.json.scenario, null);
    assert.deepEqual((await req(b, 'GET', '/admin/faults', ok)).json, { faults: [] });
    assert.ok(!state.text.includes(TOKEN), 'the token is not in the state');
    const metrics = await req(b, 'GET', '/metrics', ok);
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^# TYPE fleetmock_requests_total counter$/m);
    assert.ok(!metrics.text.includes(TOKEN));
    assert.equal((await req(b, 'GET', '/admin/accounts', ok)).status, 200);
    assert.equal((await req(b, 'PATCH', '/admin/pools/glm-5p1', { ...ok, body: '{"tenant_load":0.3}' })).status, 200);
    assert.equal((await req(b, 'POST', '/admin/reset', ok)).status, 200);
    // Inference: any non-empty key, the admin token not needed (nor refused).
    for (const auth of ['Bearer test-key-123', `Bearer ${TOKEN}`]) {
      const r = await req(b, 'POST', '/inference/v1/chat/completions', { auth, body: CHAT_BODY });
      assert.equal(r.status, 200, r.text);
    }
    assert.equal((await req(b, 'POST', '/v1/chat/completions', { body: CHAT_BODY })).status, 401, 'inference still needs a key');
    assert.equal((await req(b, 'GET', '/v1/models', { auth: 'Bearer anything' })).status, 200);
    assert.equal((await req(b, 'GET', '/healthz')).status, 200);
    assert.equal((await req(b, 'GET', '/healthz')).json.status, 'ok');
  } finally {
    await stopChecked(srv);
  }
});

test('--admin-token-file and FLEETMOCK_ADMIN_TOKEN give the token without it showing in the command line', async () => {
  const { mkdtempSync, writeFileSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'fleetmock-token-'));
  const file = join(dir, 'token');
  writeFileSync(file, `${TOKEN}\n`);
  for (const start of [{ args: ['--timing', 'instant', '--admin-token-file', file] },
    { args: ['--timing', 'instant'], env: { FLEETMOCK_ADMIN_TOKEN: TOKEN } }]) {
    const srv = await startServer(start);
    try {
      assert.equal((await req(srv.baseURL, 'GET', '/admin/state', {})).status, 401);
      assert.equal((await req(srv.baseURL, 'GET', '/admin/state', { auth: `Bearer ${TOKEN}` })).status, 200, 'the line end is not part of the token');
      if (!process.env.FLEETMOCK_WRAPPER)
        assert.ok(!readFileSync(`/proc/${srv.pid}/cmdline`, 'utf8').includes(TOKEN), 'the token is not in /proc/PID/cmdline');
    } finally {
      await stopChecked(srv);
    }
  }
  const { runCli } = await import('../lib/server.mjs');
  writeFileSync(file, '\n');
  let r = await runCli(['--admin-token-file', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--admin-token-file '.*': the first line is empty/);
  r = await runCli(['--admin-token-file', join(dir, 'missing')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--admin-token-file '.*': No such file or directory/);
  writeFileSync(file, TOKEN);
  r = await runCli(['--admin-token-file', file, '--admin-token', 'other']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--admin-token and --admin-token-file both set/);
  rmSync(dir, { recursive: true, force: true });
});

test('no --admin-token: a loopback peer reaches /admin/* and /metrics without any header', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'] });
  try {
    for (const path of ['/admin/state', '/metrics', '/admin/accounts', '/admin/faults', '/admin/scenario']) {
      const r = await req(srv.baseURL, 'GET', path);
      assert.equal(r.status, 200, `${path}: ${r.text}`);
    }
    // A bearer header of any kind does not matter either.
    assert.equal((await req(srv.baseURL, 'GET', '/admin/state', { auth: 'Bearer whatever' })).status, 200);
    assert.equal((await req(srv.baseURL, 'POST', '/admin/reset')).status, 200);
  } finally {
    await stopChecked(srv);
  }
});

// ---------------------------------------------------------------------------
// A non-loopback peer, from a network namespace

const run = (cmd, args, { timeoutMs = 15000 } = {}) => new Promise((resolve) => {
  execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
    resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, err });
  });
});

const NS = `fm-test-${process.pid}`;
const VETH_ROOT = `fmv${process.pid % 100000}a`;
const VETH_NS = `fmv${process.pid % 100000}b`;
const NET = `10.231.${20 + (process.pid % 200)}`;
const HOST_IP = `${NET}.1`;
const PEER_IP = `${NET}.2`;
let netReady = false;
let created = false;

async function sh(args) {
  const r = await run('ip', args);
  assert.equal(r.code, 0, `ip ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

async function teardown() {
  // Only what this file created, by its own names.
  await run('ip', ['link', 'del', VETH_ROOT]);
  await run('ip', ['netns', 'del', NS]);
}

before(async () => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  const probe = await run('ip', ['netns', 'list']);
  if (probe.code !== 0) return;
  await teardown(); // a leftover of a crashed run with the same pid
  created = true;
  await sh(['netns', 'add', NS]);
  await sh(['link', 'add', VETH_ROOT, 'type', 'veth', 'peer', 'name', VETH_NS]);
  await sh(['link', 'set', VETH_NS, 'netns', NS]);
  await sh(['addr', 'add', `${HOST_IP}/30`, 'dev', VETH_ROOT]);
  await sh(['link', 'set', VETH_ROOT, 'up']);
  await sh(['netns', 'exec', NS, 'ip', 'addr', 'add', `${PEER_IP}/30`, 'dev', VETH_NS]);
  await sh(['netns', 'exec', NS, 'ip', 'link', 'set', VETH_NS, 'up']);
  await sh(['netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
  netReady = true;
});

after(async () => {
  if (!created) return;
  await teardown();
  const left = await run('ip', ['netns', 'list']);
  assert.ok(!left.stdout.includes(NS), `network namespace ${NS} was not removed`);
  const link = await run('ip', ['link', 'show', VETH_ROOT]);
  assert.notEqual(link.code, 0, `veth ${VETH_ROOT} was not removed`);
});

function requireNetns() {
  assert.ok(typeof process.getuid === 'function' && process.getuid() === 0,
    'this test needs root to create a network namespace (ip netns add) for a non-loopback peer; run the suite as root (CI does)');
  assert.ok(netReady, 'could not set up the network namespace and veth pair: is iproute2 (`ip netns`) available and are network namespaces allowed here?');
  const curl = spawnSync('sh', ['-c', 'command -v curl']);
  assert.equal(curl.status, 0, 'curl is needed inside the namespace: install it (.ci/dev.sh does)');
}

/** curl from inside the namespace; resolves {status, json, text}. */
async function nsCurl(url, { method = 'GET', auth = undefined, body = undefined } = {}) {
  const args = ['netns', 'exec', NS, 'curl', '-sS', '-m', '5', '-X', method, '-o', '-', '-w', '\n%{http_code}'];
  if (auth) args.push('-H', `Authorization: ${auth}`);
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', body);
  args.push(url);
  const r = await run('ip', args);
  assert.equal(r.code, 0, `curl from ${NS} failed (${r.code}): ${r.stderr}`);
  const cut = r.stdout.lastIndexOf('\n');
  const text = r.stdout.slice(0, cut);
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: Number(r.stdout.slice(cut + 1)), json, text };
}

test('no --admin-token: a non-loopback peer (from a network namespace) gets 403 on /admin/* and /metrics; inference still works', async () => {
  requireNetns();
  const srv = await startServer({ args: ['--timing', 'instant', '--host', HOST_IP] });
  try {
    const base = `http://${HOST_IP}:${srv.port}`;
    // The namespace reaches the server at all.
    const health = await nsCurl(`${base}/healthz`);
    assert.equal(health.status, 200, health.text);
    for (const [method, path, body] of [['GET', '/admin/state'], ['GET', '/metrics'], ['GET', '/admin/accounts'],
      ['GET', '/admin/faults'], ['POST', '/admin/faults', '{"action":{"status":503}}'], ['POST', '/admin/reset'],
      ['PATCH', '/admin/pools/*', '{"tenant_load":2}'], ['POST', '/admin/scenario', '{"name":"launch-spike"}'], ['DELETE', '/admin/scenario'],
      ['GET', '/admin/requests'], ['DELETE', '/admin/requests']]) {
      const r = await nsCurl(`${base}${path}`, { method, body });
      assert.equal(r.status, 403, `${method} ${path} from ${PEER_IP} → ${r.status} ${r.text}`);
      assert.equal(r.json.error.code, 'PERMISSION_DENIED');
      assert.match(r.json.error.message, /loopback/);
      // A bearer token does not help when the server has none.
      const withAuth = await nsCurl(`${base}${path}`, { method, body, auth: 'Bearer some-token' });
      assert.equal(withAuth.status, 403, `${method} ${path} with a bearer → ${withAuth.status}`);
    }
    // Inference is not an admin route; and a 200 here shows the refused PATCH
    // (tenant_load 2 on every pool) and the refused 503 fault did not apply.
    const chat = await nsCurl(`${base}/v1/chat/completions`, { method: 'POST', auth: 'Bearer ns-key', body: CHAT_BODY });
    assert.equal(chat.status, 200, chat.text);
    assert.equal(chat.json.object, 'chat.completion');
    // From the root namespace the peer address is 10.231.X.1, not loopback either: 403 as well.
    const local = await req(base, 'GET', '/admin/state');
    assert.equal(local.status, 403, local.text);
  } finally {
    await stopChecked(srv);
  }
});

test('--admin-token on a non-loopback address: the right token works from the namespace, none or a wrong one → 401', async () => {
  requireNetns();
  const srv = await startServer({ args: ['--timing', 'instant', '--host', HOST_IP, '--admin-token', TOKEN] });
  try {
    const base = `http://${HOST_IP}:${srv.port}`;
    for (const path of ['/admin/state', '/metrics']) {
      assert.equal((await nsCurl(`${base}${path}`)).status, 401, path);
      assert.equal((await nsCurl(`${base}${path}`, { auth: 'Bearer nope' })).status, 401, path);
      const ok = await nsCurl(`${base}${path}`, { auth: `Bearer ${TOKEN}` });
      assert.equal(ok.status, 200, `${path}: ${ok.text}`);
    }
    const patched = await nsCurl(`${base}/admin/pools/glm-5p1`, { method: 'PATCH', auth: `Bearer ${TOKEN}`, body: '{"tenant_load":0.25}' });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.pools['glm-5p1'].tenant_load, 0.25);
  } finally {
    await stopChecked(srv);
  }
});

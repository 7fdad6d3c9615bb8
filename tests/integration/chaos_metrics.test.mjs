// GET /metrics (SPEC §6): the Prometheus text passes `promtool check metrics`,
// carries every family the spec lists with the right values after known
// traffic (200s, a 503 shed, a 429, a fault), never shows an API key, and a
// real Prometheus scraping fleetmock on loopback reads the shed back through
// its HTTP query API.
//
// promtool and prometheus come from the Debian package `prometheus`, which
// .ci/dev.sh installs; without them these tests fail and say so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, assertNoSlotsHeld, sleep } from '../lib/server.mjs';

const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);
const SLOW = WRAPPED ? 5 : 1;
const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const GLM = 'accounts/fireworks/models/glm-5p1';
const CHAT = '/inference/v1/chat/completions';
const KEYS = { plain: 'sk-metrics-plain-5a9c1e', limited: 'sk-metrics-limited-77b2d0', faulty: 'sk-metrics-faulty-0c41aa' };
const CONFIG = {
  accounts: { keys: { [KEYS.limited]: { name: 'limited', limits: { requests_per_min: { start: 1, ceiling: 1 } } } } },
};


function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}
function requireTool(cmd) {
  const path = which(cmd);
  assert.ok(path, `${cmd} is not installed: install the Debian package "prometheus" ` +
    '(bash .ci/dev.sh deps does, CI installs it) — these tests never pass without it');
  return path;
}

async function chat(srv, { model = KIMI, key = KEYS.plain, tier = null, headers = {}, stream = false } = {}) {
  const body = { model, max_tokens: 4, messages: [{ role: 'user', content: 'metrics please' }] };
  if (tier) body.service_tier = tier;
  if (stream) body.stream = true;
  const res = await fetch(srv.baseURL + CHAT, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

async function admin(srv, method, path, body) {
  const res = await fetch(srv.baseURL + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${method} ${path}: ${text}`);
  return JSON.parse(text);
}

async function metricsText(srv) {
  const res = await fetch(srv.baseURL + '/metrics');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return res.text();
}

/** Parses the text format into {types: {family: type}, samples: [{name, labels, value}]}. */
function parse(text) {
  const types = {};
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let m;
    if ((m = /^# TYPE (\S+) (\S+)$/.exec(line))) { types[m[1]] = m[2]; continue; }
    if (line.startsWith('#')) continue;
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable line: ${line}`);
    const labels = {};
    if (m[2]) for (const [, k, v] of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples };
}

/** The value of the one sample with this name and (a superset of) these labels; undefined if none. */
function value(parsed, name, labels = {}) {
  const hits = parsed.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(hits.length <= 1, `${name} ${JSON.stringify(labels)} matches ${hits.length} samples`);
  return hits[0]?.value;
}

let server;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '41'], config: CONFIG });
});
after(async () => {
  await assertNoSlotsHeld(server);
  const r = await server.stop();
  assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
});

test('after 200s, a shed, a 429 and a fault, /metrics passes promtool and counts each of them', async () => {
  const promtool = requireTool('promtool');
  // 5 plain 200s on kimi (one streamed), 1 Priority 200 on glm.
  for (let i = 0; i < 4; i++) assert.equal((await chat(server)).status, 200);
  assert.equal((await chat(server, { stream: true })).status, 200);
  assert.equal((await chat(server, { model: GLM, tier: 'priority' })).status, 200);
  // A 503 shed: kimi-k2p6 over capacity sheds Standard.
  await admin(server, 'PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 1.2 });
  assert.equal((await chat(server)).status, 503);
  await admin(server, 'PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 0 });
  // A 429: 1 request per minute for this key.
  assert.equal((await chat(server, { key: KEYS.limited })).status, 200);
  const limited = await chat(server, { key: KEYS.limited });
  assert.equal(limited.status, 429, limited.text);
  // A fault: a stored one matching a key, and the header form.
  await admin(server, 'POST', '/admin/faults', { match: { api_key: KEYS.faulty }, action: { status: 500 }, count: 1 });
  assert.equal((await chat(server, { key: KEYS.faulty })).status, 500);
  assert.equal((await chat(server, { headers: { 'x-fleetmock-fault': '502' } })).status, 502);

  const text = await metricsText(server);
  const check = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30000 });
  assert.equal(check.status, 0, `promtool check metrics failed (${check.status}):\n${check.stdout}${check.stderr}\n---\n${text}`);

  for (const key of Object.values(KEYS)) assert.ok(!text.includes(key), `API key ${key} appears in /metrics`);
  assert.ok(!text.includes('sk-metrics'), 'no part of an API key appears in /metrics');

  const m = parse(text);
  const families = {
    fleetmock_requests_total: 'counter', fleetmock_sheds_total: 'counter', fleetmock_rate_limited_total: 'counter',
    fleetmock_in_flight: 'gauge', fleetmock_queue_depth: 'gauge', fleetmock_pool_utilisation: 'gauge',
    fleetmock_pool_tenant_load: 'gauge', fleetmock_tokens_total: 'counter', fleetmock_cost_usd_total: 'counter',
    fleetmock_ttft_seconds: 'histogram', fleetmock_request_duration_seconds: 'histogram',
    fleetmock_faults_fired_total: 'counter', fleetmock_shed_probability: 'gauge', fleetmock_pool_slots: 'gauge',
    fleetmock_budget_exceeded_total: 'counter', fleetmock_accounts: 'gauge', fleetmock_accounts_evicted_total: 'counter',
  };
  for (const [name, type] of Object.entries(families)) assert.equal(m.types[name], type, `# TYPE ${name}`);

  const req = (labels) => value(m, 'fleetmock_requests_total', { route: 'chat/completions', ...labels });
  assert.equal(req({ model: KIMI, tier: 'standard', status: '200' }), 6, '5 plain + 1 limited-key 200 on kimi Standard');
  assert.equal(req({ model: GLM, tier: 'priority', status: '200' }), 1);
  assert.equal(req({ model: KIMI, tier: 'standard', status: '503' }), 1);
  assert.equal(req({ model: KIMI, tier: 'standard', status: '429' }), 1);
  assert.equal(req({ model: KIMI, tier: 'standard', status: '500' }), 1);
  assert.equal(req({ model: KIMI, tier: 'standard', status: '502' }), 1);
  assert.equal(value(m, 'fleetmock_sheds_total', { pool: 'kimi-k2p6', tier: 'standard' }), 1);
  assert.equal(value(m, 'fleetmock_sheds_total', { pool: 'kimi-k2p6', tier: 'priority' }), 0);
  assert.equal(value(m, 'fleetmock_sheds_total', { pool: 'glm-5p1', tier: 'standard' }), 0);
  assert.equal(value(m, 'fleetmock_rate_limited_total', { limit: 'requests' }), 1);
  assert.equal(value(m, 'fleetmock_rate_limited_total', { limit: 'prompt' }), 0);
  assert.equal(value(m, 'fleetmock_faults_fired_total'), 2);
  for (const pool of ['kimi-k2p6', 'glm-5p1', 'kimi-k2p6-fast']) {
    for (const tier of ['priority', 'standard', 'background']) {
      assert.equal(value(m, 'fleetmock_in_flight', { pool, tier }), 0, `${pool}/${tier} in flight`);
      assert.equal(value(m, 'fleetmock_queue_depth', { pool, tier }), 0, `${pool}/${tier} queued`);
    }
    assert.equal(value(m, 'fleetmock_pool_utilisation', { pool }), 0);
    assert.equal(value(m, 'fleetmock_pool_tenant_load', { pool }), 0);
  }
  assert.equal(value(m, 'fleetmock_pool_slots', { pool: 'kimi-k2p6' }), 64);
  // Tokens and cost agree with the accounts' totals.
  const accounts = (await admin(server, 'GET', '/admin/accounts')).accounts;
  const sum = (f) => accounts.reduce((a, acc) => a + acc.tiers.standard[f], 0);
  assert.equal(value(m, 'fleetmock_tokens_total', { kind: 'prompt', tier: 'standard' }), sum('prompt_tokens'));
  assert.equal(value(m, 'fleetmock_tokens_total', { kind: 'generated', tier: 'standard' }), sum('generated_tokens'));
  assert.ok(value(m, 'fleetmock_tokens_total', { kind: 'generated', tier: 'standard' }) > 0);
  assert.ok(Math.abs(value(m, 'fleetmock_cost_usd_total', { tier: 'standard' }) - sum('cost_usd')) < 1e-9);
  assert.ok(value(m, 'fleetmock_cost_usd_total', { tier: 'priority' }) > 0);
  // Histograms: one observation per 200, cumulative buckets ending at +Inf = count.
  for (const h of ['fleetmock_ttft_seconds', 'fleetmock_request_duration_seconds']) {
    assert.equal(value(m, `${h}_count`, { tier: 'standard' }), 6, `${h} standard count`);
    assert.equal(value(m, `${h}_count`, { tier: 'priority' }), 1, `${h} priority count`);
    const buckets = m.samples.filter((s) => s.name === `${h}_bucket` && s.labels.tier === 'standard');
    assert.equal(buckets.at(-1).labels.le, '+Inf');
    assert.equal(buckets.at(-1).value, 6);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, `${h} buckets are cumulative`);
  }

  // POST /admin/reset zeroes the counters.
  await admin(server, 'POST', '/admin/reset');
  const m2 = parse(await metricsText(server));
  assert.equal(m2.samples.filter((s) => s.name === 'fleetmock_requests_total').length, 0);
  assert.equal(value(m2, 'fleetmock_sheds_total', { pool: 'kimi-k2p6', tier: 'standard' }), 0);
  assert.equal(value(m2, 'fleetmock_faults_fired_total'), 0);
});

/** A free loopback TCP port (bound, read, released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

let prom = null;
let promDir = null;
after(async () => {
  if (prom && prom.exitCode === null && prom.signalCode === null) {
    const exited = new Promise((r) => prom.once('exit', r));
    prom.kill('SIGTERM'); // our own child, by its PID
    const t = setTimeout(() => prom.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t);
  }
  if (promDir) rmSync(promDir, { recursive: true, force: true });
});

test('a real Prometheus scraping /metrics every second reads fleetmock_sheds_total back through /api/v1/query', async () => {
  const bin = requireTool('prometheus');
  await admin(server, 'POST', '/admin/reset');
  promDir = mkdtempSync(join(tmpdir(), 'fleetmock-prom-'));
  const port = await freePort();
  const target = `127.0.0.1:${server.port}`;
  const cfg = join(promDir, 'prometheus.yml');
  writeFileSync(cfg, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: fleetmock',
    '    honor_labels: false',
    '    scrape_interval: 1s',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ['${target}']`,
    '',
  ].join('\n'));
  let log = '';
  prom = spawn(bin, [
    `--config.file=${cfg}`, `--storage.tsdb.path=${join(promDir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  prom.stdout.on('data', (d) => { if (log.length < 100000) log += d; });
  prom.stderr.on('data', (d) => { if (log.length < 100000) log += d; });
  const base = `http://127.0.0.1:${port}`;
  const query = async (q) => {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = await res.json();
    assert.equal(j.status, 'success', JSON.stringify(j));
    return j.data.result;
  };

  // Ready (bounded).
  let ready = false;
  for (let i = 0; i < 300 && !ready; i++) {
    assert.equal(prom.exitCode, null, `prometheus exited early:\n${log}`);
    try { ready = (await fetch(`${base}/-/ready`)).status === 200; } catch { /* not listening yet */ }
    if (!ready) await sleep(100);
  }
  assert.ok(ready, `prometheus never became ready:\n${log}`);

  // Cause a shed, then read it back through Prometheus.
  await admin(server, 'PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 1.5 });
  assert.equal((await chat(server)).status, 503);
  await admin(server, 'PATCH', '/admin/pools/kimi-k2p6', { tenant_load: 0 });

  const q = 'fleetmock_sheds_total{pool="kimi-k2p6",tier="standard"}';
  let result = [];
  const deadline = performance.now() + 20000 * SLOW;
  for (let i = 0; i < 400 && performance.now() < deadline; i++) {
    result = await query(q);
    if (result.length && Number(result[0].value[1]) >= 1) break;
    await sleep(250);
  }
  assert.equal(result.length, 1, `no series for ${q} within 20 s:\n${log}`);
  assert.ok(Number(result[0].value[1]) >= 1, `value ${result[0].value[1]}`);
  assert.equal(Number(result[0].value[1]), 1);
  // Prometheus attached its own target labels (honor_labels false) and scraped fleetmock as up.
  assert.equal(result[0].metric.job, 'fleetmock');
  assert.equal(result[0].metric.instance, target);
  const up = await query('up{job="fleetmock"}');
  assert.equal(up.length, 1);
  assert.equal(up[0].value[1], '1');
  const targets = await (await fetch(`${base}/api/v1/targets`)).json();
  const t = targets.data.activeTargets.find((x) => x.labels.job === 'fleetmock');
  assert.equal(t.health, 'up', JSON.stringify(t));
  assert.equal(t.lastError, '');
});

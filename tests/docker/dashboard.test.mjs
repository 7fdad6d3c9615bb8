// The Grafana dashboard (docker/grafana/dashboards/fleetmock.json): it parses,
// shows what a drill needs, every metric its queries (and variables) name is
// one a live fleetmock's /metrics really exports, and every query is valid
// PromQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { read, run, have, metricNames, promqlMetrics } from './lib.mjs';
import { parseYaml } from './yaml.mjs';
import { startServer, post, get } from '../lib/server.mjs';

const dash = JSON.parse(read('docker/grafana/dashboards/fleetmock.json'));
const dsUid = parseYaml(read('docker/grafana/provisioning/datasources/prometheus.yaml')).datasources[0].uid;
const panels = dash.panels.flatMap((p) => [p, ...(p.panels || [])]);
const queries = panels.flatMap((p) => (p.targets || []).map((t) => ({ panel: p.title, expr: t.expr })));
const variables = dash.templating.list.filter((v) => v.type === 'query')
  .map((v) => ({ name: v.name, query: typeof v.query === 'string' ? v.query : v.query.query }));

test('the dashboard parses and every panel reads the provisioned datasource', () => {
  assert.equal(typeof dash.uid, 'string');
  assert.ok(dash.title && Number.isInteger(dash.schemaVersion));
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of panels) {
    assert.ok(p.gridPos && ['h', 'w', 'x', 'y'].every((k) => Number.isInteger(p.gridPos[k])), `${p.title}: gridPos`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, dsUid, `${p.title}: datasource`);
    assert.ok(p.targets.length > 0, `${p.title}: has queries`);
    for (const t of p.targets) {
      assert.equal(t.datasource?.uid ?? dsUid, dsUid, `${p.title}: target datasource`);
      assert.ok(typeof t.expr === 'string' && t.expr.trim(), `${p.title}: a PromQL expr`);
    }
  }
  for (const v of dash.templating.list) assert.equal(v.datasource?.uid, dsUid, `variable ${v.name}`);
});

test('the dashboard shows what a drill is read by', () => {
  const find = (re) => panels.find((p) => re.test(p.title));
  const want = {
    'pool utilisation': [/pool utilisation/i, /fleetmock_pool_utilisation\b/],
    'tenant load': [/tenant load/i, /fleetmock_pool_tenant_load\b/],
    'admitted vs shed by tier': [/admitted.*shed/i, /fleetmock_sheds_total\b/],
    '429s by limit': [/429s? by limit/i, /fleetmock_rate_limited_total\b/],
    'Priority share': [/priority share/i, /tier="priority"/],
    'TTFT percentiles': [/ttft/i, /histogram_quantile\(/],
  };
  for (const [what, [title, expr]] of Object.entries(want)) {
    const p = find(title);
    assert.ok(p, `a panel for ${what}`);
    assert.ok(p.targets.some((t) => expr.test(t.expr)), `${p.title} queries ${expr}`);
  }
  const admitted = find(/admitted.*shed/i).targets.map((t) => t.expr).join('\n');
  assert.match(admitted, /fleetmock_requests_total\{[^}]*status="200"/);
  assert.match(admitted, /by \(tier\)/);
  assert.match(find(/429s? by limit/i).targets[0].expr, /by \(limit\)/);
  const ttft = find(/ttft/i).targets.map((t) => t.expr);
  for (const q of ['0.5', '0.95', '0.99']) {
    assert.ok(ttft.some((e) => e.startsWith(`histogram_quantile(${q},`) && /fleetmock_ttft_seconds_bucket\b/.test(e) && /\ble\b/.test(e)),
      `TTFT p${Number(q) * 100} over fleetmock_ttft_seconds_bucket, summed by le`);
  }
});

let server;
let exported;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant'] });
  // One answered request, so that every series family has samples.
  const r = await post(server, '/v1/chat/completions', {
    model: 'accounts/fireworks/models/kimi-k2p6', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4,
  });
  assert.equal(r.status, 200, r.text);
  const m = await get(server, '/metrics', {});
  assert.equal(m.status, 200, m.text);
  exported = metricNames(m.text);
});
after(async () => { if (server) await server.stop(); });

test('every metric the dashboard queries is one a live /metrics exports', () => {
  assert.ok(exported.has('fleetmock_ttft_seconds_bucket'), 'the live server exports histograms');
  const used = new Map();
  for (const q of queries) for (const n of promqlMetrics(q.expr)) used.set(n, [...(used.get(n) || []), q.panel]);
  for (const v of variables) {
    const m = /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*,\s*[a-zA-Z_]\w*\s*\)$/.exec(v.query);
    assert.ok(m, `variable ${v.name}: label_values(metric, label)`);
    used.set(m[1], [...(used.get(m[1]) || []), `$${v.name}`]);
  }
  assert.ok(used.size >= 8, `found the dashboard's metrics: ${[...used.keys()]}`);
  const unknown = [...used].filter(([n]) => !exported.has(n)).map(([n, where]) => `${n} (${where.join(', ')})`);
  assert.deepEqual(unknown, [], `not exported by /metrics: ${unknown.join('; ')}`);
});

test('the metric-name reader sees through PromQL', () => {
  assert.deepEqual([...promqlMetrics('histogram_quantile(0.95, sum by (le, tier) (rate(a_bucket{tier=~"$tier"}[$__rate_interval])))')], ['a_bucket']);
  assert.deepEqual([...promqlMetrics('sum(rate(x_total{k="by (y)"}[5m])) / on (pool) group_left sum without (z) (y) * 3600')].sort(), ['x_total', 'y']);
});

const promtool = have('promtool');

test('every dashboard query is valid PromQL (promtool check rules)', { skip: !promtool && 'promtool is not installed' }, () => {
  // Grafana's variables, as Grafana would expand them.
  const expand = (e) => e.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1m').replace(/\$\{?(\w+)\}?/g, '.*');
  const rules = { groups: [{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: expand(q.expr) })) }] };
  const dir = mkdtempSync(join(tmpdir(), 'fleetmock-dash-'));
  try {
    writeFileSync(join(dir, 'rules.yml'), JSON.stringify(rules)); // JSON is YAML
    const r = run('promtool', ['check', 'rules', join(dir, 'rules.yml')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

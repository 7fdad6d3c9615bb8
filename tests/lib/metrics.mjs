// Reads GET /metrics into samples, for tests that check what the server
// counted. A small parser of the Prometheus text format (0.0.4): enough for
// fleetmock's own output, which chaos_metrics.test.mjs also checks with promtool.
import assert from 'node:assert/strict';

/** Parses the text format into [{name, labels, value}]. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable metrics line: ${line}`);
    const labels = {};
    if (m[2]) for (const [, k, v] of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** GET /metrics from a server started by tests/lib/server.mjs, parsed. */
export async function scrape(srv) {
  const res = await fetch(srv.baseURL + '/metrics');
  assert.equal(res.status, 200);
  return parseMetrics(await res.text());
}

/** The sum of every sample with this name whose labels include these; 0 when none. */
export function sum(samples, name, labels = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** True when some sample has this name (and these labels). */
export function has(samples, name, labels = {}) {
  return samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

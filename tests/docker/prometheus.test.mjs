// docker/prometheus.yml passes `promtool check config` (which also checks
// that the bearer-token file it names exists), and scrapes /metrics with the
// admin token that a live fleetmock started with that token accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, read, run, have } from './lib.mjs';
import { parseYaml } from './yaml.mjs';
import { startServer } from '../lib/server.mjs';

test('promtool check config docker/prometheus.yml passes', () => {
  assert.ok(have('promtool'), 'promtool is missing: .ci/dev.sh installs the Debian package prometheus, which ships it');
  const r = run('promtool', ['check', 'config', 'docker/prometheus.yml'], { cwd: ROOT });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS/);
});

test('the scrape job sends the token fleetmock asks for on /metrics', { skip: !process.env.FLEETMOCK_BIN && 'FLEETMOCK_BIN is not set' }, async () => {
  const job = parseYaml(read('docker/prometheus.yml')).scrape_configs.find((j) => j.job_name === 'fleetmock');
  const token = read(join('docker', job.authorization.credentials_file)).trim(); // Prometheus trims it too
  assert.ok(token.length >= 16, 'a token of some length');
  const server = await startServer({ env: { FLEETMOCK_ADMIN_TOKEN: token } });
  try {
    const url = server.baseURL + (job.metrics_path || '/metrics');
    assert.equal((await fetch(url)).status, 401, 'without the token');
    const r = await fetch(url, { headers: { Authorization: `${job.authorization.type} ${token}` } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain/);
  } finally {
    await server.stop();
  }
});

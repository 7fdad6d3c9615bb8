// Test isolation (docs/replies.md, "Test ids"): two test files run at once
// against one server, each with its own x-fleetmock-test-id, and neither sees
// the other's reply rules, faults or journal entries (isolation/one-test-file.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer, NO_LIMITS } from '../lib/server.mjs';

const file = fileURLToPath(new URL('./isolation/one-test-file.mjs', import.meta.url));

function runFile(url, id) {
  return new Promise((resolve) => {
    const env = { ...process.env, FLEETMOCK_URL: url, FLEETMOCK_TEST_ID: id };
    delete env.NODE_TEST_CONTEXT; // a test runner of its own, not a child reporting to ours
    const child = spawn(process.execPath, ['--test', file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

test('two test files at once on one server see only their own rules, faults and journal', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS });
  try {
    const [a, b] = await Promise.all([runFile(srv.baseURL, 'checkout.test'), runFile(srv.baseURL, 'search.test')]);
    assert.equal(a.code, 0, a.out);
    assert.equal(b.code, 0, b.out);
    assert.match(a.out, /# pass 1/);
    assert.match(b.out, /# pass 1/);
    const all = await (await fetch(`${srv.baseURL}/admin/requests?limit=1000`)).json();
    assert.equal(all.data?.length, 60, JSON.stringify(all).slice(0, 300)); // both files' requests, and nothing else
  } finally {
    await srv.stop();
  }
});

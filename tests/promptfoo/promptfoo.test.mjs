// Conformance: promptfoo (the LLM eval CLI), unmodified, against fleetmock.
// Its openai provider, pointed at the server with apiBaseUrl, runs one eval
// of four cases, and its own assertions judge the answers: is-json on a
// json_object answer, is-json with the schema on a json_schema answer,
// is-valid-openai-tools-call on tool_choice required, and is-json on a
// plain-text answer, which must fail (so this test can fail). The CLI runs
// from tests/promptfoo/node_modules (its own lockfile: it is ~1.9 GB), with
// its home, config dir and cache in a temp dir, no cache, no telemetry, no
// update check, no sharing, and a time limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, admin, NO_LIMITS, WRAPPED } from '../lib/server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PROMPTFOO = join(HERE, 'node_modules', '.bin', 'promptfoo');
const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const EVAL_MS = 120000 * (WRAPPED ? 5 : 1);

const weatherParams = {
  type: 'object',
  properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 5 } },
  required: ['city', 'days'],
  additionalProperties: false,
};
const planSchema = {
  type: 'object',
  properties: {
    title: { type: 'string' },
    steps: { type: 'array', minItems: 1, maxItems: 4, items: { type: 'string' } },
    status: { type: 'string', enum: ['draft', 'final'] },
  },
  required: ['title', 'steps', 'status'],
  additionalProperties: false,
};

/** The promptfoo config: one provider per case (by label), each test run on its own. */
function evalConfig(baseURL) {
  const provider = (label, config) => ({
    id: `openai:chat:${KIMI}`,
    label,
    config: { apiBaseUrl: `${baseURL}/inference/v1`, apiKey: 'k', ...config },
  });
  return {
    description: 'fleetmock conformance',
    prompts: ['{{ask}}'],
    providers: [
      provider('fm-json-object', { response_format: { type: 'json_object' } }),
      provider('fm-json-schema', {
        response_format: { type: 'json_schema', json_schema: { name: 'plan', strict: true, schema: planSchema } },
      }),
      provider('fm-tools', {
        tools: [{ type: 'function', function: { name: 'get_weather', description: 'weather for a city', parameters: weatherParams } }],
        tool_choice: 'required',
      }),
      provider('fm-text', {}),
    ],
    tests: [
      { description: 'json_object', providers: ['fm-json-object'], vars: { ask: 'Describe a fleet as JSON' }, assert: [{ type: 'is-json' }] },
      { description: 'json_schema', providers: ['fm-json-schema'], vars: { ask: 'Plan a trip' }, assert: [{ type: 'is-json', value: planSchema }] },
      { description: 'tools', providers: ['fm-tools'], vars: { ask: 'What is the weather in Paris for three days?' }, assert: [{ type: 'is-valid-openai-tools-call' }] },
      { description: 'plain text', providers: ['fm-text'], vars: { ask: 'Say hello' }, assert: [{ type: 'is-json' }] },
    ],
  };
}

/** Runs the promptfoo CLI (only this child, killed by its PID at timeoutMs); resolves {code, signal, stdout, stderr}. */
function runPromptfoo(args, { cwd, env, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PROMPTFOO, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d.toString(); });
    child.stderr.on('data', (d) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

let server, dir, run, out;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '6'], config: NO_LIMITS });
  dir = mkdtempSync(join(tmpdir(), 'fleetmock-promptfoo-'));
  const config = join(dir, 'promptfooconfig.json');
  const outFile = join(dir, 'out.json');
  writeFileSync(config, JSON.stringify(evalConfig(server.baseURL), null, 2));
  // Nothing of the caller's OpenAI or promptfoo settings, and nothing written
  // outside the temp dir: home, config dir (database, logs), cache.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(OPENAI_|PROMPTFOO_)/.test(k)));
  Object.assign(env, {
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'xdg-config'),
    XDG_CACHE_HOME: join(dir, 'xdg-cache'),
    PROMPTFOO_CONFIG_DIR: join(dir, 'promptfoo'),
    PROMPTFOO_CACHE_PATH: join(dir, 'cache'),
    PROMPTFOO_CACHE_ENABLED: 'false',
    PROMPTFOO_DISABLE_TELEMETRY: '1',
    PROMPTFOO_DISABLE_UPDATE: '1',
    PROMPTFOO_DISABLE_SHARING: '1',
  });
  run = await runPromptfoo(
    ['eval', '-c', config, '-o', outFile, '--no-cache', '--no-write', '--no-share', '--no-table', '--no-progress-bar', '-j', '1'],
    { cwd: dir, env, timeoutMs: EVAL_MS });
  const why = `promptfoo exited ${run.code}/${run.signal}:\n${run.stderr.slice(-4000)}\n${run.stdout.slice(-4000)}`;
  assert.equal(run.signal, null, why);
  assert.ok(existsSync(outFile), why);
  out = JSON.parse(readFileSync(outFile, 'utf8'));
});
after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The one result of the test case described `description`; a passed one has failureReason 0. */
function result(description, { passed = true } = {}) {
  const rows = out.results.results.filter((r) => r.testCase.description === description);
  assert.equal(rows.length, 1, `${description}: ${rows.length} results`);
  const r = rows[0];
  if (passed) {
    assert.equal(r.success, true, `${description}: ${r.error ?? r.gradingResult?.reason}`);
    assert.equal(r.failureReason, 0);
  }
  return r;
}

test('the eval: 3 passed, 1 failed, 0 errors, and the CLI exits 100 (a failed assertion)', () => {
  const { stats } = out.results;
  assert.deepEqual({ successes: stats.successes, failures: stats.failures, errors: stats.errors },
    { successes: 3, failures: 1, errors: 0 }, JSON.stringify(stats));
  assert.equal(out.results.results.length, 4);
  assert.equal(run.code, 100, run.stderr.slice(-2000));
});

test('every answer came from fleetmock: 4 chat completions, none from a cache', async () => {
  assert.deepEqual(out.results.results.map((r) => r.response.cached), [false, false, false, false]);
  const total = (await admin(server, 'GET', '/admin/accounts')).json.accounts[0].total;
  assert.equal(total.requests, 4);
});

test('json_object: is-json passes on the answer', () => {
  const r = result('json_object');
  assert.equal(r.provider.label, 'fm-json-object');
  assert.equal(r.response.finishReason, 'stop');
  assert.equal(typeof JSON.parse(r.response.output), 'object');
  assert.deepEqual(r.gradingResult.componentResults.map((c) => [c.assertion.type, c.pass]), [['is-json', true]]);
});

test('json_schema: is-json with the schema passes on the answer', () => {
  const r = result('json_schema');
  assert.equal(r.provider.label, 'fm-json-schema');
  assert.equal(r.response.finishReason, 'stop');
  // promptfoo parses a json_schema answer into an object itself.
  assert.equal(typeof r.response.output, 'object');
  assert.ok(['draft', 'final'].includes(r.response.output.status), JSON.stringify(r.response.output));
  assert.deepEqual(r.gradingResult.componentResults.map((c) => [c.assertion.type, c.pass]), [['is-json', true]]);
});

test('tools: is-valid-openai-tools-call passes on tool_choice required', () => {
  const r = result('tools');
  assert.equal(r.provider.label, 'fm-tools');
  assert.equal(r.response.finishReason, 'tool_calls');
  const calls = Array.isArray(r.response.output) ? r.response.output : r.response.output.tool_calls;
  assert.ok(calls.length >= 1, JSON.stringify(r.response.output));
  assert.equal(calls[0].function.name, 'get_weather');
  assert.deepEqual(r.gradingResult.componentResults.map((c) => [c.assertion.type, c.pass]),
    [['is-valid-openai-tools-call', true]]);
});

test('plain text: is-json fails on an answer without response_format', () => {
  const r = result('plain text', { passed: false });
  assert.equal(r.success, false);
  // promptfoo's ResultFailureReason: 1 is a failed assertion, 2 an error.
  assert.equal(r.failureReason, 1, 'a failed assertion, not an error');
  assert.equal(r.gradingResult.reason, 'Expected output to be valid JSON');
  assert.equal(r.provider.label, 'fm-text');
  assert.equal(typeof r.response.output, 'string');
  assert.ok(r.response.output.length > 0);
  assert.throws(() => JSON.parse(r.response.output));
  assert.deepEqual(r.gradingResult.componentResults.map((c) => [c.assertion.type, c.pass]), [['is-json', false]]);
});

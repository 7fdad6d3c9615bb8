// docker/Dockerfile without a Docker engine: the build stage runs the script
// CI runs, the runtime stage is small, non-root and checks its own health
// with `fleetmock --healthcheck`, and the entrypoint's rules (an admin token
// is required, a token file, a mounted config) hold against the real binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT, read, run, dockerfileStages } from './lib.mjs';
import { startServer } from '../lib/server.mjs';

const stages = dockerfileStages();
const build = stages[0];
const runtime = stages[stages.length - 1];
const ops = (stage, op) => stage.instructions.filter((i) => i.op === op);

test('the image is multi-stage on debian:bookworm-slim', () => {
  assert.ok(stages.length >= 2, 'a build stage and a runtime stage');
  for (const s of stages) assert.equal(s.image, 'debian:bookworm-slim', `stage ${s.name}`);
  assert.ok(ops(runtime, 'COPY').some((c) => c.args.startsWith(`--from=${build.name} `)),
    'the runtime stage copies its binaries from the build stage');
});

test('the build stage runs the install-and-build script CI runs', () => {
  const runs = ops(build, 'RUN');
  const i = runs.findIndex((r) => /(^|[\s;&|])bash\s+\.ci\/dev\.sh\s+build(\s|$|;|&)/.test(r.args));
  assert.ok(i >= 0, 'a RUN line calls `bash .ci/dev.sh build`');
  const copyAll = ops(build, 'COPY').find((c) => /^\.\s+\.$/.test(c.args));
  assert.ok(copyAll && copyAll.line < runs[i].line, 'the whole repo is copied in before it runs');
  // Nothing else in the build stage installs or compiles on its own.
  for (const r of runs) assert.doesNotMatch(r.args, /apt-get|cmake|\bmake\b|\bgcc\b|\bcc\b/, `line ${r.line}`);
  // What it ships is what dev.sh's build step produces (build/).
  assert.ok(runs.some((r) => /build\/fleetmock\b/.test(r.args)), 'ships build/fleetmock');
});

test('CI runs the same script, through the same build step', () => {
  const ci = read('.ci/run').split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
  assert.match(ci, /dev\.sh"?\s+test\b/, '.ci/run calls .ci/dev.sh test');
  const dev = read('.ci/dev.sh');
  const arm = (name) => {
    const m = new RegExp(`^\\s*${name}\\)([\\s\\S]*?);;`, 'm').exec(dev);
    assert.ok(m, `.ci/dev.sh has a "${name})" command`);
    return m[1];
  };
  for (const name of ['build', 'test']) {
    const body = arm(name);
    assert.match(body, /\binstall_deps\b/, `dev.sh ${name} installs the dependencies`);
    assert.match(body, /\bbuild "\$root\/build"/, `dev.sh ${name} builds into build/ the same way`);
  }
});

test('the runtime stage is non-root, listens on 0.0.0.0 and ships the scenarios', () => {
  const user = ops(runtime, 'USER').pop();
  assert.ok(user, 'a USER line');
  assert.doesNotMatch(user.args.split(':')[0], /^(root|0)$/);
  const env = ops(runtime, 'ENV').map((e) => e.args).join(' ');
  assert.match(env, /\bFLEETMOCK_HOST=0\.0\.0\.0\b/);
  assert.ok(ops(runtime, 'COPY').some((c) => /^scenarios\/?\s/.test(c.args)), 'scenarios are copied');
  assert.ok(ops(runtime, 'EXPOSE').some((e) => /\b8080\b/.test(e.args)));
  const entry = ops(runtime, 'ENTRYPOINT').pop();
  assert.ok(entry && /fleetmock-entrypoint/.test(entry.args));
  assert.ok(ops(runtime, 'COPY').some((c) => /^docker\/entrypoint\.sh\s+\S*fleetmock-entrypoint$/.test(c.args)));
  // Only libraries come from apt (runtime_libs checks which); no curl, no shell tools.
  for (const r of ops(runtime, 'RUN')) assert.doesNotMatch(r.args, /\b(curl|wget)\b/);
  // Every COPY source outside --from exists in the repo.
  for (const c of ops(runtime, 'COPY').concat(ops(build, 'COPY'))) {
    if (/^--from=/.test(c.args)) continue;
    const src = c.args.split(' ').filter((w) => !w.startsWith('--')).slice(0, -1);
    for (const s of src) assert.ok(existsSync(join(ROOT, s)), `COPY source ${s} (line ${c.line})`);
  }
  assert.ok(statSync(join(ROOT, 'docker/entrypoint.sh')).mode & 0o100, 'entrypoint.sh is executable');
});

test('the build context keeps out local builds but not what the build needs', () => {
  const patterns = read('docker/Dockerfile.dockerignore').split('\n').map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  // Docker's rules, enough for these patterns: `**/` any directories, `*` and `?` within one.
  const toRe = (p) => new RegExp('^' + p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*\*\//g, '\0')
    .replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\0/g, '(?:.*/)?') + '(/.*)?$');
  const excluded = (path) => patterns.some((p) => !p.startsWith('!') && toRe(p).test(path));
  for (const need of ['CMakeLists.txt', '.ci/dev.sh', 'server/main.c', 'server/CMakeLists.txt', 'scenarios/steady.json',
    'tests/CMakeLists.txt', 'tests/unit/CMakeLists.txt', 'bench/CMakeLists.txt', 'docker/entrypoint.sh', 'clients/CMakeLists.txt']) {
    assert.ok(!excluded(need), `${need} must stay in the build context`);
  }
  for (const out of ['.git/config', 'build/fleetmock', 'build-sanitize/fleetmock', 'tests/conformance/node_modules/x', 'tests/promptfoo/node_modules/x',
    'docker/admin-token']) {
    assert.ok(excluded(out), `${out} should be left out of the build context`);
  }
});

// ---- the entrypoint, run with the real binary on PATH -------------------------

const BIN = process.env.FLEETMOCK_BIN;
const binDir = BIN ? dirname(BIN) : '';
const entry = join(ROOT, 'docker/entrypoint.sh');
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLEETMOCK_')));
function entrypoint(args, env = {}) {
  return run('sh', [entry, ...args], { env: { ...cleanEnv(), PATH: `${binDir}:${process.env.PATH}`, ...env }, timeout: 15000 });
}

test('the entrypoint refuses to serve without an admin token', { skip: !BIN && 'FLEETMOCK_BIN is not set' }, () => {
  const r = entrypoint([], { FLEETMOCK_PORT: '0' });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no admin token.*FLEETMOCK_ADMIN_TOKEN/s);
  const withOpts = entrypoint(['--seed', '7'], { FLEETMOCK_PORT: '0' });
  assert.equal(withOpts.code, 2, 'options alone still need a token');
  // Commands that do not serve need none.
  const v = entrypoint(['--version']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^fleetmock \S+/);
});

test('the entrypoint reads the token file and finds a mounted config', { skip: !BIN && 'FLEETMOCK_BIN is not set' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmock-docker-'));
  try {
    writeFileSync(join(dir, 'token'), 's3cret-token\n');
    const show = ['sh', '-c', 'printf "%s|%s" "$FLEETMOCK_ADMIN_TOKEN" "$FLEETMOCK_CONFIG"'];
    let r = entrypoint(show, { FLEETMOCK_ADMIN_TOKEN_FILE: join(dir, 'token'), FLEETMOCK_CONFIG_DEFAULT: join(dir, 'config.json') });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 's3cret-token|', 'token without its newline; no config file, no FLEETMOCK_CONFIG');
    writeFileSync(join(dir, 'config.json'), '{}');
    r = entrypoint(show, { FLEETMOCK_ADMIN_TOKEN_FILE: join(dir, 'token'), FLEETMOCK_CONFIG_DEFAULT: join(dir, 'config.json') });
    assert.equal(r.stdout, `s3cret-token|${join(dir, 'config.json')}`);
    r = entrypoint(show, { FLEETMOCK_ADMIN_TOKEN: 'from-env', FLEETMOCK_CONFIG: '/x.json',
      FLEETMOCK_ADMIN_TOKEN_FILE: join(dir, 'token'), FLEETMOCK_CONFIG_DEFAULT: join(dir, 'config.json') });
    assert.equal(r.stdout, 'from-env|/x.json', 'explicit variables win');
    r = entrypoint(show, { FLEETMOCK_ADMIN_TOKEN_FILE: join(dir, 'missing') });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not a readable file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Starts the server through the entrypoint, as the container does; resolves {port, stop}. */
async function startViaEntrypoint(env) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmock-docker-'));
  const portFile = join(dir, 'port');
  const child = spawn('sh', [entry], {
    env: { ...cleanEnv(), PATH: `${binDir}:${process.env.PATH}`, FLEETMOCK_HOST: '127.0.0.1', FLEETMOCK_PORT: '0',
      FLEETMOCK_PORT_FILE: portFile, FLEETMOCK_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  for (let i = 0; i < 500 && !existsSync(portFile); i++) {
    if (child.exitCode !== null) throw new Error(`exited early: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const port = Number(readFileSync(portFile, 'utf8').trim());
  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

test('served through the entrypoint, /metrics needs the token and the HEALTHCHECK passes',
  { skip: !BIN && 'FLEETMOCK_BIN is not set' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetmock-docker-'));
    writeFileSync(join(dir, 'token'), 'tok-123\n');
    const srv = await startViaEntrypoint({ FLEETMOCK_ADMIN_TOKEN_FILE: join(dir, 'token') });
    const base = `http://127.0.0.1:${srv.port}`;
    try {
      assert.equal((await fetch(`${base}/metrics`)).status, 401, 'no token');
      assert.equal((await fetch(`${base}/metrics`, { headers: { Authorization: 'Bearer nope' } })).status, 401);
      const ok = await fetch(`${base}/metrics`, { headers: { Authorization: 'Bearer tok-123' } });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /^fleetmock_pool_utilisation\{/m);

      // The Dockerfile's HEALTHCHECK command, run as Docker runs it (sh -c, container env).
      const hc = ops(runtime, 'HEALTHCHECK').pop();
      assert.ok(hc, 'a HEALTHCHECK');
      const m = /\bCMD\s+(.*)$/.exec(hc.args);
      assert.ok(m && /^fleetmock --healthcheck /.test(m[1]), `uses fleetmock --healthcheck: ${hc.args}`);
      assert.doesNotMatch(hc.args, /\b(curl|wget)\b/);
      const check = (port) => run('sh', ['-c', m[1]], {
        env: { ...cleanEnv(), PATH: `${binDir}:${process.env.PATH}`, FLEETMOCK_PORT: String(port) }, timeout: 15000 });
      const healthy = check(srv.port);
      assert.equal(healthy.code, 0, healthy.stderr);
    } finally {
      assert.equal(await srv.stop(), 0, 'exits 0 on SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
    // Nothing listening any more: unhealthy.
    const hc = /\bCMD\s+(.*)$/.exec(ops(runtime, 'HEALTHCHECK').pop().args)[1];
    const down = run('sh', ['-c', hc], { env: { ...cleanEnv(), PATH: `${binDir}:${process.env.PATH}`, FLEETMOCK_PORT: String(srv.port) } });
    assert.notEqual(down.code, 0);
  });

test('fleetmock --healthcheck: 0 on 200, 1 otherwise', { skip: !BIN && 'FLEETMOCK_BIN is not set' }, async () => {
  const srv = await startServer();
  try {
    const hc = (url) => run(BIN, ['--healthcheck', url], { timeout: 15000 });
    assert.equal(hc(`${srv.baseURL}/healthz`).code, 0);
    const notFound = hc(`${srv.baseURL}/no-such-route`);
    assert.equal(notFound.code, 1, 'a 404 is not healthy');
    assert.match(notFound.stderr, /404/);
    assert.equal(hc('localhost:8080/healthz').code, 2, 'not a URL: a usage error');
  } finally {
    await srv.stop();
  }
});

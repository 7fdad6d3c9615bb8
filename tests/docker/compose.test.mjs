// docker/compose.yaml and the YAML beside it, without a Docker engine: the
// files parse (a strict YAML-subset parser, plus `docker compose config`
// when the compose plugin is installed), the stack names its four services,
// and every file, port, token and URL that one service expects of another
// lines up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { ROOT, DOCKER, read, run, shippedBinaries } from './lib.mjs';
import { parseYaml, YamlError } from './yaml.mjs';

const compose = parseYaml(read('docker/compose.yaml'));
const services = compose.services || {};
const prom = parseYaml(read('docker/prometheus.yml'));

// ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}; `$$` is a literal `$`.
function interpolateDefaults(s) {
  return s.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}|\$([A-Za-z_]\w*)|\$/g,
    (all, name, op, word, bare) => {
      if (all === '$$') return '$';
      if (name) return op === '-' ? word : '';
      if (bare) return '';
      throw new Error(`a lone "$" in ${JSON.stringify(s)} (write $$ for a literal $)`);
    });
}
function walkStrings(v, f) {
  if (typeof v === 'string') f(v);
  else if (Array.isArray(v)) v.forEach((x) => walkStrings(x, f));
  else if (v && typeof v === 'object') Object.entries(v).forEach(([k, x]) => { f(k); walkStrings(x, f); });
}
/** Short-syntax volumes of a service: [{source, target, ro}]. */
const volumes = (svc) => (svc.volumes || []).map((v) => {
  assert.equal(typeof v, 'string', 'volumes use the short syntax');
  const [source, target, mode] = interpolateDefaults(v).split(':');
  return { source, target, ro: mode === 'ro' };
});
const fromDocker = (rel) => join(DOCKER, rel);

test('the YAML-subset parser is strict', () => {
  assert.deepEqual(parseYaml('a: 1\nb:\n  - x\n  - {}\n  - k: "v # not a comment"\n    j: [1, "two"]\nc: |-\n  l1\n  l2\n'),
    { a: 1, b: ['x', {}, { k: 'v # not a comment', j: [1, 'two'] }], c: 'l1\nl2' });
  assert.deepEqual(parseYaml("x: >-\n  one\n  two\ny: 'it''s'\nz: ~ # c\n"), { x: 'one two', y: "it's", z: null });
  for (const bad of ['a: 1\na: 2\n', 'a:\n\t- x\n', 'a: &x 1\n', 'a: *x\n', 'a: !!str 1\n', 'a: "open\n', 'a:\n  b: 1\n c: 2\n',
    '- a\nb: 1\n', 'a: b: c\n', '---\na: 1\n']) {
    assert.throws(() => parseYaml(bad), YamlError, JSON.stringify(bad));
  }
});

test('compose.yaml parses and names the services fleetmock, prometheus, grafana and drill', () => {
  for (const k of Object.keys(compose)) {
    assert.ok(['name', 'services', 'volumes', 'secrets', 'networks', 'configs'].includes(k) || k.startsWith('x-'), `top-level key ${k}`);
  }
  assert.deepEqual(Object.keys(services).sort(), ['drill', 'fleetmock', 'grafana', 'prometheus']);
  for (const [name, svc] of Object.entries(services)) {
    assert.ok(svc.image || svc.build, `${name} has an image or a build`);
    if (name === 'drill') assert.deepEqual(svc.profiles, ['drill'], 'drill runs only under the drill profile');
    else assert.equal(svc.profiles, undefined, `${name} starts by default`);
  }
  walkStrings(compose, (s) => interpolateDefaults(s)); // every $ is well-formed
});

test('docker compose config accepts the file, when the compose plugin is installed', (t) => {
  const v = run('docker', ['compose', 'version']);
  if (v.code !== 0) { t.skip('no `docker compose` here (the YAML-subset parser checked the file)'); return; }
  for (const profile of [[], ['--profile', 'drill']]) {
    const r = run('docker', ['compose', '-f', join(DOCKER, 'compose.yaml'), ...profile, 'config', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
  }
});

test('fleetmock is built from docker/Dockerfile and the drill runs fleetdrill from that image', () => {
  const fm = services.fleetmock;
  const context = join(DOCKER, fm.build.context);
  assert.equal(context, ROOT, 'the build context is the repo root');
  assert.ok(existsSync(join(context, fm.build.dockerfile)), fm.build.dockerfile);
  assert.ok(statSync(join(DOCKER, 'Dockerfile')).isFile());
  assert.ok(fm.ports.some((p) => interpolateDefaults(p).endsWith(':8080')), 'publishes container port 8080');

  const drill = services.drill;
  assert.equal(drill.image, fm.image, 'the drill uses the image fleetmock builds');
  assert.equal(drill.depends_on?.fleetmock?.condition, 'service_healthy');
  const cmd = interpolateDefaults([].concat(drill.command).join(' '));
  assert.match(cmd, /\bfleetdrill\b/);
  assert.match(cmd, /http:\/\/fleetmock:8080\b/);
});

test('one admin token: fleetmock, Prometheus and the drill read the same file', () => {
  const secret = compose.secrets?.fleetmock_admin_token;
  assert.ok(secret, 'a fleetmock_admin_token secret');
  const file = fromDocker(interpolateDefaults(secret.file));
  assert.ok(existsSync(file), `${secret.file} exists (its default)`);
  const target = (svc) => {
    const s = (services[svc].secrets || []).map((x) => (typeof x === 'string' ? { source: x } : x))
      .find((x) => x.source === 'fleetmock_admin_token');
    assert.ok(s, `${svc} mounts the token`);
    return s.target ? (s.target.startsWith('/') ? s.target : `/run/secrets/${s.target}`) : '/run/secrets/fleetmock_admin_token';
  };
  for (const svc of ['fleetmock', 'drill']) {
    assert.equal(services[svc].environment.FLEETMOCK_ADMIN_TOKEN_FILE, target(svc), `${svc}: FLEETMOCK_ADMIN_TOKEN_FILE names the mounted token`);
    assert.equal(services[svc].environment.FLEETMOCK_ADMIN_TOKEN, undefined, `${svc}: no token in the environment`);
  }
  // Prometheus reads credentials_file relative to its config file.
  const job = prom.scrape_configs.find((j) => j.job_name === 'fleetmock');
  assert.equal(job.authorization.type, 'Bearer');
  const promVol = volumes(services.prometheus).find((v) => v.source === './prometheus.yml');
  assert.ok(promVol, 'prometheus.yml is mounted');
  const configFlag = services.prometheus.command.find((c) => c.startsWith('--config.file='));
  assert.equal(configFlag, `--config.file=${promVol.target}`);
  assert.equal(target('prometheus'), posix.join(posix.dirname(promVol.target), job.authorization.credentials_file),
    'the token is where prometheus.yml looks for it');
  assert.ok(existsSync(join(DOCKER, job.authorization.credentials_file)), 'and beside docker/prometheus.yml, for promtool');
});

test('Prometheus scrapes fleetmock and Grafana reads Prometheus', () => {
  const job = prom.scrape_configs.find((j) => j.job_name === 'fleetmock');
  assert.equal(job.metrics_path ?? '/metrics', '/metrics');
  assert.deepEqual(job.static_configs.flatMap((s) => s.targets), ['fleetmock:8080']);
  assert.ok(services.prometheus.ports.some((p) => interpolateDefaults(p).endsWith(':9090')));

  const graf = services.grafana;
  const vols = volumes(graf);
  for (const v of vols) if (v.source.startsWith('.')) assert.ok(existsSync(fromDocker(v.source)), `grafana mounts ${v.source}`);
  const prov = vols.find((v) => v.target === '/etc/grafana/provisioning');
  assert.ok(prov, 'provisioning is mounted at /etc/grafana/provisioning');
  const dsDir = join(fromDocker(prov.source), 'datasources');
  const ds = parseYaml(readFileSync(join(dsDir, 'prometheus.yaml'), 'utf8')).datasources;
  assert.equal(ds.length, 1);
  assert.equal(ds[0].type, 'prometheus');
  assert.equal(ds[0].url, 'http://prometheus:9090');
  const providers = parseYaml(readFileSync(join(fromDocker(prov.source), 'dashboards', 'fleetmock.yaml'), 'utf8')).providers;
  const path = providers[0].options.path;
  const dashVol = vols.find((v) => v.target === path);
  assert.ok(dashVol, `the dashboard provider's folder ${path} is mounted`);
  assert.ok(existsSync(join(fromDocker(dashVol.source), 'fleetmock.json')));
  const home = graf.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
  assert.equal(home, posix.join(path, 'fleetmock.json'), 'the home dashboard is the provisioned one');
});

test('every bind mount and named volume of the stack exists', () => {
  for (const [name, svc] of Object.entries(services)) {
    for (const v of volumes(svc)) {
      if (v.source.startsWith('.') || v.source.startsWith('/')) assert.ok(existsSync(fromDocker(v.source)), `${name}: ${v.source}`);
      else assert.ok(v.source in (compose.volumes || {}), `${name}: named volume ${v.source} is declared`);
    }
  }
});

test("fleetmock's FLEETMOCK_* settings are real options", { skip: !process.env.FLEETMOCK_BIN && 'FLEETMOCK_BIN is not set' }, () => {
  const help = run(process.env.FLEETMOCK_BIN, ['--help']).stdout;
  const known = new Set([...help.matchAll(/^\s+--([a-z-]+)/gm)].map((m) => `FLEETMOCK_${m[1].toUpperCase().replace(/-/g, '_')}`));
  known.add('FLEETMOCK_ADMIN_TOKEN_FILE'); // the entrypoint's (docker/entrypoint.sh)
  for (const svc of ['fleetmock', 'drill']) {
    for (const k of Object.keys(services[svc].environment || {})) {
      if (k.startsWith('FLEETMOCK_')) assert.ok(known.has(k), `${svc}: ${k} is not a fleetmock option`);
    }
  }
});

test("the drill passes only options fleetdrill knows", (t) => {
  const drillBin = process.env.FLEETMOCK_BIN && shippedBinaries()[1];
  if (!drillBin) { t.skip('this build tree has no fleetdrill'); return; }
  const help = run(drillBin, ['--help']);
  const known = new Set([...help.stdout.matchAll(/^\s+--([a-z][a-z-]*)/gm)].map((m) => m[1]));
  assert.ok(known.has('url') && known.has('compare'), `fleetdrill --help lists its options: ${help.stdout}${help.stderr}`);
  const cmd = [].concat(services.drill.command).join(' ');
  const used = [...cmd.slice(cmd.indexOf('exec fleetdrill')).matchAll(/\s--([a-z][a-z-]*)/g)].map((m) => m[1]);
  assert.ok(used.length >= 3);
  const unknown = used.filter((o) => !known.has(o));
  assert.deepEqual(unknown, [], `fleetdrill has no --${unknown.join(', --')}`);
});

test('the stack is documented in docs/staging.md', () => {
  assert.ok(existsSync(join(ROOT, 'docs/staging.md')));
  assert.match(read('docs/staging.md'), /FLEETMOCK_ADMIN_TOKEN/);
  assert.ok(existsSync(join(dirname(fromDocker('compose.yaml')), 'config', 'README.md')));
});

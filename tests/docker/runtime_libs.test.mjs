// The runtime stage of docker/Dockerfile installs exactly the Debian packages
// the shipped binaries need: each shared library the binaries name (ELF
// NEEDED) maps to its package with `dpkg -S`, and the list must match the
// stage's `apt-get install` line both ways. Packages debian:bookworm-slim
// already has (the Essential and required ones, and what they depend on,
// libc6 among them) are not listed. Every other library `ldd` resolves must
// come in as a dependency of a listed package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, realpathSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run, have, dockerfileStages, aptInstalls, shippedBinaries } from './lib.mjs';

const BIN = process.env.FLEETMOCK_BIN;

/** {soname: path} for every library ldd resolves. */
function lddLibs(bin) {
  const r = run('ldd', [bin]);
  assert.equal(r.code, 0, `ldd ${bin}: ${r.stderr}`);
  const libs = {};
  for (const line of r.stdout.split('\n')) {
    let m = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(/.exec(line);
    if (m) { libs[m[1]] = m[2]; continue; }
    if (/=>\s+not found/.test(line)) assert.fail(`ldd ${bin}: ${line.trim()}`);
    m = /^\s*(\/\S+)\s+\(/.exec(line); // the dynamic loader
    if (m) libs[m[1].split('/').pop()] = m[1];
  }
  return libs;
}

function neededSonames(bin) {
  const r = run('readelf', ['-d', bin]);
  assert.equal(r.code, 0, `readelf -d ${bin}: ${r.stderr}`);
  return [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/** The Debian package that owns a library file (trying the merged-/usr twins of the path). */
const ownerCache = new Map();
function owner(path) {
  if (ownerCache.has(path)) return ownerCache.get(path);
  const cands = new Set([path]);
  try { cands.add(realpathSync(path)); } catch { /* keep the path */ }
  for (const c of [...cands]) {
    if (c.startsWith('/usr/')) cands.add(c.slice(4));
    else cands.add('/usr' + c);
  }
  let pkg = null;
  for (const c of cands) {
    const r = run('dpkg', ['-S', c]);
    if (r.code !== 0) continue;
    const line = r.stdout.split('\n').find((l) => !l.startsWith('diversion'));
    pkg = line.split(':')[0].split(',')[0].trim();
    break;
  }
  ownerCache.set(path, pkg);
  return pkg;
}

/** Installed packages: name -> {essential, required, deps: [[alt, ...], ...]}. */
function installedPackages() {
  const r = run('dpkg-query', ['-W', '-f', '${Package}\t${Essential}\t${Priority}\t${Status}\t${Pre-Depends}, ${Depends}\n'],
    { maxBuffer: 64 << 20 });
  assert.equal(r.code, 0, r.stderr);
  const pkgs = new Map();
  for (const line of r.stdout.split('\n')) {
    const [name, essential, priority, status, deps] = line.split('\t');
    if (!name || !/install ok installed/.test(status)) continue;
    const groups = (deps || '').split(',').map((g) => g.trim()).filter(Boolean)
      .map((g) => g.split('|').map((a) => a.trim().split(/[\s:(]/)[0]).filter(Boolean));
    pkgs.set(name, { essential: essential === 'yes', required: priority === 'required', deps: groups });
  }
  return pkgs;
}

/** Every installed package reachable from `roots` through Depends/Pre-Depends. */
function closure(roots, pkgs) {
  const seen = new Set();
  const todo = [...roots];
  while (todo.length) {
    const p = todo.pop();
    if (seen.has(p) || !pkgs.has(p)) continue;
    seen.add(p);
    for (const alts of pkgs.get(p).deps) {
      const pick = alts.find((a) => pkgs.has(a));
      if (pick) todo.push(pick);
    }
  }
  return seen;
}

const skip = !BIN ? 'FLEETMOCK_BIN is not set'
  : !have('dpkg') || !have('readelf') || !have('ldd') ? 'needs dpkg, readelf and ldd (Debian with binutils)'
    : false;

test('the runtime stage installs exactly the libraries the shipped binaries need', { skip }, (t) => {
  const bins = shippedBinaries();
  const cache = join(dirname(BIN), 'CMakeCache.txt');
  const all = {};
  for (const b of bins) Object.assign(all, lddLibs(b));
  if (Object.keys(all).some((s) => /^lib(asan|ubsan|tsan|lsan)\./.test(s))
      || (existsSync(cache) && /^FLEETMOCK_SANITIZE:BOOL=ON$/m.test(readFileSync(cache, 'utf8')))) {
    t.skip('a sanitizer build: the image is built without sanitizers (the plain build checks this)');
    return;
  }

  const pkgs = installedPackages();
  const base = closure([...pkgs].filter(([, v]) => v.essential || v.required).map(([k]) => k), pkgs);
  assert.ok(base.has('libc6'), 'libc6 comes with the base image');

  const needed = new Map(); // package -> sonames that need it
  for (const b of bins) {
    for (const so of neededSonames(b)) {
      const path = all[so];
      assert.ok(path, `${b} needs ${so}, which ldd did not resolve`);
      const pkg = owner(path);
      assert.ok(pkg, `no Debian package owns ${path} (${so})`);
      if (!base.has(pkg)) needed.set(pkg, [...(needed.get(pkg) || []), `${so} (${b.split('/').pop()})`]);
    }
  }

  const stages = dockerfileStages();
  const listed = aptInstalls(stages[stages.length - 1]);
  assert.equal(new Set(listed).size, listed.length, `a package listed twice: ${listed.join(' ')}`);
  const missing = [...needed.keys()].filter((p) => !listed.includes(p));
  const extra = listed.filter((p) => !needed.has(p));
  assert.deepEqual(missing, [], `the runtime stage lacks ${missing.map((p) => `${p} (for ${needed.get(p).join(', ')})`).join('; ')}`);
  assert.deepEqual(extra, [], `the runtime stage installs ${extra.join(', ')}, which no shipped binary links against`);

  // And the libraries they pull in (gnutls under libmicrohttpd, …) arrive as dependencies.
  const provided = closure([...listed, ...base], pkgs);
  for (const [so, path] of Object.entries(all)) {
    const pkg = owner(path);
    assert.ok(pkg && provided.has(pkg), `${so} (${path}, package ${pkg}) is not brought in by the runtime stage`);
  }
});

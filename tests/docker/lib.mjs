// Shared by the docker/ tests: where things are, a Dockerfile reader, and a
// few process helpers. No Docker engine is needed for any of it.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DOCKER = join(ROOT, 'docker');
export const read = (rel) => readFileSync(join(ROOT, rel), 'utf8');

/** Runs a command (no shell); returns {code, stdout, stderr}. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000, ...opts });
  if (r.error && r.error.code === 'ENOENT') return { code: null, stdout: '', stderr: `${cmd}: not found`, missing: true };
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '' };
}

export function have(cmd) {
  return run('sh', ['-c', `command -v "${cmd}"`]).code === 0;
}

/**
 * Reads a Dockerfile into stages: [{image, name, instructions: [{op, args, line}]}].
 * Comments and parser directives are dropped, `\` continuations joined.
 */
export function parseDockerfile(text) {
  const instructions = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!buf && /^\s*(#.*)?$/.test(line)) return;
    if (buf && /^\s*#/.test(line)) return; // comment lines inside a continuation
    if (!buf) start = i + 1;
    if (/\\\s*$/.test(line)) { buf += line.replace(/\\\s*$/, ' '); return; }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(buf);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot read ${JSON.stringify(buf)}`);
    instructions.push({ op: m[1].toUpperCase(), args: m[2].trim().replace(/\s+/g, ' '), line: start });
    buf = '';
  });
  if (buf) throw new Error('Dockerfile ends inside a line continuation');
  const stages = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ image: m[1], name: m[2] || String(stages.length), instructions: [] });
    } else if (!stages.length) {
      if (ins.op !== 'ARG') throw new Error(`Dockerfile line ${ins.line}: ${ins.op} before FROM`);
    } else {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return stages;
}

/** The packages that `apt-get install` lines of a stage's RUN steps name. */
export function aptInstalls(stage) {
  const pkgs = [];
  for (const ins of stage.instructions.filter((x) => x.op === 'RUN')) {
    for (const part of ins.args.split(/&&|;|\|\|/)) {
      const m = /\bapt-get\s+(?:-\S+\s+)*install\s+(.*)$/.exec(part.trim());
      if (!m) continue;
      for (const word of m[1].split(/\s+/)) if (word && !word.startsWith('-')) pkgs.push(word);
    }
  }
  return pkgs;
}

export function dockerfileStages() {
  return parseDockerfile(read('docker/Dockerfile'));
}

/** The metric names a live fleetmock's /metrics text holds (sample lines). */
export function metricNames(text) {
  const names = new Set();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool',
  'and', 'or', 'unless', 'offset', 'inf', 'nan', 'atan2']);

/**
 * The metric names a PromQL expression (with Grafana's $variables) selects:
 * label matchers, strings, ranges, grouping lists, functions and keywords
 * are taken out, and what identifiers remain are metric names.
 */
export function promqlMetrics(expr) {
  let e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set();
  for (const m of e.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    if (m[1]) continue; // a function or aggregation
    const word = m[0];
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    if (/^[0-9]/.test(word)) continue;
    names.add(word);
  }
  return names;
}

/**
 * The binaries the image ships, from the build tree FLEETMOCK_BIN is in:
 * fleetmock, and fleetdrill when the tree builds it (the Dockerfile finds it
 * the same way, with `find build -type f -name fleetdrill`).
 */
export function shippedBinaries(bin = process.env.FLEETMOCK_BIN) {
  const found = [bin];
  const walk = (dir, depth) => {
    if (depth > 6 || found.length > 1) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory() && e.name !== 'CMakeFiles') walk(p, depth + 1);
      else if (e.isFile() && e.name === 'fleetdrill' && statSync(p).mode & 0o100 && found.length < 2) found.push(p);
    }
  };
  walk(dirname(bin), 0);
  return found;
}

// A strict parser for the subset of YAML that docker/ uses (compose.yaml,
// prometheus.yml, Grafana provisioning), so CI can check those files with no
// YAML package installed. Anything outside the subset is an error with its
// line number, never a guess:
//
//   - block mappings (`key: value`, `key:` + an indented block) and block
//     sequences (`- item`, `- key: value` opening a mapping), at any indent;
//   - scalars: plain, 'single' and "double" quoted; plain ones become
//     null/true/false/numbers as YAML 1.2's core schema says, else strings;
//   - one-line flow collections: `[a, "b"]`, `{}`;
//   - block scalars `|`, `|-`, `>`, `>-`; `#` comments.
// Rejected: tabs in indentation, duplicate keys, anchors, aliases, tags,
// `?` keys, multi-line plain or quoted scalars, more than one document.

export class YamlError extends Error {}

export function parseYaml(text) {
  const lines = text.replace(/\r\n/g, '\n').split('\n').map((raw, i) => ({ raw, no: i + 1 }));
  const p = { lines, i: 0 };
  skipBlank(p);
  if (p.i >= lines.length) return null;
  const first = lines[p.i];
  if (/^---\s*$/.test(first.raw)) fail(first, 'document markers are not in the subset');
  const value = parseBlock(p, indentOf(first));
  skipBlank(p);
  if (p.i < lines.length) fail(lines[p.i], 'unexpected content (bad indentation?)');
  return value;
}

function fail(line, msg) {
  throw new YamlError(`line ${line.no}: ${msg}: ${JSON.stringify(line.raw.trim())}`);
}

function indentOf(line) {
  const m = /^( *)(\t?)/.exec(line.raw);
  if (m[2]) fail(line, 'a tab in indentation');
  return m[1].length;
}

const isBlank = (raw) => /^\s*(#.*)?$/.test(raw);

function skipBlank(p) {
  while (p.i < p.lines.length && isBlank(p.lines[p.i].raw)) p.i++;
}

// Parses the block whose first line is at p.i with the given indent.
function parseBlock(p, indent) {
  const line = p.lines[p.i];
  const body = line.raw.slice(indent);
  return body.startsWith('- ') || body === '-' ? parseSeq(p, indent) : parseMap(p, indent);
}

function parseSeq(p, indent) {
  const out = [];
  for (;;) {
    skipBlank(p);
    if (p.i >= p.lines.length) return out;
    const line = p.lines[p.i];
    const ind = indentOf(line);
    if (ind < indent) return out;
    if (ind > indent) fail(line, 'unexpected indentation in a sequence');
    const body = line.raw.slice(indent);
    if (!(body.startsWith('- ') || body === '-')) return out;
    const rest = body.slice(1).replace(/^ +/, '');
    const itemIndent = indent + body.length - body.slice(1).replace(/^ +/, '').length;
    if (rest === '' || rest.startsWith('#')) {
      p.i++;
      skipBlank(p);
      if (p.i >= p.lines.length || indentOf(p.lines[p.i]) <= indent) { out.push(null); continue; }
      out.push(parseBlock(p, indentOf(p.lines[p.i])));
    } else if (splitKey(rest, line)) {
      // `- key: value` opens a mapping whose keys line up after the dash.
      p.lines[p.i] = { raw: ' '.repeat(itemIndent) + rest, no: line.no };
      out.push(parseMap(p, itemIndent));
    } else {
      out.push(scalarOrBlockScalar(p, rest, line, indent));
    }
  }
}

function parseMap(p, indent) {
  const out = {};
  for (;;) {
    skipBlank(p);
    if (p.i >= p.lines.length) return out;
    const line = p.lines[p.i];
    const ind = indentOf(line);
    if (ind < indent) return out;
    if (ind > indent) fail(line, 'unexpected indentation in a mapping');
    const body = line.raw.slice(indent);
    if (body.startsWith('- ') || body === '-') {
      fail(line, 'a sequence item where a mapping key was expected');
    }
    const kv = splitKey(body, line);
    if (!kv) fail(line, 'expected `key: value`');
    const [key, rest] = kv;
    if (Object.prototype.hasOwnProperty.call(out, key)) fail(line, `duplicate key ${JSON.stringify(key)}`);
    if (rest === '' || rest.startsWith('#')) {
      p.i++;
      skipBlank(p);
      if (p.i >= p.lines.length) { out[key] = null; continue; }
      const next = p.lines[p.i];
      const nind = indentOf(next);
      const nbody = next.raw.slice(nind);
      const isSeq = nbody.startsWith('- ') || nbody === '-';
      // A sequence may sit at its key's own indent ("indentless").
      if (nind > indent || (nind === indent && isSeq)) out[key] = parseBlock(p, nind);
      else out[key] = null;
    } else {
      out[key] = scalarOrBlockScalar(p, rest, line, indent);
    }
  }
}

// Splits `key: rest` (key plain or quoted); null when the text is not a key.
function splitKey(text, line) {
  let key;
  let after;
  if (text[0] === '"' || text[0] === "'") {
    const [value, end] = readQuoted(text, 0, line);
    key = value;
    after = text.slice(end);
    if (!/^:( |$)/.test(after)) return null;
  } else {
    const m = /^([^\s#:'"[\]{},&*!|>?%@`-][^#:]*?|-[^\s#:][^#:]*?)\s*:( |$)/.exec(text);
    if (!m) return null;
    return [m[1], text.slice(m[0].length).trim()];
  }
  return [key, after.slice(1).trim()];
}

function scalarOrBlockScalar(p, text, line, parentIndent) {
  const m = /^([|>])(-?)\s*(#.*)?$/.exec(text);
  if (!m) {
    p.i++;
    return parseInline(text, line);
  }
  const [, style, chomp] = m;
  p.i++;
  const body = [];
  let blockIndent = -1;
  while (p.i < p.lines.length) {
    const l = p.lines[p.i];
    if (/^\s*$/.test(l.raw)) { body.push(''); p.i++; continue; }
    const ind = indentOf(l);
    if (ind <= parentIndent) break;
    if (blockIndent < 0) blockIndent = ind;
    if (ind < blockIndent) fail(l, 'less indented line in a block scalar');
    if (style === '>' && ind > blockIndent) fail(l, 'more indented line in a folded scalar is not in the subset');
    body.push(l.raw.slice(blockIndent));
    p.i++;
  }
  while (body.length && body[body.length - 1] === '') body.pop();
  let s;
  if (style === '|') s = body.join('\n');
  else s = body.reduce((acc, cur, k) => (k === 0 ? cur : acc + (cur === '' ? '\n' : (acc.endsWith('\n') ? '' : ' ') + cur)), '');
  return chomp === '-' ? s : s + '\n';
}

// A value on one line: a quoted or plain scalar, or a flow collection.
function parseInline(text, line) {
  const [value, end] = readFlowValue(text, 0, line, false);
  const rest = text.slice(end).trim();
  if (rest && !rest.startsWith('#')) fail(line, 'unexpected text after the value');
  return value;
}

function readFlowValue(text, pos, line, inFlow) {
  while (text[pos] === ' ') pos++;
  const c = text[pos];
  if (c === '"' || c === "'") return readQuoted(text, pos, line);
  if (c === '[') {
    const out = [];
    pos++;
    for (;;) {
      while (text[pos] === ' ') pos++;
      if (text[pos] === ']') return [out, pos + 1];
      const [v, e] = readFlowValue(text, pos, line, true);
      out.push(v);
      pos = e;
      while (text[pos] === ' ') pos++;
      if (text[pos] === ',') { pos++; continue; }
      if (text[pos] === ']') return [out, pos + 1];
      fail(line, 'bad flow sequence');
    }
  }
  if (c === '{') {
    let q = pos + 1;
    while (text[q] === ' ') q++;
    if (text[q] === '}') return [{}, q + 1];
    fail(line, 'non-empty flow mappings are not in the subset');
  }
  if (c === '&' || c === '*' || c === '!' || c === '?' || c === '@' || c === '`' || c === '%') {
    fail(line, `"${c}" (anchor, alias, tag or reserved) is not in the subset`);
  }
  let end = pos;
  const stop = inFlow ? /[,\]}]/ : /$^/;
  while (end < text.length) {
    if (text[end] === '#' && text[end - 1] === ' ') break;
    if (stop.test(text[end])) break;
    if (text[end] === ':' && (text[end + 1] === ' ' || end + 1 === text.length)) fail(line, 'a ": " inside a plain scalar');
    end++;
  }
  const raw = text.slice(pos, end).trim();
  if (raw === '') fail(line, 'empty value in a flow collection');
  return [plainScalar(raw), end];
}

function readQuoted(text, pos, line) {
  const q = text[pos];
  let out = '';
  let i = pos + 1;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (q === "'") {
      if (ch === "'" && text[i + 1] === "'") { out += "'"; i++; continue; }
      if (ch === "'") return [out, i + 1];
      out += ch;
    } else {
      if (ch === '"') return [out, i + 1];
      if (ch === '\\') {
        const e = text[++i];
        const map = { n: '\n', t: '\t', '"': '"', '\\': '\\', '/': '/', r: '\r', 0: '\0' };
        if (e in map) out += map[e];
        else if (e === 'u') { out += String.fromCharCode(parseInt(text.slice(i + 1, i + 5), 16)); i += 4; }
        else fail(line, `unsupported escape \\${e}`);
        continue;
      }
      out += ch;
    }
  }
  fail(line, 'unterminated quoted scalar (multi-line scalars are not in the subset)');
}

function plainScalar(s) {
  if (/^(null|Null|NULL|~)$/.test(s)) return null;
  if (/^(true|True|TRUE)$/.test(s)) return true;
  if (/^(false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?[0-9]+$/.test(s)) return Number(s);
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  return s;
}

// HTTP/1.1 on the wire (docs/api.md, "HTTP"): what the server's own HTTP
// layer does with the bytes a client sends. Keep-alive and pipelining (every
// answer in order, on the same socket), chunked request bodies with
// extensions and trailers, Expect: 100-continue (and a 413 instead of the
// 100 for a body over --max-body-bytes), HTTP/1.0 (closed after the answer,
// a stream not chunk-framed), the strict chunk framing of a stream on 1.1,
// heads refused before the router (400, 431, 501, 505, in the API's JSON
// error shape, then the connection closed), HEAD without body bytes, and a
// query string reaching the route.
//
// Everything is on raw sockets (node:net), so each test sees the exact bytes.
// Nothing here measures time: every wait is for bytes or a close, bounded by
// WAIT_MS only so a broken server fails the test instead of hanging it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startServer, stopChecked, rawRequest, assertNoSlotsHeld, NO_LIMITS, AUTH, WRAPPED } from '../lib/server.mjs';

const K26 = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/v1/chat/completions';
const WAIT_MS = 10000 * (WRAPPED ? 5 : 1);
const HEALTH = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';

/** A chat body of 3 tokens, exactly (ignore_eos), with the given extras. */
const chatBody = (extra = {}) =>
  JSON.stringify({ model: K26, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, ignore_eos: true, ...extra });
/** A POST of a chat body with a Content-Length, over HTTP/1.<minor>, with extra header lines. */
const chatPost = (body, { minor = 1, extra = '' } = {}) =>
  `POST ${CHAT} HTTP/1.${minor}\r\nHost: x\r\nAuthorization: ${AUTH.Authorization}\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

let server; // --timing instant, no account limits
let small; // the same with --max-body-bytes 1000
before(async () => {
  [server, small] = await Promise.all([
    startServer({ config: NO_LIMITS, args: ['--timing', 'instant'] }),
    startServer({ config: NO_LIMITS, args: ['--timing', 'instant', '--max-body-bytes', '1000'] }),
  ]);
});
after(async () => {
  try {
    // Pipelined, chunked, refused and hung-up requests all gave their slots back.
    for (const s of [server, small]) if (s) await assertNoSlotsHeld(s);
  } finally {
    for (const s of [server, small]) if (s) await stopChecked(s);
  }
});

// ---------------------------------------------------------------------------
// Reading answers off the wire, strictly.

/** Decodes a chunked body at buf[pos...]: {body, sizes, end}, or null until it is all in. */
function decodeChunked(buf, pos) {
  const parts = [];
  const sizes = [];
  for (let i = 0; i < 1_000_000; i++) {
    const eol = buf.indexOf('\r\n', pos, 'latin1');
    if (eol < 0) return null;
    const line = buf.subarray(pos, eol).toString('latin1');
    assert.match(line, /^[0-9a-f]+$/i, `a chunk size line is hex digits and CRLF: ${JSON.stringify(line)}`);
    const size = parseInt(line, 16);
    pos = eol + 2;
    if (size === 0) {
      if (buf.length < pos + 2) return null;
      assert.equal(buf.subarray(pos, pos + 2).toString('latin1'), '\r\n', 'the last chunk is followed by the blank line');
      return { body: Buffer.concat(parts), sizes, end: pos + 2 };
    }
    if (buf.length < pos + size + 2) return null;
    parts.push(buf.subarray(pos, pos + size));
    sizes.push(size);
    assert.equal(buf.subarray(pos + size, pos + size + 2).toString('latin1'), '\r\n', `chunk ${sizes.length} is followed by CRLF`);
    pos += size + 2;
  }
  throw new Error('more than a million chunks');
}

/**
 * Parses the answer at buf[pos...]: {status, version, headers (lower-case
 * names), body (Buffer), text, json, chunked, sizes, end}, or null until it
 * is all in. A body with neither length nor chunking runs to the close
 * (`ended`); an answer to HEAD (`isHead`) and a 1xx have none.
 */
function parseResponse(buf, pos, ended, isHead) {
  const headEnd = buf.indexOf('\r\n\r\n', pos, 'latin1');
  if (headEnd < 0) return null;
  const lines = buf.subarray(pos, headEnd).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3}) (.*)$/.exec(lines[0]);
  assert.ok(m, `a status line: ${JSON.stringify(lines[0])}`);
  const headers = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `a header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  const status = Number(m[2]);
  const start = headEnd + 4;
  const res = { status, version: m[1], headers, chunked: false, sizes: null, body: Buffer.alloc(0), end: start };
  const done = (extra) => {
    const r = { ...res, ...extra };
    r.text = r.body.toString('latin1');
    try { r.json = JSON.parse(r.text); } catch { r.json = null; }
    return r;
  };
  if (status < 200 || status === 204 || status === 304 || isHead) return done({});
  if (headers['transfer-encoding'] !== undefined) {
    assert.equal(headers['transfer-encoding'].toLowerCase(), 'chunked');
    assert.equal(headers['content-length'], undefined, 'no Content-Length beside Transfer-Encoding');
    const d = decodeChunked(buf, start);
    return d && done({ chunked: true, body: d.body, sizes: d.sizes, end: d.end });
  }
  if (headers['content-length'] !== undefined) {
    assert.match(headers['content-length'], /^\d+$/);
    const n = Number(headers['content-length']);
    if (buf.length - start < n) return null;
    return done({ body: buf.subarray(start, start + n), end: start + n });
  }
  if (!ended) return null;
  return done({ body: buf.subarray(start), end: buf.length, toClose: true });
}

/** Every complete answer in buf, in order; heads: which of them (0, 1, …) answer a HEAD. */
function parseResponses(buf, ended, heads = []) {
  const out = [];
  let pos = 0;
  while (pos < buf.length && out.length < 100) {
    const r = parseResponse(buf, pos, ended, heads.includes(out.length));
    if (!r) break;
    out.push(r);
    pos = r.end;
    if (r.toClose) break;
  }
  return { responses: out, rest: buf.subarray(pos) };
}

/** One client connection: what it received, whether the server closed it, and bounded waits on both. */
class Conn {
  static open(srv) {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: srv.port });
      sock.once('connect', () => resolve(new Conn(sock)));
      sock.once('error', reject);
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.ended = false; // the server closed (FIN, or a reset: see this.error)
    this.error = null;
    this.waiters = new Set();
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    sock.on('end', () => { this.ended = true; this.wake(); });
    sock.on('close', () => { this.ended = true; this.wake(); });
    sock.on('error', (e) => { this.error = e; this.ended = true; this.wake(); });
  }

  get text() { return this.buf.toString('latin1'); }

  write(data) { this.sock.write(data); }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves with pred()'s value once it is truthy; fails after WAIT_MS saying what it waited for. */
  until(pred, what) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const check = () => {
        let v;
        try { v = pred(); } catch (e) { finish(); reject(e); return; }
        if (v) { finish(); resolve(v); }
      };
      const finish = () => { clearTimeout(timer); this.waiters.delete(check); };
      timer = setTimeout(() => {
        finish();
        reject(new Error(`no ${what} within ${WAIT_MS} ms; received ${this.buf.length} bytes` +
          `${this.ended ? ', then the close' : ''}: ${JSON.stringify(this.text.slice(0, 600))}`));
      }, WAIT_MS);
      this.waiters.add(check);
      check();
    });
  }

  /** The first n answers, once they are all in. */
  responses(n, heads = []) {
    return this.until(() => {
      const p = parseResponses(this.buf, this.ended, heads);
      return p.responses.length >= n && p.responses;
    }, `${n} answer(s)`);
  }

  closed() { return this.until(() => this.ended, 'close from the server'); }

  destroy() { this.sock.destroy(); }
}

/**
 * Sends one request on a connection of its own and reads to the close:
 * {res, rest, closedByPeer, error}. rawRequest resolves on a close, an error
 * (a reset is the server closing too) or its timeout; only the last is a
 * server that kept the connection.
 */
async function oneShot(srv, data) {
  const r = await rawRequest(srv, data, { timeoutMs: WAIT_MS });
  const buf = Buffer.from(r.text, 'latin1');
  const { responses, rest } = parseResponses(buf, true);
  return { res: responses[0], n: responses.length, rest, closedByPeer: r.closedByPeer || r.error?.code === 'ECONNRESET', text: r.text, error: r.error };
}

/** Fails unless an answer is the API's JSON error (code as given, or any code) and the server closed after it. */
function assertRefused(r, status, code, what) {
  const got = `${what}: got ${JSON.stringify(r.text.slice(0, 400))}${r.error ? ` (${r.error.code})` : ''}`;
  assert.ok(r.res, `an answer; ${got}`);
  assert.equal(r.res.status, status, got);
  assert.match(r.res.headers['content-type'] || '', /^application\/json/, got);
  assert.ok(r.res.json?.error, `a JSON error body; ${got}`);
  if (code) assert.equal(r.res.json.error.code, code, got);
  else assert.match(r.res.json.error.code, /^[A-Z_]+$/, got);
  assert.equal(typeof r.res.json.error.message, 'string', got);
  assert.ok(r.res.json.error.message.length > 0, `a message; ${got}`);
  assert.equal(r.res.headers.connection, 'close', `Connection: close; ${got}`);
  assert.equal(r.n, 1, `one answer; ${got}`);
  assert.equal(r.rest.length, 0, `nothing after the answer; ${got}`);
  assert.ok(r.closedByPeer, `the server closed the connection; ${got}`);
}

/** SSE events of a stream body: the data of each, in order. */
function sseData(text) {
  const events = text.split('\n\n');
  assert.equal(events.pop(), '', 'the stream ends with a complete event');
  return events.map((e) => {
    assert.match(e, /^data: /, `an event is one data line: ${JSON.stringify(e)}`);
    return e.slice(6);
  });
}

/** Checks a chat stream of 3 tokens: chunks, then [DONE]; returns the content. */
function checkStream(text) {
  const data = sseData(text);
  assert.equal(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
  const content = chunks.filter((c) => c.choices?.[0]?.delta?.content);
  assert.equal(content.length, 3, 'one event per token');
  return content.map((c) => c.choices[0].delta.content).join('');
}

// ---------------------------------------------------------------------------
// Persistent connections.

test('two requests on one keep-alive connection are both answered on the same socket', async () => {
  const c = await Conn.open(server);
  try {
    c.write(HEALTH);
    const [first] = await c.responses(1);
    assert.equal(first.status, 200);
    assert.deepEqual(first.json, { status: 'ok' });
    assert.notEqual(first.headers.connection, 'close');
    c.write(chatPost(chatBody()));
    const [, second] = await c.responses(2);
    assert.equal(second.status, 200, second.text);
    assert.equal(second.json?.object, 'chat.completion');
    assert.notEqual(second.headers['x-request-id'], first.headers['x-request-id']);
  } finally {
    c.destroy();
  }
});

test('three requests pipelined in one write are answered in order', async () => {
  const c = await Conn.open(server);
  try {
    c.write(HEALTH + chatPost(chatBody()) + HEALTH);
    const rs = await c.responses(3);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    assert.deepEqual(rs[0].json, { status: 'ok' });
    assert.equal(rs[1].json?.object, 'chat.completion', rs[1].text);
    assert.deepEqual(rs[2].json, { status: 'ok' });
    const ids = rs.map((r) => r.headers['x-request-id']);
    for (const id of ids) assert.match(id || '', /^[0-9a-f]+$/);
    assert.equal(new Set(ids).size, 3, `three request ids: ${ids}`);
    assert.equal(parseResponses(c.buf, c.ended).rest.length, 0, 'nothing but the three answers');
  } finally {
    c.destroy();
  }
});

test('a chat body sent chunked, with an extension and a trailer, is answered 200 and the connection goes on', async () => {
  const body = chatBody();
  const parts = [body.slice(0, 17), body.slice(17, 60), body.slice(60)];
  const c = await Conn.open(server);
  try {
    c.write(`POST ${CHAT} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.Authorization}\r\n` +
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    c.write(`${parts[0].length.toString(16)}\r\n${parts[0]}\r\n`);
    c.write(`${parts[1].length.toString(16)};note="second"\r\n${parts[1]}\r\n`);
    c.write(`${parts[2].length.toString(16).toUpperCase()}\r\n${parts[2]}\r\n0\r\nX-Checksum: none\r\n\r\n`);
    const [r] = await c.responses(1);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json?.object, 'chat.completion');
    assert.equal(r.json.usage.completion_tokens, 3);
    // The decoder stopped at the body's end: the next request is read as one.
    c.write(HEALTH);
    const [, next] = await c.responses(2);
    assert.equal(next.status, 200);
    assert.deepEqual(next.json, { status: 'ok' });
  } finally {
    c.destroy();
  }
});

// ---------------------------------------------------------------------------
// Expect: 100-continue.

test('Expect: 100-continue gets exactly a 100 Continue after the head, then the answer after the body', async () => {
  const body = chatBody();
  const c = await Conn.open(server);
  try {
    const req = chatPost(body, { extra: 'Expect: 100-continue\r\n' });
    c.write(req.slice(0, req.length - body.length)); // the head alone
    await c.until(() => c.text.includes('\r\n\r\n'), 'interim answer');
    assert.equal(c.text, 'HTTP/1.1 100 Continue\r\n\r\n');
    c.write(body);
    const rs = await c.responses(2);
    assert.equal(rs[0].status, 100);
    assert.equal(rs[1].status, 200, rs[1].text);
    assert.equal(rs[1].json?.object, 'chat.completion');
  } finally {
    c.destroy();
  }
});

test('Expect: 100-continue with a Content-Length over --max-body-bytes gets a 413, no 100, and is closed', async () => {
  const c = await Conn.open(small);
  try {
    c.write(`POST ${CHAT} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.Authorization}\r\n` +
      'Content-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
    await c.closed();
    const { responses, rest } = parseResponses(c.buf, true);
    assert.equal(responses.length, 1, c.text.slice(0, 300));
    const [r] = responses;
    assert.equal(r.status, 413, 'the 413 and no 100 before it');
    assert.equal(r.json?.error?.code, 'PAYLOAD_TOO_LARGE');
    assert.equal(r.headers.connection, 'close');
    assert.equal(rest.length, 0);
  } finally {
    c.destroy();
  }
});

// ---------------------------------------------------------------------------
// HTTP/1.0, and the framing of a stream.

test('an HTTP/1.0 request without keep-alive is answered and then closed by the server', async () => {
  const r = await oneShot(server, 'GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n');
  assert.ok(r.res, r.text);
  assert.equal(r.res.status, 200);
  assert.deepEqual(r.res.json, { status: 'ok' });
  assert.equal(r.n, 1);
  assert.ok(r.closedByPeer, 'the server closed the connection');
});

test('a stream over HTTP/1.0 is not chunk-framed and ends when the server closes', async () => {
  const c = await Conn.open(server);
  try {
    c.write(chatPost(chatBody({ stream: true }), { minor: 0 }));
    await c.closed();
    const [r] = parseResponses(c.buf, true).responses;
    assert.ok(r, c.text.slice(0, 300));
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'] || '', /^text\/event-stream/);
    assert.equal(r.headers['transfer-encoding'], undefined);
    assert.equal(r.chunked, false);
    assert.ok(r.text.startsWith('data: '), `the body is the events themselves: ${JSON.stringify(r.text.slice(0, 40))}`);
    checkStream(r.text);
  } finally {
    c.destroy();
  }
});

test('a stream over HTTP/1.1 is chunk-framed, strictly, and its events end with data: [DONE]', async () => {
  const c = await Conn.open(server);
  try {
    c.write(chatPost(chatBody({ stream: true })));
    const [r] = await c.responses(1);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'] || '', /^text\/event-stream/);
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.chunked, true);
    assert.ok(r.sizes.length >= 1 && r.sizes.every((n) => n > 0), `chunk sizes ${r.sizes}`);
    assert.ok(r.text.endsWith('data: [DONE]\n\n'), JSON.stringify(r.text.slice(-40)));
    checkStream(r.text);
    // The terminating chunk ended the answer: the connection is still good.
    c.write(HEALTH);
    const [, next] = await c.responses(2);
    assert.equal(next.status, 200);
  } finally {
    c.destroy();
  }
});

// ---------------------------------------------------------------------------
// Heads refused: the API's JSON error, then the close.

const POST = `POST ${CHAT} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.Authorization}\r\n`;
const padded = (n) => `GET /healthz HTTP/1.1\r\nHost: x\r\nx-pad: ${'a'.repeat(n)}\r\n\r\n`;
let manyFields = 'GET /healthz HTTP/1.1\r\n';
for (let i = 0; i < 101; i++) manyFields += `X-F${i}: v\r\n`;
// name, what is sent, status, the error code (null: any code). A 400 from
// the parser is INVALID_ARGUMENT, as the router's are.
const REFUSED = [
  ['a malformed request line (GARBAGE)', 'GARBAGE\r\n\r\n', 400, 'INVALID_ARGUMENT'],
  ['HTTP/2.0', 'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n', 505, null],
  ['Transfer-Encoding: gzip', `${POST}Transfer-Encoding: gzip\r\n\r\n`, 501, null],
  ['Transfer-Encoding and Content-Length', `${POST}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 400, 'INVALID_ARGUMENT'],
  ['Content-Length: abc', `${POST}Content-Length: abc\r\n\r\n`, 400, 'INVALID_ARGUMENT'],
  ['a space before the colon of a field name', 'GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n', 400, 'INVALID_ARGUMENT'],
  // Over the router's 12 KiB: its own 431, in the API's shape.
  ['a 13 000-byte head', padded(13000), 431, 'REQUEST_HEADER_FIELDS_TOO_LARGE'],
  // Too big to be read at all: the rest of the head is never read, so the
  // answer may be followed by a reset; the 431 still arrives first.
  ['a 20 000-byte head', padded(20000), 431, null],
  ['101 header fields', `${manyFields}\r\n`, 431, null],
];
for (const [what, data, status, code] of REFUSED) {
  test(`${what} is refused with ${status} in JSON, Connection: close, then the close`, async () => {
    assertRefused(await oneShot(server, data), status, code, what);
  });
}

// ---------------------------------------------------------------------------
// HEAD, and the query string.

test('HEAD /healthz has a Content-Length and no body bytes: a GET after it on the socket is answered', async () => {
  const c = await Conn.open(server);
  try {
    c.write('HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const [head] = await c.responses(1, [0]);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String('{"status":"ok"}'.length));
    c.write(HEALTH);
    const [, get] = await c.responses(2, [0]);
    assert.equal(get.status, 200);
    assert.deepEqual(get.json, { status: 'ok' });
    assert.equal(parseResponses(c.buf, c.ended, [0]).rest.length, 0, 'no stray bytes after the answers');
  } finally {
    c.destroy();
  }
});

test('a query string reaches the route: GET /admin/requests?limit=1 lists one entry', async () => {
  const c = await Conn.open(server);
  try {
    c.write(chatPost(chatBody()) + chatPost(chatBody()));
    const done = await c.responses(2);
    assert.deepEqual(done.map((r) => r.status), [200, 200]);
    c.write('GET /admin/requests?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n');
    const [, , list] = await c.responses(3);
    assert.equal(list.status, 200, list.text.slice(0, 300));
    assert.equal(list.json?.object, 'list');
    assert.equal(list.json.data.length, 1);
  } finally {
    c.destroy();
  }
});

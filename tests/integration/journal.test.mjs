// The request journal (SPEC §9, docs/journal.md): GET /admin/requests
// answers the last server.journal.size inference requests newest first,
// each as it ended (route, model, tier, key id, test id, status, the fault
// that fired, queue time, TTFT, tokens, the body cut to body_bytes), filters
// them by key_id, test_id, model, status and since, and DELETE clears them,
// all or one test's. The ring's bound and its drop count are counted, not
// timed. API keys are never stored: no key appears anywhere in an answer.
// Also run with FLEETMOCK_WORKERS=3 (workers3.journal), where requests end on
// several loops at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, admin, stopChecked, assertNoSlotsHeld, rawRequest } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const GLM = 'accounts/fireworks/models/glm-5p1';
const CHAT = '/inference/v1/chat/completions';
const KEYS = { one: 'sk-journal-one-7f3a9c52', faulty: 'sk-journal-faulty-0b81d4', limited: 'sk-journal-limited-c29e61' };
const fixed = (n) => ({ start: n, ceiling: n });
const BIG = fixed(1e9);
const NO_LIMITS = { requests_per_min: BIG, prompt_tps: BIG, uncached_prompt_tps: BIG, generated_tps: BIG };

/** One request with its own key and headers; resolves {status, headers, json, text}. */
async function send(srv, path, body, { key = KEYS.one, headers = {}, anthropic = false } = {}) {
  const auth = anthropic ? { 'x-api-key': key } : { Authorization: `Bearer ${key}` };
  const res = await fetch(srv.baseURL + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...auth, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON (a stream) */ }
  return { status: res.status, headers: res.headers, json, text };
}

/** GET /admin/requests with a query string; asserts 200 and returns the answer. */
async function journal(srv, query = '') {
  const r = await admin(srv, 'GET', `/admin/requests${query}`);
  assert.equal(r.status, 200, r.text);
  for (const key of Object.values(KEYS)) assert.ok(!r.text.includes(key), `API key ${key} appears in the journal`);
  assert.ok(!r.text.includes('sk-journal'), 'no part of an API key appears in the journal');
  return r.json;
}

async function metric(srv, name) {
  const text = (await admin(srv, 'GET', '/metrics')).text;
  const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

const chatBody = (content, extra = {}) => ({ model: KIMI, max_tokens: 3, ignore_eos: true, messages: [{ role: 'user', content }], ...extra });

test('every inference request is journaled as it ended, newest first, with its status, fault, timings, tokens and body', async () => {
  const srv = await startServer({
    config: {
      server: { journal: { size: 50, body_bytes: 256 } },
      pool_defaults: { ttft_ms: 20, decode_tps: 1000, jitter: 0 },
      accounts: { limits: NO_LIMITS, keys: { [KEYS.limited]: { name: 'limited', limits: { ...NO_LIMITS, requests_per_min: fixed(1) } } } },
    },
  });
  try {
    const sent = []; // [{what, res}] in the order sent
    const go = async (what, path, body, opts) => {
      const res = await send(srv, path, body, opts);
      sent.push({ what, res });
      return res;
    };
    const ok = await go('chat', CHAT, chatBody('hello journal'), { headers: { 'x-fleetmock-test-id': 'test-a' } });
    assert.equal(ok.status, 200, ok.text);
    const streamed = await go('stream', CHAT, chatBody('stream please', { stream: true }), { headers: { 'x-fleetmock-test-id': 'test-a' } });
    assert.equal(streamed.status, 200);
    const msg = await go('messages', '/inference/v1/messages', { model: GLM, max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] },
      { anthropic: true, headers: { 'x-fleetmock-test-id': 'test-b' } });
    assert.equal(msg.status, 200, msg.text);
    const longPrompt = 'word '.repeat(200); // the body is over 256 bytes
    const cut = await go('long', '/inference/v1/completions', { model: KIMI, prompt: longPrompt, max_tokens: 2 }, { headers: { 'x-fleetmock-test-id': 'test-a' } });
    assert.equal(cut.status, 200, cut.text);
    assert.equal((await go('limited-ok', CHAT, chatBody('one'), { key: KEYS.limited, headers: { 'x-fleetmock-test-id': 'test-b' } })).status, 200);
    const limited = await go('limited', CHAT, chatBody('two'), { key: KEYS.limited, headers: { 'x-fleetmock-test-id': 'test-b' } });
    assert.equal(limited.status, 429, limited.text);
    const fault = await admin(srv, 'POST', '/admin/faults', { match: { api_key: KEYS.faulty }, action: { status: 503 }, count: 1 });
    assert.equal(fault.status, 200, fault.text);
    const shed = await go('fault', CHAT, chatBody('fail me'), { key: KEYS.faulty, headers: { 'x-fleetmock-test-id': 'test-a' } });
    assert.equal(shed.status, 503, shed.text);
    const hdr = await go('header-fault', CHAT, chatBody('fail me too'), { headers: { 'x-fleetmock-fault': '503' } });
    assert.equal(hdr.status, 503, hdr.text);
    const bad = await go('bad', CHAT, { model: KIMI, max_tokens: 3 }, { headers: { 'x-fleetmock-test-id': 'test-b' } });
    assert.equal(bad.status, 400, bad.text);

    // A request is journaled as it ends, a moment after its answer reached us
    // (on several loops, possibly after the next one): wait for all of them.
    let all = await journal(srv);
    for (let k = 0; k < 200 && all.data.length < sent.length; k++) {
      await new Promise((r) => setTimeout(r, 10));
      all = await journal(srv);
    }
    assert.equal(all.object, 'list');
    assert.equal(all.size, 50);
    assert.equal(all.dropped, 0);
    assert.equal(all.data.length, sent.length);
    // Newest first: each entry is the request whose x-request-id it carries, in reverse order
    // (on one loop; on several, requests sent one after another may end in another order).
    const ids = sent.map((s) => s.res.headers.get('x-request-id')).reverse();
    if (process.env.FLEETMOCK_WORKERS)
      assert.deepEqual(all.data.map((e) => e.request_id).sort(), [...ids].sort());
    else
      assert.deepEqual(all.data.map((e) => e.request_id), ids);
    for (let i = 1; i < all.data.length; i++) assert.ok(all.data[i - 1].seq > all.data[i].seq, 'seq falls down the list');
    const byId = Object.fromEntries(all.data.map((e) => [e.request_id, e]));
    const by = Object.fromEntries(sent.map((s) => [s.what, byId[s.res.headers.get('x-request-id')]]));
    const keyOne = ok.headers.get('x-fleetmock-key-id');

    const e = by.chat;
    assert.equal(e.route, 'chat/completions');
    assert.equal(e.model, KIMI);
    assert.equal(e.tier, 'standard');
    assert.equal(e.key_id, keyOne);
    assert.equal(e.test_id, 'test-a');
    assert.equal(e.status, 200);
    assert.equal(e.stream, false);
    assert.equal(e.reply, null);
    assert.equal(e.fault, null);
    assert.equal(e.error, null);
    // The timings are the ones the server reported in the response's headers.
    assert.equal(e.queue_ms, Number(ok.headers.get('x-fleetmock-queue-ms')));
    assert.equal(e.ttft_ms, Math.round(Number(ok.headers.get('fireworks-server-time-to-first-token')) * 1000));
    assert.equal(e.prompt_tokens, ok.json.usage.prompt_tokens);
    assert.equal(e.cached_tokens, ok.json.usage.prompt_tokens_details.cached_tokens);
    assert.equal(e.completion_tokens, 3);
    assert.deepEqual(e.body, chatBody('hello journal')); // whole and JSON: given as JSON
    assert.equal(e.body_truncated, false);
    assert.ok(Number.isInteger(e.time) && Number.isInteger(e.sim_time_ms));

    assert.equal(by.stream.stream, true);
    assert.equal(by.stream.status, 200);
    assert.equal(by.stream.completion_tokens, 3);
    assert.equal(by.messages.route, 'messages');
    assert.equal(by.messages.model, GLM);
    assert.equal(by.messages.key_id, keyOne, 'x-api-key names the same account');
    assert.equal(by.messages.completion_tokens, msg.json.usage.output_tokens);

    assert.equal(by.long.route, 'completions');
    assert.equal(by.long.body_truncated, true);
    assert.equal(typeof by.long.body, 'string', 'a cut body is given as its text');
    assert.equal(by.long.body, JSON.stringify({ model: KIMI, prompt: longPrompt, max_tokens: 2 }).slice(0, 256));

    assert.equal(by.limited.status, 429);
    assert.equal(by.limited.key_id, sent[4].res.headers.get('x-fleetmock-key-id'));
    assert.equal(by.limited.queue_ms, null, 'a 429 never reaches the fleet');
    assert.equal(by.limited.ttft_ms, null);
    assert.equal(by.limited.completion_tokens, 0);
    assert.equal(by.fault.status, 503);
    assert.equal(by.fault.fault, fault.json.id);
    assert.equal(by['header-fault'].fault, 'header');
    assert.equal(by['header-fault'].test_id, null);
    assert.equal(by.bad.status, 400);
    assert.equal(by.bad.error.code, 'INVALID_ARGUMENT');
    assert.equal(by.bad.error.message, bad.json.error.message);
    assert.equal(by.bad.key_id, keyOne, 'a refused request still names its key id');
    assert.equal(by.bad.test_id, 'test-b');
    assert.equal(by.bad.model, KIMI);
    assert.equal(by.bad.tier, null);

    // Filters.
    const ofA = await journal(srv, '?test_id=test-a');
    // (the journal's own order is the reference: on several loops it is the order they ended)
    const inOrder = (pred) => all.data.filter(pred).map((x) => x.request_id);
    assert.deepEqual(ofA.data.map((x) => x.request_id), inOrder((x) => x.test_id === 'test-a'));
    assert.deepEqual(ofA.data.map((x) => x.request_id).sort(), [by.fault, by.long, by.stream, by.chat].map((x) => x.request_id).sort());
    assert.equal((await journal(srv, '?test_id=test-b')).data.length, 4);
    assert.deepEqual((await journal(srv, '?status=429')).data.map((x) => x.request_id), [by.limited.request_id]);
    assert.deepEqual((await journal(srv, '?status=4xx')).data.map((x) => x.request_id), inOrder((x) => x.status >= 400 && x.status < 500));
    assert.deepEqual((await journal(srv, '?status=4xx')).data.map((x) => x.status).sort(), [400, 429]);
    assert.deepEqual((await journal(srv, '?status=5xx')).data.map((x) => x.status), [503, 503]);
    assert.equal((await journal(srv, '?status=2xx')).data.length, 5);
    assert.deepEqual((await journal(srv, `?model=${encodeURIComponent(GLM)}`)).data.map((x) => x.route), ['messages']);
    const limitedId = by.limited.key_id;
    assert.equal((await journal(srv, `?key_id=${limitedId}`)).data.length, 2);
    assert.equal((await journal(srv, `?key_id=${limitedId}&status=200`)).data.length, 1);
    const since = await journal(srv, `?since=${by.fault.time}`);
    assert.ok(since.data.every((x) => x.time > by.fault.time), 'since: strictly after');
    assert.equal(since.data.length, all.data.filter((x) => x.time > by.fault.time).length);
    assert.deepEqual((await journal(srv, '?limit=2')).data.map((x) => x.request_id), all.data.slice(0, 2).map((x) => x.request_id));

    // HEAD answers like GET, without a body.
    const head = await rawRequest(srv, 'HEAD /admin/requests HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', { timeoutMs: 10000 });
    assert.match(head.text, /^HTTP\/1\.1 200 /);
    assert.ok(head.text.endsWith('\r\n\r\n'), 'no body after the head');

    // The metrics say the same.
    assert.equal(await metric(srv, 'fleetmock_journal_entries'), sent.length);
    assert.equal(await metric(srv, 'fleetmock_journal_dropped_total'), 0);

    // DELETE one test's entries, then the rest.
    const delA = await admin(srv, 'DELETE', '/admin/requests?test_id=test-a');
    assert.equal(delA.status, 200, delA.text);
    assert.deepEqual(delA.json, { status: 'deleted', deleted: 4 });
    assert.equal((await journal(srv, '?test_id=test-a')).data.length, 0);
    assert.equal((await journal(srv)).data.length, sent.length - 4);
    const delAll = await admin(srv, 'DELETE', '/admin/requests');
    assert.deepEqual(delAll.json, { status: 'deleted', deleted: sent.length - 4 });
    const empty = await journal(srv);
    assert.deepEqual(empty, { object: 'list', data: [], dropped: 0, size: 50 });
    await assertNoSlotsHeld(srv);
  } finally {
    await stopChecked(srv);
  }
});

test('a bad filter is a 400 naming the parameter and what it takes; other methods are a 405', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: { server: { journal: { size: 20, body_bytes: 64 } } } });
  try {
    const cases = [
      ['status=abc', 'status', /status: must be an HTTP status from 100 to 599 such as 429, or a class: 2xx, 4xx or 5xx/],
      ['status=600', 'status', /status:/],
      ['status=6xx', 'status', /status:/],
      ['since=-5', 'since', /since: must be a time in unix milliseconds/],
      ['since=12abc', 'since', /since:/],
      ['limit=0', 'limit', /limit: must be a whole number from 1 to 20, the journal's size \(server\.journal\.size\)/],
      ['limit=21', 'limit', /limit: must be a whole number from 1 to 20/],
      ['key_id=k-xyz', 'key_id', /key_id: must be a key id such as k-3f9a1c2b7d40/],
      ['test_id=two%20words', 'test_id', /test_id: must be 1 to 128 printable ASCII characters/],
      ['test_id=' + 'x'.repeat(129), 'test_id', /test_id:/],
      ['test_id', 'test_id', /test_id:/], // present without a value is not "any"
      ['model=', 'model', /model: must be a model id/],
      ['colour=red', 'colour', /unknown query parameter "colour": GET \/admin\/requests filters by key_id, test_id, model, status/],
    ];
    for (const [query, param, message] of cases) {
      const r = await admin(srv, 'GET', `/admin/requests?${query}`);
      assert.equal(r.status, 400, `${query}: ${r.text}`);
      assert.equal(r.json.error.code, 'INVALID_ARGUMENT');
      assert.equal(r.json.error.param, param, query);
      assert.match(r.json.error.message, message, query);
    }
    // A DELETE meant for one test never clears every test's entries.
    assert.equal((await send(srv, CHAT, chatBody('keep me'), { headers: { 'x-fleetmock-test-id': 'keeper' } })).status, 200);
    for (const q of ['test_id', 'test_id=', 'test_id=a%20b']) {
      const r = await admin(srv, 'DELETE', `/admin/requests?${q}`);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(r.json.error.param, 'test_id');
    }
    assert.equal((await journal(srv)).data.length, 1, 'nothing was deleted');
    const del = await admin(srv, 'DELETE', '/admin/requests?status=200');
    assert.equal(del.status, 400, del.text);
    assert.match(del.json.error.message, /DELETE \/admin\/requests takes only test_id/);
    const post = await admin(srv, 'POST', '/admin/requests', {});
    assert.equal(post.status, 405, post.text);
    assert.equal(post.headers.get('allow'), 'GET, HEAD, DELETE');
  } finally {
    await stopChecked(srv);
  }
});

test('the ring holds server.journal.size entries, counts what it overwrote, and /admin/reset empties it', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: { server: { journal: { size: 5, body_bytes: 4096 } }, accounts: { limits: NO_LIMITS } } });
  try {
    const ids = [];
    for (let i = 0; i < 12; i++) {
      const r = await send(srv, CHAT, chatBody(`n${i}`));
      assert.equal(r.status, 200, r.text);
      ids.push(r.headers.get('x-request-id'));
    }
    // A request is journaled when it ends, which on several loops (workers3) may
    // be a moment after its answer reached us, and in another order: wait until
    // all 12 are counted (bounded), then compare the kept ones as a set.
    let j = await journal(srv);
    for (let k = 0; k < 200 && j.dropped + j.data.length < 12; k++) {
      await new Promise((r) => setTimeout(r, 10));
      j = await journal(srv);
    }
    assert.equal(j.size, 5);
    assert.equal(j.dropped, 7);
    if (process.env.FLEETMOCK_WORKERS) {
      assert.equal(j.data.length, 5);
    } else {
      assert.deepEqual(j.data.map((e) => e.request_id), ids.slice(-5).reverse());
      assert.deepEqual(j.data.map((e) => e.body.messages[0].content), ['n11', 'n10', 'n9', 'n8', 'n7']);
    }
    assert.ok(j.data.every((e, i) => i === 0 || e.seq < j.data[i - 1].seq), 'newest first by seq');

    assert.equal((await journal(srv, '?limit=5')).data.length, 5);
    assert.equal((await admin(srv, 'GET', '/admin/requests?limit=6')).status, 400);
    assert.equal(await metric(srv, 'fleetmock_journal_entries'), 5);
    assert.equal(await metric(srv, 'fleetmock_journal_dropped_total'), 7);
    // DELETE keeps the drop count (a counter); reset goes back to the boot state.
    await admin(srv, 'DELETE', '/admin/requests');
    assert.equal((await journal(srv)).dropped, 7);
    assert.equal((await admin(srv, 'POST', '/admin/reset')).status, 200);
    assert.deepEqual(await journal(srv), { object: 'list', data: [], dropped: 0, size: 5 });
    assert.equal(await metric(srv, 'fleetmock_journal_dropped_total'), 0);
  } finally {
    await stopChecked(srv);
  }
});

test('server.journal.size 0 turns the journal off: nothing is kept and the list is empty', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: { server: { journal: { size: 0 } } } });
  try {
    assert.equal((await send(srv, CHAT, chatBody('nobody keeps this'))).status, 200);
    assert.equal((await send(srv, CHAT, { model: KIMI })).status, 400);
    assert.deepEqual(await journal(srv), { object: 'list', data: [], dropped: 0, size: 0 });
    assert.equal(await metric(srv, 'fleetmock_journal_entries'), 0);
  } finally {
    await stopChecked(srv);
  }
});

test('two test files sharing one server each see only their own entries', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: { accounts: { limits: NO_LIMITS } } });
  try {
    const N = 30;
    const file = (id) => Promise.all(Array.from({ length: N }, (_, i) =>
      send(srv, CHAT, chatBody(`${id} ${i}`), { headers: { 'x-fleetmock-test-id': id } })));
    const [a, b] = await Promise.all([file('file-a.test'), file('file-b.test')]);
    for (const r of [...a, ...b]) assert.equal(r.status, 200, r.text);
    for (const id of ['file-a.test', 'file-b.test']) {
      const j = await journal(srv, `?test_id=${id}`);
      assert.equal(j.data.length, N, id);
      assert.ok(j.data.every((e) => e.test_id === id && e.body.messages[0].content.startsWith(id)), id);
    }
    // One file cleans up after itself; the other's entries stay.
    assert.equal((await admin(srv, 'DELETE', '/admin/requests?test_id=file-a.test')).json.deleted, N);
    assert.equal((await journal(srv, '?test_id=file-b.test')).data.length, N);
    assert.equal((await journal(srv)).data.length, N);
  } finally {
    await stopChecked(srv);
  }
});

// The Responses API (docs/api.md, "Responses"): a conversation through
// previous_response_id costs and caches as the same conversation sent as
// chat messages; the store's bounds, LRU eviction and expiry; store: false;
// shedding in the Responses error shape while Priority passes; the typed
// stream events; reply rules, faults, the journal and metrics on the route;
// errors naming the field.
//
// Servers run --timing instant: nothing here depends on how fast the machine is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, get, admin, patchPool, assertNoSlotsHeld, stopChecked, sleep, streamRequest, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const RESP = '/v1/responses';
const CHAT = '/v1/chat/completions';
const key = (k) => ({ Authorization: `Bearer ${k}` });

let server;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '11'], config: NO_LIMITS });
});
after(async () => {
  await assertNoSlotsHeld(server);
  await stopChecked(server);
});

const TOOL = {
  name: 'lookup', description: 'look a word up',
  parameters: { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] },
};
const INSTR = 'You answer in plain words and keep to the topic of the fleet.';
// A user turn long enough to fill several prompt-cache blocks.
const userTurn = (i) => `turn ${i}: ` + 'tell me more about the shared fleet and its queues '.repeat(40);

test('10 turns through previous_response_id bill and cache as the same conversation sent as chat messages', async () => {
  const affinity = { 'x-session-affinity': 'conversation-eq' };
  const kR = 'eq-responses', kC = 'eq-chat';
  const resp = [], chat = [];
  const ids = {};
  let prev = null;
  const messages = [{ role: 'system', content: INSTR }];
  for (let i = 1; i <= 10; i++) {
    const body = {
      model: KIMI, instructions: INSTR, input: userTurn(i), tools: [{ type: 'function', ...TOOL }],
      tool_choice: 'none', max_output_tokens: 40,
    };
    if (prev) body.previous_response_id = prev;
    const r = await post(server, RESP, body, { ...key(kR), ...affinity });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'response');
    prev = r.json.id;
    ids.r = r.headers.get('x-fleetmock-key-id');
    const text = r.json.output.find((o) => o.type === 'message').content[0].text;
    resp.push(r.json.usage);

    messages.push({ role: 'user', content: userTurn(i) });
    const c = await post(server, CHAT, {
      model: KIMI, messages, tools: [{ type: 'function', function: TOOL }], tool_choice: 'none', max_tokens: 40,
    }, { ...key(kC), ...affinity });
    assert.equal(c.status, 200, c.text);
    chat.push(c.json.usage);
    ids.c = c.headers.get('x-fleetmock-key-id');
    messages.push({ role: 'assistant', content: text });
  }
  for (let i = 0; i < 10; i++) {
    assert.equal(resp[i].input_tokens, chat[i].prompt_tokens, `turn ${i + 1}: the same prompt tokens`);
    assert.equal(resp[i].input_tokens_details.cached_tokens, chat[i].prompt_tokens_details.cached_tokens,
      `turn ${i + 1}: the same cached tokens`);
  }
  assert.ok(resp[9].input_tokens > resp[0].input_tokens * 5, 'the conversation grew');
  assert.ok(resp[9].input_tokens_details.cached_tokens > 0, 'later turns hit the prompt cache');
  assert.ok(resp[9].input_tokens_details.cached_tokens > resp[9].input_tokens / 2, 'most of a later turn is cached');
  // The accounts were billed for the same prompt and cached tokens (a bill
  // lands as its request ends, a moment after the answer: wait, bounded).
  let accR, accC;
  for (let i = 0; i < 200; i++) {
    const a = await admin(server, 'GET', '/admin/accounts');
    accR = a.json.accounts.find((x) => x.key_id === ids.r);
    accC = a.json.accounts.find((x) => x.key_id === ids.c);
    if (accR?.total.requests === 10 && accC?.total.requests === 10) break;
    await sleep(25);
  }
  assert.ok(accR && accC, 'both accounts are listed');
  assert.equal(accR.total.requests, 10);
  assert.equal(accC.total.requests, 10);
  assert.equal(accR.total.prompt_tokens, accC.total.prompt_tokens, 'billed the same prompt tokens');
  assert.equal(accR.total.cached_tokens, accC.total.cached_tokens, 'billed the same cached tokens');
  assert.equal(accR.total.prompt_tokens, resp.reduce((s, u) => s + u.input_tokens, 0));
});

test('a function call round trip: function_call_output answers the call_id of the previous response', async () => {
  const tools = [{ type: 'function', ...TOOL, strict: true }];
  const r1 = await post(server, RESP, { model: KIMI, input: 'look up fleet', tools, tool_choice: 'required' });
  assert.equal(r1.status, 200, r1.text);
  const call = r1.json.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(r1.json.output));
  assert.match(call.call_id, /^call_/);
  assert.equal(call.name, 'lookup');
  assert.equal(typeof JSON.parse(call.arguments).word, 'string');
  const r2 = await post(server, RESP, {
    model: KIMI, previous_response_id: r1.json.id, tools,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'a group of ships' }],
  });
  assert.equal(r2.status, 200, r2.text);
  assert.deepEqual(r2.json.output.map((o) => o.type), ['message'], 'after the tool result it answers');
  assert.ok(r2.json.usage.input_tokens > r1.json.usage.input_tokens);
  // An output that answers no call is a 400 naming it.
  const bad = await post(server, RESP, {
    model: KIMI, previous_response_id: r1.json.id, tools,
    input: [{ type: 'function_call_output', call_id: 'call_nobody', output: 'x' }],
  });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.error.param, 'input[0].call_id');
});

test('store: false, retrieve, delete, another key, and list pages', async () => {
  const r = await post(server, RESP, { model: KIMI, input: 'not kept', store: false, max_output_tokens: 5 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.store, false);
  assert.equal((await get(server, `${RESP}/${r.json.id}`)).status, 404);
  const cont = await post(server, RESP, { model: KIMI, input: 'go on', previous_response_id: r.json.id });
  assert.equal(cont.status, 404, cont.text);
  assert.equal(cont.json.error.param, 'previous_response_id');
  assert.match(cont.json.error.message, /store: false/);

  const k = key('lister');
  const made = [];
  for (let i = 0; i < 5; i++) {
    const m = await post(server, RESP, { model: KIMI, input: `keep ${i}`, max_output_tokens: 3, metadata: { i: String(i) } }, k);
    assert.equal(m.status, 200, m.text);
    made.push(m.json);
  }
  const got = await get(server, `${RESP}/${made[2].id}`, k);
  assert.equal(got.status, 200);
  assert.deepEqual(got.json, made[2], 'retrieve returns the response as it was answered');
  assert.equal((await get(server, `${RESP}/${made[2].id}`, key('someone-else'))).status, 404, 'another key does not see it');

  const p1 = await get(server, `${RESP}?limit=2`, k);
  assert.equal(p1.status, 200, p1.text);
  assert.deepEqual(p1.json.data.map((x) => x.id), [made[4].id, made[3].id], 'newest first');
  assert.equal(p1.json.has_more, true);
  assert.equal(p1.json.first_id, made[4].id);
  assert.equal(p1.json.last_id, made[3].id);
  const p2 = await get(server, `${RESP}?limit=2&after=${p1.json.last_id}`, k);
  assert.deepEqual(p2.json.data.map((x) => x.id), [made[2].id, made[1].id]);
  const p3 = await get(server, `${RESP}?limit=2&after=${p2.json.last_id}`, k);
  assert.deepEqual(p3.json.data.map((x) => x.id), [made[0].id]);
  assert.equal(p3.json.has_more, false);
  const asc = await get(server, `${RESP}?limit=1&order=asc`, k);
  assert.deepEqual(asc.json.data.map((x) => x.id), [made[0].id]);
  assert.equal((await get(server, `${RESP}?limit=0`, k)).json.error.param, 'limit');
  assert.equal((await get(server, `${RESP}?after=resp_nope`, k)).status, 404);
  assert.equal((await get(server, `${RESP}?colour=red`, k)).json.error.param, 'colour');

  const del = await get(server, `${RESP}/${made[0].id}`, k, 'DELETE');
  assert.equal(del.status, 200, del.text);
  assert.deepEqual(del.json, { id: made[0].id, object: 'response.deleted', deleted: true });
  assert.equal((await get(server, `${RESP}/${made[0].id}`, k)).status, 404);
  assert.equal((await get(server, `${RESP}/${made[0].id}`, k, 'DELETE')).status, 404);
  assert.equal((await get(server, `${RESP}/${made[1].id}`, k, 'PUT')).status, 405);
});

test('a congested pool sheds a Standard Responses request (503, OpenAI shape) while a Priority one passes', async () => {
  await patchPool(server, 'kimi-k2p6', { tenant_load: 1.2, tenant_priority_share: 0.2 });
  try {
    for (let i = 0; i < 5; i++) {
      const s = await post(server, RESP, { model: KIMI, input: `busy ${i}`, max_output_tokens: 3 });
      assert.equal(s.status, 503, s.text);
      assert.equal(s.json.error.code, 'SERVICE_OVERLOADED');
      assert.match(s.json.error.message, /priority/);
      const st = await post(server, RESP, { model: KIMI, input: `busy ${i}`, max_output_tokens: 3, stream: true });
      assert.equal(st.status, 503, 'a stream is shed before it starts');
      const p = await post(server, RESP, { model: KIMI, input: `busy ${i}`, max_output_tokens: 3, service_tier: 'priority' });
      assert.equal(p.status, 200, p.text);
      assert.equal(p.json.service_tier, 'priority');
    }
  } finally {
    await patchPool(server, 'kimi-k2p6', { tenant_load: 0, tenant_priority_share: 0 });
  }
});

test('streaming: typed events in order, sequence numbers from 0, deltas that add up, and a fault as response.failed', async () => {
  const s = await streamRequest(server, RESP, { model: KIMI, input: 'stream it', stream: true, max_output_tokens: 12 });
  assert.equal(s.status, 200);
  const data = s.events.map((e) => e.json);
  assert.deepEqual(s.events.map((e) => e.event), data.map((d) => d.type), 'each event line names its type');
  const types = data.map((d) => d.type);
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
  assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
  assert.deepEqual(data.map((d) => d.sequence_number), data.map((_, i) => i));
  const deltas = data.filter((d) => d.type === 'response.output_text.delta');
  assert.equal(deltas.length, 12, 'one token per delta');
  const final = data.at(-1).response;
  assert.equal(deltas.map((d) => d.delta).join(''), final.output[0].content[0].text);
  assert.equal(final.usage.output_tokens, 12);
  assert.equal(final.incomplete_details.reason, 'max_output_tokens');
  const stored = await get(server, `${RESP}/${final.id}`);
  assert.deepEqual(stored.json, final, 'the stored response is the last event\'s');

  const f = await streamRequest(server, RESP, { model: KIMI, input: 'fail it', stream: true, max_output_tokens: 12 }, {
    headers: { 'x-fleetmock-fault': 'error@4' },
  });
  const fd = f.events.map((e) => e.json);
  const last = fd.at(-1);
  assert.equal(last.type, 'response.failed');
  assert.equal(last.response.status, 'failed');
  assert.equal(last.response.error.code, 'SERVICE_OVERLOADED');
  assert.equal(fd.filter((d) => d.type === 'response.output_text.delta').length, 4);
  assert.ok(fd.some((d) => d.type === 'response.output_item.done'), 'the open item is closed before the failure');
});

test('reply rules match a Responses conversation (instructions, input, tool results) and the journal and metrics know the route', async () => {
  const k = key('rules-and-journal');
  let keyId = null;
  const rule = await admin(server, 'POST', '/admin/replies', {
    match: { route: 'responses', last_user: 'capital of France', system: 'geography' },
    reply: { content: 'Paris.' },
  });
  assert.equal(rule.status, 201, rule.text);
  try {
    const r = await post(server, RESP, { model: KIMI, instructions: 'You teach geography.', input: [{ role: 'user', content: [{ type: 'input_text', text: 'What is the capital of France?' }] }] }, k);
    keyId = r.headers.get('x-fleetmock-key-id');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.output[0].content[0].text, 'Paris.');
    const miss = await post(server, RESP, { model: KIMI, input: 'What is the capital of France?', max_output_tokens: 3 }, k);
    assert.notEqual(miss.json.output[0].content[0].text, 'Paris.', 'without the instructions the rule does not match');
    // a continued conversation: the rule sees the stored turns too
    const next = await post(server, RESP, { model: KIMI, instructions: 'You teach geography.', previous_response_id: r.json.id, input: 'And again: the capital of France?' }, k);
    assert.equal(next.json.output[0].content[0].text, 'Paris.');
  } finally {
    await admin(server, 'DELETE', `/admin/replies/${rule.json.id}`);
  }
  let j;
  for (let i = 0; i < 200; i++) { /* journaled as each request ends, a moment after its answer */
    j = await admin(server, 'GET', `/admin/requests?key_id=${keyId}`);
    if (j.status !== 200 || j.json.data.length >= 3) break;
    await sleep(25);
  }
  assert.equal(j.status, 200, j.text);
  assert.equal(j.json.data.length, 3, j.text);
  assert.ok(j.json.data.every((e) => e.route === 'responses' && e.status === 200), j.text);
  const m = await get(server, '/metrics', {});
  assert.match(m.text, /fleetmock_requests_total\{route="responses",model="accounts\/fireworks\/models\/kimi-k2p6",tier="standard",status="200"\} [1-9]/);
  assert.match(m.text, /fleetmock_responses_stored [1-9]/);
});

test('bad input gets a 400 naming the field', async () => {
  const cases = [
    [{ model: KIMI }, 'input'],
    [{ model: KIMI, input: [] }, 'input'],
    [{ model: KIMI, input: [{ role: 'robot', content: 'x' }] }, 'input[0].role'],
    [{ model: KIMI, input: [{ role: 'user' }] }, 'input[0].content'],
    [{ model: KIMI, input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, 'input[0].content[0].text'],
    [{ model: KIMI, input: [{ type: 'web_search_call' }] }, 'input[0].type'],
    [{ model: KIMI, input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 'input[0].call_id'],
    [{ model: KIMI, input: 'x', tools: [{ type: 'mcp', server_label: 'x' }] }, 'tools[0]'],
    [{ model: KIMI, input: 'x', tool_choice: 'sometimes' }, 'tool_choice'],
    [{ model: KIMI, input: 'x', tool_choice: 'required' }, 'tool_choice'],
    [{ model: KIMI, input: 'x', text: { format: { type: 'yaml' } } }, 'text.format.type'],
    [{ model: KIMI, input: 'x', text: { format: { type: 'json_schema', name: 'o' } } }, 'text.format.schema'],
    [{ model: KIMI, input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
    [{ model: KIMI, input: 'x', temperature: 3 }, 'temperature'],
    [{ model: KIMI, input: 'x', truncation: 'middle' }, 'truncation'],
    [{ model: KIMI, input: 'x', background: true }, 'background'],
    [{ model: KIMI, input: 'x', reasoning: { effort: 'max' } }, 'reasoning.effort'],
    [{ model: KIMI, input: 'x', metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }, 'metadata'],
    [{ model: KIMI, input: 'x', service_tier: 'gold' }, 'service_tier'],
    [{ input: 'x' }, 'model'],
  ];
  for (const [body, param] of cases) {
    const r = await post(server, RESP, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.text}`);
    assert.equal(r.json.error.param, param, `${JSON.stringify(body)} -> ${r.text}`);
    assert.ok(r.json.error.message.startsWith(param), r.json.error.message);
  }
  const ref = await post(server, RESP, { model: KIMI, input: [{ type: 'item_reference', id: 'msg_nothing_0' }] });
  assert.equal(ref.status, 404, ref.text);
  assert.equal(ref.json.error.param, 'input[0].id');
  // the server keeps serving
  assert.equal((await post(server, RESP, { model: KIMI, input: 'still here', max_output_tokens: 2 })).status, 200);
});

test('the store is bounded: least recently used evicted first, by count and by bytes; expiry in simulated time', async () => {
  const small = await startServer({
    args: ['--timing', 'instant'],
    config: { server: { responses: { size: 3, bytes: 1048576, ttl_s: 2592000 } } },
  });
  try {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await post(small, RESP, { model: KIMI, input: `n${i}`, max_output_tokens: 2 })).json.id);
    // touch the oldest: the next one to go is then the second
    assert.equal((await get(small, `${RESP}/${ids[0]}`)).status, 200);
    ids.push((await post(small, RESP, { model: KIMI, input: 'n3', max_output_tokens: 2 })).json.id);
    const alive = [];
    for (const id of ids) alive.push((await get(small, `${RESP}/${id}`)).status);
    assert.deepEqual(alive, [200, 404, 200, 200], 'the least recently used (the second) was evicted');
    const cont = await post(small, RESP, { model: KIMI, input: 'go on', previous_response_id: ids[1] });
    assert.equal(cont.status, 404);
    assert.match(cont.json.error.message, /evicted/);
    const m = (await get(small, '/metrics', {})).text;
    assert.match(m, /fleetmock_responses_stored 3\n/);
    assert.match(m, /fleetmock_responses_evicted_total 1\n/);
    const st = await admin(small, 'GET', '/admin/state');
    assert.equal(st.json.responses_store.stored, 3);
    assert.equal(st.json.responses_store.size, 3);
    assert.equal(st.json.responses_store.evicted, 1);
    assert.ok(st.json.responses_store.bytes > 0 && st.json.responses_store.bytes <= st.json.responses_store.max_bytes);
  } finally {
    await stopChecked(small);
  }
  // Expiry: 50 simulated seconds at --time-scale 100 is half a real second; wait well past it.
  const brief = await startServer({
    args: ['--timing', 'instant', '--time-scale', '100'],
    config: { server: { responses: { size: 10, bytes: 1048576, ttl_s: 50 } } },
  });
  try {
    const r = await post(brief, RESP, { model: KIMI, input: 'short-lived', max_output_tokens: 2 });
    assert.equal(r.status, 200, r.text);
    await sleep(1500);
    assert.equal((await get(brief, `${RESP}/${r.json.id}`)).status, 404, 'expired');
    const m = (await get(brief, '/metrics', {})).text;
    assert.match(m, /fleetmock_responses_stored 0\n/);
    assert.match(m, /fleetmock_responses_expired_total 1\n/);
  } finally {
    await stopChecked(brief);
  }
  const bytes = await startServer({
    args: ['--timing', 'instant'],
    config: { server: { responses: { size: 100, bytes: 8192, ttl_s: 2592000 } } },
  });
  try {
    const ids = [];
    for (let i = 0; i < 10; i++) {
      const r = await post(bytes, RESP, { model: KIMI, input: 'word '.repeat(100), max_output_tokens: 2 });
      assert.equal(r.status, 200);
      ids.push(r.json.id);
    }
    const m = (await get(bytes, '/metrics', {})).text;
    const stored = Number(/fleetmock_responses_stored (\d+)/.exec(m)[1]);
    const used = Number(/fleetmock_responses_store_bytes (\d+)/.exec(m)[1]);
    assert.ok(stored >= 1 && stored < 10, `only some fit in 8 KiB: ${stored}`);
    assert.ok(used <= 8192, `the bytes bound holds: ${used}`);
    assert.equal(Number(/fleetmock_responses_evicted_total (\d+)/.exec(m)[1]), 10 - stored);
    assert.equal((await get(bytes, `${RESP}/${ids[9]}`)).status, 200, 'the newest is kept');
    assert.equal((await get(bytes, `${RESP}/${ids[0]}`)).status, 404, 'the oldest went first');
    // a response larger than the whole store is answered, not kept
    const big = await post(bytes, RESP, { model: KIMI, input: 'word '.repeat(3000), max_output_tokens: 2 });
    assert.equal(big.status, 200);
    assert.equal((await get(bytes, `${RESP}/${big.json.id}`)).status, 404);
    assert.match((await get(bytes, '/metrics', {})).text, /fleetmock_responses_not_stored_total 1\n/);
  } finally {
    await stopChecked(bytes);
  }
});

// Tools, structured outputs, reasoning and logprobs (docs/agents.md) over raw
// HTTP: the auto rule, the stream shapes, determinism, the 400s, and that a
// tool call's tokens are paced, limited and billed like text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, get, streamRequest, admin, NO_LIMITS, LATE_MS, WRAPPED } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const MSGS = '/inference/v1/messages';
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 }, unit: { enum: ['c', 'f'] } },
      required: ['city', 'days'], additionalProperties: false,
    },
  },
};
const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } } };
const ASK = [{ role: 'user', content: 'What is the weather in Paris?' }];

let server;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '3'], config: NO_LIMITS });
});
after(async () => server?.stop());

function assertWeatherArgs(args) {
  const a = JSON.parse(args);
  assert.equal(typeof a.city, 'string');
  assert.ok(Number.isInteger(a.days) && a.days >= 1 && a.days <= 7, args);
  if ('unit' in a) assert.ok(['c', 'f'].includes(a.unit), args);
  assert.deepEqual(Object.keys(a).filter((k) => !['city', 'days', 'unit'].includes(k)), []);
}

/** Streams a chat request and assembles what the OpenAI SDKs assemble. */
async function streamChat(body) {
  const r = await streamRequest(server, CHAT, { ...body, stream: true });
  assert.equal(r.status, 200, r.raw);
  const calls = [];
  let content = '', reasoning = '', finish = null;
  for (const e of r.events) {
    const ch = e.json?.choices?.[0];
    if (!ch) continue;
    const d = ch.delta ?? {};
    if (d.content) content += d.content;
    if (d.reasoning_content) reasoning += d.reasoning_content;
    for (const tc of d.tool_calls ?? []) {
      if (tc.id) calls[tc.index] = { id: tc.id, type: tc.type, name: tc.function.name, arguments: '' };
      calls[tc.index].arguments += tc.function?.arguments ?? '';
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { r, calls, content, reasoning, finish };
}

test('auto: a tool call while no tool result follows the user, then text once one does', async () => {
  const first = await post(server, CHAT, { model: KIMI, messages: ASK, tools: [WEATHER] });
  assert.equal(first.status, 200, first.text);
  const c = first.json.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.content, null);
  assert.equal(c.message.tool_calls.length, 1, 'one tool offered: one call');
  const call = c.message.tool_calls[0];
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assertWeatherArgs(call.function.arguments);

  const messages = [...ASK, c.message, { role: 'tool', tool_call_id: call.id, content: '{"sky":"clear"}' }];
  const second = await post(server, CHAT, { model: KIMI, messages, tools: [WEATHER] });
  assert.equal(second.status, 200, second.text);
  assert.equal(second.json.choices[0].finish_reason === 'tool_calls', false);
  assert.equal(typeof second.json.choices[0].message.content, 'string');
  assert.ok(second.json.choices[0].message.content.length > 0);
  assert.equal(second.json.choices[0].message.tool_calls, undefined);
});

test('tool_choice: required and any always call, a name calls that tool, none never calls', async () => {
  const after = [...ASK, { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }];
  for (const choice of ['required', 'any']) {
    const r = await post(server, CHAT, { model: KIMI, messages: after, tools: [WEATHER, TIME], tool_choice: choice });
    assert.equal(r.json.choices[0].finish_reason, 'tool_calls', `${choice}: ${r.text}`);
  }
  const named = await post(server, CHAT, { model: KIMI, messages: ASK, tools: [WEATHER, TIME], tool_choice: { type: 'function', function: { name: 'get_time' } } });
  assert.deepEqual(named.json.choices[0].message.tool_calls.map((t) => t.function.name), ['get_time']);
  const none = await post(server, CHAT, { model: KIMI, messages: ASK, tools: [WEATHER], tool_choice: 'none' });
  assert.equal(none.json.choices[0].finish_reason === 'tool_calls', false);
  assert.equal(none.json.choices[0].message.tool_calls, undefined);
});

test('parallel calls: distinct tools, at most max_parallel (2), one without parallel_tool_calls', async () => {
  const counts = new Set();
  for (let seed = 1; seed <= 12; seed++) {
    const r = await post(server, CHAT, { model: KIMI, seed, messages: ASK, tools: [WEATHER, TIME], tool_choice: 'required' });
    const names = r.json.choices[0].message.tool_calls.map((t) => t.function.name);
    assert.equal(new Set(names).size, names.length, 'distinct tools');
    assert.ok(names.length >= 1 && names.length <= 2);
    counts.add(names.length);
    const one = await post(server, CHAT, { model: KIMI, seed, messages: ASK, tools: [WEATHER, TIME], tool_choice: 'required', parallel_tool_calls: false });
    assert.equal(one.json.choices[0].message.tool_calls.length, 1);
  }
  assert.deepEqual([...counts].sort(), [1, 2], 'the seed picks 1 or 2 calls');
});

test('streamed tool calls: id, type and name first, then the arguments one token per chunk', async () => {
  const s = await streamChat({ model: KIMI, messages: ASK, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false });
  assert.equal(s.finish, 'tool_calls');
  assert.equal(s.calls.length, 1);
  assert.match(s.calls[0].id, /^call_/);
  assertWeatherArgs(s.calls[0].arguments);
  const pieces = s.r.events.map((e) => e.json?.choices?.[0]?.delta?.tool_calls?.[0]?.function?.arguments).filter((a) => a);
  assert.ok(pieces.every((p) => Buffer.byteLength(p) <= 4), 'pieces of at most 4 bytes (ASCII)');
  const usage = await post(server, CHAT, { model: KIMI, messages: ASK, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false });
  assert.equal(usage.json.usage.completion_tokens, pieces.length, 'one token per piece, as usage says');
  assert.equal(usage.json.choices[0].message.tool_calls[0].function.arguments, s.calls[0].arguments, 'stream and body say the same');
});

test('the same (seed, request) gives the same bytes; another seed may not', async () => {
  const body = { model: KIMI, seed: 11, messages: ASK, response_format: { type: 'json_schema', json_schema: { name: 'w', schema: WEATHER.function.parameters } } };
  const a = await post(server, CHAT, body);
  const b = await post(server, CHAT, body);
  assert.equal(a.json.choices[0].message.content, b.json.choices[0].message.content);
  assertWeatherArgs(a.json.choices[0].message.content);
  const outs = new Set();
  for (let seed = 1; seed <= 6; seed++) outs.add((await post(server, CHAT, { ...body, seed })).json.choices[0].message.content);
  assert.ok(outs.size > 1, 'the seed changes the value');
});

test('response_format: json_object parses, a cut JSON answer says length, grammar picks a literal', async () => {
  const o = await post(server, CHAT, { model: KIMI, messages: ASK, response_format: { type: 'json_object' } });
  assert.equal(o.json.choices[0].finish_reason, 'stop');
  const v = JSON.parse(o.json.choices[0].message.content);
  assert.equal(typeof v, 'object');
  const cut = await post(server, CHAT, { model: KIMI, messages: ASK, max_tokens: 2, response_format: { type: 'json_schema', json_schema: { name: 'w', schema: WEATHER.function.parameters } } });
  assert.equal(cut.json.choices[0].finish_reason, 'length');
  assert.equal(cut.json.usage.completion_tokens, 2);
  assert.throws(() => JSON.parse(cut.json.choices[0].message.content));
  const g = await post(server, CHAT, { model: KIMI, messages: ASK, response_format: { type: 'grammar', grammar: 'root ::= "yes" | "no"' } });
  assert.ok(['yes', 'no'].includes(g.json.choices[0].message.content), g.text);
  const bad = await post(server, CHAT, { model: KIMI, messages: ASK, response_format: { type: 'grammar', grammar: 'root ::= [a-z]+' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'response_format.grammar');
});

test('bad tool input: 400s that name the field', async () => {
  const cases = [
    [{ messages: [...ASK, { role: 'tool', tool_call_id: 'call_nope', content: 'x' }] }, 'messages[1].tool_call_id'],
    [{ messages: ASK, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { n: { type: 'integer', minimum: 5, maximum: 1 } } } } }] },
      'tools[0].function.parameters.properties.n.minimum'],
    [{ messages: ASK, tools: [WEATHER, WEATHER] }, 'tools[1].function.name'],
    [{ messages: ASK, tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice.function.name'],
    [{ messages: ASK, tool_choice: 'required' }, 'tool_choice'],
    [{ messages: ASK, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', minLength: 9, maxLength: 2 } } } }, /^response_format\.json_schema\.schema/],
    [{ messages: ASK, reasoning_effort: 'extreme' }, 'reasoning_effort'],
    [{ messages: ASK, top_logprobs: 3 }, 'top_logprobs'],
  ];
  for (const [extra, param] of cases) {
    const r = await post(server, CHAT, { model: KIMI, ...extra });
    assert.equal(r.status, 400, r.text);
    if (param instanceof RegExp) assert.match(r.json.error.param, param, r.text);
    else assert.equal(r.json.error.param, param, r.text);
    assert.ok(r.json.error.message.startsWith(r.json.error.param), r.text);
  }
});

test('a model configured without tools answers 400 naming tools; /v1/models says so', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: { models: { [KIMI]: { tools: false } } } });
  try {
    const r = await post(srv, CHAT, { model: KIMI, messages: ASK, tools: [WEATHER] });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'tools');
    const models = (await get(srv, '/inference/v1/models')).json.data;
    assert.equal(models.find((m) => m.id === KIMI).supports_tools, false);
    assert.equal(models.find((m) => m.id === 'accounts/fireworks/models/glm-5p1').supports_tools, true);
    assert.equal(models.find((m) => m.id === 'accounts/fireworks/models/glm-5p1').supports_reasoning, true);
  } finally {
    await srv.stop();
  }
});

test('reasoning: reasoning_content before the content, counted as reasoning tokens; none gives none', async () => {
  const r = await post(server, CHAT, { model: KIMI, messages: ASK, reasoning_effort: 'high' });
  const m = r.json.choices[0].message;
  assert.ok(m.reasoning_content.split(' ').length >= 128, 'high: at least half of 256 words');
  const rt = r.json.usage.completion_tokens_details.reasoning_tokens;
  assert.equal(rt, m.reasoning_content.split(' ').length);
  assert.equal(r.json.usage.completion_tokens, rt + m.content.split(' ').length);
  const capped = await post(server, CHAT, { model: KIMI, messages: ASK, reasoning_effort: 10 });
  assert.equal(capped.json.usage.completion_tokens_details.reasoning_tokens, 10);
  const none = await post(server, CHAT, { model: KIMI, messages: ASK, reasoning_effort: 'none' });
  assert.equal(none.json.choices[0].message.reasoning_content, undefined);
  assert.equal(none.json.usage.completion_tokens_details.reasoning_tokens, 0);
  const s = await streamChat({ model: KIMI, messages: ASK, reasoning_effort: 'low' });
  const kinds = s.r.events.map((e) => e.json?.choices?.[0]?.delta).filter((d) => d && (d.content || d.reasoning_content)).map((d) => (d.reasoning_content ? 'r' : 'c'));
  assert.ok(kinds.indexOf('c') > kinds.lastIndexOf('r'), 'all reasoning before the content');
});

test('logprobs: one well-formed entry per content token, with top_logprobs alternatives', async () => {
  const r = await post(server, CHAT, { model: KIMI, messages: ASK, logprobs: true, top_logprobs: 3, max_tokens: 6, ignore_eos: true });
  const lp = r.json.choices[0].logprobs.content;
  assert.equal(lp.length, 6);
  assert.equal(lp.map((e) => e.token).join(''), r.json.choices[0].message.content);
  for (const e of lp) {
    assert.ok(e.logprob < 0);
    assert.deepEqual(e.bytes, [...Buffer.from(e.token)]);
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].token, e.token);
    assert.ok(e.top_logprobs[1].logprob < e.top_logprobs[0].logprob && e.top_logprobs[2].logprob < e.top_logprobs[1].logprob);
  }
  const c = await post(server, '/inference/v1/completions', { model: KIMI, prompt: 'say', logprobs: 2, max_tokens: 4, ignore_eos: true });
  const clp = c.json.choices[0].logprobs;
  assert.equal(clp.tokens.join(''), c.json.choices[0].text);
  assert.equal(clp.token_logprobs.length, 4);
  assert.equal(Object.keys(clp.top_logprobs[0]).length, 2);
  assert.equal(clp.text_offset[0], 0);
});

test('Anthropic: tool_use with any, tool_result then text, thinking blocks streamed first', async () => {
  const tools = [{ name: 'get_weather', input_schema: WEATHER.function.parameters }];
  const headers = { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' };
  const first = await post(server, MSGS, { model: KIMI, max_tokens: 512, tools, tool_choice: { type: 'any' }, messages: ASK }, headers);
  assert.equal(first.json.stop_reason, 'tool_use', first.text);
  const use = first.json.content.find((b) => b.type === 'tool_use');
  assert.match(use.id, /^toolu_/);
  assertWeatherArgs(JSON.stringify(use.input));
  const second = await post(server, MSGS, {
    model: KIMI, max_tokens: 512, tools,
    messages: [...ASK, { role: 'assistant', content: first.json.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'clear' }] }],
  }, headers);
  assert.equal(second.json.stop_reason, 'end_turn', second.text);
  assert.equal(second.json.content[0].type, 'text');
  const bad = await post(server, MSGS, { model: KIMI, max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'c' }] }] }, headers);
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /^messages\[0\]\.content\[0\]\.tool_use_id/);

  const s = await streamRequest(server, MSGS, { model: KIMI, max_tokens: 2048, stream: true, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: ASK }, { headers });
  const types = s.events.map((e) => e.json?.delta?.type ?? e.json?.type).filter(Boolean);
  const iThink = types.indexOf('thinking_delta'), iSig = types.indexOf('signature_delta'), iText = types.indexOf('text_delta');
  assert.ok(iThink >= 0 && iThink < iSig && iSig < iText, types.join(','));
  const starts = s.events.filter((e) => e.json?.type === 'content_block_start').map((e) => [e.json.index, e.json.content_block.type]);
  assert.deepEqual(starts, [[0, 'thinking'], [1, 'text']]);
});

test('a fault mid tool call: error@N ends the stream after N argument tokens', async () => {
  const r = await streamRequest(server, CHAT, { model: KIMI, stream: true, messages: ASK, tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false },
    { headers: { 'x-fleetmock-fault': 'error@3' } });
  const pieces = r.events.filter((e) => e.json?.choices?.[0]?.delta?.tool_calls);
  assert.equal(pieces.length, 1 + 3, 'the header chunk and 3 argument tokens');
  assert.ok(r.events.some((e) => e.json?.error), 'then the error event');
});

test('a 200-token tool call at 50 tok/s takes ~4 s, moves the generated bucket and the bill', { skip: WRAPPED && 'wall-clock pacing' }, async () => {
  const srv = await startServer({
    config: {
      pools: { 'kimi-k2p6': { decode_tps: 50, jitter: 0, slowdown_at_full: 0, ttft_ms: 50, tenant_load: 0 } },
      accounts: { ratelimit_extension_headers: true, limits: { requests_per_min: { start: 1e6, ceiling: 1e6 }, prompt_tps: { start: 1e9, ceiling: 1e9 }, uncached_prompt_tps: { start: 1e9, ceiling: 1e9 }, generated_tps: { start: 10, ceiling: 10 } } },
    },
  });
  try {
    const note = { type: 'function', function: { name: 'note', parameters: { type: 'object', properties: { text: { type: 'string', minLength: 780, maxLength: 780 } }, required: ['text'], additionalProperties: false } } };
    const body = { model: KIMI, stream: true, stream_options: { include_usage: true }, messages: ASK, tools: [note], tool_choice: 'required' };
    const r = await streamRequest(srv, CHAT, body, { maxMs: 60000 });
    const times = r.events.filter((e) => e.json?.choices?.[0]?.delta?.tool_calls?.[0]?.function?.arguments).map((e) => e.t);
    const usage = r.events.find((e) => e.json?.usage)?.json.usage;
    assert.ok(usage.completion_tokens >= 195 && usage.completion_tokens <= 200, JSON.stringify(usage));
    assert.equal(times.length, usage.completion_tokens);
    // Nothing early: the last argument token is due ttft (50 ms) + 20 ms a token after the
    // request was sent (times count from then), however late the first one reached us.
    // Lateness only adds, so the upper bound allows LATE_MS on the whole span.
    const due = (usage.completion_tokens - 1) * 20;
    assert.ok(times.at(-1) >= 50 + due - 2, `the last argument token came ${times.at(-1).toFixed(0)} ms after the request, due at ${50 + due} ms`);
    const span = times.at(-1) - times[0];
    assert.ok(span <= due + LATE_MS, `arguments took ${span.toFixed(0)} ms, due ${due} ms`);
    const acc = (await admin(srv, 'GET', '/admin/accounts')).json;
    const row = acc.accounts[0];
    assert.equal(row.total.generated_tokens, usage.completion_tokens, JSON.stringify(row));
    assert.ok(row.total.cost_usd > 0);
    // 10 generated tokens/s against 50 drawn: the bucket is in debt, so the next request is refused on it
    const next = await post(srv, CHAT, { model: KIMI, messages: ASK, max_tokens: 1 });
    assert.equal(next.status, 429, next.text);
    assert.match(next.json.error.message, /generated tokens per second/);
  } finally {
    await srv.stop();
  }
});

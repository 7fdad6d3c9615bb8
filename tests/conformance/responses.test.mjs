// Conformance of the Responses API (POST/GET /v1/responses, GET/DELETE
// /v1/responses/{id}) with the real, unmodified SDKs: the openai SDK's
// responses.create / retrieve / delete / stream (its own strict event
// accumulator), and the AI SDK's OpenAI provider in Responses mode
// (createOpenAI().responses(), which validates every body and stream chunk
// with zod). Only the base URL is changed. One server with --timing instant
// and no rate limits; the SDKs never retry, so every error reaches the test
// as the server sent it. What each client sends and requires is written down
// in /tmp/resp-notes.md (captured from these same clients).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError, NotFoundError } from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool, stepCountIs, Output } from 'ai';
import { z } from 'zod';
import Ajv from 'ajv';
import { startServer, stopChecked, patchPool, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';

let server;
let client;

function makeClient(opts = {}) {
  return new OpenAI({
    apiKey: 'resp-key',
    baseURL: `${server.baseURL}/v1`,
    maxRetries: 0,
    timeout: 20000,
    ...opts,
  });
}

before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '11'], config: NO_LIMITS });
  client = makeClient();
});
after(async () => { if (server) await stopChecked(server); });

const ajv = new Ajv({ allErrors: true, strict: false });
function assertValid(schema, value, what) {
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${what}: ${JSON.stringify(value)} is not valid: ${ajv.errorsText(validate.errors)}`);
}

const weatherParams = {
  type: 'object',
  properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 5 } },
  required: ['city', 'days'],
  additionalProperties: false,
};
const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather forecast for a city',
  parameters: weatherParams,
  strict: true,
};

// A prompt of a few hundred bytes: several 64-byte prompt-cache blocks.
const LONG = 'You are a careful travel assistant. ' +
  'Answer in plain words, keep each answer short, and never invent facts about places you do not know. '.repeat(6);

/** The usage block every client reads (the AI SDK requires input_tokens and output_tokens). */
function assertUsage(usage, what) {
  assert.ok(usage, `${what}: usage present`);
  assert.ok(Number.isInteger(usage.input_tokens) && usage.input_tokens > 0, `${what}: input_tokens > 0 (${usage.input_tokens})`);
  assert.ok(Number.isInteger(usage.output_tokens) && usage.output_tokens > 0, `${what}: output_tokens > 0 (${usage.output_tokens})`);
  assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens, `${what}: total_tokens adds up`);
  assert.equal(typeof usage.input_tokens_details?.cached_tokens, 'number', `${what}: input_tokens_details.cached_tokens is a number`);
  assert.equal(typeof usage.output_tokens_details?.reasoning_tokens, 'number', `${what}: output_tokens_details.reasoning_tokens is a number`);
}

/** One assistant message with one output_text part (annotations required by the AI SDK). */
function messageText(res, what) {
  const msgs = res.output.filter((o) => o.type === 'message');
  assert.equal(msgs.length, 1, `${what}: one message item in ${JSON.stringify(res.output.map((o) => o.type))}`);
  const m = msgs[0];
  assert.equal(typeof m.id, 'string', `${what}: message id`);
  assert.ok(m.id.length > 0, `${what}: message id non-empty`);
  assert.equal(m.role, 'assistant', `${what}: role`);
  assert.equal(m.status, 'completed', `${what}: message status`);
  assert.ok(Array.isArray(m.content) && m.content.length >= 1, `${what}: content parts`);
  for (const part of m.content) {
    assert.equal(part.type, 'output_text', `${what}: part type`);
    assert.equal(typeof part.text, 'string', `${what}: part text`);
    assert.ok(Array.isArray(part.annotations), `${what}: part.annotations is an array (AI SDK requires it)`);
  }
  return m.content.map((p) => p.text).join('');
}

/** The envelope of a finished response. */
function assertResponse(res, what, status = 'completed') {
  assert.equal(res.object, 'response', `${what}: object`);
  assert.equal(typeof res.id, 'string', `${what}: id`);
  assert.ok(res.id.length > 0, `${what}: id non-empty`);
  assert.equal(res.status, status, `${what}: status (error: ${JSON.stringify(res.error)})`);
  assert.equal(res.model, KIMI, `${what}: model`);
  assert.ok(Number.isInteger(res.created_at) && res.created_at > 1.6e9, `${what}: created_at in unix seconds`);
  assert.ok(Array.isArray(res.output), `${what}: output array`);
  if (status === 'completed') {
    assert.equal(res.error, null, `${what}: error null`);
    assert.equal(res.incomplete_details, null, `${what}: incomplete_details null`);
  }
}

function functionCalls(res) {
  return res.output.filter((o) => o.type === 'function_call');
}

function assertFunctionCall(fc, what) {
  assert.equal(fc.type, 'function_call', `${what}: type`);
  assert.equal(typeof fc.id, 'string', `${what}: id`);
  assert.ok(fc.id.length > 0, `${what}: id non-empty`);
  assert.equal(typeof fc.call_id, 'string', `${what}: call_id`);
  assert.ok(fc.call_id.length > 0, `${what}: call_id non-empty`);
  assert.equal(fc.name, 'get_weather', `${what}: name`);
  assert.equal(fc.status, 'completed', `${what}: status`);
  assert.equal(typeof fc.arguments, 'string', `${what}: arguments is a JSON string`);
  assertValid(weatherParams, JSON.parse(fc.arguments), `${what}: arguments`);
}

// ---------------------------------------------------------------------------
// openai: responses.create

test('openai responses.create: plain string input', async () => {
  const { data: res, response } = await client.responses
    .create({ model: KIMI, input: 'Name three colours.' })
    .withResponse();
  assert.equal(response.status, 200);
  assertResponse(res, 'plain');
  const text = messageText(res, 'plain');
  assert.ok(res.output_text.length > 0, 'output_text non-empty');
  assert.equal(res.output_text, text, 'output_text is the message text');
  assertUsage(res.usage, 'plain');
  assert.equal(res.usage.output_tokens, res.output_text.split(' ').length, 'one word per output token');
  assert.equal(res.service_tier, 'default', 'Standard is echoed as "default"');
});

test('openai responses.create: instructions are echoed and counted in input_tokens', async () => {
  const input = 'Name three colours.';
  const bare = await client.responses.create({ model: KIMI, input });
  const instructions = 'Answer as a pirate would, in one short line.';
  const res = await client.responses.create({ model: KIMI, input, instructions });
  assertResponse(res, 'instructions');
  assert.equal(res.instructions, instructions, 'instructions echoed');
  assert.ok(res.output_text.length > 0);
  assertUsage(res.usage, 'instructions');
  assert.ok(res.usage.input_tokens > bare.usage.input_tokens,
    `instructions add input tokens: ${res.usage.input_tokens} vs ${bare.usage.input_tokens} without`);
});

test('openai responses.create: function tool (required), then function_call_output with previous_response_id', async () => {
  const first = await client.responses.create({
    model: KIMI,
    input: 'What is the weather in Paris for three days?',
    tools: [weatherTool],
    tool_choice: 'required',
  });
  assertResponse(first, 'tool call');
  const calls = functionCalls(first);
  assert.ok(calls.length >= 1, `a function_call item: ${JSON.stringify(first.output)}`);
  calls.forEach((fc, i) => assertFunctionCall(fc, `call ${i}`));
  assert.equal(new Set(calls.map((c) => c.call_id)).size, calls.length, 'call_ids are distinct');
  assert.equal(first.output_text, '', 'no text beside the calls');

  const second = await client.responses.create({
    model: KIMI,
    previous_response_id: first.id,
    input: calls.map((fc) => ({ type: 'function_call_output', call_id: fc.call_id, output: '{"forecast":"sunny"}' })),
    tools: [weatherTool],
  });
  assertResponse(second, 'after tool output');
  assert.equal(second.previous_response_id, first.id, 'previous_response_id echoed');
  assert.equal(functionCalls(second).length, 0, 'auto after a tool result: no more calls');
  assert.ok(messageText(second, 'answer').length > 0, 'a text answer');
  assert.ok(second.usage.input_tokens > first.usage.input_tokens,
    `the second turn's prompt holds the first (${second.usage.input_tokens} > ${first.usage.input_tokens})`);
});

test('openai responses.create: a function_call_output whose call_id the conversation lacks is a 400', async () => {
  const first = await client.responses.create({ model: KIMI, input: 'Say hi.' });
  await assert.rejects(
    client.responses.create({
      model: KIMI,
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: 'call_does_not_exist', output: 'x' }],
    }),
    (err) => {
      assert.ok(err instanceof APIError, String(err));
      assert.equal(err.status, 400, err.message);
      return true;
    },
  );
});

test('openai responses.create: text.format json_schema gives JSON valid under the schema', async () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      age: { type: 'integer', minimum: 0, maximum: 150 },
      tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
      kind: { type: 'string', enum: ['cat', 'dog'] },
    },
    required: ['name', 'age', 'tags', 'kind'],
    additionalProperties: false,
  };
  const res = await client.responses.create({
    model: KIMI,
    input: 'Describe a pet.',
    text: { format: { type: 'json_schema', name: 'pet', schema, strict: true } },
  });
  assertResponse(res, 'json_schema');
  assertValid(schema, JSON.parse(res.output_text), 'output_text');
  assert.equal(res.text?.format?.type, 'json_schema', 'text.format echoed');
});

test('openai responses.create: max_output_tokens below the drawn length gives status incomplete', async () => {
  // The pool draws at least 16 tokens (output_tokens.min), so 4 always cuts.
  const res = await client.responses.create({ model: KIMI, input: LONG + 'Tell me a long story.', max_output_tokens: 4 });
  assertResponse(res, 'incomplete', 'incomplete');
  assert.deepEqual(res.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(res.max_output_tokens, 4, 'max_output_tokens echoed');
  assert.equal(res.usage.output_tokens, 4, 'exactly max_output_tokens generated');
  assert.equal(res.output_text.split(' ').length, 4, 'four words');
  const msg = res.output.find((o) => o.type === 'message');
  assert.equal(msg?.status, 'incomplete', 'the cut message is incomplete');
});

test('openai responses.create: a previous_response_id chain of 3 turns rebuilds the conversation (prompt cache hits)', async () => {
  const key = 'resp-chain';
  // The long text is in the input, not in instructions: as on OpenAI,
  // previous_response_id carries the conversation over but not instructions.
  const t1 = await client.responses.create({ model: KIMI, input: LONG + 'Where should I go in May?', prompt_cache_key: key });
  const t2 = await client.responses.create({ model: KIMI, previous_response_id: t1.id, input: 'And in June?', prompt_cache_key: key });
  const t3 = await client.responses.create({ model: KIMI, previous_response_id: t2.id, input: 'And in July?', prompt_cache_key: key });
  for (const [r, w] of [[t1, 't1'], [t2, 't2'], [t3, 't3']]) { assertResponse(r, w); assertUsage(r.usage, w); }
  assert.equal(t1.usage.input_tokens_details.cached_tokens, 0, 't1 is a cold prompt');
  assert.ok(t2.usage.input_tokens > t1.usage.input_tokens + t1.usage.output_tokens,
    `t2 holds t1's prompt and answer: ${t2.usage.input_tokens} > ${t1.usage.input_tokens} + ${t1.usage.output_tokens}`);
  assert.ok(t3.usage.input_tokens > t2.usage.input_tokens + t2.usage.output_tokens,
    `t3 holds t2's prompt and answer: ${t3.usage.input_tokens} > ${t2.usage.input_tokens} + ${t2.usage.output_tokens}`);
  assert.ok(t2.usage.input_tokens_details.cached_tokens > 0, `t2 cached_tokens > 0: ${JSON.stringify(t2.usage)}`);
  assert.ok(t3.usage.input_tokens_details.cached_tokens > 0, `t3 cached_tokens > 0: ${JSON.stringify(t3.usage)}`);
  assert.ok(t3.usage.input_tokens_details.cached_tokens >= t2.usage.input_tokens_details.cached_tokens,
    'the cached prefix grows along the chain');
  assert.ok(t3.usage.input_tokens_details.cached_tokens <= t3.usage.input_tokens, 'cached never exceeds input');
});

test('openai responses.retrieve returns what create returned; delete, then retrieve is a 404', async () => {
  const created = await client.responses.create({ model: KIMI, input: 'Name a river.' });
  const got = await client.responses.retrieve(created.id);
  assert.equal(got.id, created.id);
  assert.equal(got.object, 'response');
  assert.equal(got.status, created.status);
  assert.deepEqual(got.output, created.output, 'same output items');
  assert.equal(got.output_text, created.output_text);
  assert.deepEqual(got.usage, created.usage, 'same usage');

  const del = await client.responses.delete(created.id).withResponse();
  assert.equal(del.response.status, 200);
  await assert.rejects(client.responses.retrieve(created.id), (err) => {
    assert.ok(err instanceof NotFoundError, `NotFoundError, got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 404);
    return true;
  });
  await assert.rejects(client.responses.delete(created.id), (err) => err instanceof NotFoundError && err.status === 404,
    'deleting twice is a 404');
});

test('openai: a response of another account is not visible (404)', async () => {
  const created = await client.responses.create({ model: KIMI, input: 'Name a mountain.' });
  const other = makeClient({ apiKey: 'resp-other-account' });
  await assert.rejects(other.responses.retrieve(created.id), (err) => err instanceof NotFoundError && err.status === 404);
  await assert.rejects(
    other.responses.create({ model: KIMI, previous_response_id: created.id, input: 'more' }),
    (err) => err instanceof APIError && [400, 404].includes(err.status) &&
      (err.param === 'previous_response_id' || /previous_response_id/.test(err.message)),
  );
});

test('openai: store false is not retrievable, and previous_response_id to it fails naming previous_response_id', async () => {
  const r = await client.responses.create({ model: KIMI, input: 'Name a lake.', store: false });
  assertResponse(r, 'store false');
  assert.equal(r.store, false, 'store echoed');
  await assert.rejects(client.responses.retrieve(r.id), (err) => err instanceof NotFoundError && err.status === 404);
  await assert.rejects(
    client.responses.create({ model: KIMI, previous_response_id: r.id, input: 'and another?' }),
    (err) => {
      assert.ok(err instanceof APIError, String(err));
      assert.ok([400, 404].includes(err.status), `400 or 404, got ${err.status}`);
      assert.ok(err.param === 'previous_response_id' || /previous_response_id/.test(err.message),
        `names previous_response_id: param ${err.param}, message ${err.message}`);
      return true;
    },
  );
});

test('GET /v1/responses lists the account\'s stored responses with cursor paging', async () => {
  // The openai SDK has no responses.list(): plain fetch, with a fresh account
  // so only these three responses are listed.
  const apiKey = 'resp-list-account';
  const c = makeClient({ apiKey });
  const made = [];
  for (const q of ['one?', 'two?', 'three?']) made.push((await c.responses.create({ model: KIMI, input: q })).id);
  await c.responses.create({ model: KIMI, input: 'not stored', store: false });
  const list = async (query) => {
    const res = await fetch(`${server.baseURL}/v1/responses?${query}`, { headers: { Authorization: `Bearer ${apiKey}` } });
    assert.equal(res.status, 200, await res.clone().text());
    return res.json();
  };
  const p1 = await list('limit=2');
  assert.equal(p1.object, 'list');
  assert.equal(p1.data.length, 2);
  assert.equal(p1.has_more, true);
  assert.equal(p1.first_id, p1.data[0].id);
  assert.equal(p1.last_id, p1.data[1].id);
  for (const r of p1.data) assert.equal(r.object, 'response');
  const p2 = await list(`limit=2&after=${encodeURIComponent(p1.last_id)}`);
  assert.equal(p2.data.length, 1);
  assert.equal(p2.has_more, false);
  assert.equal(p2.first_id, p2.data[0].id);
  assert.equal(p2.last_id, p2.data[0].id);
  const ids = [...p1.data, ...p2.data].map((r) => r.id);
  const reversed = [...made].reverse();
  assert.ok(JSON.stringify(ids) === JSON.stringify(reversed) || JSON.stringify(ids) === JSON.stringify(made),
    `the pages list the 3 stored responses in one order, without overlap: ${ids} vs created ${made}`);
  const all = await list('limit=100');
  assert.equal(all.data.length, 3, 'store:false is not listed; other accounts are not listed');
  assert.equal(all.has_more, false);
});

test('openai responses.create: service_tier priority is echoed', async () => {
  const { data: res, response } = await client.responses
    .create({ model: KIMI, input: 'Name a tree.', service_tier: 'priority' })
    .withResponse();
  assertResponse(res, 'priority');
  assert.equal(res.service_tier, 'priority');
  assert.equal(response.headers.get('x-fleetmock-service-tier'), 'priority');
});

// ---------------------------------------------------------------------------
// openai: streaming

const TEXT_ORDER = /^response\.created response\.in_progress response\.output_item\.added response\.content_part\.added( response\.output_text\.delta)+ response\.output_text\.done response\.content_part\.done response\.output_item\.done response\.completed$/;

function assertSequence(events, what) {
  assert.ok(events.length > 0, `${what}: events`);
  assert.equal(events[0].sequence_number, 0, `${what}: sequence_number starts at 0`);
  for (let i = 1; i < events.length; i++) {
    assert.ok(Number.isInteger(events[i].sequence_number) && events[i].sequence_number > events[i - 1].sequence_number,
      `${what}: sequence_number strictly increasing at ${i}: ${events[i - 1].sequence_number} then ${events[i].sequence_number}`);
  }
}

test('openai responses.stream: deltas concatenate to finalResponse.output_text, events in the documented order', async () => {
  const stream = client.responses.stream({ model: KIMI, input: 'Tell me about the sea.' });
  const deltas = [];
  const events = [];
  let lastSnapshot = '';
  stream.on('response.output_text.delta', (e) => { deltas.push(e.delta); lastSnapshot = e.snapshot; });
  stream.on('event', (e) => events.push(e));
  const final = await stream.finalResponse();

  assertResponse(final, 'streamed');
  assert.ok(deltas.length > 0, 'some deltas');
  assert.equal(deltas.join(''), final.output_text, 'deltas concatenate to output_text');
  assert.equal(lastSnapshot, final.output_text, 'the last snapshot is the whole text');
  assert.equal(deltas.length, final.usage.output_tokens, 'one delta per output token');
  assertUsage(final.usage, 'streamed');
  assertSequence(events, 'stream');
  assert.match(events.map((e) => e.type).join(' '), TEXT_ORDER);

  const byType = (t) => events.filter((e) => e.type === t);
  const [created] = byType('response.created');
  assert.equal(created.response.status, 'in_progress', 'created: status in_progress');
  assert.equal(created.response.id, final.id, 'one id for the whole stream');
  assert.equal(typeof created.response.created_at, 'number', 'created: created_at (AI SDK requires it)');
  assert.equal(created.response.model, KIMI, 'created: model (AI SDK requires it)');
  const [added] = byType('response.output_item.added');
  assert.equal(added.item.type, 'message');
  assert.equal(added.item.status, 'in_progress');
  assert.equal(added.output_index, 0);
  const msgId = added.item.id;
  for (const e of byType('response.output_text.delta')) {
    assert.equal(e.item_id, msgId, 'delta item_id is the message id');
    assert.equal(e.output_index, 0);
    assert.equal(e.content_index, 0);
  }
  const [textDone] = byType('response.output_text.done');
  assert.equal(textDone.text, final.output_text, 'output_text.done carries the whole text');
  const [partDone] = byType('response.content_part.done');
  assert.equal(partDone.part.text, final.output_text);
  const [itemDone] = byType('response.output_item.done');
  assert.equal(itemDone.item.id, msgId);
  assert.equal(itemDone.item.status, 'completed');
  const [completed] = byType('response.completed');
  assert.equal(completed.response.status, 'completed');
  assert.deepEqual(completed.response.output.map((o) => o.id), [msgId], 'completed carries the full output (agents reads it)');
  assertUsage(completed.response.usage, 'completed event');

  const stored = await client.responses.retrieve(final.id);
  assert.equal(stored.output_text, final.output_text, 'a streamed response is stored too');
});

test('openai responses.create({stream: true}): async iteration gives the same text as the non-streamed call', async () => {
  const body = { model: KIMI, input: 'Describe a forest in a few words.' };
  const plain = await client.responses.create(body);
  const stream = await client.responses.create({ ...body, stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  assertSequence(events, 'create stream');
  assert.match(events.map((e) => e.type).join(' '), TEXT_ORDER);
  const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  assert.equal(text, plain.output_text, 'the text is a pure function of the request, streamed or not');
  const done = events.at(-1);
  assert.equal(done.type, 'response.completed');
  assert.equal(done.response.output[0].content[0].text, text);
  assert.deepEqual(done.response.usage.output_tokens, plain.usage.output_tokens);
});

test('openai responses.stream: a streamed function call; argument deltas concatenate to .done and the final item', async () => {
  const stream = client.responses.stream({
    model: KIMI,
    input: 'What is the weather in Paris for three days?',
    tools: [weatherTool],
    tool_choice: 'required',
  });
  const events = [];
  stream.on('event', (e) => events.push(e));
  const final = await stream.finalResponse();
  assertResponse(final, 'streamed call');
  assertSequence(events, 'call stream');
  const calls = functionCalls(final);
  assert.ok(calls.length >= 1, 'a function_call item');
  for (const [i, fc] of calls.entries()) {
    assertFunctionCall(fc, `streamed call ${i}`);
    const idx = final.output.indexOf(fc);
    const added = events.find((e) => e.type === 'response.output_item.added' && e.output_index === idx);
    assert.equal(added?.item.type, 'function_call', `added event for output ${idx}`);
    assert.equal(added.item.call_id, fc.call_id, 'call_id known at output_item.added');
    assert.equal(added.item.name, 'get_weather', 'name known at output_item.added');
    assert.equal(added.item.arguments, '', 'arguments start empty');
    const pieces = events.filter((e) => e.type === 'response.function_call_arguments.delta' && e.item_id === fc.id);
    assert.ok(pieces.length >= 1, 'argument deltas');
    for (const p of pieces) assert.equal(p.output_index, idx);
    const done = events.filter((e) => e.type === 'response.function_call_arguments.done' && e.item_id === fc.id);
    assert.equal(done.length, 1, 'one arguments.done');
    assert.equal(pieces.map((p) => p.delta).join(''), done[0].arguments, 'deltas concatenate to .done');
    assert.equal(done[0].arguments, fc.arguments, '.done is the final item arguments');
    const itemDone = events.find((e) => e.type === 'response.output_item.done' && e.output_index === idx);
    assert.equal(itemDone?.item.status, 'completed', 'function_call output_item.done has status completed (AI SDK requires it)');
  }
  const order = events.map((e) => e.type);
  assert.equal(order[0], 'response.created');
  assert.equal(order[1], 'response.in_progress');
  assert.equal(order.at(-1), 'response.completed');
  assert.ok(!order.includes('response.output_text.delta'), 'no text beside the calls');
});

test('x-fleetmock-fault error@N on a streamed response: N text deltas, then response.failed with an error', async () => {
  const N = 3;
  const stream = client.responses.stream(
    { model: KIMI, input: LONG + 'Tell me a long story.' },
    { headers: { 'x-fleetmock-fault': `error@${N}` } },
  );
  const events = [];
  const deltas = [];
  stream.on('event', (e) => events.push(e));
  stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
  // The openai ResponseStream does not throw on response.failed: it emits the
  // event and resolves finalResponse() with status "failed" (an `error` event
  // or a data object with a top-level "error" would throw an APIError instead).
  const final = await stream.finalResponse();
  assert.equal(deltas.length, N, `exactly ${N} deltas before the failure`);
  const types = events.map((e) => e.type);
  assert.equal(types.at(-1), 'response.failed', `the stream ends with response.failed: ${types.join(' ')}`);
  assert.ok(!types.includes('response.completed'), 'never completed');
  assertSequence(events, 'failed stream');
  const failed = events.at(-1);
  assert.equal(failed.response.status, 'failed');
  assert.equal(failed.response.id, events[0].response.id);
  assert.equal(typeof failed.response.error?.message, 'string', `response.error.message: ${JSON.stringify(failed.response.error)}`);
  assert.equal(typeof failed.response.error?.code, 'string', 'response.error.code');
  assert.equal(final.status, 'failed');
  assert.equal(final.output_text, deltas.join(''), 'the partial text is kept');
});

test('x-fleetmock-fault error@N on a non-streamed response is a 503', async () => {
  await assert.rejects(
    client.responses.create({ model: KIMI, input: 'hello' }, { headers: { 'x-fleetmock-fault': 'error@2' } }),
    (err) => err instanceof APIError && err.status === 503,
  );
});

// ---------------------------------------------------------------------------
// Priority under congestion (a server of its own: the pool is saturated).

test('congested pool: Standard responses.create is refused 503, the same request with service_tier priority completes', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS });
  try {
    const pool = await patchPool(srv, 'kimi-k2p6', { tenant_load: 1.2, tenant_priority_share: 0.2 });
    assert.equal(pool.shed_probability.standard, 1);
    assert.equal(pool.shed_probability.priority, 0);
    const c = new OpenAI({ apiKey: 'resp-congested', baseURL: `${srv.baseURL}/inference/v1`, maxRetries: 0, timeout: 20000 });
    const body = { model: KIMI, input: 'Are you there?' };
    await assert.rejects(c.responses.create(body), (err) => {
      assert.ok(err instanceof APIError, String(err));
      assert.equal(err.status, 503, err.message);
      assert.equal(err.code, 'SERVICE_OVERLOADED');
      assert.match(err.message, /Priority/);
      return true;
    });
    const res = await c.responses.create({ ...body, service_tier: 'priority' });
    assertResponse(res, 'priority under congestion');
    assert.equal(res.service_tier, 'priority');
    assert.ok(res.output_text.length > 0);
  } finally {
    await stopChecked(srv);
  }
});

// ---------------------------------------------------------------------------
// The AI SDK's OpenAI provider in Responses mode (zod-validated bodies and chunks).

function aiModel() {
  return createOpenAI({ apiKey: 'resp-aisdk', baseURL: `${server.baseURL}/v1` }).responses(KIMI);
}

test('AI SDK responses: generateText plain', async () => {
  const r = await generateText({ model: aiModel(), system: 'Be brief.', prompt: 'Name three colours.', maxRetries: 0 });
  assert.ok(r.text.length > 0, 'text');
  assert.equal(r.finishReason, 'stop');
  assert.ok(r.usage.inputTokens > 0 && r.usage.outputTokens > 0, JSON.stringify(r.usage));
  assert.equal(r.usage.outputTokens, r.text.split(' ').length, 'one word per output token');
  assert.equal(typeof r.response.id, 'string');
  assert.equal(r.response.modelId, KIMI);
});

test('AI SDK responses: generateText with a tool and stopWhen takes a tool step, then answers', async () => {
  const seen = [];
  const r = await generateText({
    model: aiModel(),
    prompt: 'What is the weather in Paris for three days?',
    tools: {
      get_weather: tool({
        description: 'Weather forecast for a city',
        inputSchema: z.object({ city: z.string(), days: z.number().int().min(1).max(5) }),
        execute: async (args) => { seen.push(args); return { forecast: 'sunny' }; },
      }),
    },
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  });
  assert.ok(seen.length >= 1, 'the tool ran');
  for (const a of seen) assertValid(weatherParams, a, 'tool input');
  assert.equal(r.steps.length, 2, `two steps: ${r.steps.map((s) => s.finishReason)}`);
  assert.equal(r.steps[0].finishReason, 'tool-calls');
  assert.equal(r.steps[0].toolCalls.length, seen.length);
  assert.equal(r.steps[1].finishReason, 'stop');
  assert.ok(r.text.length > 0, 'a final text answer');
});

test('AI SDK responses: streamText deltas concatenate to the text', async () => {
  const r = streamText({ model: aiModel(), prompt: 'Tell me about the sea.', maxRetries: 0, onError: () => {} });
  let joined = '';
  let n = 0;
  for await (const d of r.textStream) { joined += d; n++; }
  const text = await r.text;
  assert.ok(n > 0, 'deltas');
  assert.equal(joined, text);
  assert.ok(text.length > 0);
  assert.equal(await r.finishReason, 'stop');
  const usage = await r.usage;
  assert.equal(usage.outputTokens, text.split(' ').length);
});

test('AI SDK responses: streamText with a fault ends in an error part, not a clean finish', async () => {
  const errors = [];
  const r = streamText({
    model: aiModel(),
    prompt: LONG + 'Tell me a long story.',
    headers: { 'x-fleetmock-fault': 'error@3' },
    maxRetries: 0,
    onError: ({ error }) => errors.push(error),
  });
  const parts = [];
  for await (const p of r.fullStream) parts.push(p);
  const deltas = parts.filter((p) => p.type === 'text-delta');
  assert.equal(deltas.length, 3, 'three text deltas before the failure');
  assert.ok(parts.some((p) => p.type === 'error'), `an error part: ${parts.map((p) => p.type)}`);
  assert.ok(errors.length >= 1, 'onError called');
});

test('AI SDK responses: Output.object with a zod schema', async () => {
  const schema = z.object({ name: z.string(), age: z.number().int().min(0).max(150), kind: z.enum(['cat', 'dog']) });
  const r = await generateText({ model: aiModel(), prompt: 'Describe a pet.', output: Output.object({ schema }), maxRetries: 0 });
  assert.ok(schema.safeParse(r.output).success, JSON.stringify(r.output));
  const { $schema, ...jsonSchema } = z.toJSONSchema(schema);
  assertValid(jsonSchema, JSON.parse(r.text), 'text');
});

test('AI SDK responses: a second generateText on the first one\'s response.messages (store on: item_reference)', async () => {
  // With store left on (the default), the AI SDK sends an earlier assistant
  // text item back as {"type": "item_reference", "id": "msg_..."}, not its
  // content: the server has to resolve it from its stored responses.
  const first = await generateText({ model: aiModel(), prompt: 'Name three colours.', maxRetries: 0 });
  const second = await generateText({
    model: aiModel(),
    messages: [{ role: 'user', content: 'Name three colours.' }, ...first.response.messages, { role: 'user', content: 'And three more?' }],
    maxRetries: 0,
  });
  assert.ok(second.text.length > 0);
  assert.ok(second.usage.inputTokens > first.usage.inputTokens + first.usage.outputTokens,
    `the referenced answer counts in the prompt: ${second.usage.inputTokens} > ${first.usage.inputTokens} + ${first.usage.outputTokens}`);
});

// ---------------------------------------------------------------------------
// Reasoning (gpt-oss-120b supports it: server/default-config.json).

const OSS = 'accounts/fireworks/models/gpt-oss-120b';

test('openai responses: reasoning items, non-streamed and through the strict stream accumulator', async () => {
  const body = { model: OSS, input: 'Think about the sea, then answer.', reasoning: { effort: 'low' } };
  const res = await client.responses.create(body);
  assert.equal(res.object, 'response');
  assert.equal(res.status, 'completed');
  assert.deepEqual(res.output.map((o) => o.type), ['reasoning', 'message']);
  const r = res.output[0];
  assert.equal(typeof r.id, 'string');
  assert.ok(r.id.length > 0);
  assert.ok(Array.isArray(r.summary), 'reasoning.summary is an array (the AI SDK requires it)');
  const rtext = (r.content ?? []).map((c) => { assert.equal(c.type, 'reasoning_text'); return c.text; }).join('');
  assert.ok(rtext.length > 0, 'reasoning text');
  assert.ok(res.usage.output_tokens_details.reasoning_tokens > 0, 'reasoning_tokens > 0');
  assert.ok(res.usage.output_tokens_details.reasoning_tokens < res.usage.output_tokens, 'reasoning_tokens are part of output_tokens');
  assert.ok(res.output_text.length > 0, 'an answer after the reasoning');
  assert.ok(!res.output_text.includes(rtext), 'output_text holds only the answer');

  const stream = client.responses.stream(body);
  const events = [];
  stream.on('event', (e) => events.push(e));
  const final = await stream.finalResponse();
  assertSequence(events, 'reasoning stream');
  assert.deepEqual(final.output.map((o) => o.type), ['reasoning', 'message']);
  const rdeltas = events.filter((e) => e.type === 'response.reasoning_text.delta');
  assert.ok(rdeltas.length > 0, 'reasoning_text deltas');
  for (const e of rdeltas) assert.equal(e.item_id, final.output[0].id);
  const rdone = events.filter((e) => e.type === 'response.reasoning_text.done');
  assert.equal(rdone.length, 1);
  assert.equal(rdeltas.map((e) => e.delta).join(''), rdone[0].text, 'reasoning deltas concatenate to .done');
  assert.equal(final.output[0].content.map((c) => c.text).join(''), rdone[0].text, 'and to the final item');
  assert.equal(final.output_text, res.output_text, 'the same answer streamed or not');
  const firstText = events.findIndex((e) => e.type === 'response.output_text.delta');
  const reasoningDone = events.findIndex((e) => e.type === 'response.output_item.done' && e.output_index === 0);
  assert.ok(reasoningDone >= 0 && reasoningDone < firstText, 'the reasoning item is done before the answer starts');
});

test('reasoning.summary requested: summary parts are sent (all the AI SDK reads of reasoning)', async () => {
  // The AI SDK reads reasoning only from summary / reasoning_summary_* (not
  // reasoning_text), and asks for reasoning.summary "detailed" whenever a
  // reasoning effort is set.
  const res = await client.responses.create({
    model: OSS, input: 'Think about the sea, then answer.', reasoning: { effort: 'low', summary: 'detailed' },
  });
  const r = res.output.find((o) => o.type === 'reasoning');
  assert.ok(r, 'a reasoning item');
  assert.ok(r.summary.length >= 1, `summary parts when a summary is asked for: ${JSON.stringify(r.summary)}`);
  for (const s of r.summary) {
    assert.equal(s.type, 'summary_text');
    assert.ok(s.text.length > 0);
  }
  const g = await generateText({
    model: createOpenAI({ apiKey: 'resp-aisdk', baseURL: `${server.baseURL}/v1` }).responses(OSS),
    prompt: 'Think about the sea, then answer.',
    providerOptions: { openai: { forceReasoning: true, reasoningEffort: 'low' } },
    maxRetries: 0,
  });
  assert.ok((g.reasoningText ?? '').length > 0, 'the AI SDK sees the reasoning');
  assert.ok(g.text.length > 0);
});

test('congested pool: the AI SDK responses provider drops service_tier priority for non-OpenAI model ids, so both are shed', async () => {
  // A finding about the client, not the server: @ai-sdk/openai sends
  // service_tier "priority" only for model ids it knows as OpenAI's (gpt-4*,
  // gpt-5*, o3+), and warns "unsupported-setting" otherwise. On Fireworks
  // through this provider an app cannot ask for Priority; fleetmock shows
  // that as the real fleet would: the request goes out Standard and is shed.
  const srv = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS });
  try {
    await patchPool(srv, 'kimi-k2p6', { tenant_load: 1.2, tenant_priority_share: 0.2 });
    const model = createOpenAI({ apiKey: 'resp-aisdk-congested', baseURL: `${srv.baseURL}/v1` }).responses(KIMI);
    for (const providerOptions of [{}, { openai: { serviceTier: 'priority' } }]) {
      await assert.rejects(generateText({ model, prompt: 'Are you there?', maxRetries: 0, providerOptions }), (err) => {
        assert.equal(err.statusCode, 503, String(err));
        return true;
      });
    }
    const j = await fetch(`${srv.baseURL}/admin/requests?limit=1`).then((r) => r.json());
    assert.equal(j.data[0].route, 'responses');
    assert.equal(j.data[0].body.service_tier, undefined, 'the provider left service_tier out');
  } finally {
    await stopChecked(srv);
  }
});

// Conformance of the agent surface (docs/agents.md) with the real SDKs,
// unmodified but for the base URL: the openai SDK's tools, runTools,
// chat.completions.parse with zodResponseFormat and JSON mode; the AI SDK's
// generateObject, streamObject, tools with stopWhen and toolChoice
// 'required'; the Anthropic SDK's tool_use, streamed input_json_delta and
// thinking blocks. One server with --timing instant, no retries (except the
// congestion test, which checks the SDK retries the 503s).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import Anthropic from '@anthropic-ai/sdk';
import { createFireworks } from '@ai-sdk/fireworks';
import { generateObject, streamObject, generateText, streamText, tool, stepCountIs } from 'ai';
import { z } from 'zod';
import { startServer, admin } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const HUGE = { start: 1e9, ceiling: 1e9 };
const CONFIG = {
  accounts: { limits: { requests_per_min: HUGE, prompt_tps: HUGE, uncached_prompt_tps: HUGE, generated_tps: HUGE } },
};

let server, openai, anthropic, fireworks;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '5'], config: CONFIG });
  openai = new OpenAI({ apiKey: 'k', baseURL: `${server.baseURL}/inference/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'k', baseURL: `${server.baseURL}/inference`, maxRetries: 0 });
  fireworks = createFireworks({ apiKey: 'k', baseURL: `${server.baseURL}/inference/v1` });
});
after(async () => server?.stop());

const weatherParams = {
  type: 'object',
  properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 5 } },
  required: ['city', 'days'],
  additionalProperties: false,
};
const ask = [{ role: 'user', content: 'What is the weather in Paris for three days?' }];

function checkWeather(a) {
  assert.equal(typeof a.city, 'string');
  assert.ok(Number.isInteger(a.days) && a.days >= 1 && a.days <= 5, JSON.stringify(a));
}

test('openai: tools non-stream and stream (finalChatCompletion) give tool_calls with valid arguments', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: weatherParams } }];
  const r = await openai.chat.completions.create({ model: KIMI, messages: ask, tools, tool_choice: 'required' });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  checkWeather(JSON.parse(r.choices[0].message.tool_calls[0].function.arguments));

  const stream = openai.chat.completions.stream({ model: KIMI, messages: ask, tools });
  const done = await stream.finalChatCompletion();
  assert.equal(done.choices[0].finish_reason, 'tool_calls');
  const call = done.choices[0].message.tool_calls[0];
  assert.match(call.id, /^call_/);
  checkWeather(JSON.parse(call.function.arguments));
});

test('openai: runTools executes the local function and ends in text', async () => {
  let calls = 0;
  const runner = openai.chat.completions.runTools({
    model: KIMI,
    messages: ask,
    tools: [{
      type: 'function',
      function: {
        name: 'get_weather',
        parameters: weatherParams,
        parse: JSON.parse,
        function: (args) => { calls++; checkWeather(args); return { sky: 'clear', temp_c: 21 }; },
      },
    }],
  });
  const content = await runner.finalContent();
  assert.ok(calls >= 1, 'the tool ran');
  assert.equal(typeof content, 'string');
  assert.ok(content.length > 0);
});

test('openai: chat.completions.parse with zodResponseFormat, and json_object', async () => {
  const Plan = z.object({
    title: z.string(),
    steps: z.array(z.object({ name: z.string(), minutes: z.number().int().min(1).max(60) })).min(1).max(4),
    status: z.enum(['draft', 'final']),
    owner: z.string().nullable(),
  });
  const r = await openai.chat.completions.parse({ model: KIMI, messages: ask, response_format: zodResponseFormat(Plan, 'plan') });
  const parsed = r.choices[0].message.parsed;
  assert.deepEqual(Plan.parse(parsed), parsed);
  const j = await openai.chat.completions.create({ model: KIMI, messages: ask, response_format: { type: 'json_object' } });
  assert.equal(typeof JSON.parse(j.choices[0].message.content), 'object');
});

test('openai: reasoning_effort gives reasoning_content and reasoning_tokens', async () => {
  const r = await openai.chat.completions.create({ model: KIMI, messages: ask, reasoning_effort: 'medium' });
  assert.ok(r.choices[0].message.reasoning_content.length > 0);
  assert.ok(r.usage.completion_tokens_details.reasoning_tokens > 0);
});

test('AI SDK: generateObject and streamObject with a zod schema', async () => {
  const schema = z.object({ name: z.string(), tags: z.array(z.string()).max(3), score: z.number().min(0).max(1) });
  const { object } = await generateObject({ model: fireworks(KIMI), schema, prompt: 'Describe a fleet', maxRetries: 0 });
  assert.deepEqual(schema.parse(object), object);
  const s = streamObject({ model: fireworks(KIMI), schema, prompt: 'Describe a fleet', maxRetries: 0 });
  let partials = 0;
  for await (const _ of s.partialObjectStream) partials++; // eslint-disable-line no-unused-vars
  const final = await s.object;
  assert.deepEqual(schema.parse(final), final);
  assert.ok(partials >= 1);
});

test('AI SDK: two tools with stopWhen(stepCountIs(5)) run a tool and end in text; toolChoice required', async () => {
  let ran = 0;
  const tools = {
    weather: tool({ description: 'weather', inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => { ran++; return { city, sky: 'clear' }; } }),
    time: tool({ description: 'time', inputSchema: z.object({ zone: z.string() }), execute: async () => { ran++; return '12:00'; } }),
  };
  const r = await generateText({ model: fireworks(KIMI), tools, stopWhen: stepCountIs(5), prompt: 'Weather and time in Paris?', maxRetries: 0 });
  assert.ok(ran >= 1, 'a tool ran');
  assert.ok(r.steps.length >= 2, `steps: ${r.steps.length}`);
  assert.ok(r.text.length > 0, 'ends in text');
  const req = await generateText({ model: fireworks(KIMI), tools, toolChoice: 'required', prompt: 'Weather?', maxRetries: 0 });
  assert.ok(req.toolCalls.length >= 1);
  const st = streamText({ model: fireworks(KIMI), tools, stopWhen: stepCountIs(3), prompt: 'Weather?', maxRetries: 0 });
  assert.ok((await st.text).length > 0);
  assert.ok((await st.steps).length >= 2);
});

test('Anthropic SDK: tool_use with tool_choice any, streamed input_json_delta, then text after tool_result', async () => {
  const tools = [{ name: 'get_weather', description: 'weather', input_schema: weatherParams }];
  const m = await anthropic.messages.create({ model: KIMI, max_tokens: 1024, tools, tool_choice: { type: 'any' }, messages: ask });
  assert.equal(m.stop_reason, 'tool_use');
  const use = m.content.find((b) => b.type === 'tool_use');
  checkWeather(use.input);

  const stream = anthropic.messages.stream({ model: KIMI, max_tokens: 1024, tools, tool_choice: { type: 'any' }, messages: ask });
  let deltas = 0;
  stream.on('inputJson', () => deltas++);
  const fin = await stream.finalMessage();
  const su = fin.content.find((b) => b.type === 'tool_use');
  checkWeather(su.input);
  assert.ok(deltas > 1, 'input_json_delta in pieces');

  const next = await anthropic.messages.create({
    model: KIMI, max_tokens: 1024, tools,
    messages: [...ask, { role: 'assistant', content: m.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'clear' }] }],
  });
  assert.equal(next.stop_reason, 'end_turn');
  assert.equal(next.content[0].type, 'text');
});

test('Anthropic SDK: thinking blocks with a signature before the text, streamed too', async () => {
  const body = { model: KIMI, max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: ask };
  const m = await anthropic.messages.create(body);
  assert.equal(m.content[0].type, 'thinking');
  assert.ok(m.content[0].thinking.length > 0 && m.content[0].signature.length > 0);
  assert.equal(m.content[1].type, 'text');
  const stream = anthropic.messages.stream(body);
  let thinking = '';
  stream.on('thinking', (d) => { thinking += d; });
  const fin = await stream.finalMessage();
  assert.equal(fin.content[0].type, 'thinking');
  assert.equal(fin.content[0].thinking, thinking);
  assert.ok(fin.content[0].signature.length > 0);
});

test('a congested pool: tool calls get 503s that the openai SDK retries', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: { ...CONFIG, pools: { 'kimi-k2p6': { tenant_load: 50 } } } });
  try {
    const client = new OpenAI({ apiKey: 'k', baseURL: `${srv.baseURL}/inference/v1`, maxRetries: 2 });
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: weatherParams } }];
    await assert.rejects(client.chat.completions.create({ model: KIMI, messages: ask, tools }), (e) => e.status === 503);
    const total = (await admin(srv, 'GET', '/admin/accounts')).json.accounts[0].total;
    assert.equal(total.requests, 3, 'the first try and 2 retries');
    assert.equal(total.status_503, 3, 'all shed');
  } finally {
    await srv.stop();
  }
});

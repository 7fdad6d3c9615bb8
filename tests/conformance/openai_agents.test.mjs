// Conformance of the Responses API with the OpenAI Agents SDK
// (@openai/agents), unmodified: its OpenAIResponsesModel on an openai client
// whose base URL is the server, tracing export off. The agent loop re-sends
// the whole conversation each turn (its own function_call items, with id and
// status, and function_call_output items with status), so the server must
// take its own output items back as input. The auto rule (docs/agents.md)
// makes the model call the tool while no tool result follows the last user
// message, and answer in text once one does: one tool turn, then the answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  Agent, run, tool, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled,
} from '@openai/agents';
import { z } from 'zod';
import Ajv from 'ajv';
import { startServer, stopChecked, patchPool, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const API_KEY = 'agents-key';

let server;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '3'], config: NO_LIMITS });
  setDefaultOpenAIClient(new OpenAI({ apiKey: API_KEY, baseURL: `${server.baseURL}/v1`, maxRetries: 0, timeout: 20000 }));
  setOpenAIAPI('responses');
  setTracingDisabled(true);
});
after(async () => { if (server) await stopChecked(server); });

const weatherSchema = z.object({ city: z.string(), days: z.number().int().min(1).max(5) });
const weatherJsonSchema = {
  type: 'object',
  properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 5 } },
  required: ['city', 'days'],
  additionalProperties: false,
};
const validate = new Ajv({ strict: false }).compile(weatherJsonSchema);

function makeAgent(calls, modelSettings = undefined) {
  const getWeather = tool({
    name: 'get_weather',
    description: 'Weather forecast for a city',
    parameters: weatherSchema,
    execute: async (args) => {
      calls.push(args);
      return `Sunny in ${args.city} for ${args.days} days.`;
    },
  });
  return new Agent({
    name: 'Forecaster',
    instructions: 'You answer weather questions. Always use get_weather first.',
    model: KIMI,
    tools: [getWeather],
    ...(modelSettings ? { modelSettings } : {}),
  });
}

function checkCalls(calls) {
  assert.ok(calls.length >= 1, 'the tool was called');
  for (const a of calls) assert.ok(validate(a), `arguments valid under the schema: ${JSON.stringify(a)}`);
}

test('agents run(): one tool turn through the Responses API, then a text answer', async () => {
  const calls = [];
  const result = await run(makeAgent(calls), 'What is the weather in Paris for three days?');
  checkCalls(calls);
  assert.equal(typeof result.finalOutput, 'string');
  assert.ok(result.finalOutput.length > 0, 'finalOutput non-empty');
  // Two model turns: the call, then the answer after the tool result.
  assert.equal(result.rawResponses.length, 2, `two model responses: ${result.rawResponses.length}`);
  const [first, second] = result.rawResponses;
  assert.ok(first.output.some((i) => i.type === 'function_call'), 'turn 1 calls the tool');
  assert.ok(second.output.some((i) => i.type === 'message'), 'turn 2 answers in text');
  assert.ok(second.usage.inputTokens > first.usage.inputTokens, 'turn 2 re-sends the conversation');
  assert.ok(first.responseId && second.responseId && first.responseId !== second.responseId, 'response ids');
  const items = result.newItems.map((i) => i.type);
  assert.deepEqual(items.filter((t) => t === 'tool_call_item').length, calls.length, `items: ${items}`);
  assert.equal(items.at(-1), 'message_output_item');
  assert.ok(result.state.usage.inputTokens > 0 && result.state.usage.outputTokens > 0, 'usage summed from the responses');
});

test('agents run() streamed: toTextStream gives the final output, the tool is called', async () => {
  const calls = [];
  const result = await run(makeAgent(calls), 'What is the weather in Rome for two days?', { stream: true });
  let text = '';
  for await (const chunk of result.toTextStream()) text += chunk;
  await result.completed;
  assert.equal(result.error ?? null, null, `no run error: ${result.error}`);
  checkCalls(calls);
  assert.equal(typeof result.finalOutput, 'string');
  assert.ok(result.finalOutput.length > 0, 'finalOutput non-empty');
  assert.equal(text, result.finalOutput, 'the text stream is the final output');
  assert.equal(result.rawResponses.length, 2, 'two model responses');
});

test('agents run() streamed: raw model events carry the Responses stream events in order', async () => {
  const calls = [];
  const result = await run(makeAgent(calls), 'What is the weather in Oslo for four days?', { stream: true });
  const raw = [];
  for await (const ev of result) {
    if (ev.type === 'raw_model_stream_event' && ev.data.type === 'model') raw.push(ev.data.event);
  }
  await result.completed;
  checkCalls(calls);
  const types = raw.map((e) => e.type);
  // Two streamed responses, each from response.created to response.completed.
  assert.equal(types.filter((t) => t === 'response.created').length, 2, types.join(' '));
  assert.equal(types.filter((t) => t === 'response.completed').length, 2, types.join(' '));
  assert.ok(types.includes('response.function_call_arguments.delta'), 'the call streamed its arguments');
  assert.ok(types.includes('response.output_text.delta'), 'the answer streamed its text');
  const text = raw.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  assert.equal(text, result.finalOutput);
});

test('agents run() with previousResponseId: the second run continues on the server-side conversation', async () => {
  const calls = [];
  const agent = makeAgent(calls);
  const first = await run(agent, 'What is the weather in Paris for three days?');
  assert.ok(first.lastResponseId, 'lastResponseId');
  const second = await run(agent, 'And in Lyon for two days?', { previousResponseId: first.lastResponseId });
  assert.equal(typeof second.finalOutput, 'string');
  assert.ok(second.finalOutput.length > 0);
  assert.ok(calls.length >= 2, 'the tool ran in both runs');
  checkCalls(calls);
  // The continued run sees the first one's conversation: its prompt is larger.
  assert.ok(second.rawResponses[0].usage.inputTokens > first.rawResponses[0].usage.inputTokens,
    `${second.rawResponses[0].usage.inputTokens} > ${first.rawResponses[0].usage.inputTokens}`);
});

test('congested pool: the agent run fails on Standard (503) and completes with service_tier priority', async () => {
  await patchPool(server, 'kimi-k2p6', { tenant_load: 1.2, tenant_priority_share: 0.2 });
  try {
    const calls = [];
    await assert.rejects(run(makeAgent(calls), 'What is the weather in Oslo for 2 days?'), (err) => {
      assert.equal(err.status, 503, String(err));
      return true;
    });
    assert.equal(calls.length, 0, 'shed before the first step');
    // the Agents SDK passes modelSettings.providerData into the request body
    const agent = makeAgent(calls, { providerData: { service_tier: 'priority' } });
    const result = await run(agent, 'What is the weather in Oslo for 2 days?');
    checkCalls(calls);
    assert.equal(typeof result.finalOutput, 'string');
    assert.ok(result.finalOutput.length > 0);
  } finally {
    await patchPool(server, 'kimi-k2p6', { tenant_load: 0, tenant_priority_share: 0 });
  }
});

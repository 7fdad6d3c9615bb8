// Conformance: LangChain's ChatOpenAI (@langchain/openai) against fleetmock,
// unmodified but for the base URL: bindTools gives tool_calls with parsed
// arguments, and withStructuredOutput works with each of its methods.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatOpenAI } from '@langchain/openai';
import { HumanMessage, ToolMessage } from '@langchain/core/messages';
import { z } from 'zod';
import { startServer, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
let server, model;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '4'], config: NO_LIMITS });
  model = new ChatOpenAI({ model: KIMI, apiKey: 'k', maxRetries: 0, configuration: { baseURL: `${server.baseURL}/inference/v1` } });
});
after(async () => server?.stop());

const weather = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

test('bindTools: tool_calls with parsed args, then text after the ToolMessage', async () => {
  const bound = model.bindTools([weather]);
  const ask = [new HumanMessage('Weather in Paris?')];
  const ai = await bound.invoke(ask);
  assert.ok(ai.tool_calls.length >= 1, JSON.stringify(ai));
  assert.equal(ai.tool_calls[0].name, 'get_weather');
  assert.equal(typeof ai.tool_calls[0].args.city, 'string');
  const next = await bound.invoke([...ask, ai, new ToolMessage({ tool_call_id: ai.tool_calls[0].id, content: 'sunny' })]);
  assert.equal(next.tool_calls.length, 0);
  assert.ok(typeof next.content === 'string' && next.content.length > 0);
});

test('withStructuredOutput: functionCalling and jsonSchema give objects valid under the zod schema', async () => {
  const Person = z.object({ name: z.string(), age: z.number().int().min(0).max(120), role: z.enum(['dev', 'ops']) });
  for (const method of ['functionCalling', 'jsonSchema']) {
    const out = await model.withStructuredOutput(Person, { method }).invoke('Describe an engineer');
    assert.deepEqual(Person.parse(out), out, method);
  }
});

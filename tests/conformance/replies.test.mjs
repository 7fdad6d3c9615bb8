// Reply rules (docs/replies.md) with the real SDKs, unmodified but for the
// base URL: small agents with one tool, written with the openai SDK, the AI
// SDK and the Anthropic SDK, driven through two steps (a scripted tool call,
// then a scripted answer that echoes the tool's result) and asserted
// exactly; the same agent under a congested pool, escalating to Priority on
// the 503; usage overrides; a reply that fails its stream; test ids that
// keep two tests' rules apart; --replies files; server.unmatched "error".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, tool, stepCountIs } from 'ai';
import { z } from 'zod';
import { startServer, admin, patchPool, runCli, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';

let server;
before(async () => {
  server = await startServer({ args: ['--timing', 'instant', '--seed', '5'], config: NO_LIMITS });
});
after(async () => server?.stop());

const openaiFor = (testId, extra = {}) =>
  new OpenAI({ apiKey: 'k', baseURL: `${server.baseURL}/inference/v1`, maxRetries: 0, defaultHeaders: { 'x-fleetmock-test-id': testId }, ...extra });

async function addRule(rule) {
  const r = await admin(server, 'POST', '/admin/replies', rule);
  assert.equal(r.status, 201, r.text);
  return r.json.id;
}

// The two rules of the weather agent, scoped to one test.
async function weatherRules(testId) {
  await addRule({ match: { test_id: testId, last_user: 'weather', tool_result: false }, reply: { tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] } });
  await addRule({ match: { test_id: testId, tool_result: 'get_weather' }, reply: { content: 'It is sunny in Paris ({{tool_result}}).' } });
}

const weatherTool = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};
const getWeather = ({ city }) => (city === 'Paris' ? '22C' : 'unknown city');

// The app: an openai-SDK agent that runs tool calls until the model answers.
async function openaiAgent(client, question, { stream = false, create = {} } = {}) {
  const messages = [{ role: 'user', content: question }];
  const calls = [];
  for (let step = 0; step < 4; step++) {
    const body = { model: KIMI, messages, tools: [weatherTool], ...create };
    const c = stream ? await client.chat.completions.stream(body).finalChatCompletion() : await client.chat.completions.create(body);
    const msg = c.choices[0].message;
    if (!msg.tool_calls?.length) return { text: msg.content, calls, finish: c.choices[0].finish_reason };
    messages.push(msg);
    for (const call of msg.tool_calls) {
      const args = JSON.parse(call.function.arguments);
      calls.push({ name: call.function.name, args });
      messages.push({ role: 'tool', tool_call_id: call.id, content: getWeather(args) });
    }
  }
  throw new Error('the agent did not finish in 4 steps');
}

test('openai SDK agent: a scripted tool call, then a scripted answer, streamed and not', async () => {
  await weatherRules('oa');
  for (const stream of [false, true]) {
    const out = await openaiAgent(openaiFor('oa'), 'What is the weather in Paris?', { stream });
    assert.deepEqual(out.calls, [{ name: 'get_weather', args: { city: 'Paris' } }]);
    assert.equal(out.text, 'It is sunny in Paris (22C).');
    assert.equal(out.finish, 'stop');
  }
});

test('AI SDK agent: generateText with a tool and stopWhen takes the two scripted steps', async () => {
  await weatherRules('ai');
  const provider = createOpenAICompatible({ name: 'fleetmock', apiKey: 'k', baseURL: `${server.baseURL}/inference/v1`, headers: { 'x-fleetmock-test-id': 'ai' } });
  const seen = [];
  const r = await generateText({
    model: provider(KIMI),
    maxRetries: 0,
    prompt: 'What is the weather in Paris?',
    tools: { get_weather: tool({ description: 'weather', inputSchema: z.object({ city: z.string() }), execute: async (a) => { seen.push(a); return getWeather(a); } }) },
    stopWhen: stepCountIs(4),
  });
  assert.deepEqual(seen, [{ city: 'Paris' }]);
  assert.equal(r.steps.length, 2);
  assert.equal(r.text, 'It is sunny in Paris (22C).');
});

test('Anthropic SDK agent: tool_use, then the text that echoes the tool_result', async () => {
  await addRule({ match: { test_id: 'an', route: 'messages', tool_result: false }, reply: { reasoning: 'I should look it up.', tool_calls: [{ name: 'lookup', arguments: { q: '{{last_user}}' } }] } });
  await addRule({ match: { test_id: 'an', tool_result: 'lookup' }, reply: { content: 'Found: {{tool_result}}' } });
  const client = new Anthropic({ apiKey: 'k', baseURL: `${server.baseURL}/inference`, maxRetries: 0, defaultHeaders: { 'x-fleetmock-test-id': 'an' } });
  const tools = [{ name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }];
  const messages = [{ role: 'user', content: 'capital of France?' }];
  const first = await client.messages.create({ model: KIMI, max_tokens: 2000, messages, tools, thinking: { type: 'enabled', budget_tokens: 1024 } });
  assert.equal(first.stop_reason, 'tool_use');
  const use = first.content.find((b) => b.type === 'tool_use');
  assert.deepEqual(use.input, { q: 'capital of France?' });
  assert.equal(first.content.find((b) => b.type === 'thinking')?.thinking, 'I should look it up.');
  messages.push({ role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'Paris' }] });
  const second = await client.messages.stream({ model: KIMI, max_tokens: 200, messages, tools }).finalMessage();
  assert.equal(second.content[0].text, 'Found: Paris');
  assert.equal(second.stop_reason, 'end_turn');
});

test('usage overrides are what the answer reports and what the account is billed', async () => {
  await addRule({ match: { test_id: 'usage' }, reply: { content: 'exact', usage: { prompt_tokens: 1000, cached_tokens: 0, completion_tokens: 7 } } });
  const c = await openaiFor('usage', { apiKey: 'usage-key' }).chat.completions.create({ model: KIMI, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(c.choices[0].message.content, 'exact');
  assert.equal(c.usage.prompt_tokens, 1000);
  assert.equal(c.usage.completion_tokens, 7);
  const acc = (await admin(server, 'GET', '/admin/accounts')).json.accounts.find((a) => a.total.prompt_tokens === 1000);
  assert.ok(acc, 'an account billed for the 1000 prompt tokens');
  assert.equal(acc.total.generated_tokens, 7);
});

test('a reply can fail its stream after N tokens: the SDK sees the error after them', async () => {
  await addRule({ match: { test_id: 'fail' }, reply: { content: 'aaaabbbbccccdddd', fault: { stream: 'error', after_tokens: 2 } } });
  const stream = await openaiFor('fail').chat.completions.create({ model: KIMI, messages: [{ role: 'user', content: 'hi' }], stream: true });
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  });
  assert.equal(text, 'aaaabbbb');
});

test('two tests with their own test ids never see each other\'s rules or faults', async () => {
  await addRule({ match: { test_id: 'left' }, reply: { content: 'left answer' } });
  await addRule({ match: { test_id: 'right' }, reply: { content: 'right answer' } });
  const f = await admin(server, 'POST', '/admin/faults', { match: { test_id: 'right' }, action: { status: 500 }, count: 1 });
  assert.equal(f.status, 200, f.text);
  const ask = (id) => openaiFor(id).chat.completions.create({ model: KIMI, messages: [{ role: 'user', content: 'hi' }] });
  const [l1, l2] = await Promise.all([ask('left'), ask('left')]);
  assert.equal(l1.choices[0].message.content, 'left answer');
  assert.equal(l2.choices[0].message.content, 'left answer');
  await assert.rejects(ask('right'), (e) => e.status === 500); // right's fault, not left's
  assert.equal((await ask('right')).choices[0].message.content, 'right answer');
  const other = await openaiFor('nobody').chat.completions.create({ model: KIMI, messages: [{ role: 'user', content: 'hi' }] });
  assert.notEqual(other.choices[0].message.content, 'left answer');
  assert.notEqual(other.choices[0].message.content, 'right answer');
  const del = await admin(server, 'DELETE', '/admin/replies?test_id=left');
  assert.equal(del.json.deleted, 1);
  assert.notEqual((await ask('left')).choices[0].message.content, 'left answer');
  const list = (await admin(server, 'GET', '/admin/replies?test_id=right')).json.data;
  assert.equal(list.length, 1);
  assert.equal(list[0].fired, 1);
});

test('under a congested pool the scripted agent is shed on Standard and escalates to Priority', async () => {
  const srv = await startServer({ args: ['--timing', 'instant', '--seed', '5'], config: NO_LIMITS });
  try {
    await admin(srv, 'POST', '/admin/replies', { match: { test_id: 'cong', tool_result: false }, reply: { tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] } });
    await admin(srv, 'POST', '/admin/replies', { match: { test_id: 'cong', tool_result: 'get_weather' }, reply: { content: 'It is sunny in Paris ({{tool_result}}).' } });
    await patchPool(srv, 'kimi-k2p6', { tenant_load: 1.3, tenant_priority_share: 0.1 });
    const client = new OpenAI({ apiKey: 'k', baseURL: `${srv.baseURL}/inference/v1`, maxRetries: 0, defaultHeaders: { 'x-fleetmock-test-id': 'cong' } });
    // The app's policy: a 503 is the fleet shedding Standard, so it escalates to Priority.
    const escalating = {
      chat: { completions: { create: async (body) => {
        try { return await client.chat.completions.create(body); } catch (e) {
          if (e.status !== 503) throw e;
          return client.chat.completions.create({ ...body, service_tier: 'priority' });
        }
      } } },
    };
    const out = await openaiAgent(escalating, 'What is the weather in Paris?');
    assert.equal(out.text, 'It is sunny in Paris (22C).');
    const journal = (await admin(srv, 'GET', '/admin/requests?test_id=cong')).json.data.reverse();
    assert.deepEqual(journal.map((e) => [e.status, e.tier]), [[503, 'standard'], [200, 'priority'], [503, 'standard'], [200, 'priority']]);
    assert.ok(journal.filter((e) => e.status === 200).every((e) => e.reply > 0));
  } finally {
    await srv.stop();
  }
});

test('--replies FILE (JSON Lines) answers from boot; --check-config names file:line and the field', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fm-replies-'));
  try {
    const good = path.join(dir, 'good.jsonl');
    fs.writeFileSync(good, '# the boot rules\n{"match": {"last_user": "ping"}, "reply": {"content": "pong"}}\n\n{"reply": {"content": "other"}}\n');
    const srv = await startServer({ args: ['--timing', 'instant', '--replies', good] });
    try {
      const client = new OpenAI({ apiKey: 'k', baseURL: `${srv.baseURL}/inference/v1`, maxRetries: 0 });
      const ask = async (q) => (await client.chat.completions.create({ model: KIMI, messages: [{ role: 'user', content: q }] })).choices[0].message.content;
      assert.equal(await ask('ping'), 'pong');
      assert.equal(await ask('hello'), 'other');
      await admin(srv, 'DELETE', '/admin/replies');
      assert.notEqual(await ask('ping'), 'pong');
      await admin(srv, 'POST', '/admin/reset'); // back to the boot rules
      assert.equal(await ask('ping'), 'pong');
    } finally {
      await srv.stop();
    }
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"reply": {"content": "ok"}}\n{"match": {"modle": "x"}, "reply": {"content": "x"}}\n');
    fs.writeFileSync(path.join(dir, 'fleet.json'), '{}');
    const r = await runCli(['--check-config', path.join(dir, 'fleet.json'), '--replies', bad]);
    assert.equal(r.code, 2);
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    assert.match(out, /bad\.jsonl:2\.match\.modle: unknown field/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('server.unmatched "error": a 404 the SDK does not retry, naming the closest rule', async () => {
  const srv = await startServer({ args: ['--timing', 'instant'], config: { server: { unmatched: 'error' } } });
  try {
    await admin(srv, 'POST', '/admin/replies', { match: { model: KIMI, last_user: 'weather' }, reply: { content: 'x' } });
    const client = new OpenAI({ apiKey: 'k', baseURL: `${srv.baseURL}/inference/v1`, maxRetries: 2 });
    await assert.rejects(client.chat.completions.create({ model: KIMI, messages: [{ role: 'user', content: 'hello' }] }), (e) => {
      assert.equal(e.status, 404);
      assert.match(e.message, /no reply rule matched.*rule 1.*"last_user"/);
      return true;
    });
    const m = await (await fetch(`${srv.baseURL}/metrics`)).text();
    assert.match(m, /fleetmock_requests_total\{[^}]*status="404"[^}]*\} 1\b/);
  } finally {
    await srv.stop();
  }
});

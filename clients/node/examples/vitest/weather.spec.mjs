// The fleetmock test kit under Vitest: a small app written with the openai
// SDK (its retries off), tested against a real fleetmock the kit starts for
// this file. Run: npm ci && npx vitest run (FLEETMOCK_BIN, PATH or the repo
// build supplies the binary; docs/testkits.md).
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import OpenAI from 'openai';
import { startFleetmock } from 'fleetmock-client-node/testkit';

const GLM = 'accounts/fireworks/models/glm-5p1';
const TOOLS = [{
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
}];

/**
 * The app under test: asks the model, runs the weather tool when it is
 * called, and asks again; on a 503 (and only a 503) it retries on Priority.
 * Returns the answer and the tiers it used.
 */
async function askWeather(client, question, weather = async () => ({ sky: 'clear' })) {
  const messages = [{ role: 'user', content: question }];
  const tiers = [];
  let tier;
  for (let step = 0; step < 4; step++) {
    let r;
    try {
      r = await client.chat.completions.create({ model: GLM, messages, tools: TOOLS, max_tokens: 64, service_tier: tier });
    } catch (e) {
      if (e.status !== 503 || tier === 'priority') throw e;
      tiers.push('503');
      tier = 'priority';
      step--;
      continue;
    }
    tiers.push(r.service_tier); // 'default' for Standard, as Fireworks says
    const msg = r.choices[0].message;
    if (!msg.tool_calls?.length) return { answer: msg.content, tiers };
    messages.push(msg);
    for (const call of msg.tool_calls)
      messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify(await weather(JSON.parse(call.function.arguments))) });
  }
  throw new Error('too many steps');
}

describe('the weather app', () => {
  let fm;
  let client;
  beforeAll(async () => {
    // A server of this file's own: no test id needed. Files sharing one
    // server (a globalSetup) would each pass testId and send fm.headers.
    fm = await startFleetmock({ seed: 1 });
    client = new OpenAI({ baseURL: fm.openaiBaseURL, apiKey: 'k', maxRetries: 0, defaultHeaders: fm.headers });
  });
  afterAll(async () => { await fm?.stop(); });
  beforeEach(async () => { await fm.reset(); });

  it('runs the tool once, then answers in text', async () => {
    // Unscripted, fleetmock's auto rule calls a tool on the first turn and
    // answers in text once a tool result follows (docs/agents.md).
    const cities = [];
    const r = await askWeather(client, 'Weather in Paris?', async ({ city }) => { cities.push(city); return { sky: 'clear' }; });
    expect(r.tiers).toEqual(['default', 'default']);
    expect(cities).toHaveLength(1);
    expect(typeof cities[0]).toBe('string');
    expect(typeof r.answer).toBe('string');
  });

  it('retries on Priority when the pool sheds Standard', async () => {
    await fm.congest('glm-5p1', 1.2, 0.2);
    const r = await client.chat.completions.create({ model: GLM, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })
      .catch((e) => e);
    expect(r.status).toBe(503);
    const { tiers } = await askWeather(client, 'Weather in Paris?');
    expect(tiers).toEqual(['503', 'priority', 'priority']);
  });

  it('does not escalate on a 500', async () => {
    await fm.fault({ match: { model: GLM }, action: { status: 500 }, count: 1 });
    await expect(askWeather(client, 'Weather in Paris?')).rejects.toMatchObject({ status: 500 });
    await expect(askWeather(client, 'Weather in Paris?')).resolves.toBeTruthy(); // it fired once
  });

  it('calls the tool and answers, scripted by reply rules', async (ctx) => {
    try {
      await fm.replies();
    } catch (e) {
      if (e.status === 404) ctx.skip('this fleetmock has no /admin/replies yet (issue 14)');
      throw e;
    }
    await fm.clearRequests();
    await fm.reply({
      match: { model: GLM },
      sequence: [
        { tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
        { content: 'It is sunny in Paris.' },
      ],
    });
    const cities = [];
    const r = await askWeather(client, 'Weather in Paris?', async ({ city }) => { cities.push(city); return { sky: 'clear' }; });
    expect(r.answer).toBe('It is sunny in Paris.');
    expect(cities).toEqual(['Paris']);
    const sent = await fm.requests();
    expect(sent.map((e) => e.status)).toEqual([200, 200]);
  });
});

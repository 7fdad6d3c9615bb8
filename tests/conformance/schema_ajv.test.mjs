// Every schema of the corpus (tests/schemas/*.json: hand-written edge cases,
// zod 4 toJSONSchema output, the SDKs' helpers) sent the way apps send it,
// as response_format json_schema and as a tool's parameters, streamed and
// not, for seeds 1, 2 and 3: each generated value must validate under ajv
// (with ajv-formats), the reference validator the JS ecosystem uses, and the
// same (seed, request) must give the same bytes twice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import AjvDraft4 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { startServer, post, streamRequest, NO_LIMITS } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas');
const SEEDS = [1, 2, 3];

/** ajv for the schema's draft: draft-04 (boolean exclusive bounds), 2020-12, else draft-07. */
function validator(schema) {
  const opts = { strict: false, allErrors: true };
  const obj = schema !== null && typeof schema === 'object';
  const s = String((obj && schema.$schema) ?? '');
  const draft4 = s.includes('draft-04') || (obj && (typeof schema.exclusiveMinimum === 'boolean' || typeof schema.exclusiveMaximum === 'boolean'));
  const ajv = draft4 ? new AjvDraft4(opts)
    : obj && (s.includes('2020-12') || 'prefixItems' in schema || '$defs' in schema) ? new Ajv2020(opts)
      : new Ajv(opts);
  addFormats(ajv);
  return ajv.compile(schema);
}

const corpus = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()
  .map((f) => ({ name: f, schema: JSON.parse(readFileSync(join(DIR, f), 'utf8')) }));

let server;
before(async () => { server = await startServer({ args: ['--timing', 'instant'], config: NO_LIMITS }); });
after(async () => server?.stop());

test('the corpus is there', () => assert.ok(corpus.length >= 60, `${corpus.length} schemas in ${DIR}`));

async function streamed(body) {
  const r = await streamRequest(server, CHAT, { ...body, stream: true });
  assert.equal(r.status, 200, r.raw.slice(0, 300));
  let content = '', args = '';
  for (const e of r.events) {
    const d = e.json?.choices?.[0]?.delta;
    if (d?.content) content += d.content;
    for (const tc of d?.tool_calls ?? []) args += tc.function?.arguments ?? '';
  }
  return { content, args };
}

for (const { name, schema } of corpus) {
  test(`${name}: valid under ajv, streamed and not, seeds ${SEEDS.join(', ')}`, async () => {
    const valid = validator(schema);
    const check = (text, what) => {
      let v;
      assert.doesNotThrow(() => { v = JSON.parse(text); }, `${what}: not JSON: ${text.slice(0, 200)}`);
      assert.ok(valid(v), `${what}: ${JSON.stringify(valid.errors)} for ${text.slice(0, 300)}`);
    };
    const objectSchema = schema && typeof schema === 'object' && (schema.type === 'object' || (!schema.type && schema.properties));
    for (const seed of SEEDS) {
      const rf = { model: KIMI, seed, max_tokens: 60000, messages: [{ role: 'user', content: `answer as ${name}` }],
        response_format: { type: 'json_schema', json_schema: { name: 'corpus', schema, strict: true } } };
      const a = await post(server, CHAT, rf);
      assert.equal(a.status, 200, a.text.slice(0, 300));
      assert.equal(a.json.choices[0].finish_reason, 'stop');
      check(a.json.choices[0].message.content, `seed ${seed} response_format`);
      const b = await post(server, CHAT, rf);
      assert.equal(b.json.choices[0].message.content, a.json.choices[0].message.content, 'same seed, same bytes');
      const s = await streamed(rf);
      assert.equal(s.content, a.json.choices[0].message.content, 'the stream says what the body says');
      if (!objectSchema) continue; // tool arguments are objects
      const tc = { model: KIMI, seed, max_tokens: 60000, messages: rf.messages, tool_choice: 'required', parallel_tool_calls: false,
        tools: [{ type: 'function', function: { name: 'corpus', parameters: schema } }] };
      const t = await post(server, CHAT, tc);
      assert.equal(t.status, 200, t.text.slice(0, 300));
      check(t.json.choices[0].message.tool_calls[0].function.arguments, `seed ${seed} tool arguments`);
      const ts = await streamed(tc);
      assert.equal(ts.args, t.json.choices[0].message.tool_calls[0].function.arguments);
    }
  });
}

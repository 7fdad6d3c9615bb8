// One "test file" of conformance.isolation: run twice at once, with
// different FLEETMOCK_TEST_ID values, against the one server at FLEETMOCK_URL.
// It scripts its own answer and fault, asks many times, and checks that it
// sees only its own answers, its own fault and its own journal entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const url = process.env.FLEETMOCK_URL;
const id = process.env.FLEETMOCK_TEST_ID;
const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const admin = async (method, path, body) => {
  const r = await fetch(url + path, { method, headers: { 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
};

test(`test file ${id}: its rules, faults and journal are its own`, async () => {
  assert.ok(url && id, 'FLEETMOCK_URL and FLEETMOCK_TEST_ID are set by the parent test');
  assert.equal((await admin('POST', '/admin/replies', { match: { test_id: id }, reply: { content: `answer for ${id}` } })).status, 201);
  assert.equal((await admin('POST', '/admin/faults', { match: { test_id: id, last_user: 'fail me' }, action: { status: 500 }, count: 2 })).status, 200);
  const client = new OpenAI({ apiKey: `key-${id}`, baseURL: `${url}/inference/v1`, maxRetries: 0, defaultHeaders: { 'x-fleetmock-test-id': id } });
  const ask = (q) => client.chat.completions.create({ model: KIMI, messages: [{ role: 'user', content: q }] });
  let failed = 0;
  for (let i = 0; i < 30; i++) {
    if (i === 5 || i === 15) { // the fault's count is 2
      await assert.rejects(ask('fail me'), (e) => e.status === 500);
      failed++;
      continue;
    }
    const c = await ask(i === 25 ? 'fail me' : `question ${i}`); // past the fault's count
    assert.equal(c.choices[0].message.content, `answer for ${id}`);
    await new Promise((r) => setImmediate(r)); // let the other file's requests interleave
  }
  assert.equal(failed, 2);
  const mine = (await admin('GET', `/admin/requests?test_id=${id}&limit=1000`)).json.data;
  assert.equal(mine.length, 30);
  assert.ok(mine.every((e) => e.test_id === id));
  assert.equal(mine.filter((e) => e.status === 500).length, 2);
  const rules = (await admin('GET', `/admin/replies?test_id=${id}`)).json.data;
  assert.equal(rules.length, 1);
  assert.equal(rules[0].fired, 28);
  assert.equal((await admin('DELETE', `/admin/replies?test_id=${id}`)).json.deleted, 1);
});

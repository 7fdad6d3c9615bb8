// A pool that loses replicas while requests wait in its queue (SPEC §4, §5
// prompt cache; issue 12 defect 1). A request picks its replica on arrival;
// PATCHing the pool to fewer replicas, or stopping or resetting a scenario
// that had raised them, rebuilds the prompt caches smaller. Each queued
// request must be admitted onto a replica that exists now: before the fix
// it kept its old index, wrote past the cache array and crashed the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopChecked, admin, post, patchPool, sleep, NO_LIMITS, assertNoSlotsHeld } from '../lib/server.mjs';

const GLM = 'accounts/fireworks/models/glm-5p1';
const CHAT = '/inference/v1/chat/completions';
const WRAPPED = Boolean(process.env.FLEETMOCK_WRAPPER);

/** A stream that holds glm-5p1's only slot until aborted. */
async function holdSlot(server) {
  const ac = new AbortController();
  const res = await fetch(`${server.baseURL}${CHAT}`, {
    method: 'POST', signal: ac.signal,
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer holder' },
    body: JSON.stringify({ model: GLM, messages: [{ role: 'user', content: 'hold' }], max_tokens: 100000, ignore_eos: true, stream: true }),
  });
  assert.equal(res.status, 200);
  res.body.getReader().read().catch(() => {});
  return ac;
}

/** Sends n Background requests, each with its own affinity key; they queue behind the held slot. */
function queueBackground(server, n) {
  const answers = [];
  for (let i = 0; i < n; i++)
    answers.push(post(server, CHAT, { model: GLM, service_tier: 'background', messages: [{ role: 'user', content: `q${i}` }], max_tokens: 2 },
      { 'x-session-affinity': `session-${i}` }));
  return answers;
}

async function waitQueued(server, n) {
  for (let i = 0; i < 400; i++) {
    const s = await admin(server, 'GET', '/admin/state');
    if (s.json.pools['glm-5p1'].queued.background === n) return;
    await sleep(50);
  }
  assert.fail(`${n} background requests never queued`);
}

async function expectAllServedOnReplica0(answers) {
  for (const r of await Promise.all(answers)) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-fleetmock-replica'), '0', 'admitted onto the one replica left');
  }
}

test('requests queued on 8 replicas are admitted onto the 1 left after a PATCH shrinks the pool', async () => {
  const server = await startServer({ config: NO_LIMITS });
  try {
    await patchPool(server, 'glm-5p1', { replicas: 8, slots: 1, tenant_load: 0 });
    const hold = await holdSlot(server);
    const answers = queueBackground(server, 16);
    await waitQueued(server, 16);
    await patchPool(server, 'glm-5p1', { replicas: 1, slots: 100 });
    await expectAllServedOnReplica0(answers);
    hold.abort();
    assert.equal((await post(server, CHAT, { model: GLM, messages: [{ role: 'user', content: 'still here' }], max_tokens: 2 })).status, 200);
    await assertNoSlotsHeld(server);
  } finally {
    await stopChecked(server);
  }
});

for (const how of ['DELETE /admin/scenario', 'POST /admin/reset']) {
  test(`requests queued during cache-affinity (8 replicas) are served after ${how} restores 4`, async () => {
    const server = await startServer({ config: NO_LIMITS });
    try {
      assert.equal((await admin(server, 'POST', '/admin/scenario', { name: 'cache-affinity' })).status, 200);
      await patchPool(server, 'glm-5p1', { slots: 1, tenant_load: 0 });
      const hold = await holdSlot(server);
      const answers = queueBackground(server, 16);
      await waitQueued(server, 16);
      const [method, path] = how.split(' ');
      assert.equal((await admin(server, method, path)).status, 200);
      // Back on the config's 4 replicas, with its slots: the queue drains.
      for (const r of await Promise.all(answers)) {
        assert.equal(r.status, 200, r.text);
        assert.ok(Number(r.headers.get('x-fleetmock-replica')) < 4, `replica ${r.headers.get('x-fleetmock-replica')} of 4`);
      }
      hold.abort();
      await assertNoSlotsHeld(server, { waitMs: WRAPPED ? 5000 : 2000 });
    } finally {
      await stopChecked(server);
    }
  });
}

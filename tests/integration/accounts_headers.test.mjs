// Rate-limit headers (SPEC §3 "Headers on every inference response"):
// the documented X-Ratelimit-Limit-Tokens-{Prompt,Cache-Adjusted-Prompt,Generated}
// on 200, 429, 503 and streams; the countdown extension (remaining-*,
// limit/remaining-requests, over-limit) counting down per request and
// refilling at the configured rate in simulated time; and with
// ratelimit_extension_headers:false only the documented three.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, streamRequest, assertNoSlotsHeld, sleep } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const fixed = (n) => ({ start: n, ceiling: n });
const bearer = (key) => ({ Authorization: `Bearer ${key}` });

const DOCUMENTED = [
  'x-ratelimit-limit-tokens-prompt',
  'x-ratelimit-limit-tokens-cache-adjusted-prompt',
  'x-ratelimit-limit-tokens-generated',
];
const EXTENSION = [
  'x-ratelimit-remaining-tokens-prompt',
  'x-ratelimit-remaining-tokens-cache-adjusted-prompt',
  'x-ratelimit-remaining-tokens-generated',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
];

function text(tag, bytes) {
  const s = `${tag} ` + 'lorem ipsum dolor sit amet '.repeat(Math.ceil(bytes / 27) + 1);
  return s.slice(0, bytes);
}
const promptTokens = (bytes) => Math.ceil(bytes / 4) + 4 + 3;

function body(tag, { bytes = 600, out = 5, extra = {} } = {}) {
  return { model: KIMI, messages: [{ role: 'user', content: text(tag, bytes) }], max_tokens: out, ignore_eos: true, ...extra };
}
const chat = (server, key, tag, opts = {}) => post(server, CHAT, body(tag, opts), bearer(key));
const num = (res, name) => {
  const v = res.headers.get(name);
  assert.match(v ?? '', /^\d+$/, `${name} is a whole number, got ${v}`);
  return Number(v);
};

async function withServer(args, config, fn) {
  const server = await startServer({ args: ['--seed', '5', ...args], config });
  try {
    await fn(server);
  } finally {
    await assertNoSlotsHeld(server);
    const r = await server.stop();
    assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
  }
}

async function patchPool(server, name, settings) {
  const res = await fetch(`${server.baseURL}/admin/pools/${name}`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(settings),
  });
  assert.equal(res.status, 200, await res.text());
  await res.arrayBuffer().catch(() => {});
}

function assertDocumented(res, { prompt, uncached, generated }, what) {
  assert.equal(res.headers.get('X-Ratelimit-Limit-Tokens-Prompt'), String(prompt), `${what}: limit prompt`);
  assert.equal(res.headers.get('X-Ratelimit-Limit-Tokens-Cache-Adjusted-Prompt'), String(uncached), `${what}: limit cache-adjusted`);
  assert.equal(res.headers.get('X-Ratelimit-Limit-Tokens-Generated'), String(generated), `${what}: limit generated`);
}

test('remaining headers count down exactly across consecutive requests; over-limit below 20 %', async () => {
  // --time-scale 0.00001: a real second is 10 µs simulated, so refill stays
  // below one token for the whole test (0.1 prompt token a real second).
  const config = {
    accounts: {
      limits: {
        requests_per_min: fixed(10), prompt_tps: fixed(10000), uncached_prompt_tps: fixed(5000),
        generated_tps: fixed(1000),
      },
    },
  };
  await withServer(['--timing', 'instant', '--time-scale', '0.00001'], config, async (server) => {
    const P = promptTokens(600);
    for (let k = 1; k <= 10; k++) {
      const r = await chat(server, 'hdr-countdown', `c${k}`);
      assert.equal(r.status, 200, `request ${k}: ${r.text}`);
      assertDocumented(r, { prompt: 10000, uncached: 5000, generated: 1000 }, `request ${k}`);
      assert.equal(num(r, 'x-ratelimit-limit-requests'), 10);
      assert.equal(num(r, 'x-ratelimit-remaining-requests'), 10 - k, `remaining requests after ${k}`);
      assert.equal(num(r, 'x-ratelimit-remaining-tokens-prompt'), 10000 - k * P, `remaining prompt after ${k}`);
      assert.equal(num(r, 'x-ratelimit-remaining-tokens-cache-adjusted-prompt'), 5000 - k * P,
        `remaining uncached after ${k}`);
      // Generated tokens are charged as produced; the headers go out before generation.
      const gen = num(r, 'x-ratelimit-remaining-tokens-generated');
      assert.ok(gen === 1000 - (k - 1) * 5 || gen === 1000 - k * 5, `remaining generated after ${k}: ${gen}`);
      // Over-limit once any bucket is below 20 % of its capacity: requests at 10 - k < 2.
      assert.equal(r.headers.get('x-ratelimit-over-limit'), k >= 9 ? 'yes' : null, `over-limit after ${k}`);
    }
    const r = await chat(server, 'hdr-countdown', 'c11');
    assert.equal(r.status, 429, r.text);
    assert.equal(num(r, 'x-ratelimit-remaining-requests'), 0);
    assert.equal(num(r, 'x-ratelimit-remaining-tokens-prompt'), 10000 - 10 * P, 'a 429 is not charged');
    assert.equal(r.headers.get('x-ratelimit-over-limit'), 'yes');
  });
});

test('prompt bucket refills at the configured rate in simulated time (--time-scale 2)', async () => {
  // 2000 prompt tokens/s simulated = 4000/s real; the bucket holds one simulated second (0.5 s real).
  const config = { accounts: { limits: { prompt_tps: fixed(2000), requests_per_min: fixed(1e6) } } };
  await withServer(['--timing', 'instant', '--time-scale', '2'], config, async (server) => {
    const P = promptTokens(1600); // 407
    // Drain below 500 (a busy machine refills some on the way).
    let last = null;
    let t0 = 0;
    for (let k = 0; k < 30 && !(last && last.status === 200 && num(last, 'x-ratelimit-remaining-tokens-prompt') < 500); k++) {
      t0 = performance.now();
      last = await chat(server, 'hdr-refill', `f${k}`, { bytes: 1600 });
      assert.ok(last.status === 200 || last.status === 429, last.text);
    }
    const t1 = performance.now();
    assert.equal(last.status, 200, last.text);
    const r1 = num(last, 'x-ratelimit-remaining-tokens-prompt');
    assert.ok(r1 < 500, `bucket drained to ${r1}`);
    await sleep(150);
    const t2 = performance.now();
    const next = await chat(server, 'hdr-refill', 'f-next', { bytes: 1600 });
    const t3 = performance.now();
    assert.equal(next.status, 200, next.text);
    const r2 = num(next, 'x-ratelimit-remaining-tokens-prompt');
    // Refill between the two charges: 2000/s x elapsed simulated seconds (2 x real);
    // the first charge fell in [t0, t1], the second in [t2, t3]. A bucket holds
    // 2000 at most, so after a long real pause (a busy machine) it is full.
    const lo = Math.min(2000 * 2 * (t2 - t1) / 1000, 2000 - r1);
    const hi = 2000 * 2 * (t3 - t0) / 1000;
    const refill = r2 - r1 + P;
    assert.ok(refill >= lo - 40 && refill <= hi + 40,
      `refilled ${refill} tokens, expected ${lo.toFixed(0)}..${hi.toFixed(0)} (+-40)`);
  });
});

test('requests bucket refills at requests_per_min in simulated time (--time-scale 60)', async () => {
  // 60 requests a simulated minute = 1/s simulated = 60/s real; the bucket holds 60.
  const config = { accounts: { limits: { requests_per_min: fixed(60) } } };
  await withServer(['--timing', 'instant', '--time-scale', '60'], config, async (server) => {
    let drained = null;
    let limited = 0;
    let t0 = 0;
    for (let i = 0; i < 400 && limited < 3; i++) {
      t0 = performance.now();
      const r = await chat(server, 'hdr-rpm', `d${i}`, { bytes: 64, out: 1 });
      if (r.status === 429) limited++;
      else { assert.equal(r.status, 200, r.text); drained = r; }
    }
    assert.equal(limited, 3, 'the requests bucket ran dry');
    // Refill from (about) empty: sleep 300 ms real = 18 s simulated = 18 requests.
    const t1 = performance.now();
    await sleep(300);
    const t2 = performance.now();
    const r = await chat(server, 'hdr-rpm', 'after', { bytes: 64, out: 1 });
    const t3 = performance.now();
    assert.equal(r.status, 200, r.text);
    const rem = num(r, 'x-ratelimit-remaining-requests');
    // (At most the 60 a bucket holds, less the one this request took.)
    const lo = Math.min(Math.floor(60 * (t2 - t1) / 1000) - 1 - 1, 59);
    const hi = Math.ceil(60 * (t3 - t0) / 1000) + 1; // the last 429 was answered in [t0, t1]
    assert.ok(rem >= lo && rem <= hi, `remaining requests ${rem}, expected ${lo}..${hi}`);
    assert.ok(drained, 'at least one 200 before the bucket ran dry');
  });
});

test('documented limit headers on 200, 429, 503 and streaming responses', async () => {
  const config = {
    accounts: {
      limits: {
        requests_per_min: fixed(3), prompt_tps: { start: 7000, ceiling: 21000 },
        uncached_prompt_tps: { start: 3000, ceiling: 9000 }, generated_tps: { start: 400, ceiling: 1200 },
      },
    },
  };
  const want = { prompt: 7000, uncached: 3000, generated: 400 };
  await withServer(['--timing', 'instant'], config, async (server) => {
    const ok = await chat(server, 'hdr-doc', 'ok');
    assert.equal(ok.status, 200, ok.text);
    assertDocumented(ok, want, '200');
    for (const h of EXTENSION) assert.ok(ok.headers.has(h), `200 has ${h}`);

    const s = await streamRequest(server, CHAT, { ...body('stream'), stream: true, stream_options: { include_usage: true } },
      { headers: bearer('hdr-doc') });
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type') ?? '', /text\/event-stream/);
    assertDocumented({ headers: s.headers }, want, 'stream');
    for (const h of EXTENSION) assert.ok(s.headers.has(h), `stream has ${h}`);
    assert.equal(s.events.at(-1).data, '[DONE]');

    // Shed by the fleet: 503 still carries the account's limits.
    await patchPool(server, 'kimi-k2p6', { tenant_load: 2 });
    const shed = await chat(server, 'hdr-doc', 'shed');
    assert.equal(shed.status, 503, shed.text);
    assertDocumented(shed, want, '503');
    await patchPool(server, 'kimi-k2p6', { tenant_load: 0 });

    const third = await chat(server, 'hdr-doc', 'third');
    assert.equal(third.status, 200, third.text);
    const limited = await chat(server, 'hdr-doc', 'limited');
    assert.equal(limited.status, 429, limited.text);
    assertDocumented(limited, want, '429');
    for (const h of EXTENSION) assert.ok(limited.headers.has(h), `429 has ${h}`);
  });
});

test('ratelimit_extension_headers:false: only the three documented headers', async () => {
  const config = {
    accounts: {
      ratelimit_extension_headers: false,
      limits: { requests_per_min: fixed(1), prompt_tps: fixed(5000), uncached_prompt_tps: fixed(2500), generated_tps: fixed(300) },
    },
  };
  const want = { prompt: 5000, uncached: 2500, generated: 300 };
  await withServer(['--timing', 'instant'], config, async (server) => {
    const ok = await chat(server, 'hdr-off', 'ok');
    const limited = await chat(server, 'hdr-off', 'again');
    const s = await streamRequest(server, CHAT, { ...body('stream'), stream: true }, { headers: bearer('hdr-off-2') });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(limited.status, 429, limited.text);
    assert.equal(s.status, 200);
    for (const [what, res] of [['200', ok], ['429', limited], ['stream', { headers: s.headers }]]) {
      assertDocumented(res, want, what);
      const names = [...res.headers.keys()].filter((h) => h.toLowerCase().startsWith('x-ratelimit-')).sort();
      assert.deepEqual(names, [...DOCUMENTED].sort(), `${what}: only the documented x-ratelimit-* headers`);
    }
    assert.match(limited.headers.get('retry-after') ?? '', /^\d+$/, '429 still says when to retry');
  });
});

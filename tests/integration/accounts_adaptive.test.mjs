// Adaptive limits (SPEC §5): a limit grows from `start` toward `ceiling`
// while the account keeps using more than busy_fraction of it, shrinks back
// toward `start` while it idles, and a client that ramps faster than its
// limits grow is refused where a gradual ramp with the same total is not.
//
// One server, --timing instant --time-scale 5 (a simulated minute is 12 s
// real). Only the prompt limit adapts (the others are fixed and huge):
// start 400 tokens/s, ceiling 2000, growth_per_min 15 (x16 a busy simulated
// minute, about x1.26 a real second), shrink_per_min 0.9 (x0.1 an idle
// simulated minute). Each request carries 40 prompt tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, post, assertNoSlotsHeld, sleep } from '../lib/server.mjs';

const KIMI = 'accounts/fireworks/models/kimi-k2p6';
const CHAT = '/inference/v1/chat/completions';
const SCALE = 5;
const START = 400;
const CEILING = 2000;
const GROWTH = 15;
const SHRINK = 0.9;
const P = 40; // 132 bytes: ceil(132/4) + 4 + 3
const fixed = (n) => ({ start: n, ceiling: n });

let server;
before(async () => {
  server = await startServer({
    args: ['--timing', 'instant', '--time-scale', String(SCALE), '--seed', '3'],
    config: {
      accounts: {
        limits: {
          requests_per_min: fixed(1e9), uncached_prompt_tps: fixed(1e9), generated_tps: fixed(1e9),
          prompt_tps: { start: START, ceiling: CEILING },
          growth_per_min: GROWTH, shrink_per_min: SHRINK, busy_fraction: 0.8,
        },
      },
    },
  });
});
after(async () => {
  await assertNoSlotsHeld(server);
  const r = await server.stop();
  assert.equal(r.code, 0, `server exited with ${r.code}/${r.signal}:\n${r.stderr}`);
});

let seq = 0;
function send(key) {
  const content = `${key} ${seq++} ` + 'lorem ipsum dolor sit amet '.repeat(6);
  return post(server, CHAT, {
    model: KIMI, messages: [{ role: 'user', content: content.slice(0, 132) }], max_tokens: 1,
  }, { Authorization: `Bearer ${key}` });
}
const limitOf = (res) => Number(res.headers.get('x-ratelimit-limit-tokens-prompt'));

/**
 * Sends 40-token requests at `rate(limit)` prompt tokens per simulated second,
 * `limit` being the last X-Ratelimit-Limit-Tokens-Prompt seen, until `okTarget`
 * requests succeeded, the limit reached `stopAt`, or `seconds` passed. Up to
 * `parallel` requests go out together when credit allows (so a busy machine
 * still keeps the pace). A 429 is counted and retried later. The credit is
 * capped at `capFraction` of a bucket, so lags never turn into big bursts.
 */
async function pacedClient(key, { rate, seconds, okTarget = Infinity, stopAt = Infinity, capFraction = 0.5, parallel = 4 }) {
  let limit = START;
  let credit = 0;
  let ok = 0;
  let limited = 0;
  const limits = [];
  const t0 = performance.now();
  let last = t0;
  let lastSent = t0;
  for (let i = 0; i < 20000; i++) {
    const now = performance.now();
    if (now - t0 > seconds * 1000 || ok >= okTarget || limit >= stopAt) break;
    credit = Math.min(credit + rate(limit) * SCALE * (now - last) / 1000, Math.max(P, capFraction * limit));
    last = now;
    const n = Math.min(parallel, Math.floor(credit / P), okTarget - ok);
    if (n < 1) { await sleep(2); continue; }
    credit -= n * P;
    lastSent = performance.now();
    const answers = await Promise.all(Array.from({ length: n }, () => send(key)));
    let refused = false;
    for (const r of answers) {
      if (r.status === 200) {
        ok++;
        limit = Math.max(limit, limitOf(r));
        limits.push(limitOf(r));
      } else {
        assert.equal(r.status, 429, r.text);
        assert.match(r.json.error.message, /\(limit "prompt"\)/);
        limited++;
        credit += P; // not delivered: still owed
        refused = true;
      }
    }
    if (refused) await sleep(5);
  }
  return { ok, limited, limits, final: limit, seconds: (performance.now() - t0) / 1000, last: performance.now(), lastSent };
}

let gradual = null;

test('busy account: the prompt limit grows above start toward ceiling, without a 429', async (t) => {
  // 92 % of whatever the current limit is: always busy, never over.
  // Stops at 2.2 x start (about 4 s real on an idle machine), or after 15 s.
  gradual = await pacedClient('adaptive-gradual', { rate: (l) => 0.92 * l, seconds: 15, stopAt: 2.2 * START });
  t.diagnostic(`gradual: ${gradual.ok} ok, ${gradual.limited} x 429, limit ${gradual.limits[0]} -> ${gradual.final}`);
  const first = gradual.limits[0];
  const final = gradual.final;
  assert.equal(first, START, 'the limit starts at start');
  assert.equal(gradual.limited, 0, `a gradual ramp gets no 429 (${gradual.ok} ok)`);
  assert.ok(final > 1.5 * START, `limit grew from ${START} to ${final} in ${gradual.seconds.toFixed(1)} s real`);
  assert.ok(final <= CEILING, `limit ${final} stays under its ceiling ${CEILING}`);
  // Never more than the growth rate allows: x16 per simulated minute.
  const maxGrowth = START * Math.pow(1 + GROWTH, (gradual.seconds * SCALE + 1) / 60);
  assert.ok(final <= maxGrowth * 1.01, `limit ${final} within the growth rate bound ${maxGrowth.toFixed(0)}`);
});

test('idle account: the limit shrinks back toward start', async (t) => {
  assert.ok(gradual, 'needs the growth test');
  const before = gradual.final;
  // 3 s real = 15 s simulated idle: x0.1^(15/60) = x0.56, still above start.
  // (An adaptation step spans from the previous step to the next request, so
  // it also holds up to one busy simulated second; 15 s keeps its average use
  // under busy_fraction / 10 = 8 %, which is what counts as idle.)
  await sleep(3000);
  const tSend = performance.now();
  const r = await send('adaptive-gradual');
  const tAnswered = performance.now();
  assert.equal(r.status, 200, r.text);
  const mid = limitOf(r);
  // The server was idle at least from the last answer to this send, at most
  // from the last send to this answer (however slow the round trips were).
  const idleSim = (tSend - gradual.last) / 1000 * SCALE;
  const idleSimMax = (tAnswered - gradual.lastSent) / 1000 * SCALE;
  // Shrinks by (1 - 0.9) per idle simulated minute, never below start. The
  // last adaptation step may have begun up to one simulated second before the
  // last request (more idle time: lo), and when the requests after it used
  // enough of the limit, its first simulated second counts as busy (less
  // idle time: hi).
  const lo = Math.max(START, before * Math.pow(1 - SHRINK, (idleSimMax + 1) / 60));
  const hi = Math.max(START, before * Math.pow(1 - SHRINK, Math.max(0, idleSim - 1) / 60));
  t.diagnostic(`idle ${idleSim.toFixed(1)} s simulated: limit ${before} -> ${mid}`);
  assert.ok(mid < before, `limit shrank: ${before} -> ${mid}`);
  assert.ok(mid >= Math.floor(lo) && mid <= Math.ceil(hi), `limit ${mid} expected ${lo.toFixed(0)}..${hi.toFixed(0)}`);

  // 6 s real = 30 s simulated more: x0.32 would take it under start, so it stops at start.
  await sleep(6000);
  const r2 = await send('adaptive-gradual');
  assert.equal(r2.status, 200, r2.text);
  t.diagnostic(`then 30 s simulated: limit ${mid} -> ${limitOf(r2)}`);
  assert.equal(limitOf(r2), START, 'back at start, never below');
});

test('a too-fast ramp gets 429s where a gradual ramp with the same total does not', async (t) => {
  assert.ok(gradual, 'needs the growth test');
  const target = gradual.final;
  // Straight to the rate the gradual client ended at, for the same number of requests.
  const fast = await pacedClient('adaptive-fast', {
    rate: () => Math.max(0.92 * target, 2 * START), seconds: 30, okTarget: gradual.ok, capFraction: 1, parallel: 8,
  });
  t.diagnostic(`fast: ${fast.ok} ok, ${fast.limited} x 429 in ${fast.seconds.toFixed(1)} s, limit ${fast.limits[0]} -> ${fast.final}`);
  assert.equal(fast.ok, gradual.ok, 'the fast client delivers the same total');
  assert.ok(fast.limited > 0, `too fast a ramp is refused: ${fast.limited} x 429 (limit went ${fast.limits[0]} -> ${fast.final})`);
  assert.equal(gradual.limited, 0);
});

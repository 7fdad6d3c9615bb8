// The routing pattern, driven with a fake clock: no sockets, no sleeping.
// The first suites are this client's own tests of the five behaviours; the
// last replays the shared behaviour list (clients/behaviours.json) that the
// C and Python clients replay too.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Policy, STANDARD, PRIORITY, STATUS_NETWORK, STATUS_STREAM_ERROR, parseRetryAfter } from './policy.mjs';

function make(opts = {}) {
  const clock = { t: 1_000_000, advance(ms) { this.t += ms; } };
  const alerts = [];
  const policy = new Policy({ clock: () => clock.t, onAlert: (a) => alerts.push(a), ...opts });
  return { policy, clock, alerts };
}
const J0 = { jitter: 0 };

describe('escalates on 503 and only on 503', () => {
  test('503 on Standard escalates and retries on Priority at once', () => {
    const { policy, clock } = make();
    assert.equal(policy.start('interactive'), STANDARD);
    const d = policy.decide('interactive', STANDARD, 1, 503, { jitter: 0.5 });
    assert.deepEqual([d.retry, d.tier, d.delayMs, d.escalated, d.outcome], [true, PRIORITY, 0, true, 'shed']);
    assert.equal(policy.escalations, 1);
    assert.equal(policy.priorityUntilMs, clock.t + 1_800_000);
    assert.equal(policy.start('interactive'), PRIORITY);
    assert.equal(policy.start('agent'), PRIORITY);
  });

  test('never escalates on 429, 4xx, other 5xx, a network or a stream error', () => {
    for (const status of [429, 400, 401, 404, 405, 413, STATUS_NETWORK, STATUS_STREAM_ERROR, 500, 502]) {
      const { policy } = make();
      const d = policy.decide('interactive', STANDARD, 1, status, { retryAfterMs: status === 429 ? 1000 : -1, jitter: 0 });
      assert.equal(d.tier, STANDARD, `status ${status}`);
      assert.equal(d.escalated, false);
      assert.equal(policy.escalations, 0);
      assert.equal(policy.priorityUntilMs, 0);
      assert.equal(policy.start('interactive'), STANDARD);
    }
  });

  test('4xx other than 429 ends the call', () => {
    for (const s of [400, 401, 404]) {
      const { policy } = make();
      const d = policy.decide('interactive', STANDARD, 1, s, J0);
      assert.deepEqual([d.retry, d.outcome, policy.errors], [false, 'error', 1]);
    }
  });

  test('a network error backs off on the same tier', () => {
    const { policy } = make();
    const d = policy.decide('interactive', STANDARD, 1, STATUS_NETWORK, J0);
    assert.deepEqual([d.retry, d.tier, d.delayMs], [true, STANDARD, 250]);
    assert.equal(policy.errors, 1);
  });

  test('a 503 racing an open window opens nothing', () => {
    const { policy, clock } = make();
    policy.decide('interactive', STANDARD, 1, 503, J0);
    clock.advance(10_000);
    const d = policy.decide('agent', STANDARD, 1, 503, J0);
    assert.deepEqual([d.retry, d.tier, d.escalated], [true, PRIORITY, false]);
    assert.equal(policy.escalations, 1);
  });

  test('a 503 on Priority backs off and stays there', () => {
    const { policy } = make();
    policy.decide('interactive', STANDARD, 1, 503, J0);
    const d = policy.decide('interactive', PRIORITY, 2, 503, J0);
    assert.deepEqual([d.retry, d.tier, d.escalated, d.delayMs], [true, PRIORITY, false, 500]);
    assert.equal(policy.escalations, 1);
  });

  test('a 503 on the last attempt escalates but ends the call', () => {
    const { policy } = make({ maxAttempts: 1 });
    const d = policy.decide('interactive', STANDARD, 1, 503, J0);
    assert.deepEqual([d.retry, d.escalated, d.outcome], [false, true, 'shed']);
    assert.equal(policy.start('interactive'), PRIORITY);
  });

  test('the 503 rate counts every attempt', () => {
    const { policy } = make();
    policy.decide('interactive', STANDARD, 1, 503, J0);
    policy.decide('interactive', PRIORITY, 2, 200, J0);
    policy.decide('interactive', PRIORITY, 1, 200, J0);
    policy.decide('interactive', PRIORITY, 1, STATUS_NETWORK, J0);
    const m = policy.metrics();
    assert.deepEqual([m.rate503, m.requests, m.onPriority, m.errors], [0.25, 4, 3, 1]);
  });
});

describe('drifts back after the window', () => {
  test('back to Standard when the window expires', () => {
    const { policy, clock } = make({ windowS: 1800 });
    policy.decide('interactive', STANDARD, 1, 503, J0);
    clock.advance(1_799_999);
    assert.equal(policy.start('interactive'), PRIORITY);
    clock.advance(1);
    assert.equal(policy.start('interactive'), STANDARD);
    assert.equal(policy.metrics().tier, STANDARD);
  });

  test('the window and the backoff shrink with the server time scale', () => {
    const { policy, clock } = make({ windowS: 1800, timeScale: 60 });
    assert.equal(policy.windowMs(), 30_000);
    assert.equal(policy.backoffMs(1, 0), 4);
    policy.decide('interactive', STANDARD, 1, 503, J0);
    clock.advance(29_999);
    assert.equal(policy.start('interactive'), PRIORITY);
    clock.advance(1);
    assert.equal(policy.start('interactive'), STANDARD);
  });
});

describe('alerts after consecutive windows', () => {
  test('alert after the configured number of windows, once per run', () => {
    const { policy, clock, alerts } = make({ windowS: 100, alertWindows: 3 });
    for (let n = 1; n <= 3; n++) {
      const d = policy.decide('interactive', STANDARD, 1, 503, J0);
      assert.equal(d.escalated, true);
      assert.equal(d.alert, n === 3);
      assert.equal(policy.consecutiveWindows, n);
      assert.equal(alerts.length, n === 3 ? 1 : 0);
      clock.advance(100_000);
    }
    assert.equal(alerts[0].consecutiveWindows, 3);
    assert.equal(alerts[0].escalations, 3);
    const d = policy.decide('interactive', STANDARD, 1, 503, J0);
    assert.deepEqual([policy.consecutiveWindows, d.alert, alerts.length], [4, false, 1]);
  });

  test('a quiet gap starts a new run', () => {
    const { policy, clock, alerts } = make({ windowS: 100, alertWindows: 2 });
    policy.decide('interactive', STANDARD, 1, 503, J0);
    clock.advance(200_001);
    policy.decide('interactive', STANDARD, 1, 503, J0);
    assert.equal(policy.consecutiveWindows, 1);
    assert.deepEqual(alerts, []);
  });

  test('alertWindows 0 never alerts', () => {
    const { policy, clock, alerts } = make({ windowS: 1, alertWindows: 0 });
    for (let i = 0; i < 5; i++) { policy.decide('interactive', STANDARD, 1, 503, J0); clock.advance(1000); }
    assert.deepEqual([policy.consecutiveWindows, policy.alerts, alerts.length], [5, 0, 0]);
  });
});

describe('never escalates batch', () => {
  test('a batch 503 backs off on Standard', () => {
    const { policy } = make();
    const d = policy.decide('batch', STANDARD, 1, 503, J0);
    assert.deepEqual([d.retry, d.tier, d.escalated, d.delayMs], [true, STANDARD, false, 250]);
    assert.equal(policy.escalations, 0);
    assert.equal(policy.priorityUntilMs, 0);
  });

  test('batch stays on Standard while a window is open', () => {
    const { policy } = make();
    policy.decide('interactive', STANDARD, 1, 503, J0);
    assert.equal(policy.start('interactive'), PRIORITY);
    assert.equal(policy.start('batch'), STANDARD);
    assert.equal(policy.decide('batch', STANDARD, 1, 503, J0).tier, STANDARD);
  });
});

describe('backs off on 429', () => {
  test('waits at least Retry-After and at most 20 % more', () => {
    const { policy } = make();
    const d0 = policy.decide('interactive', STANDARD, 1, 429, { retryAfterMs: 3000, jitter: 0 });
    const d1 = policy.decide('interactive', STANDARD, 1, 429, { retryAfterMs: 3000, jitter: 0.999 });
    assert.deepEqual([d0.retry, d0.tier, d0.outcome, d0.delayMs], [true, STANDARD, 'limited', 3000]);
    assert.equal(d1.delayMs, 3599);
  });

  test('retry-after-ms wins over Retry-After', () => {
    assert.equal(parseRetryAfter('117', '1'), 117);
    assert.equal(parseRetryAfter('116.2', null), 117);
    assert.equal(parseRetryAfter(null, '2'), 2000);
    assert.equal(parseRetryAfter(null, 'Wed, 21 Oct 2015 07:28:00 GMT'), -1);
    assert.equal(parseRetryAfter(null, null), -1);
  });

  test('without Retry-After it backs off exponentially', () => {
    const { policy } = make();
    assert.deepEqual([1, 2, 3].map((n) => policy.decide('interactive', STANDARD, n, 429, J0).delayMs), [250, 500, 1000]);
    assert.equal(policy.backoffMs(10, 0), 15_000);
  });

  test('a 429 retry follows an open window', () => {
    const { policy } = make();
    policy.decide('interactive', STANDARD, 1, 503, J0);
    const d = policy.decide('interactive', PRIORITY, 2, 429, { retryAfterMs: 2000, jitter: 0 });
    assert.deepEqual([d.retry, d.tier, d.delayMs], [true, PRIORITY, 2000]);
    assert.equal(policy.escalations, 1);
  });

  test('gives up after maxAttempts', () => {
    const { policy } = make({ maxAttempts: 2 });
    assert.equal(policy.decide('interactive', STANDARD, 1, 429, { retryAfterMs: 1000 }).retry, true);
    const d = policy.decide('interactive', STANDARD, 2, 429, { retryAfterMs: 1000 });
    assert.deepEqual([d.retry, d.outcome], [false, 'limited']);
  });
});

// ---------------------------------------------------------------------------
// The shared behaviour list: one test per case, named after it.

const BEHAVIOURS = fileURLToPath(new URL('../behaviours.json', import.meta.url));
const JITTERS = [0, 0.5, 0.999999]; // "must hold for ANY jitter draw": the ends and the middle
const STATUS_WORDS = { network_error: STATUS_NETWORK, stream_error: STATUS_STREAM_ERROR };
const POLICY_FIELDS = { window_s: 'windowS', time_scale: 'timeScale', backoff_base_ms: 'backoffBaseMs',
  backoff_cap_ms: 'backoffCapMs', max_attempts: 'maxAttempts', alert_windows: 'alertWindows' };
const STATE_FIELDS = { priority_until_ms: 'priorityUntilMs', escalations: 'escalations', requests: 'requests',
  status_503: 'status503', status_429: 'status429', errors: 'errors', on_priority: 'onPriority',
  consecutive_windows: 'consecutiveWindows', alerts: 'alerts', rate_503: 'rate503' };

function runCase(doc, c) {
  const conf = { ...doc.defaults.policy, ...(c.policy ?? {}) };
  const opts = {};
  for (const [k, v] of Object.entries(conf)) {
    assert.ok(k in POLICY_FIELDS, `unknown policy field ${k}`);
    opts[POLICY_FIELDS[k]] = v;
  }
  const route = c.route ?? doc.defaults.route ?? 'interactive';
  let now = 0;
  const alerts = [];
  const policy = new Policy({ ...opts, clock: () => now, onAlert: (a) => alerts.push(a) });
  c.steps.forEach((step, i) => {
    const where = `${c.name} step ${i} (${step.event} at ${step.at_ms} ms)`;
    assert.ok(step.at_ms >= now, `${where}: time goes back`);
    now = step.at_ms;
    const expect = step.expect ?? {};
    let got;
    if (step.event === 'start') {
      got = { tier: policy.start(route, step.at_ms) };
    } else if (step.event === 'answer') {
      const status = STATUS_WORDS[step.status] ?? step.status;
      const headers = Object.fromEntries(Object.entries(step.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      const retryAfterMs = parseRetryAfter(headers['retry-after-ms'], headers['retry-after']);
      // Every jitter draw on a copy of the state; only the delay may depend on it.
      const runs = JITTERS.map((jitter) => policy.clone().decide(route, step.tier, step.attempt, status, { retryAfterMs, nowMs: step.at_ms, jitter }));
      const before = alerts.length;
      const d = policy.decide(route, step.tier, step.attempt, status, { retryAfterMs, nowMs: step.at_ms, jitter: JITTERS[0] });
      assert.equal(alerts.length - before, d.alert ? 1 : 0, `${where}: alert callback`);
      for (const r of runs) {
        assert.deepEqual([r.retry, r.tier, r.outcome, r.escalated, r.alert], [d.retry, d.tier, d.outcome, d.escalated, d.alert], where);
        if ('delay_ms_min' in expect) assert.ok(r.delayMs >= expect.delay_ms_min, `${where}: delay ${r.delayMs} < ${expect.delay_ms_min}`);
        if ('delay_ms_max' in expect) assert.ok(r.delayMs <= expect.delay_ms_max, `${where}: delay ${r.delayMs} > ${expect.delay_ms_max}`);
      }
      if ('tier' in expect) assert.equal(d.retry, true, `${where}: expects a retry tier but the call ended`);
      if ('outcome' in expect) assert.equal(d.retry, false, `${where}: expects an outcome but the call retries`);
      got = { retry: d.retry, outcome: d.outcome, escalated: d.escalated, alert: d.alert, ...(d.retry ? { tier: d.tier } : {}) };
    } else {
      assert.fail(`${where}: unknown event`);
    }
    for (const key of ['tier', 'retry', 'outcome', 'escalated', 'alert']) {
      if (key in expect) assert.equal(got[key], expect[key], `${where}: ${key}`);
    }
    const m = policy.metrics(step.at_ms);
    for (const [key, want] of Object.entries(expect.state ?? {})) {
      if (key === 'priority_on') { assert.equal(policy.priorityOn(step.at_ms), want, `${where}: state.priority_on`); continue; }
      assert.ok(key in STATE_FIELDS, `${where}: unknown state field ${key}`);
      const have = m[STATE_FIELDS[key]];
      if (key === 'rate_503') assert.ok(Math.abs(have - want) <= 1e-9, `${where}: rate_503 ${have} != ${want}`);
      else assert.equal(have, want, `${where}: state.${key}`);
    }
  });
}

const doc = existsSync(BEHAVIOURS) ? JSON.parse(readFileSync(BEHAVIOURS, 'utf8')) : null;
describe('shared behaviour list (clients/behaviours.json)', { skip: doc ? false : 'clients/behaviours.json is not there yet' }, () => {
  test('the list is there', () => {
    assert.equal(doc.schema, 'fleetmock-client-behaviours/1');
    assert.ok(doc.cases.length > 0);
  });
  for (const c of doc?.cases ?? []) test(c.name, () => runCase(doc, c));
});

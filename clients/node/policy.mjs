// The fleetmock routing pattern as a pure state machine.
//
// Stay on Standard by default. On a 503, and only a 503, escalate to Priority
// for a window (30 simulated minutes by default, divided by the server's time
// scale), retry that request there, and drift back to Standard once the
// window has passed. On a 429 back off for at least Retry-After
// (retry-after-ms preferred). Never escalate a batch route. Keep
// priority_until, the escalation count, the 503 rate and the consecutive
// Priority windows, and call onAlert when Priority stays on for N windows in
// a row.
//
// The policy never sleeps, never touches the network and reads time only
// from the clock it is given (milliseconds), so the shared behaviour list
// (clients/behaviours.json) drives it with a fake clock. Its decisions are
// those of the C policy (clients/c/fleetclient.c) and of
// clients/python/fleetclient.py; client.mjs applies it on top of the
// official openai SDK.

export const STANDARD = 'standard';
export const PRIORITY = 'priority';
export const ROUTES = ['interactive', 'agent', 'batch'];
export const STRATEGIES = ['escalate', 'backoff', 'naive', 'always-priority'];

// Not HTTP statuses: what an attempt ended with when there was no answer.
export const STATUS_NETWORK = 0;       // no HTTP answer: refused, reset, timed out
export const STATUS_STREAM_ERROR = -1; // 200, then an SSE error event or a cut stream

export const DEFAULTS = Object.freeze({
  windowS: 1800, timeScale: 1, backoffBaseMs: 500, backoffCapMs: 30000, maxAttempts: 4, alertWindows: 3,
});

function checkRoute(route) {
  if (!ROUTES.includes(route)) throw new RangeError(`route must be one of ${ROUTES.join(', ')} (got ${JSON.stringify(route)})`);
}

const clampJitter = (j) => (j < 0 ? 0 : j >= 1 ? 0.999999 : j);

/**
 * Milliseconds from the two headers (either may be null): retry-after-ms
 * first, then Retry-After in seconds; -1 when neither parses.
 */
export function parseRetryAfter(retryAfterMs, retryAfter) {
  for (const [value, factor] of [[retryAfterMs, 1], [retryAfter, 1000]]) {
    if (value == null || String(value).trim() === '') continue;
    const v = Number(value); // an HTTP-date Retry-After gives NaN: fleetmock never sends one
    if (Number.isFinite(v) && v >= 0) return Math.ceil(v * factor);
  }
  return -1;
}

/** How an attempt with this status ends a call: ok, shed, limited or error. */
export function outcomeOf(status) {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 503) return 'shed';
  if (status === 429) return 'limited';
  return 'error';
}

// The fleet or the account said "not now", or the answer never arrived.
// Other 4xx will fail the same way again.
const retryable = (status) => status === 429 || status >= 500 || status === STATUS_NETWORK || status === STATUS_STREAM_ERROR;

/** A small seeded generator (mulberry32) for the jitter draws. */
export function seededRandom(seed = 0) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const monotonicMs = () => Math.floor(performance.now());

export class Policy {
  /**
   * Times are milliseconds of `clock` (monotonic by default). windowS and
   * the backoff settings are in the server's simulated time and are divided
   * by timeScale; Retry-After is real time already and is used as a floor.
   * A window opened within one window length of the previous one's end
   * continues the run; a longer gap starts a new one. The alert fires once
   * per run, when it reaches alertWindows (0 = never), and calls onAlert.
   */
  constructor({
    windowS = DEFAULTS.windowS, timeScale = DEFAULTS.timeScale, backoffBaseMs = DEFAULTS.backoffBaseMs,
    backoffCapMs = DEFAULTS.backoffCapMs, maxAttempts = DEFAULTS.maxAttempts, alertWindows = DEFAULTS.alertWindows,
    strategy = 'escalate', onAlert = null, clock = monotonicMs, random = seededRandom(0),
  } = {}) {
    if (!(windowS > 0)) throw new RangeError('windowS must be > 0');
    if (!(maxAttempts >= 1) || !(alertWindows >= 0)) throw new RangeError('maxAttempts must be >= 1 and alertWindows >= 0');
    if (!STRATEGIES.includes(strategy)) throw new RangeError(`strategy must be one of ${STRATEGIES.join(', ')}`);
    Object.assign(this, { windowS, backoffBaseMs, backoffCapMs, maxAttempts, alertWindows, strategy, onAlert, clock, random });
    this.setTimeScale(timeScale);
    // State and metrics (the names of the C fm_state, in camelCase).
    this.priorityUntilMs = 0;   // Priority is on while now < this; 0 = never escalated
    this.escalations = 0;       // windows opened
    this.requests = 0;          // attempts answered or failed, retries included
    this.status503 = 0;
    this.status429 = 0;
    this.errors = 0;            // network, stream, other statuses
    this.onPriority = 0;        // attempts sent on Priority
    this.consecutiveWindows = 0;
    this.alerts = 0;
  }

  /** Changes the time scale (e.g. after reading /admin/state); <= 0 means 1. */
  setTimeScale(ts) { this.timeScale = ts > 0 ? Number(ts) : 1; }

  /** The Priority window in client-clock ms. */
  windowMs() { return Math.round((this.windowS * 1000) / this.timeScale); }

  /** Exponential backoff with equal jitter: b = min(cap, base*2^(attempt-1)), the wait in [b/2, b), divided by the time scale. */
  backoffMs(attempt, jitter) {
    let b = this.backoffBaseMs;
    for (let i = 1; i < attempt && b < this.backoffCapMs; i++) b *= 2;
    b = Math.min(b, this.backoffCapMs);
    return Math.round((b / this.timeScale) * (0.5 + 0.5 * clampJitter(jitter)));
  }

  /** Retry-After is a floor: wait that long and up to 20 % more, so callers refused together spread out. */
  static retryAfterWaitMs(retryAfterMs, jitter) {
    return retryAfterMs + Math.floor(retryAfterMs * 0.2 * clampJitter(jitter));
  }

  priorityOn(nowMs = this.clock()) { return nowMs < this.priorityUntilMs; }

  /** The tier for a new call on `route`. */
  start(route = 'interactive', nowMs = this.clock()) {
    checkRoute(route);
    if (this.strategy === 'always-priority') return PRIORITY;
    if (this.strategy === 'escalate' && route !== 'batch' && this.priorityOn(nowMs)) return PRIORITY;
    return STANDARD;
  }

  /**
   * Decides what follows attempt number `attempt` (1-based) sent on `tier`
   * that ended with `status` (HTTP, STATUS_NETWORK or STATUS_STREAM_ERROR),
   * and updates the metrics. Resolves {retry, tier, delayMs, outcome,
   * escalated, alert}. `jitter` is a draw in [0, 1) (from `random` when
   * omitted); otherwise a pure function.
   */
  decide(route, tier, attempt, status, { retryAfterMs = -1, nowMs = this.clock(), jitter = this.random() } = {}) {
    checkRoute(route);
    if (retryAfterMs == null) retryAfterMs = -1;
    const d = { retry: false, tier, delayMs: 0, outcome: outcomeOf(status), escalated: false, alert: false };
    this.requests += 1;
    if (tier === PRIORITY) this.onPriority += 1;
    if (status === 503) this.status503 += 1;
    else if (status === 429) this.status429 += 1;
    else if (d.outcome === 'error') this.errors += 1;
    if (d.outcome === 'ok' || this.strategy === 'naive') return d;
    const last = attempt >= this.maxAttempts;
    if (this.strategy === 'escalate' && route !== 'batch') {
      if (status === 503 && tier === STANDARD) {
        // Standard is shedding: go to Priority now, no wait (the 503 was
        // about Standard). A 503 that raced an open window opens nothing.
        if (!this.priorityOn(nowMs)) this.#escalate(nowMs, d);
        if (!last) Object.assign(d, { retry: true, tier: PRIORITY, delayMs: 0 });
        return d;
      }
      // Any other retry of a non-batch call follows the window.
      if (this.priorityOn(nowMs)) d.tier = PRIORITY;
    }
    if (last || !retryable(status)) return d;
    d.retry = true;
    d.delayMs = retryAfterMs >= 0 ? Policy.retryAfterWaitMs(retryAfterMs, jitter) : this.backoffMs(attempt, jitter);
    return d;
  }

  #escalate(nowMs, d) {
    const window = this.windowMs();
    if (this.escalations > 0 && nowMs <= this.priorityUntilMs + window) this.consecutiveWindows += 1;
    else this.consecutiveWindows = 1;
    this.priorityUntilMs = nowMs + window;
    this.escalations += 1;
    d.escalated = true;
    if (this.alertWindows > 0 && this.consecutiveWindows === this.alertWindows) {
      this.alerts += 1;
      d.alert = true;
      if (this.onAlert) this.onAlert(this.alertInfo());
    }
  }

  /** status503 / requests, 0 when nothing was sent. */
  rate503() { return this.requests ? this.status503 / this.requests : 0; }

  alertInfo() {
    return { consecutiveWindows: this.consecutiveWindows, escalations: this.escalations,
      priorityUntilMs: this.priorityUntilMs, rate503: this.rate503() };
  }

  metrics(nowMs = this.clock()) {
    return {
      tier: this.priorityOn(nowMs) ? PRIORITY : STANDARD,
      priorityUntilMs: this.priorityUntilMs,
      escalations: this.escalations,
      requests: this.requests,
      status503: this.status503,
      status429: this.status429,
      errors: this.errors,
      onPriority: this.onPriority,
      consecutiveWindows: this.consecutiveWindows,
      alerts: this.alerts,
      rate503: this.rate503(),
    };
  }

  /** A copy of the policy with the same settings and state (no onAlert). */
  clone() {
    const c = new Policy({ windowS: this.windowS, timeScale: this.timeScale, backoffBaseMs: this.backoffBaseMs,
      backoffCapMs: this.backoffCapMs, maxAttempts: this.maxAttempts, alertWindows: this.alertWindows,
      strategy: this.strategy, clock: this.clock, random: this.random });
    for (const k of ['priorityUntilMs', 'escalations', 'requests', 'status503', 'status429', 'errors', 'onPriority', 'consecutiveWindows', 'alerts']) c[k] = this[k];
    return c;
  }
}

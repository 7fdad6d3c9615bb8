// FleetClient: the official `openai` SDK with its own retries off
// (maxRetries: 0) and the fleetmock routing pattern (policy.mjs) on top.
//
// The SDK comes from tests/conformance/node_modules, so this package has no
// dependencies of its own; in an application, `import OpenAI from 'openai'`
// instead. A stream that fails mid-way is retried whole when the policy says
// so (onToken then sees the new attempt's tokens from the start; the result
// holds the last attempt's text).
import OpenAI from '../../tests/conformance/node_modules/openai/index.mjs';
import { Policy, PRIORITY, ROUTES, STATUS_NETWORK, STATUS_STREAM_ERROR, parseRetryAfter } from './policy.mjs';

export * from './policy.mjs';
export { OpenAI };

const defaultSleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export class FleetClient {
  /**
   * baseURL: the server root (http://127.0.0.1:8080) or an API base ending
   * in /v1. timeScale 'auto' reads time_scale from GET /admin/state on first
   * use so the window shrinks with a sped-up server (1 if admin is not
   * reachable). sleep(ms) waits between attempts.
   */
  constructor({
    baseURL, apiKey, model, route = 'interactive', policy = new Policy(), timeScale = 'auto',
    adminToken = null, timeoutMs = 60000, sleep = defaultSleep,
  }) {
    if (!ROUTES.includes(route)) throw new RangeError(`route must be one of ${ROUTES.join(', ')}`);
    const base = baseURL.replace(/\/+$/, '');
    if (base.endsWith('/v1')) {
      this.apiBase = base;
      this.root = base.slice(0, -3).replace(/\/inference$/, '');
    } else {
      this.root = base;
      this.apiBase = `${base}/inference/v1`;
    }
    Object.assign(this, { model, route, policy, adminToken, sleep });
    this.timeScalePending = timeScale === 'auto';
    if (timeScale !== 'auto' && timeScale != null) policy.setTimeScale(timeScale);
    this.openai = new OpenAI({ apiKey, baseURL: this.apiBase, maxRetries: 0, timeout: timeoutMs });
  }

  /** Calls the control plane; resolves {status, json}. */
  async admin(method, path, body = undefined) {
    const headers = { 'Content-Type': 'application/json' };
    if (this.adminToken) headers.Authorization = `Bearer ${this.adminToken}`;
    const res = await fetch(this.root + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, json };
  }

  /** Reads time_scale from GET /admin/state into the policy; resolves it or null. */
  async syncTimeScale() {
    this.timeScalePending = false;
    try {
      const { status, json } = await this.admin('GET', '/admin/state');
      const ts = json?.time_scale;
      if (status === 200 && typeof ts === 'number' && ts > 0) {
        this.policy.setTimeScale(ts);
        return ts;
      }
    } catch { /* admin not reachable: keep the configured scale */ }
    return null;
  }

  /**
   * Sends a chat completion under the pattern. `params` is what
   * chat.completions.create takes (model defaults to the client's); its
   * service_tier is set by the policy. Never throws for HTTP or network
   * errors; resolves {ok, outcome, status, tier, attempts, escalated, data,
   * text, usage, headers, error, history}. history has one entry per
   * attempt: {tier, status, retryAfterMs, decision}.
   */
  async chat(params, { route = this.route, onToken = null } = {}) {
    if (!ROUTES.includes(route)) throw new RangeError(`route must be one of ${ROUTES.join(', ')}`);
    if (this.timeScalePending) await this.syncTimeScale();
    const { policy } = this;
    const result = { ok: false, outcome: null, status: null, tier: null, attempts: 0, escalated: false, data: null,
      text: null, usage: null, headers: null, error: null, history: [] };
    let tier = policy.start(route);
    for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
      const body = { model: this.model, ...params };
      if (tier === PRIORITY) body.service_tier = 'priority';
      else delete body.service_tier;
      const a = await this.#send(body, onToken);
      const d = policy.decide(route, tier, attempt, a.status, { retryAfterMs: a.retryAfterMs });
      result.history.push({ tier, status: a.status, retryAfterMs: a.retryAfterMs, decision: d });
      Object.assign(result, {
        attempts: attempt, status: a.status, headers: a.headers, data: a.data, error: a.error, text: a.text, usage: a.usage,
        tier: a.headers?.get('x-fleetmock-service-tier') ?? tier, escalated: result.escalated || d.escalated,
      });
      if (!d.retry) {
        result.outcome = d.outcome;
        result.ok = d.outcome === 'ok';
        return result;
      }
      if (d.delayMs > 0) await this.sleep(d.delayMs);
      tier = d.tier;
    }
    return result; // not reached: the policy stops at maxAttempts
  }

  async #send(body, onToken) {
    const none = { headers: null, data: null, text: null, usage: null, retryAfterMs: -1 };
    let data;
    let response;
    try {
      ({ data, response } = await this.openai.chat.completions.create(body).withResponse());
    } catch (err) {
      if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
        const h = err.headers;
        return { ...none, status: err.status, headers: h ?? null, data: err.error ?? null, error: err.message,
          retryAfterMs: parseRetryAfter(h?.get('retry-after-ms'), h?.get('retry-after')) };
      }
      return { ...none, status: STATUS_NETWORK, error: `network error: ${err?.message ?? err}` };
    }
    if (!body.stream) {
      return { ...none, status: response.status, headers: response.headers, data,
        text: data?.choices?.[0]?.message?.content ?? null, usage: data?.usage ?? null, error: null };
    }
    const parts = [];
    let usage = null;
    let last = null;
    let error = null;
    let done = false;
    const seen = new Set();
    const finished = new Set();
    try {
      for await (const chunk of data) {
        last = chunk;
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices ?? []) {
          seen.add(c.index);
          if (c.finish_reason) finished.add(c.index);
          const piece = c.index === 0 ? c.delta?.content : null; // text and onToken follow choice 0
          if (piece) { parts.push(piece); if (onToken) onToken(piece); }
        }
      }
      // The SDK ends quietly when the body ends without [DONE]; a choice
      // without its finish_reason chunk tells that the stream was cut.
      done = seen.size > 0 && finished.size === seen.size;
      if (!done) error = 'stream ended before every choice finished';
    } catch (err) {
      error = `stream error: ${err?.message ?? err}`;
    }
    return { ...none, status: done ? response.status : STATUS_STREAM_ERROR, headers: response.headers, data: last,
      text: parts.join(''), usage, error };
  }
}

// What the page remembers of the feed: the last few minutes of pool samples
// (from `state` events) and of finished requests bucketed per simulated second
// (from `requests` events). No DOM and no charts here, only numbers, so every
// panel draws from the same history.

export const PATHS = ['standard', 'priority', 'background', 'fast'];
export const TIERS = ['priority', 'standard', 'background'];
export const OUTCOMES = ['200', '429', '503', 'other'];

/** How much history the charts keep, in simulated seconds. */
export const WINDOW_S = 180;
/** The outcome summary (and its data-* attributes) covers this much real time. */
export const SUMMARY_MS = 10000;

const zeroCounts = () => ({ 200: 0, 429: 0, 503: 0, other: 0 });
const sum = (o) => Object.values(o).reduce((a, b) => a + (b || 0), 0);

function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export class History {
  constructor() {
    this.samples = []; // {t, pools: {name: {slots, tenant, own, queued: {tier: n}}}}
    this.buckets = new Map(); // floor(time_s) -> {counts: {path: counts}, tokens: {path}, ttft: {path: []}}
    this.recent = []; // {at (performance.now()), counts}: for the last SUMMARY_MS
    this.steps = []; // [{loop, step, at_s}]: step starts of the running scenario, as seen
    this.timeScale = 1; // simulated seconds per real second (state.time_scale)
  }

  /** Records one `state` snapshot (GET /admin/state's JSON). */
  addState(state) {
    const pools = {};
    for (const [name, p] of Object.entries(state.pools || {})) {
      pools[name] = {
        slots: p.slots,
        tenant: p.tenant_load * p.slots,
        own: sum(p.in_flight || {}),
        ownQueued: sum(p.queued || {}),
        queued: { ...p.queued },
      };
    }
    this.timeScale = state.time_scale || 1;
    this.samples.push({ t: state.time_s, pools });
    while (this.samples.length && this.samples[0].t < state.time_s - WINDOW_S) this.samples.shift();
    this.noteStep(state.scenario);
  }

  /** Remembers when the running scenario entered each step, to mark it on its timeline. */
  noteStep(sc) {
    if (!sc) { this.steps = []; return; }
    const last = this.steps[this.steps.length - 1];
    if (!last || last.name !== sc.name || last.loop !== sc.loop || last.step !== sc.step) {
      if (last && (last.name !== sc.name || last.loop !== sc.loop)) this.steps = [];
      this.steps.push({ name: sc.name, loop: sc.loop, step: sc.step, at_s: sc.loop_elapsed_s });
    }
  }

  /** The bucket of simulated second `key`, made empty if it is new. */
  bucket(key) {
    let b = this.buckets.get(key);
    if (!b) {
      b = { counts: {}, tokens: {}, ttft: {} };
      for (const p of PATHS) { b.counts[p] = zeroCounts(); b.tokens[p] = 0; b.ttft[p] = []; }
      this.buckets.set(key, b);
    }
    return b;
  }

  /**
   * Records one `requests` batch; `now` is performance.now() when it arrived.
   * A batch covers window_ms of real time, time_scale times as much simulated
   * time, which may span several simulated seconds or part of one: its counts
   * and tokens are spread over the seconds it covers, in proportion, so the
   * per-second rates stay smooth whatever the window and the time scale.
   * A listed request's TTFT goes to the second it ended in.
   */
  addRequests(batch, now) {
    const counts = batch.counts || {};
    const listed = {};
    const tokens = {};
    for (const r of batch.requests || []) {
      if (!PATHS.includes(r.tier)) continue;
      listed[r.tier] = (listed[r.tier] || 0) + 1;
      tokens[r.tier] = (tokens[r.tier] || 0) + (r.completion_tokens || 0);
      if (r.ttft_ms != null) this.bucket(Math.floor(r.time_s)).ttft[r.tier].push(r.ttft_ms);
    }
    // Tokens come from the listed requests; when some were omitted, a path's
    // tokens are scaled up by finished ÷ listed on that path.
    for (const p of Object.keys(listed)) {
      const finished = counts[p] ? sum(counts[p]) : listed[p];
      tokens[p] *= Math.max(1, finished / listed[p]);
    }

    const end = batch.time_s;
    const span = Math.max(1e-6, ((batch.window_ms || 0) / 1000) * this.timeScale);
    for (let k = Math.floor(end - span); k <= Math.floor(end); k++) {
      const share = (Math.min(end, k + 1) - Math.max(end - span, k)) / span;
      if (share <= 0) continue;
      const b = this.bucket(k);
      for (const p of PATHS) {
        for (const o of OUTCOMES) b.counts[p][o] += share * ((counts[p] && counts[p][o]) || 0);
        b.tokens[p] += share * (tokens[p] || 0);
      }
    }

    for (const k of this.buckets.keys()) if (k < end - WINDOW_S) this.buckets.delete(k);
    this.recent.push({ at: now, counts });
    while (this.recent.length && this.recent[0].at < now - SUMMARY_MS) this.recent.shift();
  }

  /** Per path, the outcome counts of the last SUMMARY_MS of real time. */
  summary(now) {
    const out = {};
    for (const p of PATHS) out[p] = zeroCounts();
    for (const r of this.recent) {
      if (r.at < now - SUMMARY_MS) continue;
      for (const p of PATHS) for (const o of OUTCOMES) out[p][o] += (r.counts[p] && r.counts[p][o]) || 0;
    }
    return out;
  }

  /** Points {x: time_s, y} of `pick(poolSample)` summed over `pool` (one name) or every pool (null). */
  poolSeries(pool, pick) {
    return this.samples.map((s) => {
      let y = 0;
      for (const [name, p] of Object.entries(s.pools)) if (pool === null || name === pool) y += pick(p);
      return { x: s.t, y };
    });
  }

  /** Points {x: second, y} from each bucket, oldest first; `pick(bucket)` may return null to leave a gap. */
  bucketSeries(pick) {
    return [...this.buckets.keys()].sort((a, b) => a - b).map((k) => ({ x: k, y: pick(this.buckets.get(k)) }));
  }

  ttftSeries(path) { return this.bucketSeries((b) => median(b.ttft[path])); }
  tokensSeries(path) { return this.bucketSeries((b) => b.tokens[path]); }
  outcomeSeries(path, outcome) { return this.bucketSeries((b) => b.counts[path][outcome]); }

  clear() { this.samples = []; this.buckets.clear(); this.recent = []; this.steps = []; }
}

// Every chart on the page, drawn with Chart.js 3.9 (window.Chart, loaded by a
// classic <script src="/ui/chart.js">). Charts take their numbers from a
// History (history.js) and redraw without animation; the x axis of the time
// charts is the server's simulated clock in seconds (a linear scale, so no
// date adapter is needed).

import { PATHS, TIERS, OUTCOMES, WINDOW_S } from './history.js';

export const OUTCOME_COLORS = { 200: '#2f9e44', 429: '#f0a202', 503: '#d63939', other: '#8c929c' };
export const TIER_COLORS = { priority: '#7048e8', standard: '#1c7ed6', background: '#868e96', fast: '#e8590c' };
const OUTCOME_LABELS = { 200: '200', 429: '429', 503: '503', other: 'other' };

const Chart = window.Chart;
if (Chart) {
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;
  Chart.defaults.plugins.legend.labels.boxWidth = 10;
}

function timeAxis(t) {
  return { type: 'linear', min: Math.max(0, t - WINDOW_S), max: Math.max(t, 10),
    ticks: { maxTicksLimit: 7, callback: (v) => `${Math.round(v)} s` } };
}

function latestTime(history) {
  const s = history.samples[history.samples.length - 1];
  return s ? s.t : 0;
}

/** Slots in use against slots, for one pool or (pool null) the whole fleet. */
export class DemandChart {
  constructor(canvas, pool, { legend = true } = {}) {
    this.pool = pool;
    this.chart = new Chart(canvas, {
      type: 'line',
      data: { datasets: [
        { label: 'tenant load', stack: 'use', fill: 'origin', borderColor: '#adb5bd', backgroundColor: 'rgba(173,181,189,0.45)', pointRadius: 0, data: [] },
        { label: "fleetmock's running", stack: 'use', fill: '-1', borderColor: '#1c7ed6', backgroundColor: 'rgba(28,126,214,0.35)', pointRadius: 0, data: [] },
        { label: "fleetmock's queued", stack: 'queued', borderColor: '#f0a202', borderDash: [4, 3], pointRadius: 0, data: [] },
        { label: 'slots', stack: 'slots', borderColor: '#212529', borderWidth: 1.5, pointRadius: 0, data: [] },
      ] },
      options: {
        scales: { x: timeAxis(0), y: { stacked: true, beginAtZero: true, title: { display: legend, text: 'slots' } } },
        plugins: { legend: { display: legend } },
      },
    });
  }

  update(history) {
    const d = this.chart.data.datasets;
    d[0].data = history.poolSeries(this.pool, (p) => p.tenant);
    d[1].data = history.poolSeries(this.pool, (p) => p.own);
    d[2].data = history.poolSeries(this.pool, (p) => p.ownQueued);
    d[3].data = history.poolSeries(this.pool, (p) => p.slots);
    this.chart.options.scales.x = timeAxis(latestTime(history));
    this.chart.update('none');
  }
}

/** Requests per simulated second on one serving path, stacked by outcome. */
export class OutcomeChart {
  constructor(canvas, path) {
    this.path = path;
    this.chart = new Chart(canvas, {
      type: 'bar',
      data: { datasets: OUTCOMES.map((o) => ({
        label: OUTCOME_LABELS[o], backgroundColor: OUTCOME_COLORS[o], data: [],
        barPercentage: 1, categoryPercentage: 1,
      })) },
      options: {
        scales: { x: { ...timeAxis(0), stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: 'req/s' } } },
        plugins: { legend: { display: path === 'standard' }, title: { display: true, text: path } },
      },
    });
  }

  update(history) {
    OUTCOMES.forEach((o, i) => { this.chart.data.datasets[i].data = history.outcomeSeries(this.path, o); });
    this.chart.options.scales.x = { ...timeAxis(latestTime(history)), stacked: true };
    this.chart.update('none');
  }
}

/** The shed probability a tier's curve gives at demand d (fleet-model.md). */
export function shedAt(curve, d) {
  if (d >= curve.end) return 1;
  if (d < curve.start) return 0;
  return (d - curve.start) / (curve.end - curve.start);
}

/** Each tier's shed curve for one pool, with the demand it sees now marked on it. */
export class ShedChart {
  constructor(canvas) {
    const lines = TIERS.map((t) => ({ type: 'line', label: t, borderColor: TIER_COLORS[t], pointRadius: 0, data: [] }));
    const marks = TIERS.map((t) => ({ type: 'scatter', label: `${t} now`, backgroundColor: TIER_COLORS[t],
      borderColor: '#fff', pointRadius: 6, pointStyle: 'circle', data: [] }));
    this.chart = new Chart(canvas, {
      type: 'line',
      data: { datasets: [...lines, ...marks] },
      options: {
        scales: {
          x: { type: 'linear', min: 0, max: 1.5, title: { display: true, text: 'demand the tier sees (fraction of slots)' } },
          y: { min: 0, max: 1.05, title: { display: true, text: 'shed probability' } },
        },
        plugins: { legend: { labels: { filter: (item) => !item.text.endsWith(' now') } } },
      },
    });
  }

  /** pool: the pool's /admin/state object. */
  update(pool) {
    const shed = pool.settings.shed;
    const maxX = Math.max(1.5, ...TIERS.map((t) => (pool.demand[t] || 0) + 0.1));
    TIERS.forEach((t, i) => {
      const c = shed[t];
      this.chart.data.datasets[i].data = [{ x: 0, y: 0 }, { x: c.start, y: 0 }, { x: c.end, y: 1 }, { x: maxX, y: 1 }];
      this.chart.data.datasets[TIERS.length + i].data = [{ x: pool.demand[t], y: pool.shed_probability[t] }];
    });
    this.chart.options.scales.x.max = Math.ceil(maxX * 10) / 10;
    this.chart.update('none');
  }
}

/** A line per key over simulated time: `series(key)` gives its points. */
export class SeriesChart {
  constructor(canvas, keys, yTitle, colors = TIER_COLORS) {
    this.keys = keys;
    this.chart = new Chart(canvas, {
      type: 'line',
      data: { datasets: keys.map((k) => ({ label: k, borderColor: colors[k], backgroundColor: colors[k],
        pointRadius: 1.5, spanGaps: false, data: [] })) },
      options: { scales: { x: timeAxis(0), y: { beginAtZero: true, title: { display: true, text: yTitle } } } },
    });
  }

  update(history, series) {
    this.keys.forEach((k, i) => { this.chart.data.datasets[i].data = series(k); });
    this.chart.options.scales.x = timeAxis(latestTime(history));
    this.chart.update('none');
  }
}

export { PATHS, TIERS };

// fleetmock's dashboard: boots the page, reads the live feed (feed.js) into a
// History (history.js), polls the slower tables every 2 s, and hands the
// numbers to the charts (charts.js) and panels (panels.js). Controls
// (controls.js) call the admin API. Nothing is shown before the first admin
// call succeeds; a 401/403 shows the token prompt instead (api.js).

import { api, AuthNeeded, onAuthNeeded, getToken, setToken } from './api.js';
import { startFeed } from './feed.js';
import { History, PATHS, TIERS } from './history.js';
import { DemandChart, OutcomeChart, ShedChart, SeriesChart } from './charts.js';
import * as panels from './panels.js';
import { wirePoolSliders, wireScenario, loadScenarios, wireFaults, wireReset } from './controls.js';

const POLL_MS = 2000;
const CHART_MS = 1000; // charts redraw at most this often; numbers follow every event
const LATEST = 20; // rows in "Latest requests"

const $ = (sel) => document.querySelector(sel);

const page = {
  history: new History(),
  state: null,
  latest: [],
  models: new Set(), // model ids seen in requests: the fault form's suggestions
  omitted: 0,
  cards: new Map(), // pool name -> {card, chart}
  selected: null,
  feed: null,
  timers: [],
  charts: null,
  lastDraw: 0,
};

// ---- errors and auth ------------------------------------------------------------

let errorTimer = null;
function showError(message) {
  const box = $('#error');
  box.textContent = message;
  box.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { box.hidden = true; }, 15000);
}
function clearError() { $('#error').hidden = true; }

function stopAll() {
  if (page.feed) page.feed.stop();
  page.feed = null;
  page.timers.forEach(clearInterval);
  page.timers = [];
}

/** A call answered 401/403: hide every number and ask for the token. */
function askForToken(status, message) {
  stopAll();
  $('#dashboard').hidden = true;
  const form = $('#auth');
  const why = $('#auth-why');
  why.dataset.status = status;
  if (getToken()) {
    why.textContent = `The admin token was not accepted (${status}: ${message}). Enter it again.`;
    setToken('');
  } else if (status === 403) {
    why.textContent = `This fleetmock answers admin calls from loopback only, or with its admin token (${message}). Enter the token if it has one.`;
  }
  form.hidden = false;
  setStatus('auth', 'admin token needed');
  $('#auth-token').focus();
}

function setStatus(state, text) {
  const s = $('#feed-status');
  s.dataset.state = state;
  s.textContent = text;
}

// ---- what the controls call back ---------------------------------------------------

const ctx = {
  showError,
  clearError,
  selectPool(name) { selectPool(name); },
  onPoolPatched(name, pool) {
    if (page.state) page.state.pools[name] = pool;
    const c = page.cards.get(name);
    if (c) panels.updatePoolCard(c.card, pool);
  },
  onScenario(sc) {
    if (page.state) page.state.scenario = sc;
    page.history.noteStep(sc);
    panels.renderScenario($('#scenario'), sc, page.history.steps);
  },
  refresh(what) { poll(what); },
  onReset() {
    page.latest = [];
    panels.renderRequests($('#requests tbody'), page.latest);
    for (const what of ['faults', 'replies', 'accounts', 'state']) poll(what);
  },
};

// ---- pools ---------------------------------------------------------------------------

function buildPools(state) {
  const root = $('#pools');
  for (const c of page.cards.values()) c.chart.chart.destroy();
  page.cards.clear();
  root.replaceChildren();
  for (const [name, pool] of Object.entries(state.pools)) {
    const card = panels.poolCard(name, pool);
    root.append(card);
    const chart = new DemandChart(card.querySelector('canvas'), name, { legend: false });
    page.cards.set(name, { card, chart });
    wirePoolSliders(ctx, card, name);
    card.addEventListener('click', (ev) => { if (ev.target.tagName !== 'INPUT') selectPool(name); });
  }
  if (!page.selected || !state.pools[page.selected]) page.selected = Object.keys(state.pools)[0];
  selectPool(page.selected);
}

function selectPool(name) {
  page.selected = name;
  for (const [n, c] of page.cards) c.card.classList.toggle('selected', n === name);
  $('#shed-pool').textContent = name;
  $('#queue-pool').textContent = name;
  if (page.state) drawPoolDetail();
}

function drawPoolDetail() {
  const pool = page.state.pools[page.selected];
  if (!pool) return;
  page.charts.shed.update(pool);
  page.charts.queue.update(page.history, (t) => page.history.poolSeries(page.selected, (p) => p.queued[t] || 0));
  drawShedText();
}

// ---- feed events ------------------------------------------------------------------------

function onState(state) {
  const names = Object.keys(state.pools).join();
  if (!page.state || Object.keys(page.state.pools).join() !== names) buildPools(state);
  page.state = state;
  page.history.addState(state);
  $('#clock').textContent = `t = ${state.time_s.toFixed(1)} s` + (state.time_scale !== 1 ? ` (×${state.time_scale})` : '');
  for (const [name, pool] of Object.entries(state.pools)) panels.updatePoolCard(page.cards.get(name).card, pool);
  panels.renderScenario($('#scenario'), state.scenario, page.history.steps);
  drawShedText();
  maybeDraw();
}

function drawShedText() {
  const pool = page.state.pools[page.selected];
  if (!pool) return;
  $('#shed-now').replaceChildren(...TIERS.map((t) => panels.el('span', { dataset: { tier: t, shed: pool.shed_probability[t] } },
    `${t}: demand ${pool.demand[t].toFixed(2)} → shed ${Math.round(pool.shed_probability[t] * 100)} %`)));
}

function onRequests(batch) {
  const now = performance.now();
  page.history.addRequests(batch, now);
  panels.renderOutcomes($('#outcomes'), page.history.summary(now));
  if (batch.requests && batch.requests.length) {
    const fresh = [...batch.requests].sort((a, b) => b.time_s - a.time_s);
    page.latest = [...fresh, ...page.latest].slice(0, LATEST);
    panels.renderRequests($('#requests tbody'), page.latest);
  }
  for (const r of batch.requests || []) {
    if (r.model && !page.models.has(r.model)) {
      page.models.add(r.model);
      $('#models').append(panels.el('option', { value: r.model }));
    }
  }
  page.omitted += batch.omitted || 0;
  $('#requests-omitted').textContent = page.omitted ? `${page.omitted} more finished than the feed listed` : '';
  maybeDraw();
}

function maybeDraw(force = false) {
  const now = performance.now();
  if (!force && now - page.lastDraw < CHART_MS) return;
  page.lastDraw = now;
  const h = page.history;
  page.charts.fleet.update(h);
  for (const c of page.charts.outcomes) c.update(h);
  for (const c of page.cards.values()) c.chart.update(h);
  page.charts.ttft.update(h, (p) => h.ttftSeries(p));
  page.charts.tps.update(h, (p) => h.tokensSeries(p));
  if (page.state) drawPoolDetail();
}

// ---- polls ---------------------------------------------------------------------------

const polls = {
  async accounts() {
    panels.renderAccounts($('#accounts tbody'), $('#accounts-totals'), await api('GET', '/admin/accounts?limit=100'));
  },
  async faults() { panels.renderFaults($('#faults tbody'), await api('GET', '/admin/faults')); },
  async replies() { panels.renderReplies($('#replies tbody'), $('#replies-fired'), await api('GET', '/admin/replies')); },
  async state() { onState(await api('GET', '/admin/state')); },
};

async function poll(what) {
  try {
    await polls[what]();
  } catch (e) {
    if (!(e instanceof AuthNeeded)) showError(e.message);
  }
}

/** The journal's newest entries, to fill "Latest requests" before the feed brings any. */
async function loadJournal() {
  const j = await api('GET', `/admin/requests?limit=${LATEST}`);
  page.latest = j.data.map((e) => ({ ...e, time_s: e.sim_time_ms / 1000 }));
  panels.renderRequests($('#requests tbody'), page.latest);
}

// ---- boot ----------------------------------------------------------------------------------

function makeCharts() {
  const grid = $('#outcome-charts');
  const outcomes = PATHS.map((p) => {
    const box = panels.el('div', { class: 'chart' }, panels.el('canvas'));
    grid.append(box);
    return new OutcomeChart(box.querySelector('canvas'), p);
  });
  return {
    outcomes,
    fleet: new DemandChart($('#fleet-chart'), null),
    shed: new ShedChart($('#shed-chart')),
    queue: new SeriesChart($('#queue-chart'), TIERS, 'queued requests'),
    ttft: new SeriesChart($('#ttft-chart'), PATHS, 'TTFT ms'),
    tps: new SeriesChart($('#tps-chart'), PATHS, 'tokens / s'),
  };
}

async function boot() {
  let state;
  try {
    state = await api('GET', '/admin/state');
  } catch (e) {
    if (e instanceof AuthNeeded) return;
    showError(`${e.message}; trying again in 2 s`);
    setTimeout(boot, 2000);
    return;
  }
  $('#auth').hidden = true;
  $('#dashboard').hidden = false;
  if (!page.charts) page.charts = makeCharts();
  onState(state);
  panels.renderOutcomes($('#outcomes'), page.history.summary(performance.now()));
  await Promise.all([poll('faults'), poll('replies'), poll('accounts'), loadScenarios(ctx, $('#scenario-form')), loadJournal().catch((e) => {
    if (!(e instanceof AuthNeeded)) showError(e.message);
  })]);
  if ($('#dashboard').hidden) return; // a poll asked for the token
  page.timers.push(setInterval(() => { poll('accounts'); poll('faults'); poll('replies'); }, POLL_MS));
  page.feed = startFeed({
    intervalMs: 250,
    onEvent(name, json) {
      if (name === 'state') onState(json);
      else if (name === 'requests') onRequests(json);
    },
    onStatus: setStatus,
    onAuth: askForToken,
  });
  maybeDraw(true);
}

onAuthNeeded(askForToken);
$('#auth').addEventListener('submit', (ev) => {
  ev.preventDefault();
  setToken($('#auth-token').value.trim());
  $('#auth-token').value = '';
  boot();
});
wireScenario(ctx, $('#scenario-form'));
wireFaults(ctx, $('#fault-form'), $('#faults tbody'));
wireReset(ctx, $('#reset'));
boot();

// Renders the panels that are tables and numbers rather than charts: pool
// cards, the per-path outcome summary, the scenario timeline, accounts,
// faults, reply rules and the latest requests. Each render function takes the
// admin API's own JSON and writes the DOM; none of them calls the server.

import { PATHS, TIERS, OUTCOMES, SUMMARY_MS } from './history.js';
import { OUTCOME_COLORS } from './charts.js';

/** Makes an element: el('td', {class: 'x', dataset: {a: 1}}, 'text', child...). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'class') e.className = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

const fmt = (x, digits = 2) => (x == null ? '–' : Number(x).toFixed(digits));
const pct = (x) => (x == null ? '–' : `${Math.round(x * 100)} %`);
const usd = (x) => (x ? `$${x < 0.01 ? x.toPrecision(2) : x.toFixed(2)}` : '–');
const byTier = (o) => TIERS.map((t) => (o && o[t]) || 0).join(' / ');

// ---- pools -------------------------------------------------------------------

/** Builds the card of one pool (numbers, tier table, mini chart, sliders); the caller wires the sliders. */
export function poolCard(name, pool) {
  const slider = (field, label, min, max, step) => el('label', { class: 'slider' }, label,
    el('input', { type: 'range', name: field, min, max, step, 'aria-label': `${name} ${label}` }),
    el('output', { dataset: { for: field } }));
  const tierRows = TIERS.map((t) => el('tr', { dataset: { tier: t } }, el('th', {}, t),
    el('td', { dataset: { field: 'demand' } }), el('td', { dataset: { field: 'shed' } }),
    el('td', { dataset: { field: 'in_flight' } }), el('td', { dataset: { field: 'queued' } })));
  return el('article', { class: 'pool', dataset: { pool: name }, tabindex: 0 },
    el('h3', {}, name, el('span', { class: 'util', dataset: { field: 'utilisation' }, title: 'utilisation' })),
    el('dl', { class: 'stats' },
      el('dt', {}, 'slots'), el('dd', { dataset: { field: 'slots' } }),
      el('dt', {}, 'tenant load'), el('dd', { dataset: { field: 'tenant_load' } }),
      el('dt', {}, 'priority share'), el('dd', { dataset: { field: 'tenant_priority_share' } })),
    el('table', { class: 'tiers' },
      el('thead', {}, el('tr', {}, el('th'), el('th', {}, 'demand'), el('th', {}, 'shed'),
        el('th', {}, 'in flight'), el('th', {}, 'queued'))),
      el('tbody', {}, ...tierRows)),
    el('div', { class: 'chart mini' }, el('canvas')),
    slider('tenant_load', 'tenant load', 0, 2, 0.05),
    slider('tenant_priority_share', 'priority share', 0, 1, 0.05),
    slider('slots', 'slots', 1, Math.max(256, pool.slots * 4), 1));
}

/** Writes a pool's /admin/state numbers into its card; sliders the user is moving are left alone. */
export function updatePoolCard(card, pool) {
  const set = (field, text) => { card.querySelector(`dd[data-field="${field}"]`).textContent = text; };
  Object.assign(card.dataset, {
    slots: pool.slots, tenantLoad: pool.tenant_load, tenantPriorityShare: pool.tenant_priority_share,
    utilisation: pool.utilisation,
  });
  card.querySelector('[data-field="utilisation"]').textContent = `u ${fmt(pool.utilisation)}`;
  card.classList.toggle('hot', pool.utilisation >= 0.85);
  set('slots', pool.slots);
  set('tenant_load', fmt(pool.tenant_load));
  set('tenant_priority_share', fmt(pool.tenant_priority_share));
  for (const t of TIERS) {
    const row = card.querySelector(`tr[data-tier="${t}"]`);
    row.querySelector('[data-field="demand"]').textContent = fmt(pool.demand[t]);
    const shed = row.querySelector('[data-field="shed"]');
    shed.textContent = pct(pool.shed_probability[t]);
    shed.className = pool.shed_probability[t] >= 0.5 ? 'bad' : pool.shed_probability[t] > 0 ? 'warn' : '';
    row.querySelector('[data-field="in_flight"]').textContent = pool.in_flight[t];
    row.querySelector('[data-field="queued"]').textContent = pool.queued[t];
  }
  for (const input of card.querySelectorAll('input[type="range"]')) {
    const v = pool[input.name];
    if (!input.dataset.editing) input.value = v;
    card.querySelector(`output[data-for="${input.name}"]`).textContent = input.dataset.editing ? input.value : v;
  }
}

// ---- outcomes ----------------------------------------------------------------

/**
 * The per-path summary of the last SUMMARY_MS: each path's element carries
 * data-200, data-429, data-503, data-other and data-verdict (the outcome most
 * seen: "200", "429", "503", "other", or "idle").
 */
export function renderOutcomes(root, summary) {
  if (!root.children.length) {
    for (const p of PATHS) {
      root.append(el('div', { class: 'outcome', dataset: { path: p, verdict: 'idle' } },
        el('b', {}, p), el('span', { class: 'counts' })));
    }
  }
  for (const p of PATHS) {
    const node = root.querySelector(`[data-path="${p}"]`);
    const c = summary[p];
    let verdict = 'idle';
    let best = 0;
    for (const o of OUTCOMES) {
      node.dataset[o] = c[o];
      if (c[o] > best) { best = c[o]; verdict = o; }
    }
    node.dataset.verdict = verdict;
    node.style.borderColor = verdict === 'idle' ? '' : OUTCOME_COLORS[verdict];
    node.querySelector('.counts').textContent =
      `${c[200]} ok · ${c[429]} × 429 · ${c[503]} × 503 · ${c.other} other (last ${SUMMARY_MS / 1000} s)`;
  }
}

// ---- scenario ----------------------------------------------------------------

/** The running scenario (state.scenario, or null) on its timeline; `steps` are the step starts seen. */
export function renderScenario(root, sc, steps) {
  root.dataset.name = sc ? sc.name : '';
  root.dataset.step = sc ? sc.step : '';
  root.querySelector('#scenario-none').hidden = Boolean(sc);
  const run = root.querySelector('#scenario-running');
  run.hidden = !sc;
  if (!sc) return;
  root.querySelector('#scenario-name').textContent = sc.name;
  root.querySelector('#scenario-meta').textContent =
    `step ${sc.step + 1} of ${sc.steps} · ${fmt(sc.loop_elapsed_s, 1)} s of ${sc.duration_s} s` +
    (sc.repeat ? ` · loop ${sc.loop + 1}` : '') + (sc.finished ? ' · finished (its last settings stay until Stop)' : '');
  root.querySelector('#scenario-desc').textContent = sc.description || '';
  root.querySelector('#scenario-end').textContent = `${sc.duration_s} s`;
  const line = root.querySelector('#scenario-timeline');
  const frac = Math.min(1, sc.loop_elapsed_s / sc.duration_s);
  line.querySelector('.elapsed').style.width = `${frac * 100}%`;
  line.querySelector('.now').style.left = `${frac * 100}%`;
  line.querySelectorAll('.step').forEach((n) => n.remove());
  for (const s of steps) {
    line.append(el('div', { class: 'step', style: `left:${Math.min(1, s.at_s / sc.duration_s) * 100}%`,
      title: `step ${s.step + 1} from ${fmt(s.at_s, 1)} s` }, String(s.step + 1)));
  }
}

// ---- accounts ----------------------------------------------------------------

const LIMITS = ['requests', 'prompt', 'uncached_prompt', 'generated'];

/** The top accounts by requests from GET /admin/accounts, and the totals over every account. */
export function renderAccounts(tbody, totalsNode, answer, top = 10) {
  const t = answer.totals;
  const lb = t.limited_by || {};
  totalsNode.textContent = `${t.accounts} accounts held (${t.accounts_evicted} evicted) · ` +
    `${t.total ? t.total.requests : 0} requests · spent ${usd(t.spent_usd) || '$0'} · ` +
    `429s by limit: ${LIMITS.map((l) => `${l} ${lb[l] || 0}`).join(', ')} · 402 budget ${lb.budget || 0}` +
    (answer.has_more ? ' · top of the first page of accounts only' : '');
  const rows = [...answer.accounts].sort((a, b) => b.total.requests - a.total.requests).slice(0, top);
  tbody.replaceChildren(...rows.map((a) => {
    const limited = LIMITS.filter((l) => a.limited_by[l]).map((l) => `${l} ${a.limited_by[l]}`).join(', ') || '–';
    const buckets = Object.entries(a.limits || {}).map(([model, ls]) => el('div', { class: 'buckets', title: model },
      ...LIMITS.filter((l) => ls[l]).map((l) => el('span', { class: 'bucket', title: `${model} ${l}: level ${ls[l].level} of ceiling ${ls[l].ceiling} (limit ${ls[l].limit}/min)` },
        el('i', { style: `width:${Math.max(0, Math.min(1, ls[l].level / ls[l].ceiling)) * 100}%` }), l[0]))));
    return el('tr', { dataset: { keyId: a.key_id } },
      el('td', {}, el('code', {}, a.key_id)), el('td', {}, a.name || ''),
      el('td', {}, a.total.requests), el('td', {}, a.total.status_200), el('td', {}, a.total.status_429),
      el('td', {}, a.total.status_503), el('td', {}, limited), el('td', {}, ...buckets),
      ...PATHS.map((p) => el('td', {}, usd(a.tiers[p] && a.tiers[p].cost_usd))), el('td', {}, usd(a.total.cost_usd)));
  }));
}

// ---- faults and reply rules -----------------------------------------------------

const matchText = (m) => Object.entries(m || {}).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ') || 'any';
/** A match cell: model ids shortened to their last part (the whole match is its title); wraps. */
const matchCell = (m) => el('td', { class: 'wrap', title: matchText(m) },
  matchText(m).replace(/accounts\/[^/ ]+\/(models|routers)\//g, ''));

function actionText(a) {
  if (!a) return '';
  if (a.status) return `status ${a.status}`;
  if (a.stream) return `${a.stream} after ${a.after_tokens} tokens`;
  return JSON.stringify(a);
}

/** The faults of GET /admin/faults, each with a Remove button (data-remove = its id). */
export function renderFaults(tbody, answer) {
  // Unchanged lists are left alone, so a button is never swapped under a click.
  const key = JSON.stringify(answer.faults);
  if (tbody.dataset.shown === key) return;
  tbody.dataset.shown = key;
  tbody.replaceChildren(...answer.faults.map((f) => el('tr', { dataset: { faultId: f.id, fired: f.fired } },
    el('td', {}, f.id), matchCell(f.match),
    el('td', {}, actionText(f.action) + (f.probability != null && f.probability !== 1 ? ` (p ${f.probability})` : '')),
    el('td', {}, f.count_left == null ? '∞' : f.count_left), el('td', {}, f.fired),
    el('td', {}, el('button', { type: 'button', dataset: { remove: f.id } }, 'Remove')))));
  if (!answer.faults.length) tbody.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No faults.')));
}

/** The rules of GET /admin/replies. */
export function renderReplies(tbody, firedNode, answer) {
  firedNode.textContent = `${answer.fired} requests answered by a rule`;
  const key = JSON.stringify(answer.data);
  if (tbody.dataset.shown === key) return;
  tbody.dataset.shown = key;
  tbody.replaceChildren(...answer.data.map((r) => el('tr', { dataset: { replyId: r.id } },
    el('td', {}, r.id), matchCell(r.match), el('td', {}, r.count_left == null ? '∞' : r.count_left),
    el('td', {}, r.fired), el('td', {}, r.active === false ? 'no' : 'yes'))));
  if (!answer.data.length) tbody.append(el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No reply rules.')));
}

// ---- latest requests --------------------------------------------------------------

const statusClass = (s) => (s === 200 ? 'ok' : s === 429 ? 'warn' : s === 503 ? 'bad' : 'other');

/** The newest requests (feed entries, newest first). */
export function renderRequests(tbody, list) {
  tbody.replaceChildren(...list.map((r) => el('tr', { dataset: { status: r.status, tier: r.tier || '' } },
    el('td', {}, fmt(r.time_s, 2)), el('td', {}, r.route), el('td', { title: r.model || '' }, (r.model || '–').split('/').pop()),
    el('td', {}, r.tier || '–'), el('td', { class: statusClass(r.status) }, r.status == null ? 'dropped' : r.status),
    el('td', {}, r.key_id ? el('code', {}, r.key_id) : '–'), el('td', {}, r.test_id || '–'),
    el('td', {}, r.queue_ms ?? '–'), el('td', {}, r.ttft_ms ?? '–'), el('td', {}, r.prompt_tokens),
    el('td', {}, r.cached_tokens), el('td', {}, r.completion_tokens))));
}

// The page's controls. Each one is a call to the existing admin API (so what
// the page does, a test or curl can do) and nothing else: the page shows the
// result when the feed or the next poll brings it back. A failed call shows
// the API's error message.

import { api, AuthNeeded } from './api.js';


/** Runs an admin call for a control: resolves with its answer (maybe null), or false after showing why it failed. */
async function act(ctx, method, path, body) {
  try {
    const answer = await api(method, path, body);
    ctx.clearError();
    return answer;
  } catch (e) {
    if (!(e instanceof AuthNeeded)) ctx.showError(e.message);
    return false;
  }
}

/**
 * Wires a pool card's sliders: while one moves, PATCH /admin/pools/{name}
 * with its value (at most every 150 ms, and at once on release). The card
 * does not overwrite a slider the user is moving until its PATCH answered.
 */
export function wirePoolSliders(ctx, card, name) {
  for (const input of card.querySelectorAll('input[type="range"]')) {
    let timer = null;
    let inFlight = null; // the value of the PATCH not answered yet
    const send = async () => {
      clearTimeout(timer);
      timer = null;
      const value = Number(input.value);
      if (value === inFlight) return;
      inFlight = value;
      const answer = await act(ctx, 'PATCH', `/admin/pools/${encodeURIComponent(name)}`, { [input.name]: value });
      inFlight = null;
      if (answer && answer.pools && answer.pools[name]) ctx.onPoolPatched(name, answer.pools[name]);
      if (!timer && Number(input.value) === value) delete input.dataset.editing;
    };
    input.addEventListener('input', () => {
      input.dataset.editing = '1';
      card.querySelector(`output[data-for="${input.name}"]`).textContent = input.value;
      ctx.selectPool(name);
      if (!timer) timer = setTimeout(send, 150);
    });
    input.addEventListener('change', send);
  }
}

/** Start (POST /admin/scenario {name}) and Stop (DELETE /admin/scenario). */
/** Fills the scenario select with the shipped scenarios, as the server lists them (GET /admin/scenarios). */
export async function loadScenarios(ctx, form) {
  const select = form.querySelector('#scenario-select');
  const shipped = await act(ctx, 'GET', '/admin/scenarios');
  if (!shipped) return;
  const wanted = select.value || 'launch-spike';
  select.replaceChildren(...shipped.scenarios.map((s) => {
    const o = new Option(s.name, s.name, s.name === wanted, s.name === wanted);
    if (s.description) o.title = s.description;
    return o;
  }));
}

export function wireScenario(ctx, form) {
  const select = form.querySelector('#scenario-select');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const sc = await act(ctx, 'POST', '/admin/scenario', { name: select.value });
    if (sc) ctx.onScenario(sc);
  });
  form.querySelector('#scenario-stop').addEventListener('click', async () => {
    if (await act(ctx, 'DELETE', '/admin/scenario') !== false) ctx.onScenario(null);
  });
}

/** The fault body (control-plane.md, "Faults") the form describes. */
export function faultBody(form) {
  const f = new FormData(form);
  const match = {};
  if (f.get('model')) match.model = f.get('model');
  if (f.get('tier')) match.tier = f.get('tier');
  const action = f.get('kind') === 'error'
    ? { stream: 'error', after_tokens: Number(f.get('after_tokens')) }
    : { status: Number(f.get('status')) };
  const body = { match, action };
  if (f.get('fires') === 'probability') body.probability = Number(f.get('probability'));
  else body.count = Number(f.get('count'));
  return body;
}

/** Add (POST /admin/faults) and Remove (DELETE /admin/faults/{id}). */
export function wireFaults(ctx, form, tbody) {
  const showKind = () => {
    const kind = form.elements.kind.value;
    form.querySelector('.kind-status').hidden = kind !== 'status';
    form.querySelector('.kind-error').hidden = kind !== 'error';
    const fires = form.elements.fires.value;
    form.querySelector('.fires-count').hidden = fires !== 'count';
    form.querySelector('.fires-probability').hidden = fires !== 'probability';
  };
  form.elements.kind.addEventListener('change', showKind);
  form.elements.fires.addEventListener('change', showKind);
  showKind();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (await act(ctx, 'POST', '/admin/faults', faultBody(form))) ctx.refresh('faults');
  });
  tbody.addEventListener('click', async (ev) => {
    const id = ev.target.dataset && ev.target.dataset.remove;
    if (!id) return;
    if (await act(ctx, 'DELETE', `/admin/faults/${encodeURIComponent(id)}`) !== false) ctx.refresh('faults');
  });
}

/** Reset (POST /admin/reset): the whole server back to its boot state. */
export function wireReset(ctx, button) {
  button.addEventListener('click', async () => {
    if (await act(ctx, 'POST', '/admin/reset') !== false) ctx.onReset();
  });
}

// The live feed, GET /admin/events: a text/event-stream of `state` and
// `requests` events. EventSource cannot send an Authorization header, so the
// stream is read with fetch() and parsed here. When the server drops the
// connection (it drops a reader that falls behind) or it fails, the feed
// reconnects after a delay that doubles from 0.5 s up to 5 s and goes back to
// 0.5 s once events flow again.

import { authHeaders, errorMessage } from './api.js';

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 5000;

/**
 * Splits SSE text into events. Feeds `chunk` into the parser state `p`
 * ({buf}) and calls onEvent(name, data) for each complete event; comments
 * (":" lines), ids and retry hints are ignored.
 */
export function parseSse(p, chunk, onEvent) {
  p.buf += chunk.replace(/\r\n?/g, '\n');
  let end;
  while ((end = p.buf.indexOf('\n\n')) >= 0) {
    const block = p.buf.slice(0, end);
    p.buf = p.buf.slice(end + 2);
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      else if (line.startsWith('event:')) name = line.slice(6).trim();
    }
    if (data.length) onEvent(name, data.join('\n'));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts reading the feed. Handlers: onEvent(name, json) per event,
 * onStatus(state, text) with state "live" | "reconnecting", onAuth(status,
 * message) on 401/403 (the feed then stops). Returns {stop()}.
 */
export function startFeed({ intervalMs = 250, onEvent, onStatus, onAuth }) {
  let stopped = false;
  let controller = null;
  let delay = MIN_DELAY_MS;

  async function readOnce() {
    controller = new AbortController();
    const res = await fetch(`/admin/events?interval_ms=${intervalMs}`, {
      headers: authHeaders({ Accept: 'text/event-stream' }),
      cache: 'no-store',
      signal: controller.signal,
    });
    if (res.status === 401 || res.status === 403) {
      stopped = true;
      onAuth(res.status, errorMessage(res.status, await res.text()));
      return;
    }
    if (!res.ok) throw new Error(`GET /admin/events: ${errorMessage(res.status, await res.text())}`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const parser = { buf: '' };
    onStatus('live', 'live');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the server closed the feed');
      parseSse(parser, decoder.decode(value, { stream: true }), (name, data) => {
        delay = MIN_DELAY_MS;
        let json;
        try { json = JSON.parse(data); } catch { return; }
        onEvent(name, json);
      });
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await readOnce();
      } catch (e) {
        if (stopped) return;
        onStatus('reconnecting', `feed lost (${e.message}); reconnecting in ${(delay / 1000).toFixed(1)} s`);
        await sleep(delay);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      }
    }
  })();

  return {
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}

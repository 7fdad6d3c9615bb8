// The one way the page talks to fleetmock's admin API. Every call carries the
// admin token (when one was entered) as a bearer header, never in the URL; a
// 401 or 403 goes to the auth prompt instead of the caller's error path.

const TOKEN_KEY = 'fleetmock.adminToken';

/** Thrown when the server wants a (different) admin token; the prompt is already showing. */
export class AuthNeeded extends Error {}

/** Thrown when an admin call fails; `message` is the API's own error message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let authHandler = () => {};

/** Sets what happens when a call answers 401/403: handler(status, message). */
export function onAuthNeeded(handler) { authHandler = handler; }

export function getToken() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The headers of an admin call: `extra` plus the bearer token, if any. */
export function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra };
}

/** The message of an error body (`{"error":{"message"}}`), or the text itself. */
export function errorMessage(status, text) {
  try {
    const j = JSON.parse(text);
    if (j && j.error && j.error.message) return j.error.message;
  } catch { /* not JSON */ }
  return text ? `${status}: ${text.slice(0, 300)}` : `HTTP ${status}`;
}

/**
 * Calls the admin API and resolves with the parsed JSON answer. Rejects with
 * AuthNeeded on 401/403 (after calling the auth handler) and ApiError on any
 * other failure, including a network error (status 0).
 */
export async function api(method, path, body) {
  const init = { method, cache: 'no-store', headers: authHeaders() };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `${method} ${path}: the server did not answer (${e.message})`);
  }
  const text = await res.text();
  if (res.status === 401 || res.status === 403) {
    const msg = errorMessage(res.status, text);
    authHandler(res.status, msg);
    throw new AuthNeeded(msg);
  }
  if (!res.ok) throw new ApiError(res.status, `${method} ${path}: ${errorMessage(res.status, text)}`);
  return text ? JSON.parse(text) : null;
}

/* fleetclient.c — the routing policy: what to do after each answer.
 *
 * Everything here is pure: no I/O, no clock, no randomness of its own. The
 * caller passes the time and a jitter draw, so the unit tests replay the
 * shared behaviour list (clients/behaviours.json) with a fake clock and get
 * exact answers. The HTTP side (fleetclient_http.c) asks fm_policy_start
 * before a call and fm_policy_decide after every attempt, and does what it
 * is told.
 *
 * Why only 503 escalates: a 503 says the fleet is shedding this tier, and
 * Priority meets a later shed curve, so moving there helps. A 429 is this
 * account's own rate limit, shared by both tiers, so moving does not help
 * and only costs more; a 4xx is a bug in the request; a network error says
 * nothing about the fleet. The window keeps a client from flipping tiers on
 * every answer: it stays on Priority for window_s, then tries Standard again. */
#include "fleetclient.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fm_policy_default(fm_policy *p) {
  p->window_s = FM_POLICY_DEFAULT_WINDOW_S;
  p->time_scale = 1.0;
  p->backoff_base_ms = FM_POLICY_DEFAULT_BACKOFF_BASE_MS;
  p->backoff_cap_ms = FM_POLICY_DEFAULT_BACKOFF_CAP_MS;
  p->max_attempts = FM_POLICY_DEFAULT_MAX_ATTEMPTS;
  p->alert_windows = FM_POLICY_DEFAULT_ALERT_WINDOWS;
  p->strategy = FM_STRATEGY_ESCALATE;
}

static double fm_policy_scale(const fm_policy *p) {
  return p->time_scale > 0 ? p->time_scale : 1.0;
}

int64_t fm_policy_window_ms(const fm_policy *p) {
  return (int64_t)llround(p->window_s * 1000.0 / fm_policy_scale(p));
}

/* Exponential with "equal jitter": the n-th backoff is b = min(cap, base·2^(n−1))
 * and the wait is drawn from [b/2, b), so a crowd of callers that failed
 * together does not come back together, yet nobody retries at once. */
int64_t fm_policy_backoff_ms(const fm_policy *p, int attempt, double jitter) {
  double b = (double)p->backoff_base_ms;
  for (int i = 1; i < attempt && b < (double)p->backoff_cap_ms; i++)
    b *= 2;
  if (b > (double)p->backoff_cap_ms) b = (double)p->backoff_cap_ms;
  if (jitter < 0) jitter = 0;
  if (jitter >= 1) jitter = 0.999999;
  return (int64_t)llround(b / fm_policy_scale(p) * (0.5 + 0.5 * jitter));
}

/* Retry-After is a floor: wait at least that long, and up to 20 % more so
 * the callers refused at the same moment spread out. */
static int64_t fm_policy_retry_after_wait(int64_t retry_after_ms, double jitter) {
  if (jitter < 0) jitter = 0;
  if (jitter >= 1) jitter = 0.999999;
  return retry_after_ms + (int64_t)floor((double)retry_after_ms * 0.2 * jitter);
}

bool fm_state_priority_on(const fm_state *s, int64_t now_ms) {
  return now_ms < s->priority_until_ms;
}

double fm_state_503_rate(const fm_state *s) {
  return s->requests ? (double)s->status_503 / (double)s->requests : 0.0;
}

fm_client_tier fm_policy_start(const fm_state *s, const fm_policy *p, fm_route_class route,
                               int64_t now_ms) {
  switch (p->strategy) {
  case FM_STRATEGY_ALWAYS_PRIORITY:
    return FM_PRIORITY;
  case FM_STRATEGY_ESCALATE:
    return route != FM_ROUTE_BATCH && fm_state_priority_on(s, now_ms) ? FM_PRIORITY : FM_STANDARD;
  default:
    return FM_STANDARD;
  }
}

static fm_outcome fm_outcome_of(int status) {
  if (status >= 200 && status < 300) return FM_OUTCOME_OK;
  if (status == 503) return FM_OUTCOME_SHED;
  if (status == 429) return FM_OUTCOME_LIMITED;
  return FM_OUTCOME_ERROR;
}

/* Worth another try: the fleet or the account said "not now", or the
 * answer never arrived. Other 4xx will fail the same way again. */
static bool fm_status_retryable(int status) {
  return status == 429 || status >= 500 || status == FM_STATUS_NETWORK ||
         status == FM_STATUS_STREAM_ERROR;
}

/* Opens a Priority window at now_ms. A window opened within one window
 * length of the previous one's end continues the run (Standard was still
 * shedding when the client came back); a longer gap starts a new run. The
 * alert fires once per run, when it reaches alert_windows. */
static void fm_policy_escalate(fm_state *s, const fm_policy *p, int64_t now_ms, fm_decision *d) {
  int64_t window = fm_policy_window_ms(p);
  if (s->escalations > 0 && now_ms <= s->priority_until_ms + window)
    s->consecutive_windows++;
  else
    s->consecutive_windows = 1;
  s->priority_until_ms = now_ms + window;
  s->escalations++;
  d->escalated = true;
  if (p->alert_windows > 0 && s->consecutive_windows == p->alert_windows) {
    s->alerts++;
    d->alert = true;
  }
}

fm_decision fm_policy_decide(fm_state *s, const fm_policy *p, fm_route_class route,
                             const fm_attempt *a, int64_t now_ms, double jitter) {
  fm_decision d = {.retry = false, .tier = a->tier, .outcome = fm_outcome_of(a->status)};
  s->requests++;
  if (a->tier == FM_PRIORITY) s->on_priority++;
  if (a->status == 503)
    s->status_503++;
  else if (a->status == 429)
    s->status_429++;
  else if (d.outcome == FM_OUTCOME_ERROR)
    s->errors++;
  if (d.outcome == FM_OUTCOME_OK || p->strategy == FM_STRATEGY_NAIVE) return d;

  bool last = a->attempt >= p->max_attempts;
  if (p->strategy == FM_STRATEGY_ESCALATE && route != FM_ROUTE_BATCH) {
    if (a->status == 503 && a->tier == FM_STANDARD) {
      /* Standard is shedding: go to Priority now, no wait (the 503 was
       * about Standard). A 503 that raced an open window opens nothing. */
      if (!fm_state_priority_on(s, now_ms)) fm_policy_escalate(s, p, now_ms, &d);
      if (!last) {
        d.retry = true;
        d.tier = FM_PRIORITY;
        d.delay_ms = 0;
      }
      return d;
    }
    /* Any other retry of a non-batch call follows the window. */
    if (fm_state_priority_on(s, now_ms)) d.tier = FM_PRIORITY;
  }
  if (last || !fm_status_retryable(a->status)) return d;
  d.retry = true;
  d.delay_ms = a->retry_after_ms >= 0 ? fm_policy_retry_after_wait(a->retry_after_ms, jitter)
                                      : fm_policy_backoff_ms(p, a->attempt, jitter);
  return d;
}

int64_t fm_parse_retry_after(const char *retry_after_ms, const char *retry_after) {
  char *end;
  if (retry_after_ms && *retry_after_ms) {
    double v = strtod(retry_after_ms, &end);
    if (end != retry_after_ms && v >= 0 && v < 1e12) return (int64_t)ceil(v);
  }
  if (retry_after && *retry_after) {
    /* Seconds only: fleetmock never sends the HTTP-date form. */
    double v = strtod(retry_after, &end);
    if (end != retry_after && v >= 0 && v < 1e9) return (int64_t)ceil(v * 1000.0);
  }
  return -1;
}

const char *fm_outcome_name(fm_outcome o) {
  static const char *const names[] = {"ok", "shed", "limited", "error"};
  return (unsigned)o < 4 ? names[o] : "?";
}

const char *fm_tier_name(fm_client_tier t) {
  return t == FM_PRIORITY ? "priority" : "standard";
}

static const char *const fm_route_names[] = {"interactive", "agent", "batch"};
static const char *const fm_strategy_names[] = {"escalate", "backoff", "naive", "always-priority"};

const char *fm_route_name(fm_route_class r) {
  return (unsigned)r < 3 ? fm_route_names[r] : "?";
}

const char *fm_strategy_name(fm_strategy s) {
  return (unsigned)s < 4 ? fm_strategy_names[s] : "?";
}

/* The index of name in names[0..n), or -1. */
static int fm_name_find(const char *const *names, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (name && strcmp(name, names[i]) == 0) return i;
  return -1;
}

int fm_strategy_parse(const char *name, fm_strategy *out) {
  int i = fm_name_find(fm_strategy_names, 4, name);
  if (i >= 0) *out = (fm_strategy)i;
  return i >= 0 ? 0 : -1;
}

int fm_route_parse(const char *name, fm_route_class *out) {
  int i = fm_name_find(fm_route_names, 3, name);
  if (i >= 0) *out = (fm_route_class)i;
  return i >= 0 ? 0 : -1;
}

static const char *const fm_api_names[] = {"chat", "responses"};

const char *fm_api_name(fm_client_api a) {
  return (unsigned)a < 2 ? fm_api_names[a] : "?";
}

int fm_api_parse(const char *name, fm_client_api *out) {
  int i = fm_name_find(fm_api_names, 2, name);
  if (i >= 0) *out = (fm_client_api)i;
  return i >= 0 ? 0 : -1;
}

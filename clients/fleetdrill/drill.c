/* drill.c — N virtual users, one curl multi, one thread.
 *
 * Each user is a small state machine: pause (think time), send a task's
 * request, wait out the policy's backoffs, repeat. A task is an
 * interactive turn (one streamed answer), an agent chain (3 to 6
 * tool-calling steps in a row, see chain.c; the first step that fails or
 * answers the wrong way sinks the chain) or a batch job (one long answer).
 * Every request goes through the library's fm_call, so the drill measures
 * exactly the policy the library ships; the strategy is just the policy's
 * `strategy` field.
 *
 * The loop is bounded: no new task starts after duration_s; tasks already
 * running (chains included) may finish for FD_GRACE_MS more, then whatever
 * is left is cancelled and counted as unfinished. While it runs, a sampler
 * reads /admin/state every FD_SAMPLE_MS for the utilisation chart. */
#define _POSIX_C_SOURCE 200809L
#include "drill.h"

#include "admin.h"
#include "prices.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FD_GRACE_MS 30000  /* real ms running tasks may take after the end */
#define FD_SAMPLE_MS 200   /* real ms between /admin/state samples */
#define FD_PROGRESS_MS 250 /* real ms between progress lines */
#define FD_POLL_MAX_MS 50

typedef enum { FD_IDLE, FD_WAITING, FD_IN_FLIGHT, FD_DONE } fd_user_state;

typedef struct fd_user {
  int id;
  fd_user_state st;
  int64_t wake_ms; /* FD_IDLE: next task; FD_WAITING: next attempt */
  uint64_t rng;
  fm_route_class route; /* of the running task */
  fd_chain chain;       /* the running agent chain, if any */
  uint64_t turn;
  fm_call *call;
  char key[192];
} fd_user;

typedef struct fd_drill {
  const fd_config *cfg;
  fd_run *run;
  fm_client *clients[3]; /* one per route class, shared by every user, as an app would */
  CURLM *multi;
  fd_user *users;
  int64_t t0, end_ms, hard_end_ms;
  double *lat; /* logical request latencies, simulated seconds */
  size_t n_lat, cap_lat;
  CURL *sampler;
  char *sample_buf;
  size_t sample_n;
  bool sampling;
  int64_t next_sample_ms, next_progress_ms;
  char pool[64];
  double last_util;
  int64_t finished; /* logical requests that ended */
  bool oom;
} fd_drill;

static int64_t fd_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64: one stream per user, from --seed and the user's number. */
static uint64_t fd_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static double fd_rand01(uint64_t *s) {
  return (double)(fd_rand(s) >> 11) / 9007199254740992.0;
}

/* Simulated seconds to real ms on this server. */
static int64_t fd_real_ms(const fd_drill *d, double sim_s) {
  return (int64_t)llround(sim_s * 1000.0 / d->cfg->time_scale);
}

static double fd_sim_s(const fd_drill *d, int64_t now) {
  return (double)(now - d->t0) / 1000.0 * d->cfg->time_scale;
}

/* The chart bucket for now, or NULL past the end of the duration: the
 * tasks finishing then count in the totals but are not charted. */
static fd_bucket *fd_bucket_at(fd_drill *d, int64_t now) {
  double i = fd_sim_s(d, now) / d->run->bucket_s;
  if (i >= FD_BUCKETS) return NULL;
  return &d->run->buckets[i < 0 ? 0 : (int)i];
}

static double fd_exp_pause(uint64_t *rng, double mean_s) {
  double u = fd_rand01(rng);
  double x = -log(1.0 - u) * mean_s;
  return x > 8 * mean_s ? 8 * mean_s : x; /* bounded tail */
}

static fm_route_class fd_pick_route(const fd_config *cfg, uint64_t *rng) {
  int total = cfg->mix[0] + cfg->mix[1] + cfg->mix[2];
  int x = (int)(fd_rand01(rng) * total);
  if (x < cfg->mix[0]) return FM_ROUTE_INTERACTIVE;
  if (x < cfg->mix[0] + cfg->mix[1]) return FM_ROUTE_AGENT;
  return FM_ROUTE_BATCH;
}

static void fd_alert(void *ctx, const fm_alert *a) {
  fd_drill *d = ctx;
  d->run->alerts++;
  fprintf(stderr,
          "%salert: Priority on for %d consecutive windows (%lld escalations, 503 rate %.0f %%): "
          "buy capacity\n",
          d->cfg->progress ? "\r\033[K" : "", a->consecutive_windows, (long long)a->escalations,
          a->rate_503 * 100);
}

/* Starts the user's next request: the next chain step, or a new task. */
static void fd_user_start(fd_drill *d, fd_user *u, int64_t now) {
  const fd_config *cfg = d->cfg;
  if (!fd_chain_running(&u->chain)) {
    if (now >= d->end_ms) {
      u->st = FD_DONE;
      return;
    }
    u->route = fd_pick_route(cfg, &u->rng);
    u->turn++;
    if (u->route == FM_ROUTE_AGENT) {
      int steps = FD_CHAIN_MIN_STEPS +
                  (int)(fd_rand01(&u->rng) * (FD_CHAIN_MAX_STEPS - FD_CHAIN_MIN_STEPS + 1));
      uint64_t id = fd_rand(&u->rng);
      if (fd_chain_begin(&u->chain, id, steps) != 0) goto oom;
      d->run->chains++;
    }
  }
  char prompt[1200], cache_key[64], *messages = NULL;
  fm_chat_request req = {.api_key = cfg->key_per_user ? u->key : NULL};
  switch (u->route) {
  case FM_ROUTE_INTERACTIVE:
    snprintf(prompt, sizeof prompt,
             "User %d, turn %llu: explain in a few lines why my dashboard shows a spike.", u->id,
             (unsigned long long)u->turn);
    req.stream = true;
    req.max_tokens = 48;
    break;
  case FM_ROUTE_AGENT:
    if (!(messages = fd_chain_messages(&u->chain))) goto oom;
    snprintf(cache_key, sizeof cache_key, "chain-%016llx", (unsigned long long)u->chain.id);
    req.messages = messages;
    req.tools = fd_chain_tools();
    req.tool_choice = "auto";
    req.cache_key = cache_key;
    req.max_tokens = 64;
    break;
  default: {
    int n = snprintf(prompt, sizeof prompt, "Batch job %d-%llu: summarise these records.", u->id,
                     (unsigned long long)u->turn);
    while (n > 0 && n < 800)
      n += snprintf(prompt + n, sizeof prompt - (size_t)n, " record %d: ok;", n);
    req.max_tokens = 200;
  }
  }
  if (!messages) req.prompt = prompt;
  u->call = fm_call_new(d->clients[u->route], &req);
  free(messages);
  if (!u->call) goto oom;
  fm_call_set_userdata(u->call, u);
  d->run->requests[u->route]++;
  curl_multi_add_handle(d->multi, fm_call_easy(u->call));
  u->st = FD_IN_FLIGHT;
  return;
oom:
  fd_chain_end(&u->chain);
  d->oom = true;
  u->st = FD_DONE;
}

/* Books an agent step that was served: a tool step goes on, the final
 * answer completes the chain, an answer of the wrong kind breaks it. */
static void fd_book_agent_step(fd_drill *d, fd_user *u, const fm_chat_result *r) {
  fd_run *run = d->run;
  fd_chain_verdict v = fd_chain_take(&u->chain, r);
  switch (v) {
  case FD_CHAIN_NEXT:
    run->tool_calls += r->n_tool_calls;
    run->tool_steps++;
    return;
  case FD_CHAIN_DONE:
    run->chains_ok++;
    break;
  case FD_CHAIN_OOM:
    d->oom = true;
    break;
  default:
    run->chains_broken[v - FD_CHAIN_BROKEN_NO_CALL]++;
  }
  fd_chain_end(&u->chain);
}

static void fd_record_latency(fd_drill *d, double s) {
  if (d->n_lat == d->cap_lat) {
    size_t cap = d->cap_lat ? d->cap_lat * 2 : 1024;
    double *p = realloc(d->lat, cap * sizeof *p);
    if (!p) {
      d->oom = true;
      return;
    }
    d->lat = p;
    d->cap_lat = cap;
  }
  d->lat[d->n_lat++] = s;
}

/* One attempt ended (the call may go on). */
static void fd_record_attempt(fd_drill *d, const fm_chat_result *r, int64_t now) {
  fd_run *run = d->run;
  fd_bucket *b = fd_bucket_at(d, now);
  fd_bucket none = {0};
  if (!b) b = &none;
  run->attempts++;
  if (r->tier == FM_PRIORITY) {
    run->on_priority++;
    b->priority++;
  }
  if (r->status == 503) {
    run->status_503++;
    b->shed++;
  } else if (r->status == 429) {
    run->status_429++;
    b->limited++;
  } else if (r->status >= 200 && r->status < 300) {
    b->ok++;
  } else {
    run->errors++;
    b->error++;
  }
  if (!d->pool[0] && r->pool[0]) snprintf(d->pool, sizeof d->pool, "%s", r->pool);
}

/* The user's call finished: book it, then pause before the next request. */
static void fd_user_finished(fd_drill *d, fd_user *u, int64_t now) {
  const fm_chat_result *r = fm_call_result(u->call);
  fd_run *run = d->run;
  bool ok = r->outcome == FM_OUTCOME_OK;
  d->finished++;
  if (ok) {
    run->ok[u->route]++;
    fd_price p;
    if (fd_price_lookup(d->cfg->model, r->tier, &p)) {
      run->cost_usd += fd_price_cost(&p, r->prompt_tokens, r->cached_tokens, r->completion_tokens);
      fd_price_lookup(d->cfg->model, FM_STANDARD, &p);
      run->cost_standard_usd +=
          fd_price_cost(&p, r->prompt_tokens, r->cached_tokens, r->completion_tokens);
    }
  }
  if (u->route == FM_ROUTE_AGENT) {
    if (ok)
      fd_book_agent_step(d, u, r);
    else
      fd_chain_end(&u->chain); /* one failed step sinks the chain */
  }
  fd_record_latency(d, (double)r->latency_ms / 1000.0 * d->cfg->time_scale);
  fm_call_free(u->call);
  u->call = NULL;
  double pause = fd_chain_running(&u->chain) ? fd_exp_pause(&u->rng, d->cfg->think_s / 4)
                                             : fd_exp_pause(&u->rng, d->cfg->think_s);
  u->st = FD_IDLE;
  u->wake_ms = now + fd_real_ms(d, pause);
}

static size_t fd_sample_on_data(char *data, size_t size, size_t n, void *ud) {
  fd_drill *d = ud;
  size_t len = size * n;
  if (d->sample_n + len > (8u << 20)) return 0;
  char *p = realloc(d->sample_buf, d->sample_n + len + 1);
  if (!p) return 0;
  memcpy(p + d->sample_n, data, len);
  d->sample_buf = p;
  d->sample_n += len;
  p[d->sample_n] = '\0';
  return len;
}

static void fd_sample_start(fd_drill *d, int64_t now) {
  if (d->sampling || now < d->next_sample_ms || now >= d->end_ms) return;
  d->next_sample_ms = now + FD_SAMPLE_MS;
  d->sample_n = 0;
  curl_multi_add_handle(d->multi, d->sampler);
  d->sampling = true;
}

static void fd_sample_done(fd_drill *d, CURLcode rc, int64_t now) {
  curl_multi_remove_handle(d->multi, d->sampler);
  d->sampling = false;
  if (rc != CURLE_OK || !d->sample_buf) return;
  cJSON *st = cJSON_Parse(d->sample_buf);
  double u = fd_admin_utilisation(st, d->pool);
  cJSON_Delete(st);
  if (u < 0) return;
  fd_bucket *b = fd_bucket_at(d, now);
  if (!b) return;
  b->util_sum += u;
  b->util_n++;
  d->last_util = u;
}

static void fd_progress(fd_drill *d, int64_t now, bool last) {
  if (!d->cfg->progress || (!last && now < d->next_progress_ms)) return;
  d->next_progress_ms = now + FD_PROGRESS_MS;
  const fd_run *r = d->run;
  int64_t req = r->requests[0] + r->requests[1] + r->requests[2];
  int64_t ok = r->ok[0] + r->ok[1] + r->ok[2];
  fprintf(stderr,
          "\r\033[K%-15s %6.1f/%.0f s  requests %lld  ok %5.1f %%  503 %lld  429 %lld  priority "
          "%3.0f %%  u %.2f",
          fm_strategy_name(r->strategy), fd_sim_s(d, now), r->duration_s, (long long)req,
          fd_run_pct(ok, d->finished), (long long)r->status_503, (long long)r->status_429,
          fd_run_pct(r->on_priority, r->attempts), d->last_util);
  if (last) fputc('\n', stderr);
  fflush(stderr);
}

/* Handles every transfer curl says has ended. */
static void fd_drain_messages(fd_drill *d, int64_t now) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(d->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *e = m->easy_handle;
    CURLcode rc = m->data.result;
    if (e == d->sampler) {
      fd_sample_done(d, rc, now);
      continue;
    }
    char *priv = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    fm_call *call = (fm_call *)priv;
    fd_user *u = fm_call_userdata(call);
    curl_multi_remove_handle(d->multi, e);
    int64_t wait = fm_call_done(call, rc);
    fd_record_attempt(d, fm_call_result(call), now);
    if (wait >= 0) {
      u->st = FD_WAITING;
      u->wake_ms = now + wait;
    } else {
      fd_user_finished(d, u, now);
    }
  }
}

/* Starts what is due; returns ms until the next thing is due, or -1 when
 * every user is done. */
static int64_t fd_step_users(fd_drill *d, int64_t now) {
  int64_t next = INT64_MAX;
  bool busy = false;
  for (int i = 0; i < d->cfg->users; i++) {
    fd_user *u = &d->users[i];
    if (u->st == FD_IDLE && !fd_chain_running(&u->chain) && now >= d->end_ms) u->st = FD_DONE;
    if (u->st == FD_IDLE && now >= u->wake_ms)
      fd_user_start(d, u, now);
    else if (u->st == FD_WAITING && now >= u->wake_ms) {
      curl_multi_add_handle(d->multi, fm_call_easy(u->call));
      u->st = FD_IN_FLIGHT;
    }
    if (u->st == FD_DONE) continue;
    busy = true;
    if (u->st != FD_IN_FLIGHT && u->wake_ms < next) next = u->wake_ms;
  }
  if (!busy) return -1;
  return next == INT64_MAX ? FD_POLL_MAX_MS : next - now;
}

static void fd_cancel_rest(fd_drill *d) {
  for (int i = 0; i < d->cfg->users; i++) {
    fd_user *u = &d->users[i];
    fd_chain_end(&u->chain);
    if (!u->call) continue;
    if (u->st == FD_IN_FLIGHT) curl_multi_remove_handle(d->multi, fm_call_easy(u->call));
    fm_call_free(u->call);
    u->call = NULL;
    u->st = FD_DONE;
    d->run->unfinished++;
  }
  if (d->sampling) curl_multi_remove_handle(d->multi, d->sampler);
  d->sampling = false;
}

static int fd_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v. */
static double fd_percentile(const double *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t k = (size_t)ceil(p / 100.0 * (double)n);
  return v[k ? k - 1 : 0];
}

static int fd_drill_setup(fd_drill *d) {
  const fd_config *cfg = d->cfg;
  for (int r = 0; r < 3; r++) {
    fm_client_config cc;
    fm_client_config_default(&cc);
    cc.base_url = cfg->api_url;
    cc.api = cfg->api;
    cc.api_key = cfg->key;
    cc.model = cfg->model;
    cc.route = (fm_route_class)r;
    cc.policy = cfg->policy;
    cc.policy.time_scale = cfg->time_scale;
    cc.on_alert = fd_alert;
    cc.alert_ctx = d;
    cc.seed = cfg->seed * 3 + (uint64_t)r + 1;
    cc.timeout_ms = (long)(120000.0 / cfg->time_scale) + 5000;
    if (!(d->clients[r] = fm_client_new(&cc))) return -1;
  }
  if (!(d->multi = curl_multi_init())) return -1;
  if (!(d->users = calloc((size_t)cfg->users, sizeof *d->users))) return -1;
  if (!(d->sampler = curl_easy_init())) return -1;
  char url[1024];
  snprintf(url, sizeof url, "%s/admin/state", cfg->root);
  curl_easy_setopt(d->sampler, CURLOPT_URL, url);
  curl_easy_setopt(d->sampler, CURLOPT_WRITEFUNCTION, fd_sample_on_data);
  curl_easy_setopt(d->sampler, CURLOPT_WRITEDATA, d);
  curl_easy_setopt(d->sampler, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(d->sampler, CURLOPT_NOSIGNAL, 1L);
  if (fd_admin_token()) {
    curl_easy_setopt(d->sampler, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt(d->sampler, CURLOPT_XOAUTH2_BEARER, fd_admin_token());
  }
  return 0;
}

static void fd_drill_teardown(fd_drill *d) {
  for (int r = 0; r < 3; r++) {
    if (d->clients[r]) d->run->escalations += fm_client_state(d->clients[r])->escalations;
    fm_client_free(d->clients[r]);
  }
  if (d->sampler) curl_easy_cleanup(d->sampler);
  if (d->multi) curl_multi_cleanup(d->multi);
  for (int i = 0; d->users && i < d->cfg->users; i++)
    fd_chain_end(&d->users[i].chain);
  free(d->users);
  free(d->lat);
  free(d->sample_buf);
}

int fd_drill_run(const fd_config *cfg, fd_run *out) {
  memset(out, 0, sizeof *out);
  out->strategy = cfg->policy.strategy;
  out->duration_s = cfg->duration_s;
  out->time_scale = cfg->time_scale;
  out->bucket_s = cfg->duration_s / FD_BUCKETS;
  out->server_cost_usd = -1;
  fd_price p;
  out->priced = fd_price_lookup(cfg->model, FM_STANDARD, &p);
  fd_drill d = {.cfg = cfg, .run = out, .last_util = 0};
  if (fd_drill_setup(&d) != 0) {
    fprintf(stderr, "fleetdrill: out of memory setting up the drill\n");
    fd_drill_teardown(&d);
    return -1;
  }
  d.t0 = fd_now_ms();
  d.end_ms = d.t0 + fd_real_ms(&d, cfg->duration_s);
  d.hard_end_ms = d.end_ms + FD_GRACE_MS;
  for (int i = 0; i < cfg->users; i++) {
    fd_user *u = &d.users[i];
    u->id = i;
    u->rng = cfg->seed * 1000003ULL + (uint64_t)i;
    snprintf(u->key, sizeof u->key, "%s-u%d", cfg->key, i);
    /* Stagger the first tasks over one think time so users do not start in lockstep. */
    u->wake_ms = d.t0 + fd_real_ms(&d, fd_rand01(&u->rng) * cfg->think_s);
  }
  for (;;) {
    int64_t now = fd_now_ms();
    int64_t wait = fd_step_users(&d, now);
    if (wait < 0 && !d.sampling) break;
    if (now >= d.hard_end_ms) {
      fd_cancel_rest(&d);
      break;
    }
    fd_sample_start(&d, now);
    int running = 0;
    curl_multi_perform(d.multi, &running);
    fd_drain_messages(&d, fd_now_ms());
    fd_progress(&d, now, false);
    if (wait < 0 || wait > FD_POLL_MAX_MS) wait = FD_POLL_MAX_MS;
    if (wait > 0) curl_multi_poll(d.multi, NULL, 0, (int)wait, NULL);
  }
  int64_t end = fd_now_ms();
  fd_progress(&d, end, true);
  out->real_s = (double)(end - d.t0) / 1000.0;
  qsort(d.lat, d.n_lat, sizeof *d.lat, fd_cmp_double);
  out->p50_s = fd_percentile(d.lat, d.n_lat, 50);
  out->p95_s = fd_percentile(d.lat, d.n_lat, 95);
  out->p99_s = fd_percentile(d.lat, d.n_lat, 99);
  bool oom = d.oom;
  fd_drill_teardown(&d);
  if (oom) fprintf(stderr, "fleetdrill: ran out of memory; the numbers are incomplete\n");
  return 0;
}

double fd_run_pct(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

double fd_run_success_pct(const fd_run *r) {
  return fd_run_pct(r->ok[0] + r->ok[1] + r->ok[2],
                    r->requests[0] + r->requests[1] + r->requests[2]);
}

double fd_run_priority_share(const fd_run *r) {
  return fd_run_pct(r->on_priority, r->attempts);
}

double fd_run_cost_ratio(const fd_run *r) {
  return r->priced && r->cost_standard_usd > 0 ? r->cost_usd / r->cost_standard_usd : 0.0;
}

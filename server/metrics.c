/* metrics.c — Prometheus counters, gauges and histograms. */
#include "metrics.h"

#include "fleet.h"
#include "journal.h"
#include "respstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const routes[FM_METRIC_ROUTES] = {"chat/completions", "completions", "messages",
                                                     "responses",        "embeddings",  "other"};
static const int statuses[FM_METRIC_STATUSES - 1] = {200, 400, 401, 402, 403, 404, 405, 408,
                                                     413, 429, 499, 500, 502, 503, 504, 529};
static const double bounds[FM_HIST_BUCKETS - 1] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60};
static const char *const token_kinds[3] = {"prompt", "cached", "generated"};

static size_t req_index(const fm_metrics *m, int route, int model, int path, int status) {
  return (((size_t)route * (m->n_models + 1) + (size_t)(model + 1)) * (FM_PATH_N + 1) +
          (size_t)(path + 1)) *
             FM_METRIC_STATUSES +
         (size_t)status;
}

int fm_metrics_init(fm_metrics *m, size_t n_models, size_t n_pools) {
  memset(m, 0, sizeof(*m));
  m->n_models = n_models;
  m->n_pools = n_pools;
  m->requests = calloc(req_index(m, FM_METRIC_ROUTES, -1, -1, 0), sizeof(uint64_t));
  m->sheds = calloc(n_pools * FM_TIER_N + 1, sizeof(uint64_t));
  if (!m->requests || !m->sheds) {
    fm_metrics_free(m);
    return -1;
  }
  return 0;
}

void fm_metrics_free(fm_metrics *m) {
  free(m->requests);
  free(m->sheds);
  m->requests = NULL;
  m->sheds = NULL;
}

void fm_metrics_reset(fm_metrics *m) {
  memset(m->requests, 0, req_index(m, FM_METRIC_ROUTES, -1, -1, 0) * sizeof(uint64_t));
  memset(m->sheds, 0, (m->n_pools * FM_TIER_N + 1) * sizeof(uint64_t));
  memset(m->limited, 0, sizeof(m->limited));
  m->over_budget = 0;
  memset(m->tokens, 0, sizeof(m->tokens));
  memset(m->cost, 0, sizeof(m->cost));
  memset(m->ttft, 0, sizeof(m->ttft));
  memset(m->duration, 0, sizeof(m->duration));
  m->faults_fired = 0;
  m->replies_fired = 0;
  m->recorded = 0;
}

void fm_metrics_request(fm_metrics *m, const char *route, int model, int path, int status) {
  int ri = FM_METRIC_ROUTES - 1;
  for (int i = 0; i < FM_METRIC_ROUTES - 1; i++)
    if (route && strcmp(route, routes[i]) == 0) ri = i;
  int si = FM_METRIC_STATUSES - 1;
  for (int i = 0; i < FM_METRIC_STATUSES - 1; i++)
    if (statuses[i] == status) si = i;
  m->requests[req_index(m, ri, model, path, si)]++;
}

void fm_metrics_observe(fm_histogram *h, double s) {
  int b = 0;
  while (b < FM_HIST_BUCKETS - 1 && s > bounds[b])
    b++;
  h->le[b]++;
  h->count++;
  h->sum += s;
}

static void help(fm_buf *o, const char *name, const char *type, const char *text) {
  fm_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A metric without labels: its HELP and TYPE lines, then its one value. */
static void scalar(fm_buf *o, const char *name, const char *type, const char *text,
                   long long value) {
  help(o, name, type, text);
  fm_buf_printf(o, "%s %lld\n", name, value);
}

static void histogram(fm_buf *o, const char *name, const fm_histogram *hs) {
  for (int p = 0; p < FM_PATH_N; p++) {
    const fm_histogram *h = &hs[p];
    uint64_t cum = 0;
    for (int b = 0; b < FM_HIST_BUCKETS; b++) {
      cum += h->le[b];
      if (b < FM_HIST_BUCKETS - 1)
        fm_buf_printf(o, "%s_bucket{tier=\"%s\",le=\"%g\"} %llu\n", name, fm_path_names[p],
                      bounds[b], (unsigned long long)cum);
      else
        fm_buf_printf(o, "%s_bucket{tier=\"%s\",le=\"+Inf\"} %llu\n", name, fm_path_names[p],
                      (unsigned long long)cum);
    }
    fm_buf_printf(o, "%s_sum{tier=\"%s\"} %.6f\n%s_count{tier=\"%s\"} %llu\n", name,
                  fm_path_names[p], h->sum, name, fm_path_names[p], (unsigned long long)h->count);
  }
}

void fm_metrics_render(const fm_metrics *m, const fm_config *cfg, const fm_fleet *f,
                       const fm_accounts *a, const fm_journal *jr, const fm_resp_store *responses,
                       fm_buf *o) {
  help(o, "fleetmock_requests_total", "counter",
       "Inference requests answered, by route, model, tier and status.");
  for (int r = 0; r < FM_METRIC_ROUTES; r++)
    for (int md = -1; md < (int)m->n_models; md++)
      for (int p = -1; p < FM_PATH_N; p++)
        for (int s = 0; s < FM_METRIC_STATUSES; s++) {
          uint64_t v = m->requests[req_index(m, r, md, p, s)];
          if (!v) continue;
          char status[8] = "other";
          if (s < FM_METRIC_STATUSES - 1) snprintf(status, sizeof(status), "%d", statuses[s]);
          fm_buf_printf(o,
                        "fleetmock_requests_total{route=\"%s\",model=\"%s\",tier=\"%s\","
                        "status=\"%s\"} %llu\n",
                        routes[r], md >= 0 ? cfg->models[md].id : "none",
                        p >= 0 ? fm_path_names[p] : "none", status, (unsigned long long)v);
        }

  help(o, "fleetmock_sheds_total", "counter",
       "Requests the fleet shed with 503, by pool and tier.");
  for (size_t i = 0; i < f->n_pools; i++)
    for (int t = 0; t < FM_TIER_N; t++)
      fm_buf_printf(o, "fleetmock_sheds_total{pool=\"%s\",tier=\"%s\"} %llu\n",
                    f->pools[i].cfg.name, fm_tier_names[t],
                    (unsigned long long)m->sheds[i * FM_TIER_N + (size_t)t]);

  help(o, "fleetmock_rate_limited_total", "counter", "429 answers by the rate limit that refused.");
  for (int k = 0; k < FM_LIMIT_N; k++)
    fm_buf_printf(o, "fleetmock_rate_limited_total{limit=\"%s\"} %llu\n", fm_limit_names[k],
                  (unsigned long long)m->limited[k]);
  scalar(o, "fleetmock_budget_exceeded_total", "counter",
         "402 answers: an account had spent its budget_usd.", (long long)m->over_budget);

  scalar(o, "fleetmock_accounts", "gauge",
         "Accounts held in the table (bounded by server.max_accounts).", (long long)a->n);
  scalar(o, "fleetmock_accounts_evicted_total", "counter",
         "Idle accounts evicted to keep the table within server.max_accounts.",
         (long long)a->n_evicted);

  scalar(o, "fleetmock_journal_entries", "gauge",
         "Requests held in the request journal (at most server.journal.size).", (long long)jr->n);
  scalar(o, "fleetmock_journal_dropped_total", "counter",
         "Journal entries overwritten by newer requests once the ring was full.",
         (long long)jr->dropped);

  help(o, "fleetmock_in_flight", "gauge", "Requests holding a slot, by pool and tier.");
  for (size_t i = 0; i < f->n_pools; i++)
    for (int t = 0; t < FM_TIER_N; t++)
      fm_buf_printf(o, "fleetmock_in_flight{pool=\"%s\",tier=\"%s\"} %d\n", f->pools[i].cfg.name,
                    fm_tier_names[t], f->pools[i].running[t]);
  help(o, "fleetmock_queue_depth", "gauge", "Requests waiting in a queue, by pool and tier.");
  for (size_t i = 0; i < f->n_pools; i++)
    for (int t = 0; t < FM_TIER_N; t++)
      fm_buf_printf(o, "fleetmock_queue_depth{pool=\"%s\",tier=\"%s\"} %d\n", f->pools[i].cfg.name,
                    fm_tier_names[t], f->pools[i].queued[t]);
  help(o, "fleetmock_shed_probability", "gauge",
       "Probability that a request arriving now is shed, by pool and tier.");
  for (size_t i = 0; i < f->n_pools; i++)
    for (int t = 0; t < FM_TIER_N; t++)
      fm_buf_printf(o, "fleetmock_shed_probability{pool=\"%s\",tier=\"%s\"} %g\n",
                    f->pools[i].cfg.name, fm_tier_names[t],
                    fm_pool_shed_probability(&f->pools[i], (fm_tier)t));
  help(o, "fleetmock_pool_utilisation", "gauge",
       "Tenant load plus own running requests over slots.");
  for (size_t i = 0; i < f->n_pools; i++)
    fm_buf_printf(o, "fleetmock_pool_utilisation{pool=\"%s\"} %g\n", f->pools[i].cfg.name,
                  fm_pool_utilisation(&f->pools[i]));
  help(o, "fleetmock_pool_tenant_load", "gauge", "Other tenants' demand as a fraction of slots.");
  for (size_t i = 0; i < f->n_pools; i++)
    fm_buf_printf(o, "fleetmock_pool_tenant_load{pool=\"%s\"} %g\n", f->pools[i].cfg.name,
                  f->pools[i].cfg.tenant_load);
  help(o, "fleetmock_pool_slots", "gauge", "Concurrent sequences a pool serves.");
  for (size_t i = 0; i < f->n_pools; i++)
    fm_buf_printf(o, "fleetmock_pool_slots{pool=\"%s\"} %d\n", f->pools[i].cfg.name,
                  f->pools[i].cfg.slots);

  help(o, "fleetmock_tokens_total", "counter", "Tokens served, by kind and tier.");
  for (int k = 0; k < 3; k++)
    for (int p = 0; p < FM_PATH_N; p++)
      fm_buf_printf(o, "fleetmock_tokens_total{kind=\"%s\",tier=\"%s\"} %llu\n", token_kinds[k],
                    fm_path_names[p], (unsigned long long)m->tokens[k][p]);
  help(o, "fleetmock_cost_usd_total", "counter", "What the served requests cost, by tier.");
  for (int p = 0; p < FM_PATH_N; p++)
    fm_buf_printf(o, "fleetmock_cost_usd_total{tier=\"%s\"} %.9f\n", fm_path_names[p], m->cost[p]);
  scalar(o, "fleetmock_faults_fired_total", "counter", "Scripted faults that fired.",
         (long long)m->faults_fired);
  scalar(o, "fleetmock_replies_fired_total", "counter", "Requests a reply rule answered.",
         (long long)m->replies_fired);
  if (responses) {
    scalar(o, "fleetmock_responses_stored", "gauge", "Responses the store holds now.",
           (long long)responses->count);
    scalar(o, "fleetmock_responses_store_bytes", "gauge",
           "Bytes the stored responses take (server.responses.bytes bounds it).",
           (long long)responses->bytes);
    scalar(o, "fleetmock_responses_evicted_total", "counter",
           "Stored responses evicted, least recently used first, to stay within the store's "
           "bounds.",
           (long long)responses->evicted);
    scalar(o, "fleetmock_responses_expired_total", "counter",
           "Stored responses that reached server.responses.ttl_s (simulated).",
           (long long)responses->expired);
    scalar(o, "fleetmock_responses_not_stored_total", "counter",
           "Responses with store: true too large for the whole store, answered but not kept.",
           (long long)responses->too_large);
  }
  scalar(o, "fleetmock_recorded_total", "counter", "Exchanges --record appended to its file.",
         (long long)m->recorded);
  scalar(o, "fleetmock_connections_open", "gauge", "TCP connections open (this scrape's included).",
         (long long)m->connections_open);
  scalar(o, "fleetmock_peer_hangups_total", "counter",
         "Connections the client closed or half-closed before the server did (noticed in any "
         "state: mid-request, queued, streaming or idle).",
         (long long)m->peer_hangups);

  help(o, "fleetmock_ttft_seconds", "histogram",
       "Simulated time from arrival to the first token, by tier.");
  histogram(o, "fleetmock_ttft_seconds", m->ttft);
  help(o, "fleetmock_request_duration_seconds", "histogram",
       "Simulated time from arrival to the last token, by tier.");
  histogram(o, "fleetmock_request_duration_seconds", m->duration);
}

/* metrics.h — counters and histograms behind GET /metrics.
 *
 * Every label is bounded: routes, model ids and pools come from the config,
 * tiers and limits are fixed lists, statuses fold into a short list, and
 * API keys never appear. */
#ifndef FM_METRICS_H
#define FM_METRICS_H

#include "accounts.h"
#include "buf.h"
#include "config.h"
#include "ratelimit.h"

#include <stddef.h>
#include <stdint.h>

/* chat/completions, completions, messages, responses, embeddings, other */
#define FM_METRIC_ROUTES 6
#define FM_METRIC_STATUSES 17
#define FM_HIST_BUCKETS 12

typedef struct fm_histogram {
  uint64_t le[FM_HIST_BUCKETS]; /* cumulative at render time; stored per bucket */
  uint64_t count;
  double sum;
} fm_histogram;

typedef struct fm_metrics {
  size_t n_models, n_pools;
  uint64_t *requests;            /* [route][model + 1][path + 1][status]; index 0 = none */
  uint64_t *sheds;               /* [pool][tier] */
  uint64_t limited[FM_LIMIT_N];  /* 429s by the rate limit that refused */
  uint64_t over_budget;          /* 402s: an account's spend limit was reached */
  uint64_t tokens[3][FM_PATH_N]; /* prompt, cached, generated */
  double cost[FM_PATH_N];
  fm_histogram ttft[FM_PATH_N], duration[FM_PATH_N];
  uint64_t faults_fired;
  uint64_t replies_fired; /* requests a reply rule answered */
  uint64_t recorded;      /* exchanges --record wrote */
  /* Transport, kept across /admin/reset (a gauge, and what it explains). */
  int64_t connections_open;
  uint64_t peer_hangups; /* connections whose client closed or half-closed first */
} fm_metrics;

/* Returns 0, or -1 when out of memory. */
int fm_metrics_init(fm_metrics *m, size_t n_models, size_t n_pools);
void fm_metrics_free(fm_metrics *m);
void fm_metrics_reset(fm_metrics *m);

/* route: "chat/completions", "completions", "messages" or anything else;
 * model and path -1 when the request never got that far. */
void fm_metrics_request(fm_metrics *m, const char *route, int model, int path, int status);
void fm_metrics_observe(fm_histogram *h, double seconds);

struct fm_fleet;
struct fm_journal;
struct fm_resp_store;
/* Writes the Prometheus text exposition (format 0.0.4). */
void fm_metrics_render(const fm_metrics *m, const fm_config *cfg, const struct fm_fleet *fleet,
                       const fm_accounts *accounts, const struct fm_journal *journal,
                       const struct fm_resp_store *responses, fm_buf *out);

#endif

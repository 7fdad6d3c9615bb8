/* drill.h — one drill: N virtual users against a server for a while, under
 * one strategy, and what came of it.
 *
 * Times in a drill config are simulated (the server's clock): a 150 s
 * scenario takes 150 / time_scale real seconds, and latencies are reported
 * in simulated seconds so runs at different time scales compare. */
#ifndef FD_DRILL_H
#define FD_DRILL_H

#include "chain.h"

#include <fleetclient.h>
#include <stdbool.h>
#include <stdint.h>

#define FD_MAX_USERS 2000
#define FD_BUCKETS 75 /* points on the report's time axis */

typedef struct fd_config {
  const char *root;    /* http://host:port (admin lives here) */
  const char *api_url; /* the inference base, root + /v1 unless given */
  const char *key;
  const char *model;
  int users;
  double duration_s; /* simulated */
  int mix[3];        /* weights by fm_route_class */
  uint64_t seed;
  double think_s;    /* simulated mean pause between a user's tasks */
  double time_scale; /* the server's */
  bool key_per_user; /* each user is its own account (KEY-uN) */
  bool progress;     /* live line on stderr */
  fm_policy policy;  /* strategy, window, alert threshold, attempts */
  fm_client_api api; /* the wire every client speaks: chat completions or Responses */
} fd_config;

typedef struct fd_bucket {
  int64_t ok, shed, limited, error; /* attempts by how they ended */
  int64_t priority;                 /* attempts sent on Priority */
  double util_sum;                  /* server utilisation samples */
  int64_t util_n;
} fd_bucket;

typedef struct fd_run {
  fm_strategy strategy;
  double duration_s, time_scale, bucket_s, real_s;
  /* logical requests by route (an agent step is one request) */
  int64_t requests[3], ok[3];
  int64_t chains, chains_ok;
  int64_t tool_calls, tool_steps;          /* valid calls received, in the steps that made them */
  int64_t chains_broken[FD_CHAIN_NBROKEN]; /* by fd_chain_verdict, from FD_CHAIN_BROKEN_NO_CALL */
  /* attempts, retries included */
  int64_t attempts, status_503, status_429, errors, on_priority;
  int64_t escalations, alerts, unfinished;
  double p50_s, p95_s, p99_s; /* logical request latency, simulated seconds */
  double cost_usd, cost_standard_usd, server_cost_usd; /* server: -1 if unknown */
  bool priced;                                         /* the model is in the price list */
  fd_bucket buckets[FD_BUCKETS];
} fd_run;

/* Runs one drill. Returns 0 with *out filled, or -1 (message on stderr)
 * when the drill could not run at all. */
int fd_drill_run(const fd_config *cfg, fd_run *out);

/* Derived numbers, shared by every report format. */
double fd_run_pct(int64_t part, int64_t whole);
double fd_run_success_pct(const fd_run *r);
double fd_run_priority_share(const fd_run *r);
double fd_run_cost_ratio(const fd_run *r); /* cost / all-Standard cost; 0 when unpriced */

#endif

/* api_admin.c — the control plane under /admin/ (SPEC §6): fleet state,
 * live pool changes, accounts and reset. JSON in and out; errors use the
 * OpenAI error shape so one client parses every route. The bodies are read
 * by api_read_admin.c; this file applies them to the running server. */
#include "api.h"

#include "accounts.h"
#include "drill.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

bool fm_admin_allowed(fm_req *r) {
  const char *token = r->srv->opt.admin_token;
  if (token && *token) {
    const char *key = fm_bearer_key(r);
    if (key && fm_same_secret(key, token)) return true;
    fm_openai_error(r, 401, "UNAUTHENTICATED", NULL,
                    "admin routes need 'Authorization: Bearer <token>' with the token the server "
                    "was started with (--admin-token)");
    return false;
  }
  if (fm_req_peer_is_loopback(r)) return true;
  fm_openai_error(r, 403, "PERMISSION_DENIED", NULL,
                  "admin routes accept only loopback peers when the server runs without "
                  "--admin-token; call from the same host or start it with --admin-token");
  return false;
}

static void reply_json(fm_req *r, int status, cJSON *root) {
  char *text = root ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  fm_buf b;
  fm_buf_init(&b);
  if (!text) {
    fm_openai_error(r, 500, "INTERNAL", NULL, "out of memory rendering the answer; retry");
    return;
  }
  fm_buf_puts(&b, text);
  free(text);
  fm_req_reply(r, status, "application/json", &b);
  fm_buf_free(&b);
}

static cJSON *by_tier(double priority, double standard, double background) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "priority", priority);
  cJSON_AddNumberToObject(o, "standard", standard);
  cJSON_AddNumberToObject(o, "background", background);
  return o;
}

static cJSON *pool_json(const fm_pool *p) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "slots", p->cfg.slots);
  cJSON_AddNumberToObject(o, "replicas", p->cfg.replicas);
  cJSON_AddNumberToObject(o, "tenant_load", p->cfg.tenant_load);
  cJSON_AddNumberToObject(o, "tenant_priority_share", p->cfg.tenant_priority_share);
  cJSON_AddNumberToObject(o, "utilisation", fm_pool_utilisation(p));
  cJSON_AddItemToObject(o, "in_flight",
                        by_tier(p->running[FM_TIER_PRIORITY], p->running[FM_TIER_STANDARD],
                                p->running[FM_TIER_BACKGROUND]));
  cJSON_AddItemToObject(o, "queued",
                        by_tier(p->queued[FM_TIER_PRIORITY], p->queued[FM_TIER_STANDARD],
                                p->queued[FM_TIER_BACKGROUND]));
  cJSON_AddItemToObject(o, "demand",
                        by_tier(fm_pool_demand(p, FM_TIER_PRIORITY),
                                fm_pool_demand(p, FM_TIER_STANDARD),
                                fm_pool_demand(p, FM_TIER_BACKGROUND)));
  cJSON_AddItemToObject(o, "shed_probability",
                        by_tier(fm_pool_shed_probability(p, FM_TIER_PRIORITY),
                                fm_pool_shed_probability(p, FM_TIER_STANDARD),
                                fm_pool_shed_probability(p, FM_TIER_BACKGROUND)));
  cJSON_AddItemToObject(o, "settings", fm_pool_cfg_to_json(&p->cfg));
  return o;
}

/* The running scenario: name, elapsed simulated time, current step; null when none. */
static cJSON *scenario_json(fm_server *s) {
  const fm_player *p = &s->player;
  if (!p->s) return cJSON_CreateNull();
  cJSON *o = cJSON_CreateObject();
  uint64_t now = fm_server_now(s);
  cJSON_AddStringToObject(o, "name", p->s->name);
  cJSON_AddStringToObject(o, "description", p->s->description);
  cJSON_AddNumberToObject(o, "duration_s", p->s->duration_s);
  cJSON_AddBoolToObject(o, "repeat", p->s->repeat);
  /* A finished scenario's clock stops at its end. */
  uint64_t end = p->start_us + (uint64_t)(p->s->duration_s * 1e6);
  if (p->finished && now > end) now = end;
  cJSON_AddNumberToObject(o, "elapsed_s", (double)(now - p->began_us) / 1e6);
  cJSON_AddNumberToObject(o, "loop", p->loop);
  cJSON_AddNumberToObject(o, "loop_elapsed_s", (double)(now - p->start_us) / 1e6);
  cJSON_AddNumberToObject(o, "step", p->step);
  cJSON_AddNumberToObject(o, "steps", p->s->n_steps);
  cJSON_AddBoolToObject(o, "finished", p->finished);
  return o;
}

cJSON *fm_admin_state_json(fm_server *s, int watchers) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  cJSON_AddNumberToObject(root, "time_s", (double)fm_server_now(s) / 1e6);
  cJSON_AddNumberToObject(root, "seed", (double)s->opt.seed);
  cJSON_AddNumberToObject(root, "time_scale", s->opt.time_scale);
  cJSON_AddStringToObject(root, "timing", s->opt.instant ? "instant" : "realistic");
  cJSON_AddItemToObject(root, "scenario", scenario_json(s));
  cJSON_AddBoolToObject(root, "draining", s->draining);
  /* Not counting the admin requests watching (this one, the live feeds). */
  cJSON_AddNumberToObject(root, "requests_in_progress", (double)(fm_server_live(s) - watchers));
  /* Not counting the connections they came on. */
  cJSON_AddNumberToObject(root, "connections_open",
                          (double)(s->metrics.connections_open - watchers));
  /* Requests in progress per worker (this one included), in worker order. */
  cJSON *workers = cJSON_AddArrayToObject(root, "requests_by_worker");
  for (int i = 0; i < s->n_workers; i++)
    cJSON_AddItemToArray(workers, cJSON_CreateNumber((double)s->workers[i].n_live));
  /* The Responses API's store: what it holds against its bounds. */
  const fm_resp_store *rs = &s->responses;
  cJSON *store = cJSON_AddObjectToObject(root, "responses_store");
  cJSON_AddNumberToObject(store, "stored", (double)rs->count);
  cJSON_AddNumberToObject(store, "size", (double)rs->max_count);
  cJSON_AddNumberToObject(store, "bytes", (double)rs->bytes);
  cJSON_AddNumberToObject(store, "max_bytes", (double)rs->max_bytes);
  cJSON_AddNumberToObject(store, "evicted", (double)rs->evicted);
  cJSON_AddNumberToObject(store, "expired", (double)rs->expired);
  cJSON *pools = cJSON_AddObjectToObject(root, "pools");
  for (size_t i = 0; i < s->fleet.n_pools; i++)
    cJSON_AddItemToObject(pools, s->fleet.pools[i].cfg.name, pool_json(&s->fleet.pools[i]));
  return root;
}

static void state(fm_req *r) {
  reply_json(r, 200, fm_admin_state_json(r->srv, 1 + r->srv->events.subscribers));
}

static void patch_pools(fm_req *r, const char *name) {
  fm_server *s = r->srv;
  size_t n = s->fleet.n_pools;
  fm_pool_cfg *next = calloc(n, sizeof(*next));
  for (size_t i = 0; next && i < n; i++)
    next[i] = s->fleet.pools[i].cfg;
  fm_read_in in = fm_api_read_in(r);
  fm_api_err e = {0};
  int only;
  if (!fm_read_pool_patch(&in, name, next, next ? n : 0, &only, &e)) {
    fm_api_reply_err(r, &e);
    free(next);
    return;
  }
  cJSON *root = cJSON_CreateObject();
  cJSON *pools = cJSON_AddObjectToObject(root, "pools");
  for (size_t i = 0; i < n; i++) {
    if (only >= 0 && (size_t)only != i) continue;
    if (fm_fleet_set_pool(&s->fleet, (int)i, &next[i]) != 0) continue; /* OOM: unchanged */
    cJSON_AddItemToObject(pools, next[i].name, pool_json(&s->fleet.pools[i]));
    fm_log(FM_LOG_INFO, "pool changed", "pool", next[i].name, NULL);
  }
  free(next);
  reply_json(r, 200, root);
}

static cJSON *usage_json(const fm_usage *u) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "requests", (double)u->requests);
  cJSON_AddNumberToObject(o, "status_200", (double)u->ok);
  cJSON_AddNumberToObject(o, "status_402", (double)u->over_budget);
  cJSON_AddNumberToObject(o, "status_429", (double)u->limited);
  cJSON_AddNumberToObject(o, "status_503", (double)u->shed);
  cJSON_AddNumberToObject(o, "prompt_tokens", (double)u->prompt_tokens);
  cJSON_AddNumberToObject(o, "cached_tokens", (double)u->cached_tokens);
  cJSON_AddNumberToObject(o, "generated_tokens", (double)u->generated_tokens);
  cJSON_AddNumberToObject(o, "cost_usd", u->cost_usd);
  return o;
}

/* Current limits and bucket levels, for each model the account has used. */
static cJSON *limits_json(fm_server *s, fm_account *a) {
  cJSON *models = cJSON_CreateObject();
  uint64_t now = fm_server_now(s);
  for (size_t m = 0; m < a->n_limiters; m++) {
    if (!a->limiters[m] || !a->limiters[m]->touched) continue;
    fm_limiter *l = fm_account_limiter(a, (int)m, s->cfg.n_models, now);
    cJSON *o = cJSON_AddObjectToObject(models, s->cfg.models[m].id);
    for (int k = 0; k < FM_LIMIT_N; k++) {
      cJSON *b = cJSON_AddObjectToObject(o, fm_limit_names[k]);
      cJSON_AddNumberToObject(b, "limit", l->b[k].limit);
      cJSON_AddNumberToObject(b, "level", l->b[k].level);
      cJSON_AddNumberToObject(b, "ceiling", a->limits->ceiling[k]);
    }
  }
  return models;
}

/* What an account or a tally shares: refusals by limit, spend, cache, and
 * usage per tier with its total. */
static void use_json(cJSON *o, const fm_usage by_path[FM_PATH_N],
                     const uint64_t limited_by[FM_LIMIT_N + 1], double spent_usd,
                     uint64_t cache_lookups, uint64_t cache_hits) {
  cJSON *by = cJSON_AddObjectToObject(o, "limited_by");
  for (int k = 0; k <= FM_LIMIT_N; k++)
    cJSON_AddNumberToObject(by, fm_limit_names[k], (double)limited_by[k]);
  cJSON_AddNumberToObject(o, "spent_usd", spent_usd);
  cJSON *cache = cJSON_AddObjectToObject(o, "cache");
  cJSON_AddNumberToObject(cache, "lookups", (double)cache_lookups);
  cJSON_AddNumberToObject(cache, "hits", (double)cache_hits);
  cJSON_AddNumberToObject(cache, "hit_rate",
                          cache_lookups ? (double)cache_hits / (double)cache_lookups : 0.0);
  cJSON *tiers = cJSON_AddObjectToObject(o, "tiers");
  fm_usage total = {0};
  for (int k = 0; k < FM_PATH_N; k++) {
    const fm_usage *u = &by_path[k];
    cJSON_AddItemToObject(tiers, fm_path_names[k], usage_json(u));
    total.requests += u->requests;
    total.ok += u->ok;
    total.over_budget += u->over_budget;
    total.limited += u->limited;
    total.shed += u->shed;
    total.prompt_tokens += u->prompt_tokens;
    total.cached_tokens += u->cached_tokens;
    total.generated_tokens += u->generated_tokens;
    total.cost_usd += u->cost_usd;
  }
  cJSON_AddItemToObject(o, "total", usage_json(&total));
}

static cJSON *account_json(fm_server *s, fm_account *a) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "key_id", a->key_id);
  cJSON_AddStringToObject(o, "name", a->name);
  cJSON_AddItemToObject(o, "limits", limits_json(s, a));
  cJSON_AddNumberToObject(o, "budget_usd", a->limits->budget_usd);
  use_json(o, a->by_path, a->limited_by, a->spent_usd, a->cache_lookups, a->cache_hits);
  return o;
}

/* Every account since the last reset, evicted ones included: the sums a
 * page of accounts cannot give once the table has evicted. */
static cJSON *totals_json(const fm_accounts *a) {
  const fm_tally *t = &a->all;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "accounts", (double)a->n);
  cJSON_AddNumberToObject(o, "accounts_evicted", (double)a->n_evicted);
  cJSON_AddNumberToObject(o, "max_accounts", (double)a->max);
  use_json(o, t->by_path, t->limited_by, t->spent_usd, t->cache_lookups, t->cache_hits);
  cJSON *ev = cJSON_AddObjectToObject(o, "evicted"); /* the part evicted accounts had */
  use_json(ev, a->evicted.by_path, a->evicted.limited_by, a->evicted.spent_usd,
           a->evicted.cache_lookups, a->evicted.cache_hits);
  return o;
}

/* Listing pages: key id order (stable under eviction: a cursor that was
 * evicted still marks its place), FM_ACCOUNTS_PAGE by default. */
#define FM_ACCOUNTS_PAGE 100
#define FM_ACCOUNTS_PAGE_MAX 1000

static void accounts_list(fm_req *r) {
  fm_accounts *a = &r->srv->accounts;
  static const char *const known[] = {"limit", "after", NULL};
  const char *bad = fm_req_query_unknown(r, known);
  if (bad) {
    fm_openai_error(r, 400, "INVALID_ARGUMENT", bad,
                    "unknown query parameter \"%.40s\": GET /admin/accounts takes limit (1 to %d, "
                    "default %d) and after (the next_after of the previous page)",
                    bad, FM_ACCOUNTS_PAGE_MAX, FM_ACCOUNTS_PAGE);
    return;
  }
  size_t limit = FM_ACCOUNTS_PAGE;
  const char *lv = fm_req_query(r, "limit");
  if (lv) {
    char *end = NULL;
    unsigned long v = strtoul(lv, &end, 10);
    if (!*lv || *end || *lv < '0' || *lv > '9' || v < 1 || v > FM_ACCOUNTS_PAGE_MAX) {
      fm_openai_error(r, 400, "INVALID_ARGUMENT", "limit",
                      "limit: must be a whole number from 1 to %d (got \"%.20s\"); ask for at "
                      "most %d and page on with after=<next_after>",
                      FM_ACCOUNTS_PAGE_MAX, lv, FM_ACCOUNTS_PAGE_MAX);
      return;
    }
    limit = v;
  }
  uint64_t after;
  const char *av = fm_req_query(r, "after");
  if (av && !fm_key_id_parse(av, &after)) {
    fm_openai_error(r, 400, "INVALID_ARGUMENT", "after",
                    "after: must be a key id such as k-3f9a1c2b7d40 (got \"%.40s\"); pass the "
                    "next_after of the previous page, or leave it out to start at the first",
                    av);
    return;
  }
  fm_account **page = malloc(limit * sizeof(*page));
  if (!page) {
    fm_openai_error(r, 500, "INTERNAL", NULL, "out of memory listing accounts; retry");
    return;
  }
  bool more = false;
  size_t n = fm_accounts_page(a, av ? &after : NULL, limit, page, &more);
  cJSON *root = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(root, "accounts");
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(list, account_json(r->srv, page[i]));
  cJSON_AddBoolToObject(root, "has_more", more);
  if (more)
    cJSON_AddStringToObject(root, "next_after", page[n - 1]->key_id);
  else
    cJSON_AddNullToObject(root, "next_after");
  cJSON_AddNumberToObject(root, "limit", (double)limit);
  cJSON_AddStringToObject(root, "order", "key_id");
  cJSON_AddItemToObject(root, "totals", totals_json(a));
  free(page);
  reply_json(r, 200, root);
}

static void accounts(fm_req *r, const char *key_id) {
  if (!key_id) {
    accounts_list(r);
    return;
  }
  fm_account *acc = fm_accounts_by_id(&r->srv->accounts, key_id);
  if (!acc) {
    fm_openai_error(r, 404, "NOT_FOUND", "key_id",
                    "no account with key id \"%.40s\"; GET /admin/accounts lists them (ids look "
                    "like k-3f9a1c2b7d40 and appear in x-fleetmock-key-id); an idle account may "
                    "have been evicted past server.max_accounts",
                    key_id);
    return;
  }
  reply_json(r, 200, account_json(r->srv, acc));
}

static void reset(fm_req *r) {
  fm_server *s = r->srv;
  fm_drill_stop(s);
  for (size_t i = 0; i < s->fleet.n_pools; i++) {
    fm_fleet_set_pool(&s->fleet, (int)i, &s->cfg.pools[i]);
  }
  fm_fleet_clear_caches(&s->fleet);
  fm_rng_seed(&s->fleet.rng, s->opt.seed);
  s->fleet.draws = 0;
  fm_accounts_reset(&s->accounts, fm_server_now(s));
  fm_faults_reset(&s->faults, s->opt.seed);
  /* reply rules: back to the config's and --replies' (they were checked at boot) */
  fm_replies_delete(&s->replies, 0, NULL);
  fm_config_errors errs = {0};
  fm_replies_add_all(&s->replies, &s->cfg, s->boot_replies, &errs);
  fm_config_errors_free(&errs);
  fm_metrics_reset(&s->metrics);
  fm_journal_reset(&s->journal);
  fm_resp_store_clear(&s->responses);
  fm_log(FM_LOG_INFO, "reset to the boot state", NULL);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "status", "reset");
  reply_json(r, 200, o);
}

/* ---- faults ---------------------------------------------------------------- */

static cJSON *fault_json(const fm_fault *f) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "id", f->id);
  fm_match_to_json(&f->match, cJSON_AddObjectToObject(o, "match"));
  cJSON *a = cJSON_AddObjectToObject(o, "action");
  if (f->action.kind == FM_FAULT_STATUS) {
    cJSON_AddNumberToObject(a, "status", f->action.status);
  } else {
    cJSON_AddStringToObject(a, "stream", fm_fault_kind_names[f->action.kind]);
    cJSON_AddNumberToObject(a, "after_tokens", f->action.after_tokens);
  }
  if (f->count_left >= 0)
    cJSON_AddNumberToObject(o, "count_left", (double)f->count_left);
  else
    cJSON_AddNumberToObject(o, "probability", f->probability);
  cJSON_AddNumberToObject(o, "fired", (double)f->fired);
  return o;
}

static void faults_route(fm_req *r, const char *id) {
  fm_server *s = r->srv;
  const char *m = r->method;
  if (!strcmp(m, "POST") && !id) {
    fm_read_in in = fm_api_read_in(r);
    fm_api_err e = {0};
    fm_fault *f = fm_read_fault(&in, &e);
    if (!f) {
      fm_api_reply_err(r, &e);
      return;
    }
    fm_faults_add(&s->faults, f);
    fm_log(FM_LOG_INFO, "fault added", NULL);
    reply_json(r, 200, fault_json(f));
  } else if (!strcmp(m, "GET") && !id) {
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "faults");
    for (const fm_fault *f = s->faults.head; f; f = f->next)
      cJSON_AddItemToArray(list, fault_json(f));
    reply_json(r, 200, root);
  } else if (!strcmp(m, "DELETE")) {
    uint32_t n = 0;
    if (id && (!fm_fault_parse_id(id, &n) || !fm_faults_delete(&s->faults, n))) {
      fm_openai_error(r, 404, "NOT_FOUND", "id",
                      "no fault with id \"%.20s\"; GET /admin/faults lists them", id);
      return;
    }
    if (!id) fm_faults_delete(&s->faults, 0);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "deleted");
    reply_json(r, 200, o);
  } else {
    const char *allow = id ? "DELETE" : "GET, POST, DELETE";
    fm_req_header(r, "Allow", "%s", allow);
    fm_openai_error(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed on %s; use %s", m,
                    r->url, allow);
  }
}

/* ---- reply rules (docs/replies.md) ------------------------------------------ */

static const fm_reply_rule *find_rule(const fm_replies *rs, uint32_t id) {
  for (const fm_reply_rule *x = rs->head; x; x = x->next_rule)
    if (x->id == id) return x;
  return NULL;
}

static void replies_route(fm_req *r, const char *id) {
  fm_server *s = r->srv;
  const char *m = r->method;
  uint32_t n = 0;
  if (id && !fm_fault_parse_id(id, &n)) {
    fm_openai_error(r, 404, "NOT_FOUND", "id",
                    "no reply rule with id \"%.20s\"; GET /admin/replies lists them", id);
    return;
  }
  const char *test_id = fm_req_query(r, "test_id");
  if (!strcmp(m, "POST") && !id) {
    fm_read_in in = fm_api_read_in(r);
    fm_api_err e = {0};
    fm_reply_rule *x = fm_read_reply_rule(&in, &e);
    if (!x) {
      fm_api_reply_err(r, &e);
      return;
    }
    if (!fm_replies_add(&s->replies, x)) {
      fm_openai_error(r, 409, "RESOURCE_EXHAUSTED", NULL,
                      "there are %d reply rules already (fleetmock's bound); DELETE some first",
                      FM_REPLIES_MAX);
      return;
    }
    fm_log(FM_LOG_INFO, "reply rule added", NULL);
    reply_json(r, 201, fm_reply_rule_to_json(x));
  } else if ((!strcmp(m, "GET") || !strcmp(m, "HEAD")) && !id) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *list = cJSON_AddArrayToObject(root, "data");
    for (const fm_reply_rule *x = s->replies.head; x; x = x->next_rule)
      if (!test_id || (x->match.test_id && !strcmp(x->match.test_id, test_id)))
        cJSON_AddItemToArray(list, fm_reply_rule_to_json(x));
    cJSON_AddNumberToObject(root, "fired", (double)s->replies.fired);
    reply_json(r, 200, root);
  } else if ((!strcmp(m, "GET") || !strcmp(m, "HEAD")) && id) {
    const fm_reply_rule *x = find_rule(&s->replies, n);
    if (!x) {
      fm_openai_error(r, 404, "NOT_FOUND", "id",
                      "no reply rule with id %u; GET /admin/replies lists them", n);
      return;
    }
    reply_json(r, 200, fm_reply_rule_to_json(x));
  } else if (!strcmp(m, "DELETE")) {
    int gone = fm_replies_delete(&s->replies, n, id ? NULL : test_id);
    if (id && gone == 0) {
      fm_openai_error(r, 404, "NOT_FOUND", "id",
                      "no reply rule with id %u; GET /admin/replies lists them", n);
      return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "deleted");
    cJSON_AddNumberToObject(o, "deleted", gone);
    reply_json(r, 200, o);
  } else {
    const char *allow = id ? "GET, HEAD, DELETE" : "GET, HEAD, POST, DELETE";
    fm_req_header(r, "Allow", "%s", allow);
    fm_openai_error(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed on %s; use %s", m,
                    r->url, allow);
  }
}

/* POST a scenario body or {"name": "launch-spike"}; GET shows it; DELETE stops it. */
/* GET /admin/scenarios: the shipped scenarios, by name, with what they say of themselves. */
static void scenarios_list(fm_req *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(root, "scenarios");
  for (size_t i = 0; fm_builtin_scenario_names[i]; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", fm_builtin_scenario_names[i]);
    cJSON *text = cJSON_Parse(fm_builtin_scenario_texts[i]);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(text, "description");
    if (cJSON_IsString(d)) cJSON_AddStringToObject(o, "description", d->valuestring);
    cJSON_Delete(text);
    cJSON_AddItemToArray(list, o);
  }
  reply_json(r, 200, root);
}

static void scenario_route(fm_req *r) {
  fm_server *s = r->srv;
  if (!strcmp(r->method, "GET")) {
    reply_json(r, 200, scenario_json(s));
    return;
  }
  if (!strcmp(r->method, "DELETE")) {
    bool was = fm_drill_stop(s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", was ? "stopped" : "none running");
    reply_json(r, 200, o);
    return;
  }
  if (strcmp(r->method, "POST") != 0) {
    fm_req_header(r, "Allow", "GET, POST, DELETE");
    fm_openai_error(r, 405, "METHOD_NOT_ALLOWED", NULL,
                    "%s is not allowed on %s; use GET, POST "
                    "or DELETE",
                    r->method, r->url);
    return;
  }
  fm_read_in in = fm_api_read_in(r);
  fm_api_err e = {0};
  fm_scenario *scn = fm_read_scenario(&in, &e);
  if (!scn) {
    fm_api_reply_err(r, &e);
    return;
  }
  if (fm_drill_start(s, scn) != 0) {
    fm_openai_error(r, 500, "INTERNAL", NULL, "out of memory starting the scenario; retry");
    return;
  }
  reply_json(r, 200, scenario_json(s));
}

void fm_api_metrics(fm_req *r) {
  if (!fm_admin_allowed(r)) return;
  fm_buf b;
  fm_buf_init(&b);
  fm_metrics_render(&r->srv->metrics, &r->srv->cfg, &r->srv->fleet, &r->srv->accounts,
                    &r->srv->journal, &r->srv->responses, &b);
  fm_req_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
  fm_buf_free(&b);
}

void fm_api_admin(fm_req *r, const char *rest) {
  r->kind = FM_ROUTE_ADMIN;
  const char *m = r->method;
  bool get = !strcmp(m, "GET"), post = !strcmp(m, "POST"), patch = !strcmp(m, "PATCH");
  const char *allow = NULL;
  if (!strcmp(rest, "state")) {
    if (get) {
      if (fm_admin_allowed(r)) state(r);
    } else
      allow = "GET";
  } else if (!strncmp(rest, "pools/", 6) && rest[6]) {
    if (patch) {
      if (fm_admin_allowed(r)) patch_pools(r, rest + 6);
    } else
      allow = "PATCH";
  } else if (!strcmp(rest, "accounts")) {
    if (get) {
      if (fm_admin_allowed(r)) accounts(r, NULL);
    } else
      allow = "GET";
  } else if (!strncmp(rest, "accounts/", 9) && rest[9]) {
    if (get) {
      if (fm_admin_allowed(r)) accounts(r, rest + 9);
    } else
      allow = "GET";
  } else if (!strcmp(rest, "faults") || !strncmp(rest, "faults/", 7)) {
    if (fm_admin_allowed(r)) faults_route(r, rest[6] == '/' ? rest + 7 : NULL);
    return;
  } else if (!strcmp(rest, "replies") || !strncmp(rest, "replies/", 8)) {
    if (fm_admin_allowed(r)) replies_route(r, rest[7] == '/' ? rest + 8 : NULL);
    return;
  } else if (!strcmp(rest, "events")) {
    if (get) {
      if (fm_admin_allowed(r)) fm_api_events(r);
    } else
      allow = "GET, HEAD";
  } else if (!strcmp(rest, "requests")) {
    if (fm_admin_allowed(r)) fm_api_requests(r);
    return;
  } else if (!strcmp(rest, "scenarios")) {
    if (get) {
      if (fm_admin_allowed(r)) scenarios_list(r);
    } else
      allow = "GET, HEAD";
  } else if (!strcmp(rest, "scenario")) {
    if (fm_admin_allowed(r)) scenario_route(r);
    return;
  } else if (!strcmp(rest, "reset")) {
    if (post) {
      if (fm_admin_allowed(r)) reset(r);
    } else
      allow = "POST";
  } else {
    fm_openai_error(r, 404, "NOT_FOUND", NULL,
                    "no admin route %s /admin/%s; see docs/control-plane.md for the routes", m,
                    rest);
    return;
  }
  if (allow) {
    fm_req_header(r, "Allow", "%s", allow);
    fm_openai_error(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed on %s; use %s", m,
                    r->url, allow);
  }
}

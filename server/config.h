/* config.h — the fleet configuration: pools, models, prices.
 *
 * A config is the embedded default (default-config.json) with the user's
 * file applied on top as a JSON merge patch (RFC 7386: objects merge key by
 * key, null deletes). `pool_defaults` is merged under every pool, so one
 * line can change a setting fleet-wide. The result is checked as a whole and
 * every problem is reported with its JSON path; a config with any error is
 * never used. */
#ifndef FM_CONFIG_H
#define FM_CONFIG_H

#include "ratelimit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* Admission tiers: the order is the queue order (Priority is served first). */
typedef enum { FM_TIER_PRIORITY, FM_TIER_STANDARD, FM_TIER_BACKGROUND, FM_TIER_N } fm_tier;

/* Serving paths: what a model offers and what a request is billed at. */
typedef enum {
  FM_PATH_STANDARD,
  FM_PATH_PRIORITY,
  FM_PATH_BACKGROUND,
  FM_PATH_FAST,
  FM_PATH_N
} fm_path;

extern const char *const fm_tier_names[FM_TIER_N];
extern const char *const fm_path_names[FM_PATH_N];

typedef struct fm_curve {
  double start, end; /* shed probability rises 0 → 1 linearly between these demands */
} fm_curve;

typedef struct fm_price {
  double input, cached, output; /* USD per million tokens */
} fm_price;

typedef struct fm_pool_cfg {
  char *name;
  int slots;
  int replicas;
  double ttft_ms;
  double prefill_tps;
  double decode_tps;
  double jitter;           /* each gap is scaled by 1 ± jitter (uniform) */
  double slowdown_at_full; /* gaps grow by this fraction per unit of utilisation */
  int out_min, out_mean, out_max;
  double cache_tokens_per_replica; /* prompt-cache budget of each replica */
  double tenant_load;
  double tenant_priority_share;
  fm_curve shed[FM_TIER_N];
  double queue_timeout_ms[FM_TIER_N];
} fm_pool_cfg;

/* How hard a reasoning model thinks: reasoning_effort, Anthropic thinking. */
typedef enum {
  FM_EFFORT_NONE,
  FM_EFFORT_LOW,
  FM_EFFORT_MEDIUM,
  FM_EFFORT_HIGH,
  FM_EFFORT_N
} fm_effort;

extern const char *const fm_effort_names[FM_EFFORT_N];

#define FM_MAX_PARALLEL_CALLS 16

/* What a model does beyond text (docs/config.md, "Tools and reasoning"). */
typedef struct fm_model_agent {
  bool tools;                          /* accepts tools and functions */
  bool reasoning;                      /* a reasoning model */
  fm_effort default_effort;            /* when the request names none */
  uint32_t effort_tokens[FM_EFFORT_N]; /* mean reasoning tokens per effort ([NONE] is 0) */
  double auto_probability;             /* tool_choice auto: chance that a due call is made */
  int max_parallel;                    /* most calls in one turn with parallel_tool_calls */
} fm_model_agent;

typedef struct fm_model_cfg {
  char *id;
  char *owned_by;
  int pool;       /* index into fm_config.pools */
  unsigned paths; /* bit (1u << fm_path) for each path the model serves */
  long context_length;
  bool supports_chat;
  /* An embedding model ("embedding": {"dimensions": N}): its vector size;
   * 0 for a text model. It serves only the embeddings route, and a text
   * model never does (docs/config.md, "Embedding models"). */
  int embedding_dims;
  fm_model_agent agent;
  fm_price prices[FM_PATH_N]; /* background is derived: 0.25 × standard unless set */
} fm_model_cfg;

typedef struct fm_key_cfg {
  char *key;
  char *name;
  fm_limits_cfg limits;
} fm_key_cfg;

typedef struct fm_accounts_cfg {
  bool reject_unknown_keys;
  bool ratelimit_extension_headers; /* the x-ratelimit-remaining-* countdown set */
  fm_limits_cfg limits;             /* for every key not listed */
  fm_key_cfg *keys;
  size_t n_keys;
} fm_accounts_cfg;

typedef struct fm_config {
  size_t max_body_bytes;
  size_t max_accounts; /* accounts held at once; idle ones are evicted past it */
  /* Most tokens one non-streaming response may generate in all its choices:
   * such a body is built whole in memory, a stream costs nothing per token. */
  uint64_t max_nonstream_tokens;
  int anthropic_overload_status; /* 503 (the Fireworks fleet) or 529 (Anthropic's own API) */
  bool unmatched_error; /* server.unmatched "error": a request no reply rule matches is a 404 */
  /* The config's reply rules, checked, as [{"where": "replies[i]", "rule": {...}}]
   * (fm_replies_add_all adds them at start and on reset); NULL: none. */
  struct cJSON *replies;
  size_t journal_size;       /* requests the journal holds (journal.h); 0: off */
  size_t journal_body_bytes; /* bytes of each request body it keeps */
  size_t responses_size;     /* stored responses held (respstore.h); 0: store off */
  size_t responses_bytes;    /* bytes they may take in all */
  double responses_ttl_s;    /* simulated seconds a stored response lives */
  fm_accounts_cfg accounts;
  fm_pool_cfg *pools;
  size_t n_pools;
  fm_model_cfg *models;
  size_t n_models;
} fm_config;

/* Problems found while loading, each "path: what is wrong (how to fix)". */
typedef struct fm_config_errors {
  char **items;
  size_t n;
} fm_config_errors;

void fm_config_errors_free(fm_config_errors *e);
/* Appends one formatted problem (dropped only when memory runs out). */
void fm_config_errors_add(fm_config_errors *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same, as "prefix.field: message" (the dot only when both are given). */
void fm_config_errors_at(fm_config_errors *e, const char *prefix, const char *field,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Loads the default config with the file at path (NULL: none) merged on top.
 * Returns 0, or -1 with every problem in errs (cfg is then left empty). */
int fm_config_load(fm_config *cfg, const char *path, fm_config_errors *errs);
/* Same, from a JSON patch already in memory (label names it in errors). */
int fm_config_load_text(fm_config *cfg, const char *patch, const char *label,
                        fm_config_errors *errs);
void fm_config_free(fm_config *cfg);

/* Reads a whole file; returns NULL (and sets errno) on failure. */
char *fm_read_file(const char *path, size_t *len);

/* Returns the pool / model with that name / id, or -1. */
int fm_config_find_pool(const fm_config *cfg, const char *name);
int fm_config_find_model(const fm_config *cfg, const char *id);

/* The pool's settings as the JSON a config would hold (caller frees). */
struct cJSON *fm_pool_cfg_to_json(const fm_pool_cfg *p);
/* Applies a merge patch of pool settings, checked as a config would be.
 * Returns 0, or -1 with every problem in errs (p is then unchanged). */
int fm_pool_cfg_patch(fm_pool_cfg *p, const struct cJSON *patch, fm_config_errors *errs);

/* Applies an RFC 7386 merge patch to target in place (patch is not consumed). */
void fm_json_merge_patch(struct cJSON *target, const struct cJSON *patch);

#endif

/* ratelimit.h — adaptive per-account rate limits (SPEC §5).
 *
 * Each account has, per model, four token buckets: requests per minute,
 * total prompt tokens per second, uncached prompt tokens per second and
 * generated tokens per second. A bucket holds at most one window of its
 * current limit (a second of tokens, a minute of requests) and refills at
 * the limit's rate. Requests and prompt tokens are charged at admission and
 * must fit in what the bucket holds; generated tokens are charged as they
 * are produced and may run the bucket into debt, which the next request
 * waits out. Limits adapt: while an account keeps using most of a limit it
 * grows toward its ceiling, and while it idles it shrinks back to its start,
 * so a client that ramps faster than its limits grow is refused.
 *
 * Fast and regular model ids are different models and so counted apart;
 * Priority and Standard on one model share the same buckets. The module
 * knows nothing of HTTP: times are simulated microseconds passed in. */
#ifndef FM_RATELIMIT_H
#define FM_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
  FM_LIMIT_REQUESTS,  /* per minute */
  FM_LIMIT_PROMPT,    /* total prompt tokens per second */
  FM_LIMIT_UNCACHED,  /* uncached prompt tokens per second */
  FM_LIMIT_GENERATED, /* generated tokens per second */
  FM_LIMIT_N,
  FM_LIMIT_BUDGET = FM_LIMIT_N /* the monthly spend limit, reported like a limit */
} fm_limit_kind;

extern const char *const fm_limit_names[FM_LIMIT_N + 1];

typedef struct fm_limits_cfg {
  double start[FM_LIMIT_N];
  double ceiling[FM_LIMIT_N];
  double growth_per_min; /* fraction a busy limit grows per simulated minute */
  double shrink_per_min; /* fraction an idle limit shrinks per simulated minute */
  double busy_fraction;  /* use above this share of the limit counts as busy */
  double budget_usd;     /* monthly spend limit; 0 = none */
} fm_limits_cfg;

typedef struct fm_bucket {
  double limit; /* current limit: per second (per minute for requests) */
  double level; /* what the bucket holds now; negative is debt */
  double used;  /* charged since the last adaptation step */
} fm_bucket;

typedef struct fm_limiter {
  fm_bucket b[FM_LIMIT_N];
  uint64_t last_us;  /* last refill */
  uint64_t adapt_us; /* start of the current adaptation step */
  bool touched;      /* the account has sent this model a request */
} fm_limiter;

/* What a charge found. */
typedef struct fm_limit_verdict {
  bool ok;
  fm_limit_kind hit;       /* the limit that refused, when !ok */
  double limit;            /* its current value */
  uint64_t retry_after_us; /* simulated time until the bucket has room */
} fm_limit_verdict;

void fm_limiter_init(fm_limiter *l, const fm_limits_cfg *cfg, uint64_t now_us);
/* Refills and adapts the buckets up to now. */
void fm_limiter_advance(fm_limiter *l, const fm_limits_cfg *cfg, uint64_t now_us);
/* Would one request with these prompt tokens fit now? Charges nothing;
 * when several limits refuse, names the one with the longest wait. */
fm_limit_verdict fm_limiter_check(fm_limiter *l, const fm_limits_cfg *cfg, uint64_t now_us,
                                  uint32_t prompt_tokens, uint32_t uncached_tokens);
/* Charges one request and its prompt tokens (on admission to the fleet). */
void fm_limiter_charge(fm_limiter *l, uint32_t prompt_tokens, uint32_t uncached_tokens);
/* True when any bucket is below 20 % of its capacity (x-ratelimit-over-limit). */
bool fm_limiter_over(const fm_limiter *l);
/* Charges generated tokens as they are produced (may go into debt). */
void fm_limiter_generated(fm_limiter *l, uint32_t tokens);
/* Capacity of a bucket: one window of its limit. */
double fm_bucket_capacity(const fm_bucket *b, fm_limit_kind kind);

#endif

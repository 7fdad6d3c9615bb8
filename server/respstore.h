/* respstore.h — the stored responses of the Responses API (docs/api.md,
 * "The response store").
 *
 * A response the client asked to store (store: true, the default) is kept
 * under its id with two texts: the response object as it was answered (what
 * GET responses/{id} returns) and the conversation it ends, as a JSON array
 * of input items (what a later previous_response_id continues). The store
 * is bounded in count and bytes; past either bound the least recently used
 * response goes first. A response expires ttl after it was stored, in
 * simulated time, as the real API keeps them 30 days. Each response belongs
 * to the account (key id) that made it: another account does not see it.
 *
 * Not thread-safe on its own: the server touches it under the core lock. */
#ifndef FM_RESPSTORE_H
#define FM_RESPSTORE_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FM_RESP_LIST_MAX 100

typedef struct fm_resp_entry fm_resp_entry;

typedef struct fm_resp_store {
  fm_resp_entry **buckets;
  size_t n_buckets;                   /* a power of two */
  fm_resp_entry *lru_head, *lru_tail; /* most recently used first */
  fm_resp_entry *age_head, *age_tail; /* oldest first: expiry and listing */
  size_t count, bytes;
  size_t max_count, max_bytes;
  uint64_t ttl_us;
  uint64_t stored, evicted, expired, deleted, too_large;
} fm_resp_store;

/* max_count 0 turns the store off (every put is refused). Returns 0 or -1. */
int fm_resp_store_init(fm_resp_store *s, size_t max_count, size_t max_bytes, uint64_t ttl_us);
void fm_resp_store_free(fm_resp_store *s);
/* Drops every response (POST /admin/reset). */
void fm_resp_store_clear(fm_resp_store *s);

/* Stores a response (replacing one with the same id), evicting the least
 * recently used ones while a bound is passed. now_us is simulated time.
 * False when it alone is larger than max_bytes (counted in too_large), the
 * store is off or memory ran out. */
bool fm_resp_store_put(fm_resp_store *s, const char *id, const char *owner, uint64_t now_us,
                       const char *response, size_t response_len, const char *items,
                       size_t items_len);

/* Looks a response up for its owner and marks it used. Appends its texts to
 * response / items (either may be NULL). False when absent, expired or
 * another account's. */
bool fm_resp_store_get(fm_resp_store *s, const char *id, const char *owner, uint64_t now_us,
                       fm_buf *response, fm_buf *items);

/* Deletes the owner's response; false when there is none. */
bool fm_resp_store_delete(fm_resp_store *s, const char *id, const char *owner, uint64_t now_us);

/* The owner's responses as a list page (GET responses): {"object":"list",
 * "data":[...],"first_id","last_id","has_more"}, newest first unless asc,
 * at most limit (1..FM_RESP_LIST_MAX) after the id `after` / before the id
 * `before` (NULL: none) in that order. False when a cursor names no
 * response of the owner (the page is then not written). */
bool fm_resp_store_list(fm_resp_store *s, const char *owner, uint64_t now_us, int limit, bool asc,
                        const char *after, const char *before, fm_buf *out);

#endif

/* respstore.c — the bounded store of Responses API responses (respstore.h). */
#include "respstore.h"

#include "rng.h"

#include <stdlib.h>
#include <string.h>

/* One stored response; its strings live in the same allocation, after it. */
struct fm_resp_entry {
  fm_resp_entry *hnext;
  fm_resp_entry *lru_prev, *lru_next;
  fm_resp_entry *age_prev, *age_next;
  uint64_t at_us; /* simulated time it was stored */
  size_t bytes;   /* what it counts against max_bytes */
  const char *id, *owner;
  const char *response, *items;
  size_t response_len, items_len;
};

/* An entry's fixed cost beside its texts (the struct, its bucket share). */
#define ENTRY_OVERHEAD (sizeof(fm_resp_entry) + 2 * sizeof(void *))

int fm_resp_store_init(fm_resp_store *s, size_t max_count, size_t max_bytes, uint64_t ttl_us) {
  memset(s, 0, sizeof(*s));
  s->max_count = max_count;
  s->max_bytes = max_bytes;
  s->ttl_us = ttl_us;
  size_t n = 16;
  while (n < max_count && n < ((size_t)1 << 22))
    n <<= 1;
  s->buckets = calloc(n, sizeof(*s->buckets));
  if (!s->buckets) return -1;
  s->n_buckets = n;
  return 0;
}

static size_t bucket_of(const fm_resp_store *s, const char *id) {
  return (size_t)fm_hash64(id, strlen(id), 0) & (s->n_buckets - 1);
}

static fm_resp_entry **find_slot(fm_resp_store *s, const char *id) {
  fm_resp_entry **pp = &s->buckets[bucket_of(s, id)];
  while (*pp && strcmp((*pp)->id, id) != 0)
    pp = &(*pp)->hnext;
  return pp;
}

static void lru_unlink(fm_resp_store *s, fm_resp_entry *e) {
  if (e->lru_prev)
    e->lru_prev->lru_next = e->lru_next;
  else
    s->lru_head = e->lru_next;
  if (e->lru_next)
    e->lru_next->lru_prev = e->lru_prev;
  else
    s->lru_tail = e->lru_prev;
  e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(fm_resp_store *s, fm_resp_entry *e) {
  e->lru_prev = NULL;
  e->lru_next = s->lru_head;
  if (s->lru_head) s->lru_head->lru_prev = e;
  s->lru_head = e;
  if (!s->lru_tail) s->lru_tail = e;
}

static void remove_entry(fm_resp_store *s, fm_resp_entry *e) {
  fm_resp_entry **pp = find_slot(s, e->id);
  if (*pp == e) *pp = e->hnext;
  lru_unlink(s, e);
  if (e->age_prev)
    e->age_prev->age_next = e->age_next;
  else
    s->age_head = e->age_next;
  if (e->age_next)
    e->age_next->age_prev = e->age_prev;
  else
    s->age_tail = e->age_prev;
  s->count--;
  s->bytes -= e->bytes;
  free(e);
}

/* Entries are in the age list in the order they were stored, so the
 * expired ones are at its head. */
static void expire(fm_resp_store *s, uint64_t now_us) {
  while (s->age_head && s->ttl_us && now_us >= s->age_head->at_us &&
         now_us - s->age_head->at_us >= s->ttl_us) {
    remove_entry(s, s->age_head);
    s->expired++;
  }
}

void fm_resp_store_clear(fm_resp_store *s) {
  while (s->age_head)
    remove_entry(s, s->age_head);
}

void fm_resp_store_free(fm_resp_store *s) {
  if (s->buckets) fm_resp_store_clear(s);
  free(s->buckets);
  memset(s, 0, sizeof(*s));
}

bool fm_resp_store_put(fm_resp_store *s, const char *id, const char *owner, uint64_t now_us,
                       const char *response, size_t response_len, const char *items,
                       size_t items_len) {
  if (s->max_count == 0 || !s->buckets) return false;
  size_t id_len = strlen(id), owner_len = strlen(owner);
  size_t text = id_len + owner_len + response_len + items_len + 4;
  size_t bytes = ENTRY_OVERHEAD + text;
  if (bytes > s->max_bytes) {
    s->too_large++;
    return false;
  }
  expire(s, now_us);
  fm_resp_entry *old = *find_slot(s, id);
  if (old) remove_entry(s, old);
  while (s->lru_tail && (s->count + 1 > s->max_count || s->bytes + bytes > s->max_bytes)) {
    remove_entry(s, s->lru_tail);
    s->evicted++;
  }
  fm_resp_entry *e = malloc(sizeof(*e) + text);
  if (!e) return false;
  memset(e, 0, sizeof(*e));
  char *p = (char *)(e + 1);
#define COPY(field, src, n)                                                                        \
  do {                                                                                             \
    memcpy(p, (src), (n));                                                                         \
    p[(n)] = 0;                                                                                    \
    e->field = p;                                                                                  \
    p += (n) + 1;                                                                                  \
  } while (0)
  COPY(id, id, id_len);
  COPY(owner, owner, owner_len);
  COPY(response, response, response_len);
  COPY(items, items, items_len);
#undef COPY
  e->response_len = response_len;
  e->items_len = items_len;
  e->at_us = now_us;
  e->bytes = bytes;
  fm_resp_entry **slot = find_slot(s, id);
  *slot = e;
  lru_push_front(s, e);
  e->age_prev = s->age_tail;
  if (s->age_tail)
    s->age_tail->age_next = e;
  else
    s->age_head = e;
  s->age_tail = e;
  s->count++;
  s->bytes += bytes;
  s->stored++;
  return true;
}

static fm_resp_entry *lookup(fm_resp_store *s, const char *id, const char *owner, uint64_t now_us) {
  if (!s->buckets) return NULL;
  expire(s, now_us);
  fm_resp_entry *e = *find_slot(s, id);
  if (!e || strcmp(e->owner, owner) != 0) return NULL;
  return e;
}

bool fm_resp_store_get(fm_resp_store *s, const char *id, const char *owner, uint64_t now_us,
                       fm_buf *response, fm_buf *items) {
  fm_resp_entry *e = lookup(s, id, owner, now_us);
  if (!e) return false;
  lru_unlink(s, e);
  lru_push_front(s, e);
  if (response) fm_buf_put(response, e->response, e->response_len);
  if (items) fm_buf_put(items, e->items, e->items_len);
  return true;
}

bool fm_resp_store_delete(fm_resp_store *s, const char *id, const char *owner, uint64_t now_us) {
  fm_resp_entry *e = lookup(s, id, owner, now_us);
  if (!e) return false;
  remove_entry(s, e);
  s->deleted++;
  return true;
}

static fm_resp_entry *step(const fm_resp_entry *e, bool asc) {
  return asc ? e->age_next : e->age_prev;
}

static fm_resp_entry *next_owned(fm_resp_entry *e, const char *owner, bool asc) {
  while (e && strcmp(e->owner, owner) != 0)
    e = step(e, asc);
  return e;
}

bool fm_resp_store_list(fm_resp_store *s, const char *owner, uint64_t now_us, int limit, bool asc,
                        const char *after, const char *before, fm_buf *out) {
  if (!s->buckets) return false;
  expire(s, now_us);
  fm_resp_entry *start = asc ? s->age_head : s->age_tail;
  const fm_resp_entry *stop = NULL; /* the first entry not to list */
  if (after) {
    fm_resp_entry *a = lookup(s, after, owner, now_us);
    if (!a) return false;
    start = step(a, asc);
  }
  if (before) {
    fm_resp_entry *b = lookup(s, before, owner, now_us);
    if (!b) return false;
    stop = b;
    /* "before" alone pages backwards: the limit entries just before it */
    if (!after) {
      fm_resp_entry *e = b;
      for (int n = 0; n < limit; n++) {
        fm_resp_entry *prev = next_owned(step(e, !asc), owner, !asc);
        if (!prev) break;
        e = prev;
      }
      start = e == b ? NULL : e;
    }
  }
  fm_buf_puts(out, "{\"object\":\"list\",\"data\":[");
  const fm_resp_entry *first = NULL, *last = NULL;
  int n = 0;
  fm_resp_entry *e = next_owned(start, owner, asc);
  for (; e && e != stop && n < limit; e = next_owned(step(e, asc), owner, asc)) {
    if (n++) fm_buf_putc(out, ',');
    fm_buf_put(out, e->response, e->response_len);
    if (!first) first = e;
    last = e;
  }
  bool more = e && e != stop;
  fm_buf_puts(out, "],\"first_id\":");
  if (first)
    fm_buf_json_str(out, first->id);
  else
    fm_buf_puts(out, "null");
  fm_buf_puts(out, ",\"last_id\":");
  if (last)
    fm_buf_json_str(out, last->id);
  else
    fm_buf_puts(out, "null");
  fm_buf_printf(out, ",\"has_more\":%s}", more ? "true" : "false");
  return true;
}

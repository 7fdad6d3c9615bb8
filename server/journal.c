/* journal.c — the request journal's ring, its filters and its JSON.
 *
 * The ring is an array of fixed-size entries; each entry's strings (model,
 * test id, error message, body) live in one allocation of its own, freed
 * when the entry is overwritten or cleared. Recording costs one malloc and
 * one free once the ring is full; a query is one pass, newest first, and
 * allocates nothing but its answer. Clearing one test's entries compacts
 * the ring in place, keeping the order: O(n), which an admin call can pay. */
#include "journal.h"

#include "config.h"
#include "jsonscan.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

void fm_journal_init(fm_journal *j, size_t size, size_t body_bytes) {
  memset(j, 0, sizeof(*j));
  j->size = size < FM_JOURNAL_SIZE_MAX ? size : FM_JOURNAL_SIZE_MAX;
  j->body_bytes = body_bytes < FM_JOURNAL_BODY_MAX ? body_bytes : FM_JOURNAL_BODY_MAX;
}

/* The slot of the i-th oldest entry. */
static fm_journal_entry *slot(const fm_journal *j, size_t i) {
  return &j->ring[(j->head + i) % j->cap];
}

void fm_journal_free(fm_journal *j) {
  for (size_t i = 0; i < j->n; i++)
    free(slot(j, i)->blob);
  free(j->ring);
  j->ring = NULL;
  j->cap = j->head = j->n = 0;
}

void fm_journal_reset(fm_journal *j) {
  fm_journal_clear(j, NULL);
  j->dropped = 0;
}

/* Doubles the ring (up to size), the oldest entry moving to slot 0. */
static bool grow(fm_journal *j) {
  size_t cap = j->cap ? j->cap * 2 : 64;
  if (cap > j->size) cap = j->size;
  fm_journal_entry *ring = malloc(cap * sizeof(*ring));
  if (!ring) return false;
  for (size_t i = 0; i < j->n; i++)
    ring[i] = *slot(j, i);
  free(j->ring);
  j->ring = ring;
  j->cap = cap;
  j->head = 0;
  return true;
}

/* How many of s's n bytes to keep under max: a cut never splits a UTF-8
 * character (a body that is not UTF-8 is cut at most 3 bytes short). */
static size_t keep_len(const char *s, size_t n, size_t max) {
  if (n <= max) return n;
  size_t k = max;
  while (k > 0 && max - k < 3 && ((unsigned char)s[k] & 0xC0) == 0x80)
    k--;
  return k;
}

/* Copies n bytes of s to *p, NUL-terminated, and moves *p past them. */
static const char *put(char **p, const char *s, size_t n) {
  char *at = *p;
  if (n) memcpy(at, s, n);
  at[n] = '\0';
  *p = at + n + 1;
  return at;
}

int fm_journal_add(fm_journal *j, const fm_journal_entry *in, const char *body, size_t body_len) {
  if (!j->size) return 0;
  size_t nm = in->model ? keep_len(in->model, strlen(in->model), FM_JOURNAL_MODEL_MAX) : 0;
  size_t nt = in->test_id ? keep_len(in->test_id, strlen(in->test_id), FM_JOURNAL_TEST_ID_MAX) : 0;
  size_t ne = in->error_message
                  ? keep_len(in->error_message, strlen(in->error_message), FM_JOURNAL_MESSAGE_MAX)
                  : 0;
  size_t nb = body ? keep_len(body, body_len, j->body_bytes) : 0;
  char *blob = malloc(nm + nt + ne + nb + 4);
  if (!blob || (j->n == j->cap && j->cap < j->size && !grow(j))) {
    free(blob);
    j->dropped++;
    return -1;
  }
  fm_journal_entry e = *in;
  char *p = blob;
  e.model = in->model ? put(&p, in->model, nm) : NULL;
  e.test_id = in->test_id ? put(&p, in->test_id, nt) : NULL;
  e.error_message = in->error_message ? put(&p, in->error_message, ne) : NULL;
  e.body = body ? put(&p, body, nb) : NULL;
  e.body_len = nb;
  e.body_truncated = body && nb < body_len;
  e.blob = blob;
  e.seq = ++j->seq;
  if (j->n < j->cap) {
    *slot(j, j->n++) = e;
    return 0;
  }
  fm_journal_entry *oldest = &j->ring[j->head]; /* full: the newest takes the oldest's slot */
  free(oldest->blob);
  *oldest = e;
  j->head = (j->head + 1) % j->cap;
  j->dropped++;
  return 0;
}

const fm_journal_entry *fm_journal_newest(const fm_journal *j, size_t i) {
  return i < j->n ? slot(j, j->n - 1 - i) : NULL;
}

static bool same(const char *held, const char *want) {
  return held && strcmp(held, want) == 0;
}

bool fm_journal_matches(const fm_journal_entry *e, const fm_journal_filter *f) {
  if (f->key_id && strcmp(e->key_id, f->key_id) != 0) return false;
  if (f->test_id && !same(e->test_id, f->test_id)) return false;
  if (f->model && !same(e->model, f->model)) return false;
  if (f->status && e->status != f->status) return false;
  if (f->status_class && (!e->status || e->status / 100 != f->status_class)) return false;
  if (f->has_since && e->time_ms <= f->since_ms) return false;
  return true;
}

size_t fm_journal_clear(fm_journal *j, const char *test_id) {
  size_t kept = 0;
  for (size_t i = 0; i < j->n; i++) {
    fm_journal_entry *e = slot(j, i);
    if (!test_id || same(e->test_id, test_id)) {
      free(e->blob);
      continue;
    }
    if (kept != i) *slot(j, kept) = *e; /* kept <= i: never overwrites one still to read */
    kept++;
  }
  size_t gone = j->n - kept;
  j->n = kept;
  if (!kept) j->head = 0;
  return gone;
}

/* ---- JSON ------------------------------------------------------------------- */

static void put_key(fm_buf *b, const char *key) {
  fm_buf_putc(b, ',');
  fm_buf_putc(b, '"');
  fm_buf_puts(b, key);
  fm_buf_put(b, "\":", 2);
}

static void put_int_or_null(fm_buf *b, const char *key, long long v, bool present) {
  put_key(b, key);
  if (present)
    fm_buf_put_i64(b, v);
  else
    fm_buf_put(b, "null", 4);
}

/* A JSON string of bytes that may not be UTF-8 (a refused body): every byte
 * that is not part of a well-formed sequence is written as '?'. */
static void put_text(fm_buf *b, const char *s, size_t n) {
  char *copy = malloc(n ? n : 1);
  if (!copy) {
    fm_buf_put(b, "null", 4);
    return;
  }
  for (size_t i = 0; i < n;) {
    size_t len =
        (unsigned char)s[i] < 0x80 ? 1 : fm_utf8_seq_len((const unsigned char *)s + i, n - i);
    if (!len) {
      copy[i++] = '?';
      continue;
    }
    memcpy(copy + i, s + i, len);
    i += len;
  }
  fm_buf_json_strn(b, copy, n);
  free(copy);
}

static void put_str_or_null(fm_buf *b, const char *key, const char *s) {
  put_key(b, key);
  if (s)
    put_text(b, s, strlen(s));
  else
    fm_buf_put(b, "null", 4);
}

/* The body as JSON when it is a whole JSON object or array, as its text otherwise. */
static void put_body(fm_buf *b, const fm_journal_entry *e) {
  put_key(b, "body");
  if (!e->body) {
    fm_buf_put(b, "null", 4);
    return;
  }
  fm_json_scan scan;
  if (!e->body_truncated && fm_json_prescan(e->body, e->body_len, true, 256, &scan) == FM_JSON_OK) {
    cJSON *v = cJSON_ParseWithLength(e->body, e->body_len);
    if (v && (cJSON_IsObject(v) || cJSON_IsArray(v))) {
      fm_json_write(b, v);
      cJSON_Delete(v);
      return;
    }
    cJSON_Delete(v);
  }
  put_text(b, e->body, e->body_len);
}

void fm_journal_entry_json(fm_buf *b, const fm_journal_entry *e) {
  fm_buf_puts(b, "{\"seq\":");
  fm_buf_put_i64(b, (long long)e->seq);
  put_int_or_null(b, "time", e->time_ms, true);
  put_int_or_null(b, "sim_time_ms", (long long)e->sim_ms, true);
  put_str_or_null(b, "request_id", e->request_id);
  put_str_or_null(b, "route", e->route);
  put_str_or_null(b, "model", e->model);
  put_str_or_null(b, "tier", e->tier >= 0 && e->tier < FM_PATH_N ? fm_path_names[e->tier] : NULL);
  put_key(b, "stream");
  fm_buf_puts(b, e->stream ? "true" : "false");
  put_str_or_null(b, "key_id", e->key_id[0] ? e->key_id : NULL);
  put_str_or_null(b, "test_id", e->test_id);
  put_int_or_null(b, "status", e->status, e->status != 0);
  put_int_or_null(b, "reply", e->reply_id, e->reply_id != 0);
  if (e->header_fault) {
    put_key(b, "fault");
    fm_buf_puts(b, "\"header\"");
  } else {
    put_int_or_null(b, "fault", e->fault_id, e->fault_id != 0);
  }
  put_int_or_null(b, "queue_ms", e->queue_ms, e->queue_ms >= 0);
  put_int_or_null(b, "ttft_ms", e->ttft_ms, e->ttft_ms >= 0);
  put_int_or_null(b, "prompt_tokens", e->prompt_tokens, true);
  put_int_or_null(b, "cached_tokens", e->cached_tokens, true);
  put_int_or_null(b, "completion_tokens", e->completion_tokens, true);
  put_key(b, "error");
  if (e->error_code || e->error_message) {
    fm_buf_puts(b, "{\"code\":");
    if (e->error_code)
      fm_buf_json_str(b, e->error_code);
    else
      fm_buf_put(b, "null", 4);
    put_str_or_null(b, "message", e->error_message);
    fm_buf_putc(b, '}');
  } else {
    fm_buf_put(b, "null", 4);
  }
  put_body(b, e);
  put_key(b, "body_truncated");
  fm_buf_puts(b, e->body_truncated ? "true" : "false");
  fm_buf_putc(b, '}');
}

size_t fm_journal_list_json(fm_buf *b, const fm_journal *j, const fm_journal_filter *f) {
  size_t n = 0;
  fm_buf_putc(b, '[');
  for (size_t i = 0; i < j->n && (!f->limit || n < f->limit); i++) {
    const fm_journal_entry *e = fm_journal_newest(j, i);
    if (!fm_journal_matches(e, f)) continue;
    if (n++) fm_buf_putc(b, ',');
    fm_journal_entry_json(b, e);
  }
  fm_buf_putc(b, ']');
  return n;
}

/* journal.h — the request journal: the last N inference requests, as they
 * ended (SPEC §9, docs/journal.md).
 *
 * A test asks the journal what its app sent and what it was answered: the
 * route, model, tier, key id, test id, status, the reply rule and fault that
 * fired, queue time, time to first token, tokens, and the request body. The
 * journal is a ring: it holds at most `size` entries (server.journal.size)
 * and a new one overwrites the oldest, counted in `dropped`. Each entry owns
 * one allocation for its strings, the body cut to `body_bytes`
 * (server.journal.body_bytes), so its memory is bounded by
 * size × (sizeof(fm_journal_entry) + FM_JOURNAL_STRINGS_MAX + body_bytes).
 * The ring array grows on demand (doubling) up to size, so an idle server
 * with a large journal costs nothing.
 *
 * Like the rest of the simulation core it knows nothing of HTTP: the API
 * layer (api_journal.c) builds an entry from a finished job or a refused
 * request and hands it over, borrowing its strings; the journal copies them.
 * It is not thread-safe on its own: the server touches it only under the
 * core lock (server.h). API keys are never given to it, only key ids. */
#ifndef FM_JOURNAL_H
#define FM_JOURNAL_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FM_JOURNAL_SIZE_MAX 1000000 /* server.journal.size: most entries */
#define FM_JOURNAL_BODY_MAX 1048576 /* server.journal.body_bytes: most bytes of a body */
#define FM_JOURNAL_MODEL_MAX 256    /* bytes of a model name kept */
#define FM_JOURNAL_TEST_ID_MAX 128  /* bytes of a test id kept (FM_TEST_ID_MAX) */
#define FM_JOURNAL_MESSAGE_MAX 1024 /* bytes of an error message kept */
#define FM_JOURNAL_STRINGS_MAX                                                                     \
  (FM_JOURNAL_MODEL_MAX + FM_JOURNAL_TEST_ID_MAX + FM_JOURNAL_MESSAGE_MAX + 4)

/* One request as it ended. As fm_journal_add's argument the strings are
 * borrowed (NULL: none); in the journal they point into blob. */
typedef struct fm_journal_entry {
  uint64_t seq;     /* 1, 2, …: the order entries were recorded in (kept across clears) */
  int64_t time_ms;  /* unix ms when it ended */
  uint64_t sim_ms;  /* the server's simulated ms then */
  int64_t queue_ms; /* simulated ms queued before the fleet decided; -1: never reached it */
  int64_t ttft_ms;  /* simulated arrival → first token; -1: not admitted */
  uint32_t prompt_tokens, cached_tokens, completion_tokens;
  uint32_t reply_id; /* the reply rule that answered it; 0: none */
  uint32_t fault_id; /* the stored fault that fired; 0: none */
  int status;        /* the HTTP status answered; 0: none (the connection was dropped) */
  int tier;          /* fm_path it was served or refused on; -1: not known */
  bool header_fault; /* its own x-fleetmock-fault fired */
  bool stream;
  bool body_truncated;    /* the body was longer than body_bytes */
  const char *route;      /* "chat/completions", "completions", "messages" (static) */
  const char *error_code; /* refused before it became a job: the error's code (static) */
  char key_id[16];        /* "" when the request carried no key */
  char request_id[40];    /* x-request-id */
  const char *model, *test_id, *error_message;
  const char *body; /* body_len bytes, not NUL-terminated as given */
  size_t body_len;
  char *blob; /* in the journal: the one allocation the strings live in */
} fm_journal_entry;

typedef struct fm_journal {
  size_t size;            /* most entries held; 0: the journal is off */
  size_t body_bytes;      /* most bytes of a body kept */
  fm_journal_entry *ring; /* cap slots, grown on demand up to size */
  size_t cap, head, n;    /* head: the oldest entry's slot; n entries held */
  uint64_t seq;           /* entries recorded since start */
  uint64_t dropped;       /* entries overwritten by newer ones (or lost to a failed allocation) */
} fm_journal;

/* What GET /admin/requests asks for. Every condition is optional. */
typedef struct fm_journal_filter {
  const char *key_id, *test_id, *model; /* exact matches; NULL: any */
  int status;                           /* exact status; 0: any */
  int status_class;                     /* 2 for 2xx, 4 for 4xx, …; 0: any */
  bool has_since;
  int64_t since_ms; /* with has_since: only entries that ended strictly after it */
  size_t limit;     /* most entries answered; 0: all that match */
} fm_journal_filter;

/* An empty journal of at most size entries (capped at FM_JOURNAL_SIZE_MAX)
 * keeping body_bytes of each body (capped at FM_JOURNAL_BODY_MAX). Allocates nothing. */
void fm_journal_init(fm_journal *j, size_t size, size_t body_bytes);
void fm_journal_free(fm_journal *j);

/* Records a copy of e (its seq is assigned here) and of the first body_bytes
 * of body, cut back to a UTF-8 character boundary. When the ring is full the
 * oldest entry goes and dropped counts it. Returns 0; -1 when out of memory
 * (nothing recorded, counted in dropped). A journal of size 0 records nothing. */
int fm_journal_add(fm_journal *j, const fm_journal_entry *e, const char *body, size_t body_len);

/* The i-th newest entry (0: the newest), or NULL past the last. */
const fm_journal_entry *fm_journal_newest(const fm_journal *j, size_t i);

bool fm_journal_matches(const fm_journal_entry *e, const fm_journal_filter *f);

/* Deletes every entry, or with test_id only that test's. Returns how many
 * went. dropped is not changed: it counts what the ring overwrote. */
size_t fm_journal_clear(fm_journal *j, const char *test_id);

/* Back to the boot state (POST /admin/reset): empty, dropped 0. */
void fm_journal_reset(fm_journal *j);

/* Appends one entry as JSON (docs/journal.md). */
void fm_journal_entry_json(fm_buf *b, const fm_journal_entry *e);

/* Appends the JSON array of the entries matching f, newest first. Returns how many. */
size_t fm_journal_list_json(fm_buf *b, const fm_journal *j, const fm_journal_filter *f);

#endif

/* memo.h — what a request's JSON compiles to, kept for the next request that
 * sends the same JSON.
 *
 * An agent sends the same tool definitions and schemas on every step of its
 * run, and what they compile to (a checked schema and its node table, a
 * tool's name and prompt text) is a pure function of their JSON. A memo keeps
 * such compiled values, immutable and shared, found by a 64-bit digest of
 * their JSON (fm_json_digest): direct-mapped slots (a newer value replaces the
 * one in its slot), a bound on their bytes in all and on one value's, under a
 * mutex so any thread may use it. Each value is reference-counted: the memo
 * holds one reference, every request that uses it one more; the last release
 * frees it. Only what was accepted is kept: a refusal names the request's own
 * path. */
#ifndef FLEETMOCK_MEMO_H
#define FLEETMOCK_MEMO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The first member of every kept value. */
typedef struct fm_memo_entry {
  uint64_t digest;
  atomic_int refs;
  size_t bytes;                             /* what it holds, roughly */
  void (*free_fn)(struct fm_memo_entry *e); /* frees the whole value */
} fm_memo_entry;

typedef struct fm_memo {
  pthread_mutex_t mu;
  fm_memo_entry **slot;
  size_t slots;     /* a power of two */
  size_t bytes;     /* kept, in all */
  size_t max_bytes; /* the bound on bytes; a value over max_bytes / 16 is not kept */
} fm_memo;

/* A memo with `slots` slots (a power of two) and room for max_bytes. Static
 * memos are initialised with FM_MEMO_INIT on arrays they own. */
#define FM_MEMO_INIT(array, bound)                                                                 \
  { PTHREAD_MUTEX_INITIALIZER, (array), sizeof(array) / sizeof((array)[0]), 0, (bound) }

/* The value kept under digest d, with a reference taken for the caller; NULL: none. */
fm_memo_entry *fm_memo_find(fm_memo *m, uint64_t d);
/* e (one reference, the caller's, with digest, bytes and free_fn set) kept
 * for later requests when it fits; the caller's reference stays the caller's. */
void fm_memo_keep(fm_memo *m, fm_memo_entry *e);
/* Initialises e's count to the caller's one reference. */
void fm_memo_entry_init(fm_memo_entry *e, uint64_t digest, size_t bytes,
                        void (*free_fn)(fm_memo_entry *e));
/* Drops a reference; the last one frees the value. NULL is fine. */
void fm_memo_release(fm_memo_entry *e);
/* Drops every value the memo keeps (the requests using them keep theirs). */
void fm_memo_clear(fm_memo *m);

#endif

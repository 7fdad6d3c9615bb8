/* memo.c — compiled values kept by the digest of their JSON (see memo.h). */
#include "memo.h"

#include <stdlib.h>

void fm_memo_entry_init(fm_memo_entry *e, uint64_t digest, size_t bytes,
                        void (*free_fn)(fm_memo_entry *e)) {
  e->digest = digest;
  e->bytes = bytes;
  e->free_fn = free_fn;
  atomic_init(&e->refs, 1);
}

fm_memo_entry *fm_memo_find(fm_memo *m, uint64_t d) {
  pthread_mutex_lock(&m->mu);
  fm_memo_entry *e = m->slot[d & (m->slots - 1)];
  if (e && e->digest == d)
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  else
    e = NULL;
  pthread_mutex_unlock(&m->mu);
  return e;
}

void fm_memo_keep(fm_memo *m, fm_memo_entry *e) {
  fm_memo_entry *old = NULL;
  size_t i = e->digest & (m->slots - 1);
  pthread_mutex_lock(&m->mu);
  size_t freed = m->slot[i] ? m->slot[i]->bytes : 0;
  if (e->bytes <= m->max_bytes / 16 && m->bytes - freed + e->bytes <= m->max_bytes) {
    old = m->slot[i];
    m->slot[i] = e;
    m->bytes = m->bytes - freed + e->bytes;
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&m->mu);
  fm_memo_release(old);
}

void fm_memo_release(fm_memo_entry *e) {
  if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) e->free_fn(e);
}

void fm_memo_clear(fm_memo *m) {
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->slots; i++) {
    fm_memo_entry *e = m->slot[i];
    m->slot[i] = NULL;
    /* the release frees nothing another thread could be finding: the slot is empty */
    fm_memo_release(e);
  }
  m->bytes = 0;
  pthread_mutex_unlock(&m->mu);
}

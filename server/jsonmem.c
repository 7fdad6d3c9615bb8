/* jsonmem.c — cJSON's hooks and the scratch arena of each thread (jsonmem.h). */
#include "jsonmem.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define FM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FM_ASAN 1
#endif
#endif
#ifdef FM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 16

typedef struct scratch {
  _Alignas(ALIGN) char mem[FM_JSONMEM_ARENA];
  size_t used;  /* bytes handed out since the arena was last empty */
  size_t live;  /* blocks handed out and not freed yet */
  bool drawing; /* a scratch parse is running: its blocks come from mem */
  unsigned long long drawn;
} scratch;

static _Thread_local scratch tl;

static bool in_arena(const void *p) {
  uintptr_t a = (uintptr_t)p, base = (uintptr_t)tl.mem;
  return a >= base && a < base + FM_JSONMEM_ARENA;
}

static void *hook_malloc(size_t n) {
  if (tl.drawing) {
    size_t rounded = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (rounded >= n && rounded <= FM_JSONMEM_ARENA - tl.used) {
      char *p = tl.mem + tl.used;
      tl.used += rounded;
      tl.live++;
      tl.drawn++;
      UNPOISON(p, n);
      return p;
    }
  }
  return malloc(n);
}

static void hook_free(void *p) {
  if (!in_arena(p)) {
    free(p);
    return;
  }
  if (--tl.live > 0) return;
  POISON(tl.mem, tl.used); /* every block is back: the arena starts again */
  tl.used = 0;
}

__attribute__((constructor)) static void install_hooks(void) {
  cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
  cJSON_InitHooks(&hooks);
}

cJSON *fm_json_parse_scratch(const char *text, size_t len, const char **end) {
  if (tl.live == 0) {
    if (tl.used == 0) POISON(tl.mem, FM_JSONMEM_ARENA);
    tl.drawing = true;
  }
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, end, false);
  tl.drawing = false;
  return root;
}

bool fm_jsonmem_idle(void) {
  return tl.live == 0;
}

unsigned long long fm_jsonmem_drawn(void) {
  return tl.drawn;
}

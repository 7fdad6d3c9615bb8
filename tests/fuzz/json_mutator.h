/* json_mutator.h — a structure-aware mutator for the harnesses whose input
 * is (or ends in) a JSON document.
 *
 * cJSON is a system library, built without coverage instrumentation, so
 * libFuzzer cannot see which bytes make a body parse; most byte-level
 * mutations of a request give invalid JSON that the readers refuse at
 * once. Half the time this mutator instead parses the body, changes one
 * value the way a client could (a string of another length or another known
 * word, a boundary number, another type, a member added, removed or
 * copied), and prints it back, so every input it makes parses and reaches
 * the field readers with values near their limits. The other half is
 * libFuzzer's own mutation (LLVMFuzzerMutate), which still breaks the syntax,
 * the UTF-8, the escapes and the header lines.
 *
 * Only the libFuzzer build uses it (FLEETMOCK_LIBFUZZER); the replay build
 * has no LLVMFuzzerMutate to fall back on. */
#ifndef FM_FUZZ_JSON_MUTATOR_H
#define FM_FUZZ_JSON_MUTATOR_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* Where the JSON starts in an input. */
typedef enum {
  FZ_JSON_WHOLE,   /* the input is the document (config, scenario) */
  FZ_JSON_REQUEST, /* header lines, an empty line, the body (fuzz_input.h) */
  FZ_JSON_ADMIN,   /* one route byte, then as FZ_JSON_REQUEST */
} fz_json_layout;

typedef struct fz_rng {
  uint64_t s;
} fz_rng;

static inline uint32_t fz_rand(fz_rng *r, uint32_t n) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return n ? (uint32_t)(r->s % n) : 0;
}

/* The body's offset, as fz_split finds it. */
static inline size_t fz_body_offset(const uint8_t *d, size_t size, fz_json_layout layout) {
  if (layout == FZ_JSON_WHOLE) return 0;
  size_t base = layout == FZ_JSON_ADMIN ? 1 : 0;
  if (size <= base) return size;
  d += base;
  size -= base;
  if (d[0] == '\n') return base + 1;
  for (size_t i = 0; i + 1 < size; i++)
    if (d[i] == '\n' && d[i + 1] == '\n') return base + i + 2;
  return base;
}

/* Words a reader or loader knows, as values and as member names. */
static const char *const fz_words[] = {"model",
                                       "messages",
                                       "role",
                                       "content",
                                       "type",
                                       "text",
                                       "max_tokens",
                                       "max_completion_tokens",
                                       "stream",
                                       "stream_options",
                                       "include_usage",
                                       "n",
                                       "temperature",
                                       "top_p",
                                       "top_k",
                                       "seed",
                                       "stop",
                                       "stop_sequences",
                                       "service_tier",
                                       "ignore_eos",
                                       "user",
                                       "prompt_cache_key",
                                       "prompt_cache_isolation_key",
                                       "perf_metrics_in_response",
                                       "context_length_exceeded_behavior",
                                       "prompt",
                                       "system",
                                       "metadata",
                                       "user_id",
                                       "truncate",
                                       "error",
                                       "auto",
                                       "default",
                                       "flex",
                                       "priority",
                                       "background",
                                       "standard",
                                       "standard_only",
                                       "fast",
                                       "assistant",
                                       "tool",
                                       "developer",
                                       "image",
                                       "accounts/fireworks/models/kimi-k2p6",
                                       "accounts/fireworks/models/glm-5p1",
                                       "accounts/fireworks/models/gpt-oss-20b",
                                       "accounts/fireworks/routers/kimi-k2p6-fast",
                                       "slots",
                                       "replicas",
                                       "ttft_ms",
                                       "decode_tps",
                                       "prefill_tps",
                                       "jitter",
                                       "output_tokens",
                                       "min",
                                       "mean",
                                       "max",
                                       "tenant_load",
                                       "tenant_priority_share",
                                       "shed",
                                       "start",
                                       "end",
                                       "queue_timeout_ms",
                                       "cache_tokens_per_replica",
                                       "match",
                                       "tier",
                                       "api_key",
                                       "route",
                                       "action",
                                       "status",
                                       "after_tokens",
                                       "count",
                                       "probability",
                                       "at_s",
                                       "disconnect",
                                       "stall",
                                       "chat/completions",
                                       "completions",
                                       "name",
                                       "description",
                                       "duration_s",
                                       "repeat",
                                       "steps",
                                       "ramp_s",
                                       "pools",
                                       "faults",
                                       "launch-spike",
                                       "kimi-k2p6",
                                       "glm-5p1",
                                       "*",
                                       "server",
                                       "max_body_bytes",
                                       "max_nonstream_tokens",
                                       "anthropic_overload_status",
                                       "journal",
                                       "size",
                                       "body_bytes",
                                       "pool_defaults",
                                       "models",
                                       "pool",
                                       "paths",
                                       "context_length",
                                       "owned_by",
                                       "supports_chat",
                                       "prices",
                                       "input",
                                       "cached",
                                       "output",
                                       "accounts",
                                       "reject_unknown_keys",
                                       "keys",
                                       "limits",
                                       "requests_per_min",
                                       "generated_tps",
                                       "ceiling",
                                       "budget_usd",
                                       "caf\xc3\xa9",
                                       "\xe6\x97\xa5\xe6\x9c\xac",
                                       "a\"b\\c"};
#define FZ_N_WORDS (sizeof(fz_words) / sizeof(fz_words[0]))

static const double fz_numbers[] = {0,
                                    -1,
                                    1,
                                    2,
                                    3,
                                    4,
                                    7,
                                    16,
                                    127,
                                    128,
                                    129,
                                    255,
                                    256,
                                    257,
                                    399,
                                    400,
                                    429,
                                    503,
                                    529,
                                    599,
                                    600,
                                    1024,
                                    4096,
                                    65536,
                                    131072,
                                    202752,
                                    262144,
                                    262145,
                                    524288,
                                    524289,
                                    1e6,
                                    1e7,
                                    1e7 + 1,
                                    1e9,
                                    1e12,
                                    2147483647.0,
                                    2147483648.0,
                                    4294967295.0,
                                    4294967296.0,
                                    9007199254740991.0,
                                    9007199254740993.0,
                                    1e300,
                                    -1e300,
                                    0.5,
                                    1.5,
                                    0.999,
                                    1.001,
                                    -0.5,
                                    1e-300,
                                    100.5};
#define FZ_N_NUMBERS (sizeof(fz_numbers) / sizeof(fz_numbers[0]))

/* Every node under root with its parent, depth first, at most cap of them. */
static inline int fz_nodes(cJSON *parent, cJSON **items, cJSON **parents, int n, int cap) {
  for (cJSON *c = parent->child; c && n < cap; c = c->next) {
    items[n] = c;
    parents[n++] = parent;
    if (cJSON_IsObject(c) || cJSON_IsArray(c)) n = fz_nodes(c, items, parents, n, cap);
  }
  return n;
}

/* A string of a length near the limits readers check, or another word. */
static inline char *fz_string(fz_rng *r, const char *old) {
  static const uint32_t lens[] = {0,   1,   2,   3,   4,   7,   8,    15,   16,  31,
                                  32,  33,  63,  64,  65,  100, 127,  128,  129, 200,
                                  255, 256, 257, 511, 512, 513, 1023, 1024, 1025};
  if (fz_rand(r, 3) == 0) return strdup(fz_words[fz_rand(r, FZ_N_WORDS)]);
  uint32_t len = fz_rand(r, 2) ? lens[fz_rand(r, sizeof(lens) / sizeof(lens[0]))] : fz_rand(r, 300);
  char *s = malloc(len + 1);
  if (!s) return NULL;
  size_t olen = old ? strlen(old) : 0;
  for (uint32_t i = 0; i < len; i++) /* the old text repeated, else letters */
    s[i] = olen ? old[i % olen] : (char)('a' + fz_rand(r, 26));
  s[len] = '\0';
  /* Cutting a repeated multi-byte character makes invalid UTF-8 the
   * prescan refuses; that is fine, libFuzzer's own mutations make more. */
  return s;
}

static inline cJSON *fz_scalar(fz_rng *r) {
  switch (fz_rand(r, 6)) {
  case 0:
    return cJSON_CreateNumber(fz_numbers[fz_rand(r, FZ_N_NUMBERS)]);
  case 1:
    return cJSON_CreateNumber((double)fz_rand(r, 1000));
  case 2: {
    char *s = fz_string(r, NULL);
    cJSON *v = cJSON_CreateString(s ? s : "");
    free(s);
    return v;
  }
  case 3:
    return cJSON_CreateBool(fz_rand(r, 2));
  case 4:
    return cJSON_CreateNull();
  default:
    return fz_rand(r, 2) ? cJSON_CreateObject() : cJSON_CreateArray();
  }
}

/* One change to one node; false when nothing could be changed. */
static inline int fz_change(fz_rng *r, cJSON *root, cJSON *item, cJSON *parent) {
  switch (fz_rand(r, 8)) {
  case 0: /* another type */
    return cJSON_ReplaceItemViaPointer(parent, item, fz_scalar(r));
  case 1: /* gone */
    cJSON_Delete(cJSON_DetachItemViaPointer(parent, item));
    return 1;
  case 2: { /* copied next to itself (a second message, a second stop) */
    cJSON *copy = cJSON_Duplicate(item, 1);
    if (!copy) return 0;
    if (cJSON_IsArray(parent))
      cJSON_AddItemToArray(parent, copy);
    else
      cJSON_AddItemToObject(parent, fz_words[fz_rand(r, FZ_N_WORDS)], copy);
    return 1;
  }
  case 3: { /* a member or element added */
    cJSON *target = cJSON_IsObject(item) || cJSON_IsArray(item) ? item : root;
    cJSON *v = fz_rand(r, 4) == 0 ? cJSON_Duplicate(item, 1) : fz_scalar(r);
    if (!v) return 0;
    if (cJSON_IsArray(target))
      cJSON_AddItemToArray(target, v);
    else
      cJSON_AddItemToObject(target, fz_words[fz_rand(r, FZ_N_WORDS)], v);
    return 1;
  }
  default: /* a value of its own type, near a limit */
    if (cJSON_IsString(item)) {
      char *s = fz_string(r, item->valuestring);
      if (!s) return 0;
      cJSON_SetValuestring(item, s);
      free(s);
      return 1;
    }
    if (cJSON_IsNumber(item)) {
      double v = fz_rand(r, 2) ? fz_numbers[fz_rand(r, FZ_N_NUMBERS)]
                               : item->valuedouble + (double)fz_rand(r, 5) - 2;
      cJSON_SetNumberValue(item, v);
      return 1;
    }
    if (cJSON_IsBool(item))
      return cJSON_ReplaceItemViaPointer(parent, item, cJSON_CreateBool(!cJSON_IsTrue(item)));
    return cJSON_ReplaceItemViaPointer(parent, item, fz_scalar(r));
  }
}

/* The mutator a harness registers: half libFuzzer's, half one change to the
 * parsed JSON, printed back after the unchanged prefix (route byte, headers). */
static inline size_t fz_mutate_json(uint8_t *data, size_t size, size_t max, unsigned seed,
                                    fz_json_layout layout) {
  fz_rng r = {((uint64_t)seed << 1) | 1};
  fz_rand(&r, 1);
  if (fz_rand(&r, 2) == 0) return LLVMFuzzerMutate(data, size, max);
  size_t off = fz_body_offset(data, size, layout);
  cJSON *root = cJSON_ParseWithLength((const char *)data + off, size - off);
  if (!root || !root->child) {
    cJSON_Delete(root);
    return LLVMFuzzerMutate(data, size, max);
  }
  cJSON *items[256], *parents[256];
  int n = fz_nodes(root, items, parents, 0, 256);
  int changes = 1 + (int)fz_rand(&r, 3);
  for (int k = 0; k < changes && n > 0; k++) {
    int i = (int)fz_rand(&r, (uint32_t)n);
    if (fz_change(&r, root, items[i], parents[i])) n = fz_nodes(root, items, parents, 0, 256);
  }
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  size_t len = text ? strlen(text) : 0;
  if (!text || off + len > max) {
    free(text);
    return LLVMFuzzerMutate(data, size, max);
  }
  memcpy(data + off, text, len);
  free(text);
  return off + len;
}

#endif

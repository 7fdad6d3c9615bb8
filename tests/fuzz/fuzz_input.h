/* fuzz_input.h — what the harnesses share.
 *
 * A request harness's input is a few header lines ("Name: value\n"), an
 * empty line, then the body, the way HTTP carries them, so libFuzzer
 * mutates the headers the readers look up (x-fleetmock-fault,
 * x-session-affinity, x-prompt-cache-isolation-key, Authorization) as well
 * as the body. An input that starts with "\n", or has no empty line, has no
 * headers. The body is passed in place, in libFuzzer's buffer of exactly
 * its size, so a read past its end is an AddressSanitizer report; it is not
 * NUL-terminated, as a request body is not.
 *
 * The checks here (fz_require) are the readers' promises: an error record
 * has a 4xx status, a code, a message and a param that are UTF-8 (they go
 * into a JSON answer), and a request read without error is within every
 * documented range. A broken promise aborts, which libFuzzer reports as a
 * crash with the input that broke it. Header-only: each harness is one .c
 * file. */
#ifndef FM_FUZZ_INPUT_H
#define FM_FUZZ_INPUT_H

#include "api_read.h"
#include "jsonscan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FZ_JSON_MUTATOR(layout) gives a harness the structure-aware mutator
 * (json_mutator.h) in the libFuzzer build, and nothing in the replay build. */
#ifdef FLEETMOCK_LIBFUZZER
#include "json_mutator.h"
#define FZ_JSON_MUTATOR(layout)                                                                    \
  size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed);       \
  size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed) {      \
    return fz_mutate_json(data, size, max, seed, layout);                                          \
  }
#else
#define FZ_JSON_MUTATOR(layout)
#endif

#define FZ_MAX_HEADERS 16

typedef struct fz_request {
  char *head; /* the header lines, copied and cut into NUL-terminated pieces */
  const char *names[FZ_MAX_HEADERS], *values[FZ_MAX_HEADERS];
  int n;
  const char *body;
  size_t len;
} fz_request;

/* Aborts with a message: libFuzzer saves the input as a crash. */
#define fz_require(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__, #cond);                   \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static inline void fz_split(fz_request *r, const uint8_t *data, size_t size) {
  memset(r, 0, sizeof(*r));
  const char *d = (const char *)data;
  size_t head_len = 0;
  if (size > 0 && d[0] != '\n') {
    for (size_t i = 0; i + 1 < size; i++)
      if (d[i] == '\n' && d[i + 1] == '\n') {
        head_len = i + 1;
        break;
      }
  }
  size_t skip = head_len ? head_len + 1 : size > 0 && d[0] == '\n' ? 1 : 0;
  r->body = d + skip;
  r->len = size - skip;
  if (!head_len) return;
  r->head = malloc(head_len + 1);
  if (!r->head) return;
  memcpy(r->head, d, head_len);
  r->head[head_len] = '\0';
  for (char *line = r->head; *line && r->n < FZ_MAX_HEADERS;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    char *colon = strchr(line, ':');
    if (colon) {
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ')
        v++;
      r->names[r->n] = line;
      r->values[r->n++] = v;
    }
    if (!nl) break;
    line = nl + 1;
  }
}

/* The fm_header_fn over a split input: case-insensitive, first one wins. */
static inline const char *fz_header(void *ctx, const char *name) {
  const fz_request *r = ctx;
  for (int i = 0; i < r->n; i++)
    if (strcasecmp(r->names[i], name) == 0) return r->values[i];
  return NULL;
}

static inline void fz_free(fz_request *r) {
  free(r->head);
  memset(r, 0, sizeof(*r));
}

/* The default fleet, loaded once and kept for the whole run (reachable, so
 * LeakSanitizer does not count it). */
static inline const fm_config *fz_config(void) {
  static fm_config cfg;
  static int ready;
  if (!ready) {
    fm_config_errors errs = {0};
    if (fm_config_load_text(&cfg, NULL, "default", &errs) != 0) {
      fprintf(stderr, "the default config does not load\n");
      abort();
    }
    ready = 1;
  }
  return &cfg;
}

static inline int fz_utf8(const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    size_t len = fm_utf8_seq_len(u + i, n - i);
    if (!len) return 0;
    i += len;
  }
  return 1;
}

/* What every refused request's record must hold. */
static inline void fz_check_error(const fm_api_err *e) {
  fz_require(e->status == 400 || e->status == 404);
  fz_require(e->code && *e->code);
  fz_require(e->message[0]);
  fz_require(fz_utf8(e->message));
  fz_require(!e->has_param || (e->param[0] && fz_utf8(e->param)));
}

/* What every request read without error must hold. */
static inline void fz_check_params(const fm_infer_params *p, const fm_config *cfg) {
  fz_require(p->model >= 0 && (size_t)p->model < cfg->n_models);
  const fm_model_cfg *mc = &cfg->models[p->model];
  fz_require(p->model_name && strcmp(p->model_name, mc->id) == 0);
  fz_require(p->pool == mc->pool);
  fz_require(p->n >= 1 && p->n <= 128);
  fz_require(p->prompt_tokens < (uint64_t)mc->context_length);
  fz_require(p->max_tokens <= (uint64_t)mc->context_length - p->prompt_tokens);
  fz_require(p->n_stop >= 0 && p->n_stop <= FM_STOP_MAX);
  for (int i = 0; i < p->n_stop; i++)
    fz_require(p->stop[i] && *p->stop[i] && strlen(p->stop[i]) <= FM_STOP_MAX_BYTES);
  fz_require(mc->paths & (1u << p->path)); /* the path it is billed at is one the model serves */
  fz_require(p->route && *p->route);
  if (p->fault_kind == FM_HEADER_FAULT_SET) {
    if (p->header_fault.kind == FM_FAULT_STATUS)
      fz_require(fm_fault_status_ok(p->header_fault.status));
    else
      fz_require(p->header_fault.after_tokens <= FM_FAULT_AFTER_MAX);
  }
}

/* One inference reader on one input: split, read, check, free. */
static inline void fz_infer(const uint8_t *data, size_t size,
                            bool (*read)(const fm_read_in *, fm_infer_params *, fm_api_err *)) {
  const fm_config *cfg = fz_config();
  fz_request req;
  fz_split(&req, data, size);
  fm_read_in in = {.body = req.body,
                   .len = req.len,
                   .header = fz_header,
                   .header_ctx = &req,
                   .cfg = cfg,
                   .seed = 42};
  fm_infer_params p;
  fm_api_err e = {0};
  if (read(&in, &p, &e)) {
    fz_require(e.status == 0);
    fz_check_params(&p, cfg);
  } else {
    fz_check_error(&e);
    fz_require(p.model_name == NULL && p.n_stop == 0); /* left empty */
  }
  fm_infer_params_free(&p);
  fz_free(&req);
}

#endif

/* fuzz_embeddings.c — libFuzzer harness for the embeddings reader
 * (fm_read_embeddings, api_read.h) and the vector rule (embed.h): header
 * lines, an empty line, the body (fuzz_input.h). An accepted request must be
 * within every documented bound, and its vectors must be finite and, when
 * normalized, of unit length. */
#include "embed.h"
#include "fuzz_input.h"

#include <math.h>
#include <stdlib.h>

FZ_JSON_MUTATOR(FZ_JSON_REQUEST)

static void check_embed(const fm_infer_params *p, const fm_config *cfg) {
  fz_require(p->model >= 0 && (size_t)p->model < cfg->n_models);
  const fm_model_cfg *mc = &cfg->models[p->model];
  const fm_embed_spec *e = &p->embed;
  fz_require(mc->embedding_dims > 0);
  fz_require(p->model_name && strcmp(p->model_name, mc->id) == 0);
  fz_require(p->pool == mc->pool && p->n == 0 && !p->stream);
  fz_require(mc->paths & (1u << p->path));
  fz_require(p->route && !strcmp(p->route, "embeddings"));
  fz_require(e->n >= 1 && e->n <= FM_EMBED_MAX_INPUTS);
  fz_require(e->dimensions >= 1 && e->dimensions <= mc->embedding_dims);
  fz_require((uint64_t)e->n * (uint64_t)e->dimensions <= FM_EMBED_MAX_VALUES);
  fz_require(p->prompt_tokens >= (uint32_t)e->n && p->prompt_tokens <= FM_EMBED_MAX_TOKENS);
  for (int i = 1; i < e->n; i++)
    fz_require(e->end[i] >= e->end[i - 1]);
  fz_require(strlen(e->text) == e->end[e->n - 1]);
  float *vec = malloc((size_t)mc->embedding_dims * sizeof(float));
  fz_require(vec != NULL);
  uint64_t seed = fm_embed_seed(mc->id);
  int n = e->n < 8 ? e->n : 8; /* the first few: the rule is the same for all */
  for (int i = 0; i < n; i++) {
    size_t from = i ? e->end[i - 1] : 0;
    fm_embed(seed, e->text + from, e->end[i] - from, mc->embedding_dims, e->dimensions,
             e->normalize, vec);
    double sum = 0;
    for (int k = 0; k < e->dimensions; k++) {
      fz_require(isfinite(vec[k]));
      sum += (double)vec[k] * vec[k];
    }
    if (e->normalize) fz_require(fabs(sum - 1.0) < 1e-3);
  }
  free(vec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
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
  if (fm_read_embeddings(&in, &p, &e)) {
    fz_require(e.status == 0);
    check_embed(&p, cfg);
  } else {
    fz_check_error(&e);
    fz_require(p.model_name == NULL && p.embed.text == NULL); /* left empty */
  }
  fm_infer_params_free(&p);
  fz_free(&req);
  return 0;
}

/* fuzz_admin.c — libFuzzer harness for the control plane's body readers
 * (api_read.h). The first byte picks the route, modulo 4:
 *   0  PATCH /admin/pools/{name}  fm_read_pool_patch; {name} is the
 *      x-fuzz-pool header line, "*" without one
 *   1  POST /admin/faults         fm_read_fault, then the fault is added
 *      to a fault list and fired, as the server would
 *   2  POST /admin/scenario       fm_read_scenario
 *   3  POST /admin/replies        fm_read_reply_rule, then the rule is added,
 *      picked for a request whose body is the fuzz body, and its turn planned
 * and the rest is header lines, an empty line, the body (fuzz_input.h). */
#include "fuzz_input.h"
#include "turn.h"

static void pools(const fm_read_in *in, const fz_request *req) {
  const fm_config *cfg = in->cfg;
  const char *name = fz_header((void *)req, "x-fuzz-pool");
  fm_pool_cfg *next = malloc(cfg->n_pools * sizeof(*next));
  fz_require(next);
  memcpy(next, cfg->pools, cfg->n_pools * sizeof(*next));
  fm_api_err e = {0};
  int only = -2;
  if (fm_read_pool_patch(in, name ? name : "*", next, cfg->n_pools, &only, &e)) {
    fz_require(only >= -1 && only < (int)cfg->n_pools);
    for (size_t i = 0; i < cfg->n_pools; i++) { /* what the config checker promises */
      const fm_pool_cfg *p = &next[i];
      fz_require(p->slots >= 1 && p->replicas >= 1 && p->replicas <= 1024);
      fz_require(p->decode_tps > 0 && p->prefill_tps > 0);
      fz_require(p->out_min >= 1 && p->out_min <= p->out_mean && p->out_mean <= p->out_max);
      fz_require(p->jitter >= 0 && p->jitter <= 0.9);
      for (int t = 0; t < FM_TIER_N; t++)
        fz_require(p->shed[t].start <= p->shed[t].end);
    }
  } else {
    fz_check_error(&e);
  }
  free(next);
}

static void faults(const fm_read_in *in) {
  fm_api_err e = {0};
  fm_fault *f = fm_read_fault(in, &e);
  if (!f) {
    fz_check_error(&e);
    return;
  }
  if (f->action.kind == FM_FAULT_STATUS)
    fz_require(fm_fault_status_ok(f->action.status));
  else
    fz_require(f->action.after_tokens <= FM_FAULT_AFTER_MAX);
  fz_require(f->count_left >= -1);
  fz_require(f->probability >= 0 && f->probability <= 1);
  fm_faults list;
  fm_faults_init(&list, 42);
  fm_faults_add(&list, f);
  /* the request the fault describes, with the fuzz input as its body */
  fm_match_facts facts = {.model = f->match.model ? f->match.model
                                                  : "accounts/fireworks/models/kimi-k2p6",
                          .path = f->match.path >= 0 ? f->match.path : FM_PATH_STANDARD,
                          .api_key = f->match.api_key,
                          .key_id = f->match.key_id,
                          .route = f->match.route ? f->match.route : "chat/completions",
                          .test_id = f->match.test_id,
                          .body = in->body,
                          .body_len = in->len};
  for (int i = 0; i < 4; i++)
    fm_faults_fire(&list, &facts);
  fm_match_facts_free(&facts);
  fm_faults_free(&list);
}

static void scenario(const fm_read_in *in) {
  fm_api_err e = {0};
  fm_scenario *s = fm_read_scenario(in, &e);
  if (!s) {
    fz_check_error(&e);
    return;
  }
  fz_require(s->name && *s->name && s->duration_s > 0);
  fm_scenario_free(s);
}

static void replies(const fm_read_in *in) {
  fm_api_err e = {0};
  fm_reply_rule *x = fm_read_reply_rule(in, &e);
  if (!x) {
    fz_check_error(&e);
    return;
  }
  fz_require(x->n_replies >= 1 && x->n_replies <= FM_REPLY_SEQUENCE_MAX);
  fm_replies rs;
  fm_replies_init(&rs);
  fz_require(fm_replies_add(&rs, x) == 1);
  fm_match_facts facts = {.model = x->match.model ? x->match.model
                                                  : "accounts/fireworks/models/kimi-k2p6",
                          .path = x->match.path >= 0 ? x->match.path : FM_PATH_STANDARD,
                          .api_key = x->match.api_key,
                          .key_id = x->match.key_id,
                          .route = x->match.route ? x->match.route : "chat/completions",
                          .test_id = x->match.test_id,
                          .body = in->body,
                          .body_len = in->len};
  for (int i = 0; i < 3; i++) {
    const fm_reply *r = fm_replies_pick(&rs, &facts, NULL);
    if (!r) break;
    fm_turn_spec spec = {0};
    fm_turn t;
    if (fm_turn_plan_reply(&t, r, &facts, &spec, 7, 64, true)) {
      while (!fm_turn_done(&t)) {
        char out[FM_GEN_OUT_MAX];
        int part;
        fm_turn_next(&t, NULL, out, &part);
      }
      fm_turn_free(&t);
    }
  }
  const char *failed = NULL;
  fm_replies_closest(&rs, &facts, &failed);
  fm_match_facts_free(&facts);
  fm_replies_free(&rs);
}

FZ_JSON_MUTATOR(FZ_JSON_ADMIN)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  fz_request req;
  fz_split(&req, data + 1, size - 1);
  fm_read_in in = {.body = req.body,
                   .len = req.len,
                   .header = fz_header,
                   .header_ctx = &req,
                   .cfg = fz_config(),
                   .seed = 42};
  switch (data[0] % 4) {
  case 0:
    pools(&in, &req);
    break;
  case 1:
    faults(&in);
    break;
  case 2:
    scenario(&in);
    break;
  default:
    replies(&in);
  }
  fz_free(&req);
  return 0;
}

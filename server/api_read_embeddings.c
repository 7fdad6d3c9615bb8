/* api_read_embeddings.c — reading POST embeddings from bytes (api_read.h).
 *
 * The request is OpenAI's (model, input, dimensions, encoding_format, user)
 * with Fireworks' normalize; docs/api.md ("Embeddings") has every field and
 * bound. The checks run in the order below and the first problem is the
 * answer. The inputs are copied into one buffer (fm_embed_spec), token-id
 * inputs as their decimal ids separated by spaces, so the vector rule sees
 * only text. */
#include "api_read.h"

#include "rng.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_ID_MAX 2147483647.0

static const char *const FORMS =
    "must be a string, an array of strings, an array of token ids, or an array of token-id "
    "arrays";

/* The model: required, served here, and an embedding model. */
static bool read_model(fm_reader *rd, fm_infer_params *p) {
  const fm_config *cfg = rd->in->cfg;
  const char *example = "nomic-ai/nomic-embed-text-v1.5";
  for (size_t i = 0; i < cfg->n_models; i++)
    if (cfg->models[i].embedding_dims) {
      example = cfg->models[i].id;
      break;
    }
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(rd->obj, "model");
  if (!m || cJSON_IsNull(m) || !cJSON_IsString(m)) {
    fm_rd_bad(rd, "model",
              "%s; set it to an embedding model id such as \"%s\" (GET /v1/models lists them)",
              m && !cJSON_IsNull(m) ? "must be a string" : "is required", example);
    return false;
  }
  p->model = fm_config_find_model(cfg, m->valuestring);
  if (p->model < 0) {
    fm_rd_fail(rd, 404, "NOT_FOUND", "model",
               "Model not found, inaccessible, and/or not deployed: \"%.200s\" is not served "
               "here; GET /v1/models lists the ids this server knows (embedding models have "
               "\"embedding\": true), e.g. \"%s\"",
               m->valuestring, example);
    return false;
  }
  if (!cfg->models[p->model].embedding_dims) {
    fm_rd_bad(rd, "model",
              "\"%.200s\" is a chat model; use an embedding model such as \"%s\" (GET "
              "/v1/models lists them with \"embedding\": true)",
              m->valuestring, example);
    return false;
  }
  p->model_name = strdup(m->valuestring);
  p->pool = cfg->models[p->model].pool;
  return true;
}

/* A token id: a whole number from 0 to TOKEN_ID_MAX. */
static bool token_id(const cJSON *v) {
  return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= 0 &&
         v->valuedouble <= TOKEN_ID_MAX;
}

/* Bytes the decimal ids of a token-id array take as text ("12 7 300"). */
static size_t ids_bytes(const cJSON *arr) {
  size_t n = 0;
  for (const cJSON *it = arr->child; it; it = it->next) {
    char num[16];
    n += (size_t)snprintf(num, sizeof(num), "%.0f", it->valuedouble) + 1;
  }
  return n;
}

static void put_ids(fm_embed_spec *e, size_t *at, const cJSON *arr) {
  for (const cJSON *it = arr->child; it; it = it->next) {
    int w = snprintf(e->text + *at, 16, "%.0f", it->valuedouble);
    *at += (size_t)w;
    if (it->next) e->text[(*at)++] = ' ';
  }
}

/* One token-id array (the whole input, or one of its items): non-empty ids. */
static bool check_ids(fm_reader *rd, const cJSON *arr, const char *where) {
  if (!arr->child) {
    fm_rd_bad(rd, where, "is an empty token-id array; send at least one token id");
    return false;
  }
  int k = 0;
  for (const cJSON *it = arr->child; it; it = it->next, k++) {
    if (token_id(it)) continue;
    char at[96];
    fm_rd_path(at, sizeof(at), where, NULL, k);
    fm_rd_bad(rd, at, "must be a token id: a whole number from 0 to %.0f", TOKEN_ID_MAX);
    return false;
  }
  return true;
}

/* An input's tokens: within the model's context length. */
static bool input_fits(fm_reader *rd, const fm_model_cfg *mc, uint64_t tokens, const char *where) {
  if (tokens <= (uint64_t)mc->context_length) return true;
  fm_rd_bad(rd, where,
            "is %llu tokens, more than the context length of %s (%ld tokens); shorten it or "
            "split it into several inputs",
            (unsigned long long)tokens, mc->id, mc->context_length);
  return false;
}

/* The kinds of an array input, by its first item. */
typedef enum { IN_STRINGS, IN_IDS, IN_ID_ARRAYS } in_kind;

/* input: checks every item and counts the inputs, their tokens and the bytes
 * their text takes; false after a 400 naming the item. */
static bool scan_input(fm_reader *rd, const fm_model_cfg *mc, const cJSON *in, int *n,
                       uint64_t *tokens, size_t *bytes, in_kind *kind) {
  *n = 0;
  *tokens = 0;
  *bytes = 0;
  if (!in) {
    fm_rd_bad(rd, "input", "is required: the text to embed (a string or an array of strings)");
    return false;
  }
  if (cJSON_IsString(in)) {
    size_t len = strlen(in->valuestring);
    if (len == 0) {
      fm_rd_bad(rd, "input", "must not be an empty string; send the text to embed");
      return false;
    }
    *n = 1;
    *tokens = fm_tokens_for_bytes(len);
    *bytes = len;
    *kind = IN_STRINGS;
    return input_fits(rd, mc, *tokens, "input");
  }
  if (!cJSON_IsArray(in)) {
    fm_rd_bad(rd, "input", "%s", FORMS);
    return false;
  }
  if (!in->child) {
    fm_rd_bad(rd, "input", "is an empty array; send at least one text to embed");
    return false;
  }
  if (!cJSON_IsString(in->child) && !cJSON_IsArray(in->child) && !cJSON_IsNumber(in->child)) {
    fm_rd_bad(rd, "input[0]", "must be a string, a token id or an array of token ids (input %s)",
              FORMS);
    return false;
  }
  *kind = cJSON_IsString(in->child) ? IN_STRINGS : cJSON_IsArray(in->child) ? IN_ID_ARRAYS : IN_IDS;
  if (*kind == IN_IDS) { /* one input of token ids */
    if (!check_ids(rd, in, "input")) return false;
    *n = 1;
    *tokens = (uint64_t)cJSON_GetArraySize(in);
    *bytes = ids_bytes(in);
    return input_fits(rd, mc, *tokens, "input");
  }
  int count = cJSON_GetArraySize(in);
  if (count > FM_EMBED_MAX_INPUTS) {
    fm_rd_bad(rd, "input",
              "has %d inputs, more than the %d one request may embed; split them over several "
              "requests",
              count, FM_EMBED_MAX_INPUTS);
    return false;
  }
  int i = 0;
  for (const cJSON *it = in->child; it; it = it->next, i++) {
    char where[32];
    fm_rd_path(where, sizeof(where), "input", NULL, i);
    uint64_t t;
    if (*kind == IN_STRINGS) {
      if (!cJSON_IsString(it)) {
        fm_rd_bad(rd, where,
                  "must be a string like input[0] (an array input holds only strings, or only "
                  "token-id arrays)");
        return false;
      }
      size_t len = strlen(it->valuestring);
      if (len == 0) {
        fm_rd_bad(rd, where, "must not be an empty string; drop it or send the text to embed");
        return false;
      }
      t = fm_tokens_for_bytes(len);
      *bytes += len;
    } else {
      if (!cJSON_IsArray(it)) {
        fm_rd_bad(rd, where,
                  "must be an array of token ids like input[0] (an array input holds only "
                  "strings, or only token-id arrays)");
        return false;
      }
      if (!check_ids(rd, it, where)) return false;
      t = (uint64_t)cJSON_GetArraySize(it);
      *bytes += ids_bytes(it);
    }
    if (!input_fits(rd, mc, t, where)) return false;
    *tokens += t;
  }
  *n = count;
  return true;
}

/* Copies the inputs' texts into p->embed (scan_input checked them). */
static bool copy_input(fm_embed_spec *e, const cJSON *in, in_kind kind, size_t bytes) {
  e->text = malloc(bytes + 1);
  e->end = malloc((size_t)e->n * sizeof(size_t));
  if (!e->text || !e->end) return false;
  size_t at = 0;
  if (cJSON_IsString(in)) {
    memcpy(e->text, in->valuestring, bytes);
    at = bytes;
    e->end[0] = at;
  } else if (kind == IN_IDS) {
    put_ids(e, &at, in);
    e->end[0] = at;
  } else {
    int i = 0;
    for (const cJSON *it = in->child; it; it = it->next, i++) {
      if (kind == IN_STRINGS) {
        size_t len = strlen(it->valuestring);
        memcpy(e->text + at, it->valuestring, len);
        at += len;
      } else {
        put_ids(e, &at, it);
      }
      e->end[i] = at;
    }
  }
  e->text[at] = '\0';
  return true;
}

static bool read_fields(fm_reader *rd, fm_infer_params *p) {
  if (!read_model(rd, p)) return false;
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];
  fm_embed_spec *e = &p->embed;
  const cJSON *in = fm_rd_field(rd, "input");
  int n;
  uint64_t tokens;
  size_t bytes;
  in_kind kind = IN_STRINGS;
  if (!scan_input(rd, mc, in, &n, &tokens, &bytes, &kind)) return false;
  if (tokens > FM_EMBED_MAX_TOKENS) {
    fm_rd_bad(rd, "input",
              "the inputs are %llu tokens in all, more than the %d one request may embed; send "
              "fewer or shorter inputs per request",
              (unsigned long long)tokens, FM_EMBED_MAX_TOKENS);
    return false;
  }

  e->dimensions = mc->embedding_dims;
  const cJSON *dims = fm_rd_field(rd, "dimensions");
  if (dims) {
    double d = cJSON_IsNumber(dims) ? dims->valuedouble : 0;
    if (!cJSON_IsNumber(dims) || d != floor(d) || d < 1 || d > mc->embedding_dims) {
      fm_rd_bad(rd, "dimensions",
                "must be a whole number from 1 to %d (the size of %s's vectors); drop it for "
                "the full vector",
                mc->embedding_dims, mc->id);
      return false;
    }
    e->dimensions = (int)d;
  }
  if ((uint64_t)n * (uint64_t)e->dimensions > FM_EMBED_MAX_VALUES) {
    fm_rd_bad(rd, "input",
              "%d inputs of %d dimensions are %llu values, more than the %d one response may "
              "hold; send at most %d inputs per request, or lower dimensions",
              n, e->dimensions, (unsigned long long)n * (unsigned long long)e->dimensions,
              FM_EMBED_MAX_VALUES, FM_EMBED_MAX_VALUES / e->dimensions);
    return false;
  }
  const char *fmt = fm_rd_string(rd, "encoding_format");
  if (fmt && !strcmp(fmt, "base64"))
    e->base64 = true;
  else if (fmt && strcmp(fmt, "float") != 0)
    fm_rd_bad(rd, "encoding_format",
              "must be \"float\" (the default: arrays of numbers) or \"base64\" (little-endian "
              "float32 bytes, base64); got \"%.40s\"",
              fmt);
  e->normalize = fm_rd_bool(rd, "normalize", true);
  fm_rd_string(rd, "user");

  const char *tier = NULL;
  const cJSON *st = fm_rd_field(rd, "service_tier");
  if (st && !cJSON_IsString(st))
    fm_rd_bad(rd, "service_tier",
              "must be a string: \"auto\", \"default\", \"flex\" or "
              "\"priority\"");
  else if (st)
    tier = st->valuestring;
  if (rd->failed) return false;
  static const fm_tier_name tiers[] = {{"auto", FM_TIER_STANDARD},
                                       {"default", FM_TIER_STANDARD},
                                       {"flex", FM_TIER_STANDARD},
                                       {"priority", FM_TIER_PRIORITY},
                                       {NULL, FM_TIER_STANDARD}};
  fm_rd_tier_named(rd, p, tier, tiers);
  if (rd->failed) return false;

  e->n = n;
  if (!copy_input(e, in, kind, bytes)) {
    fm_rd_fail(rd, 500, "INTERNAL", NULL, "out of memory copying the inputs; retry later");
    return false;
  }
  p->prompt_tokens = (uint32_t)tokens;
  p->prompt_digest = fm_hash64(e->text, e->end[n - 1], 0x656d62ULL);
  return true;
}

bool fm_read_embeddings(const fm_read_in *in, fm_infer_params *p, fm_api_err *e) {
  memset(p, 0, sizeof(*p));
  cJSON *root = fm_rd_parse_scratch(in, e);
  if (!root) return false;
  fm_reader rd = {.in = in, .obj = root, .err = e};
  fm_prefix_init(&p->prefix); /* embeddings never use the prompt cache: no blocks */
  bool ok = read_fields(&rd, p);
  p->body_tree = root; /* what the job matches; freed with p */
  if (ok) fm_rd_fault_header(&rd, p);
  if (!ok || rd.failed) {
    fm_infer_params_free(p);
    return false;
  }
  p->route = "embeddings";
  p->n = 0; /* no choices: the job generates nothing */
  return true;
}

/* api_read_anthropic.c — reading the Anthropic-compatible Messages request
 * (POST messages) from bytes (api_read.h). The fields are Anthropic's
 * (docs/api.md); the checks run in the order below and the first problem is
 * the answer. */
#include "api_read.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* max_tokens is optional here; without it a completion ends by itself or here. */
#define DEFAULT_MAX_TOKENS 4096

/* ---- request ---------------------------------------------------------------- */

static bool read_prompt(fm_reader *rd, fm_infer_params *p) {
  uint64_t tokens = FM_TOKENS_PER_CHAT;
  const cJSON *system = fm_rd_field(rd, "system");
  if (system) {
    fm_prefix_add(&p->prefix, "system\n", 7);
    long n = fm_rd_text_content(rd, system, "system", &p->prefix);
    if (n < 0) return false;
    fm_prefix_add(&p->prefix, "\n", 1);
    tokens += fm_tokens_for_bytes((size_t)n) + FM_TOKENS_PER_MESSAGE;
  }
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rd->obj, "messages");
  if (!cJSON_IsArray(msgs) || !msgs->child) {
    fm_rd_bad(rd, "messages",
              "is required: a non-empty array like [{\"role\": \"user\", "
              "\"content\": \"Hello\"}]");
    return false;
  }
  int i = 0;
  for (const cJSON *m = msgs->child; m; m = m->next, i++) {
    char name[64];
    snprintf(name, sizeof(name), "messages[%d]", i);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsObject(m)) {
      fm_rd_bad(rd, name, "must be an object with \"role\" and \"content\"");
      return false;
    }
    snprintf(name, sizeof(name), "messages[%d].role", i);
    if (!cJSON_IsString(role) ||
        (strcmp(role->valuestring, "user") != 0 && strcmp(role->valuestring, "assistant") != 0)) {
      fm_rd_bad(rd, name, "must be \"user\" or \"assistant\" (put system text in \"system\")");
      return false;
    }
    fm_prefix_add(&p->prefix, role->valuestring, strlen(role->valuestring));
    fm_prefix_add(&p->prefix, "\n", 1);
    snprintf(name, sizeof(name), "messages[%d].content", i);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!content) {
      fm_rd_bad(rd, name, "is required");
      return false;
    }
    long n = fm_rd_text_content(rd, content, name, &p->prefix);
    if (n < 0) return false;
    fm_prefix_add(&p->prefix, "\n", 1);
    tokens += fm_tokens_for_bytes((size_t)n) + FM_TOKENS_PER_MESSAGE;
  }
  return fm_rd_prompt_fits(rd, p, tokens, "messages");
}

static bool read_request(fm_reader *rd, fm_infer_params *p) {
  if (!fm_rd_model(rd, p)) return false;
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];
  bool has_max = false;
  long long mt = fm_rd_int(rd, "max_tokens", 1, mc->context_length, 0, &has_max);
  p->max_tokens = (uint32_t)(has_max ? mt : DEFAULT_MAX_TOKENS);
  p->n = 1;
  p->stream = fm_rd_bool(rd, "stream", false);
  p->ignore_eos = fm_rd_bool(rd, "ignore_eos", false);
  fm_rd_context_behavior(rd, p);
  p->seed = rd->in->seed;
  fm_rd_number(rd, "temperature", 0, 1, 1);
  fm_rd_number(rd, "top_p", 0, 1, 1);
  fm_rd_int(rd, "top_k", 0, 100000, 0, NULL);

  const char *user = NULL;
  const cJSON *meta = fm_rd_field(rd, "metadata");
  if (meta) {
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(meta, "user_id");
    if (!cJSON_IsObject(meta))
      fm_rd_bad(rd, "metadata", "must be an object like {\"user_id\": \"...\"}");
    else if (uid && !cJSON_IsNull(uid) && !cJSON_IsString(uid))
      fm_rd_bad(rd, "metadata.user_id", "must be a string");
    else if (cJSON_IsString(uid))
      user = uid->valuestring;
  }
  fm_rd_cache_keys(rd, p, user);

  const cJSON *stops = fm_rd_field(rd, "stop_sequences");
  if (stops) {
    if (!cJSON_IsArray(stops) || cJSON_GetArraySize(stops) > FM_STOP_MAX) {
      fm_rd_bad(rd, "stop_sequences", "must be an array of at most %d strings", FM_STOP_MAX);
    } else {
      for (const cJSON *it = stops->child; it && !rd->failed; it = it->next) {
        if (!cJSON_IsString(it) || strlen(it->valuestring) > FM_STOP_MAX_BYTES)
          fm_rd_bad(rd, "stop_sequences", "must hold strings of at most %d bytes",
                    FM_STOP_MAX_BYTES);
        else if (*it->valuestring)
          p->stop[p->n_stop++] = strdup(it->valuestring);
      }
    }
  }

  const char *tier = fm_rd_string(rd, "service_tier");
  if (rd->failed) return false;
  static const fm_tier_name tiers[] = {{"auto", FM_TIER_STANDARD},
                                       {"standard_only", FM_TIER_STANDARD},
                                       {"priority", FM_TIER_PRIORITY},
                                       {NULL, FM_TIER_STANDARD}};
  fm_rd_tier_named(rd, p, tier, tiers);
  return !rd->failed && read_prompt(rd, p);
}

bool fm_read_messages(const fm_read_in *in, fm_infer_params *p, fm_api_err *e) {
  memset(p, 0, sizeof(*p));
  fm_prefix_init(&p->prefix);
  cJSON *root = fm_rd_parse(in, false, e);
  if (!root) return false;
  fm_reader rd = {.in = in, .obj = root, .err = e};
  bool ok = read_request(&rd, p);
  cJSON_Delete(root);
  if (!ok) {
    fm_infer_params_free(p);
    return false;
  }
  fm_rd_fault_header(&rd, p);
  p->route = "messages";
  return true;
}

/* api_read_openai.c — reading the OpenAI-compatible requests,
 * chat/completions and completions, from bytes (api_read.h). What the
 * fields mean is in docs/api.md; the checks run in the order below and the
 * first problem is the answer. */
#include "api_read.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fields shared by chat and completions ---------------------------- */

static bool read_common(fm_reader *rd, fm_infer_params *p) {
  if (!fm_rd_model(rd, p)) return false;
  const fm_model_cfg *mc = &rd->in->cfg->models[p->model];

  bool has_max = false, has_mct = false;
  long long ctx = mc->context_length;
  long long mt = fm_rd_int(rd, "max_tokens", 1, ctx, 0, &has_max);
  long long mct = fm_rd_int(rd, "max_completion_tokens", 1, ctx, 0, &has_mct);
  if (has_max && has_mct)
    fm_rd_bad(rd, "max_completion_tokens",
              "send either max_tokens or max_completion_tokens, not both");
  p->max_tokens = (uint32_t)(has_max ? mt : mct);
  p->stream = fm_rd_bool(rd, "stream", false);
  const cJSON *so = fm_rd_field(rd, "stream_options");
  if (so) {
    if (!cJSON_IsObject(so)) {
      fm_rd_bad(rd, "stream_options", "must be an object such as {\"include_usage\": true}");
    } else {
      const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
      if (iu && !cJSON_IsNull(iu) && !cJSON_IsBool(iu))
        fm_rd_bad(rd, "stream_options.include_usage", "must be true or false");
      p->include_usage = cJSON_IsTrue(iu);
    }
  }
  p->n = (int)fm_rd_int(rd, "n", 1, 128, 1, NULL);
  fm_rd_number(rd, "temperature", 0, 2, 1);
  fm_rd_number(rd, "top_p", 0, 1, 1);
  fm_rd_number(rd, "frequency_penalty", -2, 2, 0);
  fm_rd_number(rd, "presence_penalty", -2, 2, 0);
  fm_rd_int(rd, "top_k", 0, 100000, 0, NULL);
  const char *user = fm_rd_string(rd, "user");
  const char *pck = fm_rd_string(rd, "prompt_cache_key");
  fm_rd_cache_keys(rd, p, pck && *pck ? pck : user);
  p->ignore_eos = fm_rd_bool(rd, "ignore_eos", false);
  p->perf_metrics = fm_rd_bool(rd, "perf_metrics_in_response", false);
  fm_rd_context_behavior(rd, p);
  bool has_seed = false;
  long long seed = fm_rd_int(rd, "seed", -9007199254740991LL, 9007199254740991LL, 0, &has_seed);
  p->seed = has_seed ? (uint64_t)seed : rd->in->seed;

  const cJSON *stop = fm_rd_field(rd, "stop");
  if (stop) {
    if (cJSON_IsString(stop)) {
      if (*stop->valuestring) p->stop[p->n_stop++] = strdup(stop->valuestring);
    } else if (cJSON_IsArray(stop) && cJSON_GetArraySize(stop) <= FM_STOP_MAX) {
      for (const cJSON *it = stop->child; it && !rd->failed; it = it->next) {
        if (!cJSON_IsString(it))
          fm_rd_bad(rd, "stop", "must hold only strings");
        else if (*it->valuestring)
          p->stop[p->n_stop++] = strdup(it->valuestring);
      }
    } else {
      fm_rd_bad(rd, "stop", "must be a string or an array of at most %d strings", FM_STOP_MAX);
    }
    for (int i = 0; i < p->n_stop && !rd->failed; i++)
      if (strlen(p->stop[i]) > FM_STOP_MAX_BYTES)
        fm_rd_bad(rd, "stop", "each stop sequence must be at most %d bytes", FM_STOP_MAX_BYTES);
  }

  const char *tier = NULL;
  const cJSON *st = fm_rd_field(rd, "service_tier");
  if (st && !cJSON_IsString(st))
    fm_rd_bad(rd, "service_tier",
              "must be a string: \"auto\", "
              "\"default\", \"flex\", \"priority\" or "
              "\"background\"");
  else if (st)
    tier = st->valuestring;
  if (rd->failed) return false;

  static const fm_tier_name tiers[] = {
      {"auto", FM_TIER_STANDARD},         {"default", FM_TIER_STANDARD},
      {"flex", FM_TIER_STANDARD},         {"priority", FM_TIER_PRIORITY},
      {"background", FM_TIER_BACKGROUND}, {NULL, FM_TIER_STANDARD}};
  fm_rd_tier_named(rd, p, tier, tiers);
  return !rd->failed;
}

/* ---- prompts -------------------------------------------------------------- */

static bool read_messages(fm_reader *rd, fm_infer_params *p) {
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rd->obj, "messages");
  if (!msgs || cJSON_IsNull(msgs)) {
    fm_rd_bad(rd, "messages",
              "is required: an array like [{\"role\": \"user\", \"content\": "
              "\"Hello\"}]");
    return false;
  }
  if (!cJSON_IsArray(msgs) || !msgs->child) {
    fm_rd_bad(rd, "messages",
              "must be a non-empty array like [{\"role\": \"user\", \"content\": "
              "\"Hello\"}]");
    return false;
  }
  static const char *const roles[] = {"system", "user",      "assistant",
                                      "tool",   "developer", "function"};
  uint64_t tokens = FM_TOKENS_PER_CHAT;
  fm_prefix_init(&p->prefix);
  int i = 0;
  for (const cJSON *m = msgs->child; m; m = m->next, i++) {
    char name[64];
    snprintf(name, sizeof(name), "messages[%d]", i);
    if (!cJSON_IsObject(m)) {
      fm_rd_bad(rd, name, "must be an object with \"role\" and \"content\"");
      return false;
    }
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    snprintf(name, sizeof(name), "messages[%d].role", i);
    bool known = false;
    for (size_t k = 0; cJSON_IsString(role) && k < sizeof(roles) / sizeof(roles[0]); k++)
      known = known || strcmp(role->valuestring, roles[k]) == 0;
    if (!known) {
      fm_rd_bad(rd, name,
                "must be one of \"system\", \"user\", \"assistant\", \"tool\", \"developer\"");
      return false;
    }
    /* The cache sees each message as "role\n" + content + "\n". */
    fm_prefix_add(&p->prefix, role->valuestring, strlen(role->valuestring));
    fm_prefix_add(&p->prefix, "\n", 1);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    long bytes = 0;
    snprintf(name, sizeof(name), "messages[%d].content", i);
    if (!content || cJSON_IsNull(content)) {
      if (strcmp(role->valuestring, "assistant") != 0) {
        fm_rd_bad(rd, name, "is required for role \"%s\"", role->valuestring);
        return false;
      }
    } else if ((bytes = fm_rd_text_content(rd, content, name, &p->prefix)) < 0) {
      return false;
    }
    fm_prefix_add(&p->prefix, "\n", 1);
    tokens += fm_tokens_for_bytes((size_t)bytes) + FM_TOKENS_PER_MESSAGE;
  }
  return fm_rd_prompt_fits(rd, p, tokens, "messages");
}

static bool read_prompt(fm_reader *rd, fm_infer_params *p) {
  const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(rd->obj, "prompt");
  size_t bytes = 0;
  fm_prefix_init(&p->prefix);
  if (cJSON_IsString(prompt)) {
    bytes = strlen(prompt->valuestring);
    fm_prefix_add(&p->prefix, prompt->valuestring, bytes);
  } else if (cJSON_IsArray(prompt) && prompt->child) {
    int i = 0;
    for (const cJSON *it = prompt->child; it; it = it->next, i++) {
      if (!cJSON_IsString(it)) {
        char name[32];
        snprintf(name, sizeof(name), "prompt[%d]", i);
        fm_rd_bad(rd, name, "must be a string");
        return false;
      }
      size_t n = strlen(it->valuestring);
      fm_prefix_add(&p->prefix, it->valuestring, n);
      bytes += n;
    }
  } else {
    fm_rd_bad(rd, "prompt",
              prompt && !cJSON_IsNull(prompt) ? "must be a string or a non-empty array of strings"
                                              : "is required: the text to complete");
    return false;
  }
  return fm_rd_prompt_fits(rd, p, fm_tokens_for_bytes(bytes), "prompt");
}

/* ---- the readers ------------------------------------------------------------ */

static bool read_request(const fm_read_in *in, fm_infer_params *p, fm_api_err *e, bool chat) {
  memset(p, 0, sizeof(*p));
  cJSON *root = fm_rd_parse(in, false, e);
  if (!root) return false;
  fm_reader rd = {.in = in, .obj = root, .err = e};
  bool ok = read_common(&rd, p) && (chat ? read_messages(&rd, p) : read_prompt(&rd, p));
  cJSON_Delete(root);
  if (!ok) {
    fm_infer_params_free(p);
    return false;
  }
  fm_rd_fault_header(&rd, p);
  p->route = chat ? "chat/completions" : "completions";
  return true;
}

bool fm_read_chat(const fm_read_in *in, fm_infer_params *p, fm_api_err *e) {
  return read_request(in, p, e, true);
}

bool fm_read_completions(const fm_read_in *in, fm_infer_params *p, fm_api_err *e) {
  return read_request(in, p, e, false);
}

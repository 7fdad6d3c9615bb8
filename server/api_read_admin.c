/* api_read_admin.c — reading the control plane's request bodies from bytes
 * (api_read.h): a pool patch, a fault, a scenario. Each is checked exactly
 * as a config or scenario file would be (config.c, faults.c, scenario.c),
 * and every problem is listed in one message, joined by "; ", so a client
 * fixes a body in one go. */
#include "api_read.h"

#include "buf.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* The 400 listing every problem, or saying memory ran out when there is none. */
static void bad_list(fm_api_err *e, fm_config_errors *errs, const char *oom) {
  fm_buf msg;
  fm_buf_init(&msg);
  for (size_t i = 0; i < errs->n; i++)
    fm_buf_printf(&msg, "%s%s", i ? "; " : "", errs->items[i]);
  fm_api_err_set(e, 400, "INVALID_ARGUMENT", NULL, "%s", errs->n && msg.data ? msg.data : oom);
  fm_buf_free(&msg);
  fm_config_errors_free(errs);
}

bool fm_read_pool_patch(const fm_read_in *in, const char *name, fm_pool_cfg *pools, size_t n,
                        int *only, fm_api_err *e) {
  *only = -1;
  if (strcmp(name, "*") != 0 && (*only = fm_config_find_pool(in->cfg, name)) < 0) {
    fm_api_err_set(e, 404, "NOT_FOUND", "pool",
                   "no pool named \"%.100s\"; GET /admin/state lists the pools, or use * for all",
                   name);
    return false;
  }
  cJSON *body = fm_rd_parse(in, true, e);
  if (!body) return false;
  fm_config_errors errs = {0};
  for (size_t i = 0; pools && i < n; i++) {
    if (*only < 0 || (size_t)*only == i) fm_pool_cfg_patch(&pools[i], body, &errs);
    if (errs.n) break; /* the same body fails the same way on every pool */
  }
  cJSON_Delete(body);
  if (!pools || errs.n) {
    bad_list(e, &errs, "out of memory");
    return false;
  }
  return true;
}

fm_fault *fm_read_fault(const fm_read_in *in, fm_api_err *e) {
  cJSON *body = fm_rd_parse(in, true, e);
  if (!body) return NULL;
  fm_config_errors errs = {0};
  fm_fault *f = fm_fault_parse(body, in->cfg, "", &errs);
  cJSON_Delete(body);
  if (!f) bad_list(e, &errs, "out of memory; retry");
  return f;
}

fm_reply_rule *fm_read_reply_rule(const fm_read_in *in, fm_api_err *e) {
  cJSON *body = fm_rd_parse(in, true, e);
  if (!body) return NULL;
  fm_config_errors errs = {0};
  fm_reply_rule *x = fm_reply_rule_parse(body, in->cfg, "", &errs);
  cJSON_Delete(body);
  if (!x) bad_list(e, &errs, "out of memory; retry");
  return x;
}

fm_scenario *fm_read_scenario(const fm_read_in *in, fm_api_err *e) {
  cJSON *body = fm_rd_parse(in, true, e);
  if (!body) return NULL;
  fm_config_errors errs = {0};
  fm_scenario *scn = NULL;
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "name");
  if (cJSON_GetArraySize(body) == 1 && cJSON_IsString(name)) {
    const char *text = fm_builtin_scenario(name->valuestring);
    if (!text) {
      fm_api_err_set(e, 404, "NOT_FOUND", "name",
                     "no built-in scenario \"%.100s\"; see "
                     "docs/scenarios.md, or POST a whole scenario body",
                     name->valuestring);
      cJSON_Delete(body);
      return NULL;
    }
    scn = fm_scenario_parse(text, name->valuestring, in->cfg, &errs);
  } else {
    /* The body was checked for NULs before parsing, so printing it back
     * loses nothing the scenario parser would need to see. */
    char *text = cJSON_PrintUnformatted(body);
    if (text) scn = fm_scenario_parse(text, "body", in->cfg, &errs);
    free(text);
  }
  cJSON_Delete(body);
  if (!scn) bad_list(e, &errs, "out of memory");
  return scn;
}

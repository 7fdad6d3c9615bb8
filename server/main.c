/* main.c — fleetmock's entry point: options, config, then the loop. */
#include "config.h"
#include "log.h"
#include "drill.h"
#include "healthcheck.h"
#include "options.h"
#include "record.h"
#include "scenario.h"
#include "schema.h"
#include "server.h"

#include <cjson/cJSON.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Prints every config error; returns the exit status (0 or 2). */
static int report(const char *what, int rc, fm_config_errors *errs) {
  for (size_t i = 0; i < errs->n; i++)
    fprintf(stderr, "%s: %s\n", what, errs->items[i]);
  fm_config_errors_free(errs);
  return rc == 0 ? 0 : 2;
}

/* A scenario file is told from a config by its "steps". It is checked
 * against the config given with --config (or the default). */
static int check_scenario(const char *path, const char *text, const char *config) {
  fm_config cfg;
  fm_config_errors errs = {0};
  if (fm_config_load(&cfg, config, &errs) != 0) return report(config, -1, &errs);
  fm_scenario *s = fm_scenario_parse(text, path, &cfg, &errs);
  if (s)
    printf("%s: ok (scenario %s, %d steps, %d faults, %g s%s)\n", path, s->name, s->n_steps,
           s->n_faults, s->duration_s, s->repeat ? ", repeating" : "");
  fm_scenario_free(s);
  fm_config_free(&cfg);
  return report(path, s ? 0 : -1, &errs);
}

/* The config's reply rules, then those of --replies FILE|DIR; NULL on errors. */
static cJSON *fm_boot_replies(const fm_config *cfg, const char *replies, fm_config_errors *errs) {
  size_t before = errs->n;
  cJSON *all = cfg->replies ? cJSON_Duplicate(cfg->replies, true) : cJSON_CreateArray();
  if (replies) {
    cJSON *more = fm_replies_read_path(replies, errs);
    cJSON *it;
    while (all && more && (it = cJSON_DetachItemFromArray(more, 0)))
      cJSON_AddItemToArray(all, it);
    cJSON_Delete(more);
  }
  if (errs->n > before || !all) {
    cJSON_Delete(all);
    return NULL;
  }
  return all;
}

static int check_config(const char *path, const char *config, const char *replies) {
  char *text = fm_read_file(path, NULL);
  if (text && strstr(text, "\"steps\"")) {
    int rc = check_scenario(path, text, config);
    free(text);
    return rc;
  }
  free(text);
  fm_config cfg;
  fm_config_errors errs = {0};
  int rc = fm_config_load(&cfg, path, &errs);
  if (rc == 0) {
    /* the config's reply rules were checked with it; --replies ones are checked here */
    cJSON *rules = fm_boot_replies(&cfg, replies, &errs);
    fm_replies store;
    fm_replies_init(&store);
    rc = rules && fm_replies_add_all(&store, &cfg, rules, &errs) == 0 ? 0 : -1;
    if (rc == 0)
      printf("%s: ok (%zu pools, %zu models, %d reply rules)\n", path, cfg.n_pools, cfg.n_models,
             store.n);
    fm_replies_free(&store);
    cJSON_Delete(rules);
    fm_config_free(&cfg);
  }
  return report(replies && rc != 0 ? replies : path, rc, &errs);
}

int main(int argc, char **argv) {
  static fm_server srv; /* static: large, lives as long as the process */
  switch (fm_options_parse(&srv.opt, argc, argv)) {
  case FM_OPT_EXIT_OK:
    return 0;
  case FM_OPT_EXIT_USAGE:
    return 2;
  case FM_OPT_RUN:
    break;
  }
  fm_log_set_level(srv.opt.log_level);
  fm_log_set_format(srv.opt.log_format);
  signal(SIGPIPE, SIG_IGN);

  if (srv.opt.healthcheck) return fm_healthcheck(srv.opt.healthcheck);
  if (srv.opt.check_config)
    return check_config(srv.opt.check_config, srv.opt.config, srv.opt.replies);

  fm_config_errors errs = {0};
  int rc = fm_config_load(&srv.cfg, srv.opt.config, &errs);
  if (rc != 0) return report(srv.opt.config ? srv.opt.config : "default config", rc, &errs);

  if (srv.opt.record) fm_record_init();
  /* Reply rules, the config's then --replies', checked before listening too. */
  srv.boot_replies = fm_boot_replies(&srv.cfg, srv.opt.replies, &errs);
  fm_replies_init(&srv.replies);
  if (!srv.boot_replies || fm_replies_add_all(&srv.replies, &srv.cfg, srv.boot_replies, &errs)) {
    fm_replies_free(&srv.replies);
    cJSON_Delete(srv.boot_replies);
    fm_config_free(&srv.cfg);
    return report(srv.opt.replies ? srv.opt.replies : "reply rules", -1, &errs);
  }

  fm_scenario *scn = NULL; /* checked before listening: never run half-configured */
  if (srv.opt.scenario && !(scn = fm_drill_load(&srv, srv.opt.scenario, &errs))) {
    fm_replies_free(&srv.replies);
    cJSON_Delete(srv.boot_replies);
    fm_config_free(&srv.cfg);
    return report(srv.opt.scenario, -1, &errs);
  }
  uv_loop_t *loop = uv_default_loop();
  if (fm_server_start(&srv, loop) != 0) {
    fm_scenario_free(scn);
    fm_server_free(&srv);
    return 1;
  }
  uv_mutex_lock(&srv.core); /* worker threads may be serving already */
  if (scn && fm_drill_start(&srv, scn) != 0)
    fm_log(FM_LOG_ERROR, "out of memory starting the scenario", NULL);
  uv_mutex_unlock(&srv.core);
  uv_run(loop, UV_RUN_DEFAULT);
  fm_server_free(&srv);
  fm_schema_cache_clear();
  uv_loop_close(loop);
  return 0;
}

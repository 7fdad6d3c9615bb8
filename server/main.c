/* main.c — fleetmock's entry point: options, config, then the loop. */
#include "config.h"
#include "log.h"
#include "options.h"
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Prints every config error; returns the exit status (0 or 2). */
static int report(const char *what, int rc, fm_config_errors *errs) {
  for (size_t i = 0; i < errs->n; i++) fprintf(stderr, "%s: %s\n", what, errs->items[i]);
  fm_config_errors_free(errs);
  return rc == 0 ? 0 : 2;
}

static int check_config(const char *path) {
  fm_config cfg;
  fm_config_errors errs = {0};
  int rc = fm_config_load(&cfg, path, &errs);
  if (rc == 0) {
    printf("%s: ok (%zu pools, %zu models)\n", path, cfg.n_pools, cfg.n_models);
    fm_config_free(&cfg);
  }
  return report(path, rc, &errs);
}

int main(int argc, char **argv) {
  static fm_server srv; /* static: large, lives as long as the process */
  switch (fm_options_parse(&srv.opt, argc, argv)) {
  case FM_OPT_EXIT_OK: return 0;
  case FM_OPT_EXIT_USAGE: return 2;
  case FM_OPT_RUN: break;
  }
  fm_log_set_level(srv.opt.log_level);
  fm_log_set_format(srv.opt.log_format);
  signal(SIGPIPE, SIG_IGN);

  if (srv.opt.check_config) return check_config(srv.opt.check_config);
  if (srv.opt.scenario) {
    fprintf(stderr, "fleetmock: --scenario '%s': the scenario player is not part of this build "
                    "yet; start without --scenario and drive pools through PATCH /admin/pools\n",
            srv.opt.scenario);
    return 2;
  }

  fm_config_errors errs = {0};
  int rc = fm_config_load(&srv.cfg, srv.opt.config, &errs);
  if (rc != 0) return report(srv.opt.config ? srv.opt.config : "default config", rc, &errs);

  uv_loop_t *loop = uv_default_loop();
  if (fm_server_start(&srv, loop) != 0) {
    fm_server_free(&srv);
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  fm_server_free(&srv);
  uv_loop_close(loop);
  return 0;
}

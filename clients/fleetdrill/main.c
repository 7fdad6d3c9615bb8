/* main.c — fleetdrill: drive a fleetmock (or any Fireworks-compatible base
 * URL) with virtual users under one retry strategy, or all of them side by
 * side (--compare), and report what each one got and paid.
 *
 * The option table below is the one place defaults live: they are applied
 * through the same parser as the command line, and --help prints them. */
#define _POSIX_C_SOURCE 200809L
#include "admin.h"
#include "drill.h"
#include "report.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FD_STR_(x) #x
#define FD_STR(x) FD_STR_(x)

typedef struct fd_opt {
  const char *name, *arg, *def, *help;
} fd_opt;

static const fd_opt fd_opts[] = {
    {"url", "URL", "http://127.0.0.1:8080",
     "the server; admin calls go to URL/admin, inference to URL/v1 (a URL ending in /v1 is the "
     "inference base itself)"},
    {"key", "KEY", "fleetdrill", "API key sent as a bearer token"},
    {"admin-token", "T", NULL,
     "bearer token for /admin calls, for a server run with --admin-token (default: the "
     "FLEETMOCK_ADMIN_TOKEN environment variable)"},
    {"key-per-user", NULL, NULL,
     "user N sends KEY-uN, so each user is an account with its own limits"},
    {"model", "ID", "accounts/fireworks/models/kimi-k2p6", "model id for every request"},
    {"api", "NAME", "chat",
     "chat (POST /v1/chat/completions) | responses (POST /v1/responses, store: false, the "
     "conversation sent whole as input items): the wire every request uses"},
    {"users", "N", "16", "virtual users (1.." FD_STR(FD_MAX_USERS) ")"},
    {"duration", "S", NULL,
     "simulated seconds during which users start tasks (default: the scenario's duration_s, "
     "else 60); the run takes S / time-scale real seconds, plus the tasks still running"},
    {"mix", "SPEC", "interactive=70,agent=20,batch=10", "workload weights"},
    {"strategy", "NAME", "escalate", "naive | backoff | escalate | always-priority"},
    {"compare", NULL, NULL,
     "run every strategy on the same scenario and seed (POST /admin/reset and /admin/scenario "
     "before each) and print them side by side"},
    {"scenario", "NAME|FILE", NULL, "reset the server and start this scenario before each run"},
    {"seed", "N", "1", "seed of the users' choices and of the jitter"},
    {"think", "S", "1",
     "mean simulated pause between a user's tasks (a quarter of it between chain steps)"},
    {"window", "S", FD_STR(FM_POLICY_DEFAULT_WINDOW_S),
     "Priority window after a 503, simulated seconds"},
    {"alert-windows", "N", FD_STR(FM_POLICY_DEFAULT_ALERT_WINDOWS),
     "alert when Priority stays on this many windows in a row (0: never)"},
    {"max-attempts", "N", FD_STR(FM_POLICY_DEFAULT_MAX_ATTEMPTS),
     "attempts per request, the first included"},
    {"backoff-base", "MS", FD_STR(FM_POLICY_DEFAULT_BACKOFF_BASE_MS),
     "first backoff, simulated ms"},
    {"backoff-cap", "MS", FD_STR(FM_POLICY_DEFAULT_BACKOFF_CAP_MS),
     "largest backoff, simulated ms"},
    {"time-scale", "X", NULL, "the server's time scale (default: read from GET /admin/state)"},
    {"csv", NULL, NULL, "print CSV on stdout instead of the table"},
    {"html", "FILE", NULL, "also write a self-contained HTML report with charts over time"},
    {"no-progress", NULL, NULL,
     "no live progress line (it is shown only when stderr is a terminal)"},
    {"help", NULL, NULL, "print this and exit"},
};
#define FD_NOPTS (sizeof fd_opts / sizeof fd_opts[0])

typedef struct fd_args {
  fd_config cfg;
  char *url;
  const char *scenario, *html;
  bool compare, csv, no_progress, help, duration_set;
  double time_scale; /* 0: ask the server */
} fd_args;

static void fd_usage(FILE *f) {
  fprintf(f, "usage: fleetdrill [options]\n\n"
             "Drives N virtual users against a fleetmock server under a retry strategy, over chat\n"
             "completions or the Responses API (--api), and reports success, 503s, 429s, latency,\n"
             "Priority share and cost. Times are simulated seconds.\n\n");
  for (size_t i = 0; i < FD_NOPTS; i++) {
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", fd_opts[i].name, fd_opts[i].arg ? " " : "",
             fd_opts[i].arg ? fd_opts[i].arg : "");
    fprintf(f, "  %-28s %s", left, fd_opts[i].help);
    if (fd_opts[i].def) fprintf(f, " [%s]", fd_opts[i].def);
    fputc('\n', f);
  }
  fprintf(f, "\nExamples:\n  fleetmock --port 8080 --time-scale 5 &\n"
             "  fleetdrill --url http://127.0.0.1:8080 --scenario launch-spike --compare --html "
             "report.html\n"
             "  fleetdrill --url http://127.0.0.1:8080 --scenario launch-spike --api responses\n");
}

static int fd_parse_num(const char *name, const char *v, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || x < lo || x > hi) {
    fprintf(stderr, "fleetdrill: --%s: expected a number between %g and %g, got \"%s\"\n", name, lo,
            hi, v);
    return -1;
  }
  *out = x;
  return 0;
}

static int fd_parse_mix(const char *v, int mix[3]) {
  int m[3] = {0, 0, 0};
  char buf[256];
  snprintf(buf, sizeof buf, "%s", v);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    fm_route_class r;
    if (!eq) goto bad;
    *eq = '\0';
    if (fm_route_parse(tok, &r) != 0) goto bad;
    char *end;
    long w = strtol(eq + 1, &end, 10);
    if (*end || w < 0 || w > 1000000) goto bad;
    m[r] = (int)w;
  }
  if (m[0] + m[1] + m[2] <= 0) goto bad;
  memcpy(mix, m, sizeof m);
  return 0;
bad:
  fprintf(stderr,
          "fleetdrill: --mix: expected interactive=N,agent=N,batch=N with a positive total, got "
          "\"%s\"\n",
          v);
  return -1;
}

/* Applies one option (from the defaults or the command line). */
static int fd_apply(fd_args *a, const char *name, const char *v) {
  fd_config *c = &a->cfg;
  double x;
  if (!strcmp(name, "url")) {
    free(a->url);
    a->url = strdup(v);
    return a->url ? 0 : -1;
  }
  if (!strcmp(name, "key")) return c->key = v, 0;
  if (!strcmp(name, "key-per-user")) return c->key_per_user = true, 0;
  if (!strcmp(name, "model")) return c->model = v, 0;
  if (!strcmp(name, "api")) {
    if (fm_api_parse(v, &c->api) == 0) return 0;
    fprintf(stderr, "fleetdrill: --api: expected chat or responses, got \"%s\"\n", v);
    return -1;
  }
  if (!strcmp(name, "users")) {
    if (fd_parse_num(name, v, 1, FD_MAX_USERS, &x)) return -1;
    return c->users = (int)x, 0;
  }
  if (!strcmp(name, "duration")) {
    if (fd_parse_num(name, v, 0.001, 1e7, &x)) return -1;
    a->duration_set = true;
    return c->duration_s = x, 0;
  }
  if (!strcmp(name, "mix")) return fd_parse_mix(v, c->mix);
  if (!strcmp(name, "strategy")) {
    if (fm_strategy_parse(v, &c->policy.strategy) == 0) return 0;
    fprintf(stderr,
            "fleetdrill: --strategy: expected naive, backoff, escalate or always-priority, got "
            "\"%s\"\n",
            v);
    return -1;
  }
  if (!strcmp(name, "compare")) return a->compare = true, 0;
  if (!strcmp(name, "scenario")) return a->scenario = v, 0;
  if (!strcmp(name, "seed")) {
    if (fd_parse_num(name, v, 0, 1e15, &x)) return -1;
    return c->seed = (uint64_t)x, 0;
  }
  if (!strcmp(name, "think")) {
    if (fd_parse_num(name, v, 0, 3600, &x)) return -1;
    return c->think_s = x, 0;
  }
  if (!strcmp(name, "window")) {
    if (fd_parse_num(name, v, 0.001, 1e7, &x)) return -1;
    return c->policy.window_s = x, 0;
  }
  if (!strcmp(name, "alert-windows")) {
    if (fd_parse_num(name, v, 0, 1e6, &x)) return -1;
    return c->policy.alert_windows = (int)x, 0;
  }
  if (!strcmp(name, "max-attempts")) {
    if (fd_parse_num(name, v, 1, 100, &x)) return -1;
    return c->policy.max_attempts = (int)x, 0;
  }
  if (!strcmp(name, "backoff-base")) {
    if (fd_parse_num(name, v, 1, 1e9, &x)) return -1;
    return c->policy.backoff_base_ms = (int64_t)x, 0;
  }
  if (!strcmp(name, "backoff-cap")) {
    if (fd_parse_num(name, v, 1, 1e9, &x)) return -1;
    return c->policy.backoff_cap_ms = (int64_t)x, 0;
  }
  if (!strcmp(name, "time-scale")) return fd_parse_num(name, v, 1e-6, 1e9, &a->time_scale);
  if (!strcmp(name, "csv")) return a->csv = true, 0;
  if (!strcmp(name, "html")) return a->html = v, 0;
  if (!strcmp(name, "admin-token")) return fd_admin_set_token(v), 0;
  if (!strcmp(name, "no-progress")) return a->no_progress = true, 0;
  if (!strcmp(name, "help")) return a->help = true, 0;
  return -1;
}

static int fd_parse(fd_args *a, int argc, char **argv) {
  fm_policy_default(&a->cfg.policy);
  const char *token = getenv("FLEETMOCK_ADMIN_TOKEN");
  if (token && *token) fd_admin_set_token(token);
  for (size_t i = 0; i < FD_NOPTS; i++)
    if (fd_opts[i].def && fd_apply(a, fd_opts[i].name, fd_opts[i].def) != 0) return -1;
  a->duration_set = false;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (strncmp(s, "--", 2) != 0) {
      fprintf(stderr, "fleetdrill: unexpected argument \"%s\" (see --help)\n", s);
      return -1;
    }
    char name[64];
    const char *eq = strchr(s + 2, '=');
    size_t nlen = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
    snprintf(name, sizeof name, "%.*s", (int)nlen, s + 2);
    const fd_opt *o = NULL;
    for (size_t k = 0; k < FD_NOPTS; k++)
      if (!strcmp(fd_opts[k].name, name)) o = &fd_opts[k];
    if (!o) {
      fprintf(stderr, "fleetdrill: unknown option --%s (see --help)\n", name);
      return -1;
    }
    const char *v = NULL;
    if (o->arg) {
      v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v) {
        fprintf(stderr, "fleetdrill: --%s needs a value (%s)\n", name, o->arg);
        return -1;
      }
    } else if (eq) {
      fprintf(stderr, "fleetdrill: --%s takes no value\n", name);
      return -1;
    }
    if (fd_apply(a, name, v) != 0) return -1;
  }
  return 0;
}

/* root: the server (no path); api: the inference base. */
static int fd_split_url(const char *url, char **root, char **api) {
  size_t n = strlen(url);
  while (n > 0 && url[n - 1] == '/')
    n--;
  const char *suffixes[] = {"/inference/v1", "/v1"};
  size_t rootlen = n;
  bool has_api = false;
  for (int i = 0; i < 2; i++) {
    size_t k = strlen(suffixes[i]);
    if (n >= k && strncmp(url + n - k, suffixes[i], k) == 0) {
      rootlen = n - k;
      has_api = true;
      break;
    }
  }
  *root = strndup(url, rootlen);
  *api = malloc(n + 4);
  if (!*root || !*api) return -1;
  snprintf(*api, n + 4, "%.*s%s", (int)n, url, has_api ? "" : "/v1");
  return 0;
}

int main(int argc, char **argv) {
  fd_args a = {0};
  if (fd_parse(&a, argc, argv) != 0) {
    free(a.url);
    return 2;
  }
  if (a.help) {
    fd_usage(stdout);
    free(a.url);
    return 0;
  }
  int status = 1;
  char *root = NULL, *api = NULL, err[512];
  fd_run *runs = NULL;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (fd_split_url(a.url, &root, &api) != 0) goto done;
  fd_config *cfg = &a.cfg;
  cfg->root = root;
  cfg->api_url = api;
  cfg->progress = !a.no_progress && isatty(STDERR_FILENO);
  cfg->time_scale = a.time_scale;
  if (cfg->time_scale <= 0) {
    cfg->time_scale = fd_admin_time_scale(root, err, sizeof err);
    if (cfg->time_scale <= 0) {
      fprintf(stderr,
              "fleetdrill: cannot read the server's time scale: %s\n"
              "  (is fleetmock running there? pass --time-scale X for a server without /admin)\n",
              err);
      goto done;
    }
  }
  fm_strategy all[] = {FM_STRATEGY_NAIVE, FM_STRATEGY_BACKOFF, FM_STRATEGY_ESCALATE,
                       FM_STRATEGY_ALWAYS_PRIORITY};
  int n = a.compare ? 4 : 1;
  if (!a.compare) all[0] = cfg->policy.strategy;
  if (!(runs = calloc((size_t)n, sizeof *runs))) goto done;
  bool reset = a.compare || a.scenario;
  for (int i = 0; i < n; i++) {
    if (reset && fd_admin_reset(root, err, sizeof err) != 0) {
      fprintf(stderr, "fleetdrill: reset failed: %s\n", err);
      goto done;
    }
    if (a.scenario) {
      double d;
      if (fd_admin_scenario(root, a.scenario, &d, err, sizeof err) != 0) {
        fprintf(stderr, "fleetdrill: cannot start scenario %s: %s\n", a.scenario, err);
        goto done;
      }
      if (!a.duration_set && d > 0) cfg->duration_s = d;
    }
    if (!a.duration_set && !a.scenario) cfg->duration_s = 60;
    cfg->policy.strategy = all[i];
    if (fd_drill_run(cfg, &runs[i]) != 0) goto done;
    if (reset) runs[i].server_cost_usd = fd_admin_cost(root, err, sizeof err);
  }
  fd_report_meta m = {.scenario = a.scenario,
                      .model = cfg->model,
                      .api = fm_api_name(cfg->api),
                      .seed = cfg->seed,
                      .users = cfg->users,
                      .duration_s = cfg->duration_s,
                      .time_scale = cfg->time_scale,
                      .window_s = cfg->policy.window_s};
  memcpy(m.mix, cfg->mix, sizeof m.mix);
  if (a.csv)
    fd_report_csv(stdout, &m, runs, n);
  else
    fd_report_table(stdout, &m, runs, n);
  if (a.html && fd_report_html(a.html, &m, runs, n) != 0) {
    fprintf(stderr, "fleetdrill: cannot write %s: %s\n", a.html, strerror(errno));
    goto done;
  }
  status = 0;
done:
  free(runs);
  free(root);
  free(api);
  free(a.url);
  curl_global_cleanup();
  return status;
}

/* options.c — the option table, parsing, environment and --help. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FLEETMOCK_VERSION
#define FLEETMOCK_VERSION "0.0.0"
#endif

typedef enum {
  O_HOST,
  O_PORT,
  O_PORT_FILE,
  O_CONFIG,
  O_SCENARIO,
  O_REPLIES,
  O_RECORD,
  O_UPSTREAM,
  O_SEED,
  O_TIME_SCALE,
  O_TIMING,
  O_ADMIN_TOKEN,
  O_ADMIN_TOKEN_FILE,
  O_LOG_FORMAT,
  O_LOG_LEVEL,
  O_CHECK_CONFIG,
  O_HEALTHCHECK,
  O_GRACE,
  O_MAX_BODY,
  O_IDLE_TIMEOUT,
  O_WORKERS,
  O_HELP,
  O_VERSION,
  O_COUNT
} opt_id;

typedef struct opt_def {
  const char *name;
  const char *arg; /* NULL: a flag */
  const char *def; /* default, as text; NULL: none */
  const char *help;
} opt_def;

static const opt_def defs[O_COUNT] = {
    [O_HOST] = {"host", "ADDR", "127.0.0.1", "listen address (IPv4 or IPv6)"},
    [O_PORT] = {"port", "N", "8080", "port to listen on; 0 picks a free one"},
    [O_PORT_FILE] = {"port-file", "PATH", NULL, "write the bound port there once listening"},
    [O_CONFIG] = {"config", "FILE", NULL, "JSON merge patch over the embedded default fleet"},
    [O_SCENARIO] = {"scenario", "NAME|FILE", NULL, "start a scenario at boot"},
    [O_RECORD] = {"record", "FILE", NULL,
                  "record mode: proxy every inference request to --upstream and append each "
                  "exchange to FILE as a reply rule (JSON Lines; replay with --replies FILE)"},
    [O_UPSTREAM] = {"upstream", "URL", NULL,
                    "the API --record sends requests to, e.g. https://api.fireworks.ai or "
                    "http://127.0.0.1:8080 (paths are kept)"},
    [O_REPLIES] = {"replies", "FILE|DIR", NULL,
                   "reply rules to add at boot: JSON, JSON Lines, or a directory of them "
                   "(docs/replies.md)"},
    [O_SEED] = {"seed", "N", "42", "seed of every random choice"},
    [O_TIME_SCALE] = {"time-scale", "X", "1", "simulated time runs X times faster"},
    [O_TIMING] = {"timing", "realistic|instant", "realistic",
                  "instant skips every simulated delay"},
    [O_ADMIN_TOKEN] = {"admin-token", "T", NULL,
                       "bearer token required on /admin/*; without it only loopback peers "
                       "(shows in ps: prefer --admin-token-file or FLEETMOCK_ADMIN_TOKEN)"},
    [O_ADMIN_TOKEN_FILE] = {"admin-token-file", "PATH", NULL,
                            "read the admin token from this file (first line; for secrets "
                            "mounted as files)"},
    [O_LOG_FORMAT] = {"log-format", "text|json", "text", "log line format on stderr"},
    [O_LOG_LEVEL] = {"log-level", "debug|info|warn|error", "info",
                     "least severe level logged (debug logs every request)"},
    [O_CHECK_CONFIG] = {"check-config", "FILE", NULL,
                        "validate a config or scenario file, print every error, exit"},
    [O_HEALTHCHECK] = {"healthcheck", "URL", NULL,
                       "GET URL (e.g. http://127.0.0.1:8080/healthz); exit 0 on 200, else 1 "
                       "(for container health checks; needs no curl)"},
    [O_GRACE] = {"grace-period", "SECONDS", "10",
                 "on SIGTERM/SIGINT, how long running streams may finish"},
    [O_MAX_BODY] = {"max-body-bytes", "N", NULL,
                    "largest request body (default: the config's server.max_body_bytes, 4 MiB)"},
    [O_IDLE_TIMEOUT] = {"idle-timeout", "SECONDS", "30",
                        "close a connection that sends nothing for this long while no request "
                        "is waiting or streaming on it (slow or stuck clients)"},
    [O_WORKERS] = {"workers", "N", "1",
                   "event loops (threads) serving connections; more than 1 spreads streams "
                   "over CPUs (docs/performance.md)"},
    [O_HELP] = {"help", NULL, NULL, "print this help and exit"},
    [O_VERSION] = {"version", NULL, NULL, "print the version and exit"},
};

void fm_options_help(void) {
  printf("fleetmock %s — a mock of the Fireworks Serverless inference API\n\n"
         "usage: fleetmock [options]\n\noptions (each also read from FLEETMOCK_<NAME>, "
         "e.g. FLEETMOCK_TIME_SCALE):\n",
         FLEETMOCK_VERSION);
  for (int i = 0; i < O_COUNT; i++) {
    char left[64];
    snprintf(left, sizeof(left), "--%s%s%s", defs[i].name, defs[i].arg ? " " : "",
             defs[i].arg ? defs[i].arg : "");
    printf("  %-34s %s", left, defs[i].help);
    if (defs[i].def) printf(" (default %s)", defs[i].def);
    printf("\n");
  }
  printf("\nDocs: docs/cli.md, docs/api.md, docs/config.md in the source tree.\n");
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (!*s || *s == '-') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static bool parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v)) return false;
  *out = v;
  return true;
}

/* Applies one option value; returns false after printing what is wrong. */
static bool apply(fm_options *o, opt_id id, const char *v, const char *from) {
  uint64_t u;
  double d;
  switch (id) {
  case O_HOST:
    o->host = v;
    return true;
  case O_PORT:
    if (!parse_u64(v, &u) || u > 65535) break;
    o->port = (int)u;
    return true;
  case O_PORT_FILE:
    o->port_file = v;
    return true;
  case O_CONFIG:
    o->config = v;
    return true;
  case O_SCENARIO:
    o->scenario = v;
    return true;
  case O_REPLIES:
    o->replies = v;
    return true;
  case O_RECORD:
    o->record = v;
    return true;
  case O_UPSTREAM:
    if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) break;
    o->upstream = v;
    return true;
  case O_SEED:
    if (!parse_u64(v, &u)) break;
    o->seed = u;
    return true;
  case O_TIME_SCALE:
    if (!parse_double(v, &d) || !(d > 0) || d > 1e6) break;
    o->time_scale = d;
    return true;
  case O_TIMING:
    if (strcmp(v, "realistic") && strcmp(v, "instant")) break;
    o->instant = strcmp(v, "instant") == 0;
    return true;
  case O_ADMIN_TOKEN:
    o->admin_token = v;
    return true;
  case O_LOG_FORMAT:
    if (strcmp(v, "text") && strcmp(v, "json")) break;
    o->log_format = v;
    return true;
  case O_LOG_LEVEL:
    if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error")) break;
    o->log_level = v;
    return true;
  case O_CHECK_CONFIG:
    o->check_config = v;
    return true;
  case O_HEALTHCHECK:
    o->healthcheck = v;
    return true;
  case O_GRACE:
    if (!parse_double(v, &d) || d < 0 || d > 86400) break;
    o->grace_period_s = d;
    return true;
  case O_MAX_BODY:
    if (!parse_u64(v, &u) || u < 64 || u > (1u << 30)) break;
    o->max_body_bytes = (long long)u;
    return true;
  case O_ADMIN_TOKEN_FILE:
    o->admin_token_file = v;
    return true;
  case O_IDLE_TIMEOUT:
    if (!parse_u64(v, &u) || u < 1 || u > 3600) break;
    o->idle_timeout_s = (unsigned)u;
    return true;
  case O_WORKERS:
    if (!parse_u64(v, &u) || u < 1 || u > 64) break;
    o->workers = (int)u;
    return true;
  default:
    return true;
  }
  const char *want = id == O_PORT           ? "a port number 0-65535"
                     : id == O_SEED         ? "a non-negative integer"
                     : id == O_TIME_SCALE   ? "a number > 0 (e.g. 10 runs ten times faster)"
                     : id == O_TIMING       ? "realistic or instant"
                     : id == O_LOG_FORMAT   ? "text or json"
                     : id == O_LOG_LEVEL    ? "debug, info, warn or error"
                     : id == O_GRACE        ? "seconds between 0 and 86400"
                     : id == O_MAX_BODY     ? "bytes between 64 and 1073741824"
                     : id == O_IDLE_TIMEOUT ? "seconds between 1 and 3600"
                     : id == O_WORKERS      ? "a number of loops between 1 and 64"
                                            : "a valid value";
  fprintf(stderr, "fleetmock: %s --%s '%s': must be %s\n", from, defs[id].name, v, want);
  return false;
}

static void env_name(const char *opt, char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "FLEETMOCK_");
  for (const char *p = opt; *p && n + 1 < cap; p++)
    out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  out[n] = '\0';
}

/* The admin token from --admin-token-file: its first line, without the line
 * end. Kept for the life of the process (opt.admin_token points at it). */
static char token_from_file[1024];

static bool read_token_file(fm_options *o) {
  if (!o->admin_token_file) return true;
  if (o->admin_token) {
    fprintf(stderr, "fleetmock: --admin-token and --admin-token-file both set; give one\n");
    return false;
  }
  FILE *f = fopen(o->admin_token_file, "r");
  if (!f) {
    fprintf(stderr, "fleetmock: --admin-token-file '%s': %s\n", o->admin_token_file,
            strerror(errno));
    return false;
  }
  bool ok = fgets(token_from_file, sizeof(token_from_file), f) != NULL;
  fclose(f);
  size_t n = ok ? strcspn(token_from_file, "\r\n") : 0;
  token_from_file[n] = '\0';
  if (n == 0) {
    fprintf(stderr,
            "fleetmock: --admin-token-file '%s': the first line is empty; write the token "
            "there (at most %zu bytes)\n",
            o->admin_token_file, sizeof(token_from_file) - 2);
    return false;
  }
  o->admin_token = token_from_file;
  return true;
}

fm_opt_result fm_options_parse(fm_options *o, int argc, char **argv) {
  memset(o, 0, sizeof(*o));
  o->max_body_bytes = -1;
  for (int i = 0; i < O_COUNT; i++)
    if (defs[i].def && !apply(o, (opt_id)i, defs[i].def, "default")) return FM_OPT_EXIT_USAGE;

  for (int i = 0; i < O_COUNT; i++) {
    if (!defs[i].arg) continue;
    char name[64];
    env_name(defs[i].name, name, sizeof(name));
    const char *v = getenv(name);
    if (v && *v && !apply(o, (opt_id)i, v, name)) return FM_OPT_EXIT_USAGE;
  }

  for (int a = 1; a < argc; a++) {
    const char *arg = argv[a];
    if (strncmp(arg, "--", 2) != 0) {
      fprintf(stderr, "fleetmock: unexpected argument '%s' (options start with --; see --help)\n",
              arg);
      return FM_OPT_EXIT_USAGE;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    int id = -1;
    for (int i = 0; i < O_COUNT; i++)
      if (strlen(defs[i].name) == nlen && strncmp(defs[i].name, name, nlen) == 0) id = i;
    if (id < 0) {
      fprintf(stderr, "fleetmock: unknown option '%s' (see --help for the list)\n", arg);
      return FM_OPT_EXIT_USAGE;
    }
    if (id == O_HELP) {
      fm_options_help();
      return FM_OPT_EXIT_OK;
    }
    if (id == O_VERSION) {
      printf("fleetmock %s\n", FLEETMOCK_VERSION);
      return FM_OPT_EXIT_OK;
    }
    const char *v = eq ? eq + 1 : NULL;
    if (!v) {
      if (a + 1 >= argc) {
        fprintf(stderr, "fleetmock: --%s needs a value (%s)\n", defs[id].name, defs[id].arg);
        return FM_OPT_EXIT_USAGE;
      }
      v = argv[++a];
    }
    if (!apply(o, (opt_id)id, v, "option")) return FM_OPT_EXIT_USAGE;
  }
  if (!o->record != !o->upstream) {
    fprintf(stderr, "fleetmock: --record FILE and --upstream URL go together: --record writes "
                    "what --upstream answers\n");
    return FM_OPT_EXIT_USAGE;
  }
  return read_token_file(o) ? FM_OPT_RUN : FM_OPT_EXIT_USAGE;
}

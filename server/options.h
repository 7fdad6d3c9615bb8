/* options.h — command-line options and their FLEETMOCK_* environment twins.
 *
 * The option table in options.c is the one place defaults live: parsing,
 * --help and the docs all read from it. */
#ifndef FM_OPTIONS_H
#define FM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fm_options {
  const char *host;
  int port;
  const char *port_file;
  const char *config;
  const char *scenario;
  const char *replies;  /* --replies FILE|DIR */
  const char *record;   /* --record FILE */
  const char *upstream; /* --upstream URL (with --record) */
  uint64_t seed;
  double time_scale;
  bool instant;
  const char *admin_token;      /* --admin-token, or read from --admin-token-file */
  const char *admin_token_file; /* keeps the token out of ps and /proc/PID/cmdline */
  const char *log_format;
  const char *log_level;
  const char *check_config;
  const char *healthcheck;
  double grace_period_s;
  unsigned idle_timeout_s;  /* a connection with nothing in flight is closed after this */
  long long max_body_bytes; /* -1: take it from the config */
  int workers;              /* event loops serving connections */
} fm_options;

typedef enum { FM_OPT_RUN, FM_OPT_EXIT_OK, FM_OPT_EXIT_USAGE } fm_opt_result;

/* Fills opt from defaults, then the environment, then argv. On a bad value
 * prints why to stderr and returns FM_OPT_EXIT_USAGE; --help and --version
 * print and return FM_OPT_EXIT_OK. */
fm_opt_result fm_options_parse(fm_options *opt, int argc, char **argv);
void fm_options_help(void);

#endif

/* admin.h — the few control-plane calls fleetdrill makes (docs/control-plane.md).
 *
 * Blocking, one easy handle per call: they run between drills (reset,
 * scenario) or once at start (time scale), never on the hot path. The
 * utilisation sampler during a drill is asynchronous and lives in drill.c. */
#ifndef FD_ADMIN_H
#define FD_ADMIN_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* GET or POST root+path; on 2xx stores the parsed JSON body in *out (may be
 * NULL when the body is not JSON) and returns 0. Returns -1 with a message
 * in err on a network error or another status. */
/* Sends "Authorization: Bearer T" on every admin call from now on (copied). */
void fd_admin_set_token(const char *token);
/* The admin token, or NULL when none was given. */
const char *fd_admin_token(void);
int fd_admin_call(const char *root, const char *method, const char *path, const char *body,
                  cJSON **out, char *err, size_t errlen);

/* The server's --time-scale from GET /admin/state, or -1 with err set. */
double fd_admin_time_scale(const char *root, char *err, size_t errlen);

/* POST /admin/reset. Returns 0, or -1 with err set. */
int fd_admin_reset(const char *root, char *err, size_t errlen);

/* Starts a scenario: NAME, or a path to a scenario file (read and posted
 * whole). Stores its duration_s in *duration_s. Returns 0, or -1 with err set. */
int fd_admin_scenario(const char *root, const char *scenario, double *duration_s, char *err,
                      size_t errlen);

/* Total cost_usd over every account (GET /admin/accounts totals), or -1. */
double fd_admin_cost(const char *root, char *err, size_t errlen);

/* The utilisation of `pool` in a /admin/state document; with pool NULL or
 * unknown, the highest over all pools. -1 when the document has none. */
double fd_admin_utilisation(const cJSON *state, const char *pool);

#endif

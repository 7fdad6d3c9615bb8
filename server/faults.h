/* faults.h — scripted faults (SPEC §6).
 *
 * A fault matches requests with the conditions of match.h (model, tier, API
 * key, route, test id, message text, ...), and fires
 * either an exact number of times or with a seeded probability (exact at 0
 * and 1). It answers with an HTTP status in the route's error shape, or
 * breaks a stream after N tokens: an error event, a dropped connection, or a
 * stall. A request can also carry its own fault in the x-fleetmock-fault
 * header: "503" (any status), "error@N", "disconnect@N" or "stall@N". */
#ifndef FM_FAULTS_H
#define FM_FAULTS_H

#include "config.h"
#include "match.h"
#include "rng.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { FM_FAULT_STATUS, FM_FAULT_ERROR, FM_FAULT_DISCONNECT, FM_FAULT_STALL } fm_fault_kind;

extern const char *const fm_fault_kind_names[4];

/* What a fault does to one request. */
typedef struct fm_fault_action {
  fm_fault_kind kind;
  int status;            /* FM_FAULT_STATUS */
  uint32_t after_tokens; /* stream faults */
} fm_fault_action;

typedef struct fm_fault {
  uint32_t id;
  fm_match match; /* the requests it applies to (match.h, shared with reply rules) */
  fm_fault_action action;
  long long count_left; /* -1: probability mode */
  double probability;
  uint64_t fired;
  struct fm_fault *next;
} fm_fault;

typedef struct fm_faults {
  fm_fault *head;
  uint32_t next_id;
  fm_rng rng;
} fm_faults;

void fm_faults_init(fm_faults *f, uint64_t seed);
void fm_faults_free(fm_faults *f);
/* Deletes every fault and reseeds the draws; ids go on from where they were. */
void fm_faults_reset(fm_faults *f, uint64_t seed);
/* Takes over a fault built by fm_fault_parse; returns its id. */
uint32_t fm_faults_add(fm_faults *f, fm_fault *fault);
/* Deletes one fault (false when no such id) or, with id 0, all of them. */
bool fm_faults_delete(fm_faults *f, uint32_t id);
/* The first fault that matches and fires for this request, or NULL. Firing
 * counts down count faults and draws for probability faults. Faults scoped
 * to the request's test id come first, as reply rules do. */
const fm_fault *fm_faults_fire(fm_faults *f, fm_match_facts *facts);

/* Injected statuses are final error answers: a 1xx would leave the client
 * waiting for the real answer, a 2xx or 3xx with an error body makes no sense. */
#define FM_FAULT_STATUS_MIN 400
#define FM_FAULT_STATUS_MAX 599
/* The most tokens a stream fault may wait for (after_tokens, error@N). */
#define FM_FAULT_AFTER_MAX 10000000
/* True for a status a fault may answer with (FM_FAULT_STATUS_MIN..MAX). */
bool fm_fault_status_ok(long status);
/* Reads a fault id from a URL: decimal digits only, 1..UINT32_MAX. Returns
 * false (leaving *id alone) for anything else, so no id ever aliases another. */
bool fm_fault_parse_id(const char *s, uint32_t *id);

/* Parses the x-fleetmock-fault header value; returns false when it is malformed. */
bool fm_fault_parse_header(const char *value, fm_fault_action *out);

struct cJSON;
struct fm_config_errors;
/* Builds a fault from its JSON form ({"match":…,"action":…,"count"|"probability"}),
 * reporting every problem with its path under prefix. Returns NULL on errors. */
fm_fault *fm_fault_parse(const struct cJSON *j, const fm_config *cfg, const char *prefix,
                         struct fm_config_errors *errs);
void fm_fault_free(fm_fault *f);

#endif

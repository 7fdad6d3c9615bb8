/* scenario.h — timed drills: congestion that follows a script (SPEC §6).
 *
 * A scenario is a JSON timeline:
 *   {"name", "description", "duration_s", "repeat",
 *    "steps": [{"at_s", "ramp_s"?, "pools": {"<pool>|*": {settings}}}],
 *    "faults": [{"at_s", "match", "action", "count"|"probability"}]}
 * At `at_s` a step sets pool settings; with `ramp_s`, numeric settings move
 * linearly from their value at that moment to the target over ramp_s, and
 * other settings apply at once. Faults are added at their `at_s`. With
 * `repeat`, the timeline starts over after duration_s. Time is simulated,
 * so --time-scale speeds a drill up. The player is driven by the caller's
 * clock: fm_player_tick(now) applies what is due, fm_player_next_us says
 * when to call it again. Stopping restores the pools as they were at start. */
#ifndef FM_SCENARIO_H
#define FM_SCENARIO_H

#include "config.h"
#include "faults.h"
#include "fleet.h"

#include <stdbool.h>
#include <stdint.h>

struct cJSON;

typedef struct fm_scn_step {
  double at_s, ramp_s;
  struct cJSON *pools; /* {"<pool>|*": {settings}} */
} fm_scn_step;

typedef struct fm_scn_fault {
  double at_s;
  struct cJSON *fault;
} fm_scn_fault;

typedef struct fm_scenario {
  char *name;
  char *description;
  double duration_s;
  bool repeat;
  fm_scn_step *steps;
  int n_steps;
  fm_scn_fault *faults;
  int n_faults;
} fm_scenario;

/* Parses and checks a scenario against the config's pools and models,
 * reporting every problem with its JSON path. Returns NULL on errors. */
fm_scenario *fm_scenario_parse(const char *text, const char *label, const fm_config *cfg,
                               fm_config_errors *errs);
void fm_scenario_free(fm_scenario *s);

/* Scenarios compiled into the binary from the .json files in scenarios/. */
extern const char *const fm_builtin_scenario_names[];
extern const char *const fm_builtin_scenario_texts[];
/* The text of a built-in scenario, or NULL. */
const char *fm_builtin_scenario(const char *name);

typedef struct fm_ramp {
  int pool;
  char field[32];
  double from, to;
  uint64_t t0_us, dur_us;
} fm_ramp;

typedef struct fm_player {
  fm_scenario *s;    /* NULL: no scenario */
  uint64_t start_us; /* start of the current loop */
  uint64_t began_us; /* start of the first loop */
  uint32_t loop;
  int next_step, next_fault;
  int step; /* last step applied, -1 before the first */
  bool finished;
  fm_pool_cfg *saved; /* the pools when the scenario started */
  size_t n_saved;
  fm_ramp *ramps;
  int n_ramps, cap_ramps;
  uint32_t *fault_ids; /* faults this loop added: removed at the next loop and on stop */
  int n_fault_ids;
} fm_player;

/* Starts s (taking it over) at now; saves the pools to restore on stop. */
int fm_player_start(fm_player *p, fm_scenario *s, fm_fleet *fleet, uint64_t now_us);
/* Applies every step, ramp point and fault due at now. */
void fm_player_tick(fm_player *p, fm_fleet *fleet, fm_faults *faults, const fm_config *cfg,
                    uint64_t now_us);
/* When to tick next (simulated µs), UINT64_MAX when nothing more is due. */
uint64_t fm_player_next_us(const fm_player *p, uint64_t now_us);
/* Stops the scenario, removes the faults it added, and puts the pools back
 * as they were at its start. */
void fm_player_stop(fm_player *p, fm_fleet *fleet, fm_faults *faults);

#endif

/* drill.h — running a scenario inside the server: its timer, start and stop. */
#ifndef FM_DRILL_H
#define FM_DRILL_H

#include "scenario.h"
#include "server.h"

void fm_drill_init(fm_server *s);
void fm_drill_close(fm_server *s);
/* Puts the scenario timer on the player's next due time (stops it when none).
 * On the main loop, with the core lock held. */
void fm_drill_arm(fm_server *s);
/* Loads a built-in scenario by name, or a file by path. NULL with errs on failure. */
fm_scenario *fm_drill_load(fm_server *s, const char *name_or_file, fm_config_errors *errs);
/* Starts a scenario (stopping any running one first); takes it over. Returns 0 or -1 (OOM). */
int fm_drill_start(fm_server *s, fm_scenario *scn);
/* Stops the running scenario and restores the pools; false when none ran. */
bool fm_drill_stop(fm_server *s);

#endif

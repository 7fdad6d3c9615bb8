/* drill.c — the scenario player on the server's main loop. One uv timer
 * wakes the player when its next step, fault or ramp point is due. Callers
 * hold the core lock; the timer itself is only touched on the main loop
 * (fm_server_rearm_scenario gets it there from another worker). */
#include "drill.h"

#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Applies whatever is due now. */
static void tick(fm_server *s) {
  fm_player_tick(&s->player, &s->fleet, &s->faults, &s->cfg, fm_server_now(s));
  if (s->player.s && s->player.finished)
    fm_log(FM_LOG_INFO, "scenario finished", "scenario", s->player.s->name, NULL);
}

static void on_tick(uv_timer_t *t) {
  fm_server *s = t->data;
  uv_mutex_lock(&s->core);
  tick(s);
  fm_drill_arm(s);
  uv_mutex_unlock(&s->core);
}

void fm_drill_arm(fm_server *s) {
  uint64_t now = fm_server_now(s);
  uint64_t next = fm_player_next_us(&s->player, now);
  if (next == UINT64_MAX) {
    uv_timer_stop(&s->scenario_timer);
    return;
  }
  double real_ms = next > now ? (double)(next - now) / 1000.0 / s->opt.time_scale : 0;
  uv_timer_start(&s->scenario_timer, on_tick, (uint64_t)ceil(real_ms), 0);
}

void fm_drill_init(fm_server *s) {
  uv_timer_init(s->loop, &s->scenario_timer);
  s->scenario_timer.data = s;
}

void fm_drill_close(fm_server *s) {
  fm_player_stop(&s->player, &s->fleet, &s->faults);
  if (!uv_is_closing((uv_handle_t *)&s->scenario_timer))
    uv_close((uv_handle_t *)&s->scenario_timer, NULL);
}

fm_scenario *fm_drill_load(fm_server *s, const char *what, fm_config_errors *errs) {
  const char *text = fm_builtin_scenario(what);
  if (text) return fm_scenario_parse(text, what, &s->cfg, errs);
  char *file = fm_read_file(what, NULL);
  if (!file) {
    fm_config_errors_add(errs,
                         "(top level): no built-in scenario \"%.200s\" and no such file (%s); "
                         "built-in ones are listed in docs/scenarios.md",
                         what, strerror(errno));
    return NULL;
  }
  fm_scenario *scn = fm_scenario_parse(file, what, &s->cfg, errs);
  free(file);
  return scn;
}

int fm_drill_start(fm_server *s, fm_scenario *scn) {
  fm_drill_stop(s);
  if (fm_player_start(&s->player, scn, &s->fleet, fm_server_now(s)) != 0) {
    fm_scenario_free(scn);
    return -1;
  }
  fm_log(FM_LOG_INFO, "scenario started", "scenario", scn->name, NULL);
  tick(s); /* apply what is due at 0 s now */
  fm_server_rearm_scenario(s);
  return 0;
}

bool fm_drill_stop(fm_server *s) {
  if (!s->player.s) return false;
  fm_log(FM_LOG_INFO, "scenario stopped; pools restored", "scenario", s->player.s->name, NULL);
  fm_player_stop(&s->player, &s->fleet, &s->faults);
  fm_server_rearm_scenario(s); /* nothing is due: the timer stops */
  return true;
}

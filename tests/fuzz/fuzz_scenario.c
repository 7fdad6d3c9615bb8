/* fuzz_scenario.c — libFuzzer harness for the scenario loader
 * (fm_scenario_parse, scenario.c), checked against the default fleet. A
 * scenario that parses is then played the way the server plays it: on a
 * fleet and a fault list driven by a manual clock, ticked at its start, a
 * third of the way, its end and two and a half times its length (so a
 * repeating one loops), then stopped. Stopping must free everything. */
#include "fuzz_input.h"

static void play(fm_scenario *s, const fm_config *cfg) {
  uint64_t now = 0;
  fm_clock clock = {fm_clock_manual_now, &now};
  fm_fleet fleet;
  fm_faults faults;
  fm_player player = {0};
  fz_require(fm_fleet_init(&fleet, cfg, &clock, 42, true) == 0);
  fm_faults_init(&faults, 42);
  uint64_t dur = (uint64_t)(s->duration_s * 1e6);
  if (fm_player_start(&player, s, &fleet, now) != 0) {
    fm_scenario_free(s);
  } else {
    const uint64_t at[] = {0, dur / 3, dur, dur * 5 / 2};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
      now = at[i];
      fm_player_tick(&player, &fleet, &faults, cfg, now);
      fz_require(fm_player_next_us(&player, now) >= now);
    }
    fm_player_stop(&player, &fleet, &faults);
    /* Stopping puts every pool back as it was. */
    for (size_t i = 0; i < fleet.n_pools; i++)
      fz_require(fleet.pools[i].cfg.slots == cfg->pools[i].slots &&
                 fleet.pools[i].cfg.replicas == cfg->pools[i].replicas);
    fz_require(faults.head == NULL);
  }
  fm_faults_free(&faults);
  fm_fleet_free(&fleet);
}

FZ_JSON_MUTATOR(FZ_JSON_WHOLE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const fm_config *cfg = fz_config();
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  fm_config_errors errs = {0};
  fm_scenario *s = fm_scenario_parse(text, "fuzz.json", cfg, &errs);
  if (s) {
    fz_require(errs.n == 0);
    fz_require(s->name && *s->name && s->duration_s > 0 && s->n_steps >= 1);
    play(s, cfg);
  } else {
    fz_require(errs.n > 0);
  }
  fm_config_errors_free(&errs);
  free(text);
  return 0;
}

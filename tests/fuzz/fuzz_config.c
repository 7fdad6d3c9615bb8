/* fuzz_config.c — libFuzzer harness for the config loader
 * (fm_config_load_text, config.c): the input is a config file, merged over
 * the embedded default and checked. A config that loads must hold what the
 * checker promises, since the fleet trusts it. */
#include "fuzz_input.h"

FZ_JSON_MUTATOR(FZ_JSON_WHOLE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1); /* a file read by fm_read_file ends in a NUL */
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  fm_config cfg;
  fm_config_errors errs = {0};
  if (fm_config_load_text(&cfg, text, "fuzz.json", &errs) == 0) {
    fz_require(errs.n == 0);
    fz_require(cfg.n_pools >= 1 && cfg.n_models >= 1);
    fz_require(cfg.max_nonstream_tokens >= 1);
    for (size_t i = 0; i < cfg.n_models; i++) {
      const fm_model_cfg *m = &cfg.models[i];
      fz_require(m->pool >= 0 && (size_t)m->pool < cfg.n_pools);
      fz_require(m->paths != 0 && m->context_length >= 16);
    }
    for (size_t i = 0; i < cfg.n_pools; i++)
      fz_require(cfg.pools[i].slots >= 1 && cfg.pools[i].replicas >= 1);
    for (size_t i = 0; i < cfg.accounts.n_keys; i++)
      fz_require(cfg.accounts.keys[i].key && *cfg.accounts.keys[i].key);
    fm_config_free(&cfg);
  } else {
    fz_require(errs.n > 0);
    fz_require(cfg.n_pools == 0 && cfg.pools == NULL); /* left empty */
  }
  fm_config_errors_free(&errs);
  free(text);
  return 0;
}

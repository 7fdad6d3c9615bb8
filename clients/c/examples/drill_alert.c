/* drill_alert.c — the alert: Priority on for several windows in a row.
 *
 * Sends one request a second with a short window, so a sustained overload
 * opens window after window and the alert fires:
 *
 *   fleetmock --port 8080 --scenario sustained-overload &
 *   ./fleetclient_example_drill_alert http://127.0.0.1:8080/v1 10
 *
 * The second argument is the window in seconds (default 5); the alert fires
 * at the third back-to-back window. In production the callback would page
 * someone: paying the Priority price for hours means buying capacity. */
#define _POSIX_C_SOURCE 200809L
#include <fleetclient.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void on_alert(void *ctx, const fm_alert *a) {
  int *fired = ctx;
  (*fired)++;
  printf("ALERT: Priority on for %d consecutive windows (%lld escalations, 503 rate %.0f %%)\n",
         a->consecutive_windows, (long long)a->escalations, a->rate_503 * 100);
}

int main(int argc, char **argv) {
  int fired = 0;
  fm_client_config cfg;
  fm_client_config_default(&cfg);
  cfg.base_url = argc > 1 ? argv[1] : "http://127.0.0.1:8080/v1";
  cfg.api_key = "example-key";
  cfg.model = "accounts/fireworks/models/kimi-k2p6";
  cfg.policy.window_s = argc > 2 ? atof(argv[2]) : 5;
  cfg.on_alert = on_alert;
  cfg.alert_ctx = &fired;
  fm_client *c = fm_client_new(&cfg);
  if (!c) return 1;
  for (int i = 0; i < 60 && !fired; i++) { /* bounded: a minute at most */
    fm_chat_request req = {.prompt = "ping", .max_tokens = 4};
    fm_chat_result res;
    if (fm_chat(c, &req, &res) != 0) break;
    printf("%2d: %s on %s (attempts %d)\n", i, fm_outcome_name(res.outcome), fm_tier_name(res.tier),
           res.attempts);
    fm_chat_result_free(&res);
    nanosleep(&(struct timespec){.tv_sec = 1}, NULL);
  }
  fm_client_free(c);
  return fired ? 0 : 1;
}

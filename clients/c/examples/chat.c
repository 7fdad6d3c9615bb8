/* chat.c — one chat completion through the routing pattern.
 *
 *   fleetmock --port 8080 &
 *   ./fleetclient_example_chat http://127.0.0.1:8080/v1 "Why is the sky blue?"
 *
 * Overload the pool first to watch it escalate:
 *   curl -X PATCH localhost:8080/admin/pools/kimi-k2p6 -d '{"tenant_load":1.2}'
 *
 * Build against an installed copy with
 *   cc chat.c $(pkg-config --cflags --libs fleetclient) -o chat */
#include <fleetclient.h>
#include <stdio.h>

int main(int argc, char **argv) {
  fm_client_config cfg;
  fm_client_config_default(&cfg);
  cfg.base_url = argc > 1 ? argv[1] : "http://127.0.0.1:8080/v1";
  cfg.api_key = "example-key";
  cfg.model = "accounts/fireworks/models/kimi-k2p6";
  cfg.route = FM_ROUTE_INTERACTIVE;
  fm_client *c = fm_client_new(&cfg);
  if (!c) {
    fprintf(stderr, "cannot create the client\n");
    return 1;
  }
  fm_chat_request req = {
      .prompt = argc > 2 ? argv[2] : "Say hello.", .max_tokens = 32, .stream = true};
  fm_chat_result res;
  if (fm_chat(c, &req, &res) != 0) {
    fprintf(stderr, "bad request or out of memory\n");
    fm_client_free(c);
    return 1;
  }
  const fm_state *s = fm_client_state(c);
  printf("outcome %s after %d attempt(s) on %s%s\n", fm_outcome_name(res.outcome), res.attempts,
         fm_tier_name(res.tier), res.escalated ? " (escalated: Standard was shedding)" : "");
  if (res.outcome == FM_OUTCOME_OK)
    printf("usage: %lld prompt (%lld cached), %lld completion\ntext: %s\n",
           (long long)res.prompt_tokens, (long long)res.cached_tokens,
           (long long)res.completion_tokens, res.content);
  else
    printf("error: %s\n", res.error);
  printf("metrics: escalations %lld, 503 rate %.2f, priority on: %s\n", (long long)s->escalations,
         fm_state_503_rate(s), fm_state_priority_on(s, fm_client_now(c)) ? "yes" : "no");
  int rc = res.outcome == FM_OUTCOME_OK ? 0 : 1;
  fm_chat_result_free(&res);
  fm_client_free(c);
  return rc;
}

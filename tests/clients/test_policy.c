/* test_policy.c — the routing policy of the C client, with a fake clock.
 *
 * The first tests tell the pattern's stories one by one; the last replays
 * the shared behaviour list (clients/behaviours.json), the same file the
 * Python and Node clients replay, under three jitter draws so the delay
 * bounds are checked at both ends. No sockets: the policy is pure. */
#include "../unit/check.h"

#include <cjson/cJSON.h>
#include <fleetclient.h>

static fm_policy policy(void) {
  fm_policy p;
  fm_policy_default(&p);
  return p;
}

static fm_decision answer(fm_state *s, const fm_policy *p, fm_route_class route,
                          fm_client_tier tier, int attempt, int status, int64_t retry_after_ms,
                          int64_t now_ms) {
  fm_attempt a = {
      .tier = tier, .attempt = attempt, .status = status, .retry_after_ms = retry_after_ms};
  return fm_policy_decide(s, p, route, &a, now_ms, 0.5);
}

TEST(escalates_on_503_and_retries_on_priority_at_once) {
  fm_policy p = policy();
  fm_state s = {0};
  CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_INTERACTIVE, 0), FM_STANDARD);
  fm_decision d = answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, 503, -1, 1000);
  CHECK(d.retry);
  CHECK_EQ_INT(d.tier, FM_PRIORITY);
  CHECK_EQ_INT(d.delay_ms, 0);
  CHECK(d.escalated);
  CHECK_EQ_INT(s.escalations, 1);
  CHECK_EQ_INT(s.priority_until_ms, 1000 + 1800 * 1000);
  CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_AGENT, 2000), FM_PRIORITY);
}

TEST(never_escalates_on_429_400_401_404_or_a_network_error) {
  int statuses[] = {429, 400, 401, 404, 413, 500, FM_STATUS_NETWORK, FM_STATUS_STREAM_ERROR};
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
    fm_policy p = policy();
    fm_state s = {0};
    fm_decision d = answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, statuses[i], -1, 0);
    CHECK(!d.escalated);
    CHECK_EQ_INT(d.tier, FM_STANDARD);
    CHECK_EQ_INT(s.escalations, 0);
    CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_INTERACTIVE, 1), FM_STANDARD);
  }
}

TEST(four_hundreds_give_up_at_once) {
  int statuses[] = {400, 401, 403, 404, 405, 413};
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
    fm_policy p = policy();
    fm_state s = {0};
    fm_decision d = answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, statuses[i], -1, 0);
    CHECK(!d.retry);
    CHECK_EQ_INT(d.outcome, FM_OUTCOME_ERROR);
  }
}

TEST(goes_back_to_standard_when_the_window_expires) {
  fm_policy p = policy();
  p.window_s = 60;
  fm_state s = {0};
  answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, 503, -1, 5000);
  CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_INTERACTIVE, 64999), FM_PRIORITY);
  CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_INTERACTIVE, 65000), FM_STANDARD);
  CHECK(!fm_state_priority_on(&s, 65000));
}

TEST(window_shrinks_with_the_server_time_scale) {
  fm_policy p = policy();
  p.time_scale = 50;
  CHECK_EQ_INT(fm_policy_window_ms(&p), 36000); /* 1800 s / 50 */
  CHECK_EQ_INT(fm_policy_backoff_ms(&p, 1, 0.999999), 10);
}

TEST(raises_the_alert_after_the_configured_consecutive_windows) {
  fm_policy p = policy();
  p.window_s = 10;
  p.alert_windows = 3;
  fm_state s = {0};
  int64_t t = 0;
  int alerts = 0;
  for (int w = 1; w <= 4; w++) {
    fm_decision d = answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, 503, -1, t);
    CHECK(d.escalated);
    CHECK_EQ_INT(s.consecutive_windows, w);
    alerts += d.alert;
    CHECK_EQ_INT(d.alert, w == 3);
    t = s.priority_until_ms + 50; /* Standard sheds again right after the window */
  }
  CHECK_EQ_INT(alerts, 1);
  CHECK_EQ_INT(s.alerts, 1);
}

TEST(never_escalates_a_batch_route) {
  fm_policy p = policy();
  fm_state s = {0};
  for (int attempt = 1; attempt <= p.max_attempts; attempt++) {
    fm_decision d = answer(&s, &p, FM_ROUTE_BATCH, FM_STANDARD, attempt, 503, -1, attempt * 1000);
    CHECK(!d.escalated);
    CHECK_EQ_INT(d.tier, FM_STANDARD);
    CHECK_EQ_INT(d.retry, attempt < p.max_attempts);
    if (d.retry) CHECK(d.delay_ms > 0);
  }
  CHECK_EQ_INT(s.escalations, 0);
  CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_BATCH, 5000), FM_STANDARD);
}

TEST(batch_stays_standard_even_while_the_window_is_open) {
  /* One state shared by routes (an app that keeps one client): the window
   * that interactive work opened does not pull batch onto Priority. */
  fm_policy p = policy();
  fm_state s = {0};
  answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, 503, -1, 0);
  CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_BATCH, 10), FM_STANDARD);
  fm_decision d = answer(&s, &p, FM_ROUTE_BATCH, FM_STANDARD, 1, 503, -1, 20);
  CHECK_EQ_INT(d.tier, FM_STANDARD);
  CHECK(d.delay_ms > 0);
}

TEST(backs_off_on_429_for_at_least_retry_after) {
  double draws[] = {0, 0.25, 0.5, 0.999999};
  for (size_t i = 0; i < 4; i++) {
    fm_policy p = policy();
    fm_state s = {0};
    fm_attempt a = {.tier = FM_STANDARD, .attempt = 1, .status = 429, .retry_after_ms = 2345};
    fm_decision d = fm_policy_decide(&s, &p, FM_ROUTE_INTERACTIVE, &a, 0, draws[i]);
    CHECK(d.retry);
    CHECK(d.delay_ms >= 2345);
    CHECK(d.delay_ms <= 2345 * 12 / 10);
  }
}

TEST(retry_after_ms_comes_before_retry_after) {
  CHECK_EQ_INT(fm_parse_retry_after("117", "1"), 117);
  CHECK_EQ_INT(fm_parse_retry_after("116.2", "1"), 117);
  CHECK_EQ_INT(fm_parse_retry_after(NULL, "2"), 2000);
  CHECK_EQ_INT(fm_parse_retry_after("", "3"), 3000);
  CHECK_EQ_INT(fm_parse_retry_after("junk", "4"), 4000);
  CHECK_EQ_INT(fm_parse_retry_after(NULL, NULL), -1);
  CHECK_EQ_INT(fm_parse_retry_after(NULL, "Wed, 21 Oct 2015 07:28:00 GMT"), -1);
}

TEST(naive_never_retries) {
  fm_policy p = policy();
  p.strategy = FM_STRATEGY_NAIVE;
  fm_state s = {0};
  fm_decision d = answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, 503, -1, 0);
  CHECK(!d.retry);
  CHECK(!d.escalated);
  CHECK_EQ_INT(d.outcome, FM_OUTCOME_SHED);
}

TEST(backoff_strategy_retries_503_on_standard) {
  fm_policy p = policy();
  p.strategy = FM_STRATEGY_BACKOFF;
  fm_state s = {0};
  fm_decision d = answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, 503, -1, 0);
  CHECK(d.retry);
  CHECK_EQ_INT(d.tier, FM_STANDARD);
  CHECK(d.delay_ms >= 250 && d.delay_ms <= 500);
  CHECK_EQ_INT(s.escalations, 0);
}

TEST(always_priority_starts_every_route_on_priority) {
  fm_policy p = policy();
  p.strategy = FM_STRATEGY_ALWAYS_PRIORITY;
  fm_state s = {0};
  CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_INTERACTIVE, 0), FM_PRIORITY);
  CHECK_EQ_INT(fm_policy_start(&s, &p, FM_ROUTE_BATCH, 0), FM_PRIORITY);
}

TEST(rate_503_counts_attempts) {
  fm_policy p = policy();
  fm_state s = {0};
  CHECK_NEAR(fm_state_503_rate(&s), 0, 0);
  answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_STANDARD, 1, 503, -1, 0);
  answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_PRIORITY, 2, 200, -1, 5);
  answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_PRIORITY, 1, 200, -1, 9);
  answer(&s, &p, FM_ROUTE_INTERACTIVE, FM_PRIORITY, 1, 200, -1, 9);
  CHECK_EQ_INT(s.requests, 4);
  CHECK_EQ_INT(s.on_priority, 3);
  CHECK_NEAR(fm_state_503_rate(&s), 0.25, 1e-12);
}

/* ---- the shared behaviour list ---- */

static const cJSON *item(const cJSON *o, const char *k) {
  return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void apply_policy(fm_policy *p, const cJSON *o) {
  const cJSON *x;
  if (cJSON_IsNumber(x = item(o, "window_s"))) p->window_s = x->valuedouble;
  if (cJSON_IsNumber(x = item(o, "time_scale"))) p->time_scale = x->valuedouble;
  if (cJSON_IsNumber(x = item(o, "backoff_base_ms"))) p->backoff_base_ms = (int64_t)x->valuedouble;
  if (cJSON_IsNumber(x = item(o, "backoff_cap_ms"))) p->backoff_cap_ms = (int64_t)x->valuedouble;
  if (cJSON_IsNumber(x = item(o, "max_attempts"))) p->max_attempts = x->valueint;
  if (cJSON_IsNumber(x = item(o, "alert_windows"))) p->alert_windows = x->valueint;
}

static const char *header(const cJSON *headers, const char *name) {
  const cJSON *h = item(headers, name);
  return cJSON_IsString(h) ? h->valuestring : NULL;
}

/* Compares one expected field; returns 1 when it fails (and says so). */
static int expect_num(const char *where, const cJSON *exp, const char *k, double got) {
  const cJSON *x = item(exp, k);
  if (!x) return 0;
  double want = cJSON_IsBool(x) ? cJSON_IsTrue(x) : x->valuedouble;
  if (fabs(want - got) <= 1e-9) return 0;
  printf("  %s: %s is %.9g, expected %.9g\n", where, k, got, want);
  return 1;
}

static int expect_str(const char *where, const cJSON *exp, const char *k, const char *got) {
  const cJSON *x = item(exp, k);
  if (!cJSON_IsString(x) || strcmp(x->valuestring, got) == 0) return 0;
  printf("  %s: %s is %s, expected %s\n", where, k, got, x->valuestring);
  return 1;
}

static int expect_state(const char *where, const cJSON *exp, const fm_state *s, int64_t now) {
  if (!exp) return 0;
  int bad = 0;
  bad += expect_num(where, exp, "priority_until_ms", (double)s->priority_until_ms);
  bad += expect_num(where, exp, "priority_on", fm_state_priority_on(s, now));
  bad += expect_num(where, exp, "escalations", (double)s->escalations);
  bad += expect_num(where, exp, "requests", (double)s->requests);
  bad += expect_num(where, exp, "status_503", (double)s->status_503);
  bad += expect_num(where, exp, "status_429", (double)s->status_429);
  bad += expect_num(where, exp, "errors", (double)s->errors);
  bad += expect_num(where, exp, "on_priority", (double)s->on_priority);
  bad += expect_num(where, exp, "consecutive_windows", s->consecutive_windows);
  bad += expect_num(where, exp, "alerts", (double)s->alerts);
  bad += expect_num(where, exp, "rate_503", fm_state_503_rate(s));
  return bad;
}

static int parse_status(const cJSON *x) {
  if (cJSON_IsNumber(x)) return x->valueint;
  if (cJSON_IsString(x) && strcmp(x->valuestring, "network_error") == 0) return FM_STATUS_NETWORK;
  if (cJSON_IsString(x) && strcmp(x->valuestring, "stream_error") == 0)
    return FM_STATUS_STREAM_ERROR;
  return -999;
}

/* Replays one case; returns the number of failed expectations. */
static int run_case(const cJSON *defaults, const cJSON *c, double jitter) {
  fm_policy p = policy();
  apply_policy(&p, item(defaults, "policy"));
  apply_policy(&p, item(c, "policy"));
  fm_route_class route = FM_ROUTE_INTERACTIVE;
  const cJSON *r = item(c, "route") ? item(c, "route") : item(defaults, "route");
  if (cJSON_IsString(r) && fm_route_parse(r->valuestring, &route) != 0) return 1;
  fm_state s = {0};
  int bad = 0, i = 0;
  const cJSON *step;
  cJSON_ArrayForEach(step, item(c, "steps")) {
    char where[160];
    snprintf(where, sizeof where, "%s step %d (jitter %.2f)", item(c, "name")->valuestring, i++,
             jitter);
    int64_t now = (int64_t)item(step, "at_ms")->valuedouble;
    const cJSON *exp = item(step, "expect");
    const char *event = item(step, "event")->valuestring;
    if (strcmp(event, "start") == 0) {
      bad += expect_str(where, exp, "tier", fm_tier_name(fm_policy_start(&s, &p, route, now)));
    } else {
      const cJSON *h = item(step, "headers");
      fm_attempt a = {.attempt = item(step, "attempt")->valueint,
                      .status = parse_status(item(step, "status")),
                      .retry_after_ms = fm_parse_retry_after(header(h, "retry-after-ms"),
                                                             header(h, "retry-after"))};
      a.tier = strcmp(item(step, "tier")->valuestring, "priority") == 0 ? FM_PRIORITY : FM_STANDARD;
      fm_decision d = fm_policy_decide(&s, &p, route, &a, now, jitter);
      bad += expect_num(where, exp, "retry", d.retry);
      if (d.retry) bad += expect_str(where, exp, "tier", fm_tier_name(d.tier));
      if (!d.retry) bad += expect_str(where, exp, "outcome", fm_outcome_name(d.outcome));
      bad += expect_num(where, exp, "escalated", d.escalated);
      bad += expect_num(where, exp, "alert", d.alert);
      const cJSON *lo = item(exp, "delay_ms_min"), *hi = item(exp, "delay_ms_max");
      if ((lo && d.delay_ms < lo->valuedouble) || (hi && d.delay_ms > hi->valuedouble)) {
        printf("  %s: delay_ms %lld outside [%g, %g]\n", where, (long long)d.delay_ms,
               lo ? lo->valuedouble : 0, hi ? hi->valuedouble : 1e18);
        bad++;
      }
    }
    bad += expect_state(where, item(exp, "state"), &s, now);
  }
  return bad;
}

TEST(passes_the_shared_behaviour_list) {
  FILE *f = fopen(FM_BEHAVIOURS_JSON, "rb");
  REQUIRE(f != NULL);
  static char text[1 << 20];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  cJSON *doc = cJSON_Parse(text);
  REQUIRE(doc != NULL);
  CHECK_STR(item(doc, "schema")->valuestring, "fleetmock-client-behaviours/1");
  const cJSON *c;
  int cases = 0;
  cJSON_ArrayForEach(c, item(doc, "cases")) {
    const double draws[] = {0.0, 0.5, 0.999999};
    int bad = 0;
    for (int j = 0; j < 3; j++)
      bad += run_case(item(doc, "defaults"), c, draws[j]);
    printf("  %s %s\n", bad ? "FAIL" : "ok  ", item(c, "name")->valuestring);
    if (bad) check_fail(__FILE__, __LINE__, "behaviour %s failed", item(c, "name")->valuestring);
    cases++;
  }
  CHECK(cases >= 20);
  cJSON_Delete(doc);
}

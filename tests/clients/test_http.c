/* test_http.c — the C client's HTTP layer against the real server.
 *
 * Starts $FLEETMOCK_BIN with --timing instant on a free port, and uses
 * scripted faults (POST /admin/faults) to make Standard shed, the account
 * refuse, or a stream break, exactly once. The client runs on a fake clock
 * whose sleep only moves the clock, so backoffs take no real time and the
 * test can check how long the client would have waited. */
#define _POSIX_C_SOURCE 200809L
#include "../unit/check.h"

#include <fleetclient.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t server_pid;
static char base[128], api[160];

static void stop_server(void) {
  if (server_pid > 0) {
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
    server_pid = 0;
  }
}

/* Starts the server once; returns 0 when it is listening. */
static int server(void) {
  if (server_pid > 0) return 0;
  const char *bin = getenv("FLEETMOCK_BIN");
  if (!bin) return -1;
  char port_file[] = "/tmp/fleetclient-test-XXXXXX";
  int fd = mkstemp(port_file);
  if (fd < 0) return -1;
  close(fd);
  unlink(port_file);
  server_pid = fork();
  if (server_pid == 0) {
    execl(bin, bin, "--port", "0", "--port-file", port_file, "--timing", "instant", "--log-level",
          "warn", (char *)NULL);
    _exit(127);
  }
  atexit(stop_server);
  for (int i = 0; i < 200; i++) { /* up to 10 s */
    FILE *f = fopen(port_file, "r");
    int port = 0;
    if (f) {
      if (fscanf(f, "%d", &port) != 1) port = 0;
      fclose(f);
    }
    if (port > 0) {
      unlink(port_file);
      snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
      snprintf(api, sizeof api, "%s/v1", base);
      return 0;
    }
    nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000}, NULL);
  }
  return -1;
}

static size_t discard(char *d, size_t s, size_t n, void *u) {
  (void)d;
  (void)u;
  return s * n;
}

static long admin(const char *method, const char *path, const char *body) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", base, path);
  CURL *e = curl_easy_init();
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  long code = 0;
  if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  return code;
}

typedef struct fake_clock {
  int64_t now, slept, sleeps;
} fake_clock;

static int64_t fake_now(void *ctx) {
  return ((fake_clock *)ctx)->now;
}

static void fake_sleep(void *ctx, int64_t ms) {
  fake_clock *c = ctx;
  c->now += ms;
  c->slept += ms;
  c->sleeps++;
}

static int alerts_seen;
static void count_alert(void *ctx, const fm_alert *a) {
  (void)ctx;
  (void)a;
  alerts_seen++;
}

static fm_client *client(fake_clock *clk, const char *url, const char *model) {
  fm_client_config cfg;
  fm_client_config_default(&cfg);
  cfg.base_url = url;
  cfg.api_key = "test-key";
  cfg.model = model ? model : "accounts/fireworks/models/kimi-k2p6";
  cfg.clock = fake_now;
  cfg.sleep = fake_sleep;
  cfg.clock_ctx = clk;
  cfg.on_alert = count_alert;
  cfg.timeout_ms = 10000;
  return fm_client_new(&cfg);
}

static fm_chat_request ask(bool stream) {
  return (fm_chat_request){.prompt = "hello there", .max_tokens = 8, .stream = stream};
}

TEST(serves_on_standard_with_usage_streamed_or_not) {
  REQUIRE(server() == 0);
  admin("POST", "/admin/reset", "{}");
  fake_clock clk = {0};
  fm_client *c = client(&clk, api, NULL);
  REQUIRE(c != NULL);
  for (int stream = 0; stream <= 1; stream++) {
    fm_chat_request req = ask(stream);
    fm_chat_result r;
    REQUIRE(fm_chat(c, &req, &r) == 0);
    CHECK_EQ_INT(r.outcome, FM_OUTCOME_OK);
    CHECK_EQ_INT(r.attempts, 1);
    CHECK_EQ_INT(r.tier, FM_STANDARD);
    CHECK(r.prompt_tokens > 0);
    CHECK_EQ_INT(r.completion_tokens, 8);
    CHECK(r.content && strlen(r.content) > 0);
    CHECK_STR(r.pool, "kimi-k2p6");
    fm_chat_result_free(&r);
  }
  CHECK_EQ_INT(fm_client_state(c)->escalations, 0);
  fm_client_free(c);
}

TEST(escalates_when_standard_is_shed_and_stays_for_the_window) {
  REQUIRE(server() == 0);
  admin("POST", "/admin/reset", "{}");
  CHECK_EQ_INT(admin("POST", "/admin/faults",
                     "{\"match\":{\"tier\":\"standard\"},\"action\":{\"status\":503},\"count\":1}"),
               200);
  fake_clock clk = {.now = 1000};
  fm_client *c = client(&clk, api, NULL);
  fm_chat_request req = ask(true);
  fm_chat_result r;
  REQUIRE(fm_chat(c, &req, &r) == 0);
  CHECK_EQ_INT(r.outcome, FM_OUTCOME_OK);
  CHECK_EQ_INT(r.attempts, 2);
  CHECK_EQ_INT(r.tier, FM_PRIORITY);
  CHECK(r.escalated);
  CHECK_EQ_INT(clk.slept, 0); /* straight to Priority */
  fm_chat_result_free(&r);
  CHECK_EQ_INT(fm_client_state(c)->priority_until_ms, 1000 + 1800000);
  clk.now += 60000; /* a minute later: still inside the window */
  REQUIRE(fm_chat(c, &req, &r) == 0);
  CHECK_EQ_INT(r.attempts, 1);
  CHECK_EQ_INT(r.tier, FM_PRIORITY);
  CHECK(!r.escalated);
  fm_chat_result_free(&r);
  clk.now = 1000 + 1800000; /* the window is over: back on Standard */
  REQUIRE(fm_chat(c, &req, &r) == 0);
  CHECK_EQ_INT(r.tier, FM_STANDARD);
  fm_chat_result_free(&r);
  CHECK_EQ_INT(fm_client_state(c)->escalations, 1);
  fm_client_free(c);
}

TEST(backs_off_on_429_for_retry_after_without_escalating) {
  REQUIRE(server() == 0);
  admin("POST", "/admin/reset", "{}");
  admin("POST", "/admin/faults", "{\"action\":{\"status\":429},\"count\":1}");
  fake_clock clk = {0};
  fm_client *c = client(&clk, api, NULL);
  fm_chat_request req = ask(false);
  fm_chat_result r;
  REQUIRE(fm_chat(c, &req, &r) == 0);
  CHECK_EQ_INT(r.outcome, FM_OUTCOME_OK);
  CHECK_EQ_INT(r.attempts, 2);
  CHECK_EQ_INT(r.tier, FM_STANDARD);
  CHECK(clk.slept >= 1000); /* the fault's Retry-After: 1 */
  CHECK(clk.slept <= 1200);
  CHECK_EQ_INT(fm_client_state(c)->escalations, 0);
  CHECK_EQ_INT(fm_client_state(c)->status_429, 1);
  fm_chat_result_free(&r);
  fm_client_free(c);
}

TEST(gives_up_at_once_on_an_unknown_model) {
  REQUIRE(server() == 0);
  fake_clock clk = {0};
  fm_client *c = client(&clk, api, "accounts/fireworks/models/nope");
  fm_chat_request req = ask(false);
  fm_chat_result r;
  REQUIRE(fm_chat(c, &req, &r) == 0);
  CHECK_EQ_INT(r.outcome, FM_OUTCOME_ERROR);
  CHECK_EQ_INT(r.status, 404);
  CHECK_EQ_INT(r.attempts, 1);
  CHECK(strlen(r.error) > 0);
  CHECK_EQ_INT(fm_client_state(c)->escalations, 0);
  fm_chat_result_free(&r);
  fm_client_free(c);
}

TEST(retries_a_network_error_on_standard_then_gives_up) {
  fake_clock clk = {0};
  fm_client *c = client(&clk, "http://127.0.0.1:1/v1", NULL); /* nothing listens on port 1 */
  fm_chat_request req = ask(false);
  fm_chat_result r;
  REQUIRE(fm_chat(c, &req, &r) == 0);
  CHECK_EQ_INT(r.outcome, FM_OUTCOME_ERROR);
  CHECK_EQ_INT(r.status, FM_STATUS_NETWORK);
  CHECK_EQ_INT(r.attempts, FM_POLICY_DEFAULT_MAX_ATTEMPTS);
  CHECK_EQ_INT(r.tier, FM_STANDARD);
  CHECK_EQ_INT(clk.sleeps, FM_POLICY_DEFAULT_MAX_ATTEMPTS - 1);
  CHECK_EQ_INT(fm_client_state(c)->escalations, 0);
  fm_chat_result_free(&r);
  fm_client_free(c);
}

TEST(retries_a_broken_stream_without_escalating) {
  REQUIRE(server() == 0);
  admin("POST", "/admin/reset", "{}");
  admin("POST", "/admin/faults",
        "{\"action\":{\"stream\":\"error\",\"after_tokens\":2},\"count\":1}");
  fake_clock clk = {0};
  fm_client *c = client(&clk, api, NULL);
  fm_chat_request req = ask(true);
  fm_chat_result r;
  REQUIRE(fm_chat(c, &req, &r) == 0);
  CHECK_EQ_INT(r.outcome, FM_OUTCOME_OK);
  CHECK_EQ_INT(r.attempts, 2);
  CHECK_EQ_INT(r.tier, FM_STANDARD);
  CHECK_EQ_INT(fm_client_state(c)->errors, 1);
  CHECK_EQ_INT(fm_client_state(c)->escalations, 0);
  fm_chat_result_free(&r);
  fm_client_free(c);
}

TEST(calls_the_alert_after_three_back_to_back_windows) {
  REQUIRE(server() == 0);
  admin("POST", "/admin/reset", "{}");
  admin("POST", "/admin/faults",
        "{\"match\":{\"tier\":\"standard\"},\"action\":{\"status\":503},\"count\":4}");
  fake_clock clk = {0};
  fm_client *c = client(&clk, api, NULL);
  alerts_seen = 0;
  fm_chat_request req = ask(false);
  for (int w = 1; w <= 4; w++) {
    fm_chat_result r;
    REQUIRE(fm_chat(c, &req, &r) == 0);
    CHECK_EQ_INT(r.outcome, FM_OUTCOME_OK);
    CHECK(r.escalated);
    CHECK_EQ_INT(fm_client_state(c)->consecutive_windows, w);
    CHECK_EQ_INT(alerts_seen, w >= 3);
    fm_chat_result_free(&r);
    clk.now = fm_client_state(c)->priority_until_ms; /* the window ends; Standard still sheds */
  }
  fm_client_free(c);
}

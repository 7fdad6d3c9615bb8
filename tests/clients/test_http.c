/* test_http.c — the C client's HTTP layer against the real server.
 *
 * Starts $FLEETMOCK_BIN with --timing instant on a free port, and uses
 * scripted faults (POST /admin/faults) to make Standard shed, the account
 * refuse, or a stream break, exactly once. The client runs on a fake clock
 * whose sleep only moves the clock, so backoffs take no real time and the
 * test can check how long the client would have waited. The tool-call
 * tests at the end also use a canned one-answer server, to pin what the
 * client parses (streamed deltas assembled by index) byte for byte. */
#define _GNU_SOURCE /* strcasestr */
#include "../unit/check.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <fleetclient.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
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

/* The wire client() speaks; TEST_BOTH_WIRES runs a test on each. */
static fm_client_api wire = FM_API_CHAT;

/* A live test that must hold the same on chat completions and on the
 * Responses API: the policy, the statuses and the result do not depend on
 * the wire. A failure says which wire it was on. */
#define TEST_BOTH_WIRES(name)                                                                      \
  static void name##_on_wire(void);                                                                \
  TEST(name) {                                                                                     \
    for (int w = FM_API_CHAT; w <= FM_API_RESPONSES; w++) {                                        \
      int before = check_failures;                                                                 \
      wire = (fm_client_api)w;                                                                     \
      name##_on_wire();                                                                            \
      if (check_failures > before) printf("  ^ on the %s wire\n", fm_api_name(wire));              \
    }                                                                                              \
    wire = FM_API_CHAT;                                                                            \
  }                                                                                                \
  static void name##_on_wire(void)

static fm_client *client(fake_clock *clk, const char *url, const char *model) {
  fm_client_config cfg;
  fm_client_config_default(&cfg);
  cfg.base_url = url;
  cfg.api = wire;
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

TEST_BOTH_WIRES(serves_on_standard_with_usage_streamed_or_not) {
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

TEST_BOTH_WIRES(escalates_when_standard_is_shed_and_stays_for_the_window) {
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

TEST_BOTH_WIRES(backs_off_on_429_for_retry_after_without_escalating) {
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

TEST_BOTH_WIRES(gives_up_at_once_on_an_unknown_model) {
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

TEST_BOTH_WIRES(retries_a_broken_stream_without_escalating) {
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

/* ---- tool calls ----
 *
 * A canned server: one connection, one answer written as given, the request
 * kept in `canned_request` for the test to read. It checks what the client
 * parses without depending on the server's tool support. */
static char canned_request[16384];

static int canned(const char *response, char *url, size_t url_n) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
    return -1;
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int s = accept(ls, NULL, NULL);
    char req[sizeof canned_request];
    size_t n = 0;
    for (;;) { /* headers, then Content-Length bytes of body */
      ssize_t k = read(s, req + n, sizeof req - 1 - n);
      if (k <= 0) break;
      n += (size_t)k;
      req[n] = '\0';
      char *end = strstr(req, "\r\n\r\n"), *cl = strcasestr(req, "content-length:");
      if (end && cl && n >= (size_t)(end + 4 - req) + strtoul(cl + 15, NULL, 10)) break;
    }
    if (write(fds[1], req, n) < 0 || write(s, response, strlen(response)) < 0) _exit(1);
    close(s);
    _exit(0);
  }
  close(ls);
  close(fds[1]);
  snprintf(url, url_n, "http://127.0.0.1:%d/v1", ntohs(a.sin_port));
  return fds[0];
}

/* Waits for the canned server and keeps what it was sent. */
static void canned_done(int fd) {
  size_t n = 0;
  ssize_t k;
  while ((k = read(fd, canned_request + n, sizeof canned_request - 1 - n)) > 0)
    n += (size_t)k;
  canned_request[n] = '\0';
  close(fd);
  wait(NULL);
}

/* A served answer that made n tool calls. */
#define REQUIRE_TOOL_ANSWER(r, n)                                                                  \
  do {                                                                                             \
    CHECK_EQ_INT((r).outcome, FM_OUTCOME_OK);                                                      \
    CHECK_STR((r).finish_reason, "tool_calls");                                                    \
    REQUIRE((r).n_tool_calls == (n));                                                              \
  } while (0)

/* One fm_chat against the canned `response`, on `api`. Returns fm_chat's answer. */
static int canned_chat(const char *response, fm_client_api api, const fm_chat_request *req,
                       fm_chat_result *r) {
  char url[64];
  int fd = canned(response, url, sizeof url);
  if (fd < 0) return -1;
  fake_clock clk = {0};
  wire = api;
  fm_client *c = client(&clk, url, NULL);
  wire = FM_API_CHAT;
  int rc = fm_chat(c, req, r);
  canned_done(fd);
  fm_client_free(c);
  return rc;
}

static const char tools_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"search\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"query\":{\"type\":\"string\"}},\"required\":[\"query\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"read\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"url\":{\"type\":\"string\"}},\"required\":[\"url\"]}}}]";

TEST(assembles_streamed_tool_call_deltas_by_index) {
  static const char sse[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\","
      "\"type\":\"function\",\"function\":{\"name\":\"search\",\"arguments\":\"\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
      "\"arguments\":\"{\\\"que\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\","
      "\"type\":\"function\",\"function\":{\"name\":\"read\",\"arguments\":\"\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
      "\"arguments\":\"ry\\\":\\\"slow\\\"}\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{"
      "\"arguments\":\"{\\\"url\\\":\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":7}}\n\n"
      "data: [DONE]\n\n";
  fm_chat_request req = {.messages = "[{\"role\":\"user\",\"content\":\"go\"}]",
                         .tools = tools_json,
                         .tool_choice = "auto",
                         .stream = true};
  fm_chat_result r;
  REQUIRE(canned_chat(sse, FM_API_CHAT, &req, &r) == 0);
  REQUIRE_TOOL_ANSWER(r, 2);
  CHECK_STR(r.content, "");
  CHECK_STR(r.tool_calls[0].id, "call_a");
  CHECK_STR(r.tool_calls[0].name, "search");
  CHECK_STR(r.tool_calls[0].arguments, "{\"query\":\"slow\"}");
  CHECK(r.tool_calls[0].arguments_ok);
  CHECK_STR(r.tool_calls[1].id, "call_b");
  CHECK_STR(r.tool_calls[1].name, "read");
  CHECK_STR(r.tool_calls[1].arguments, "{\"url\":"); /* cut: not a JSON object */
  CHECK(!r.tool_calls[1].arguments_ok);
  CHECK_EQ_INT(r.completion_tokens, 7);
  CHECK_STR_CONTAINS(canned_request, "\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]");
  CHECK_STR_CONTAINS(canned_request, "\"tools\":[{\"type\":\"function\"");
  CHECK_STR_CONTAINS(canned_request, "\"tool_choice\":\"auto\"");
  fm_chat_result_free(&r);
}

TEST(reads_tool_calls_from_a_json_answer) {
  static const char body[] =
      "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
      "\"tool_calls\":[{\"id\":\"call_x\",\"type\":\"function\",\"function\":{\"name\":\"read\","
      "\"arguments\":\"{\\\"url\\\":\\\"logs\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],"
      "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":5}}";
  char response[1024];
  snprintf(response, sizeof response,
           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
           "Connection: close\r\n\r\n%s",
           strlen(body), body);
  fm_chat_request req = {.messages = "[{\"role\":\"user\",\"content\":\"go\"}]",
                         .tools = tools_json,
                         .tool_choice = "{\"type\":\"function\",\"function\":{\"name\":\"read\"}}"};
  fm_chat_result r;
  REQUIRE(canned_chat(response, FM_API_CHAT, &req, &r) == 0);
  REQUIRE_TOOL_ANSWER(r, 1);
  CHECK_STR(r.tool_calls[0].id, "call_x");
  CHECK_STR(r.tool_calls[0].name, "read");
  CHECK(r.tool_calls[0].arguments_ok);
  CHECK_STR_CONTAINS(canned_request, "\"tool_choice\":{\"type\":\"function\"");
  fm_chat_result_free(&r);
}

/* The Responses wire byte for byte: the path, the converted body, and a
 * typed event stream (with its `event:` lines) read into the same result. */
TEST(speaks_the_responses_api_when_asked) {
  static const char sse[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
      "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,"
      "\"response\":{\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n"
      "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\","
      "\"output_index\":0,\"item\":{\"type\":\"function_call\",\"call_id\":\"call_a\","
      "\"name\":\"search\",\"arguments\":\"\"}}\n\n"
      "event: response.function_call_arguments.delta\ndata: {\"type\":"
      "\"response.function_call_arguments.delta\",\"output_index\":0,\"delta\":"
      "\"{\\\"query\\\":\\\"slow\\\"}\"}\n\n"
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{"
      "\"status\":\"completed\",\"usage\":{\"input_tokens\":30,\"input_tokens_details\":{"
      "\"cached_tokens\":0},\"output_tokens\":7}}}\n\n";
  fm_chat_request req = {.messages = "[{\"role\":\"system\",\"content\":\"be brief\"},"
                                     "{\"role\":\"user\",\"content\":\"go\"}]",
                         .tools = tools_json,
                         .tool_choice = "auto",
                         .max_tokens = 64,
                         .stream = true};
  fm_chat_result r;
  REQUIRE(canned_chat(sse, FM_API_RESPONSES, &req, &r) == 0);
  REQUIRE_TOOL_ANSWER(r, 1);
  CHECK_STR(r.tool_calls[0].id, "call_a");
  CHECK_STR(r.tool_calls[0].arguments, "{\"query\":\"slow\"}");
  CHECK(r.tool_calls[0].arguments_ok);
  CHECK_EQ_INT(r.prompt_tokens, 30);
  CHECK_EQ_INT(r.completion_tokens, 7);
  CHECK_STR_PREFIX(canned_request, "POST /v1/responses HTTP/1.1\r\n");
  CHECK_STR_CONTAINS(canned_request, "\"input\":[{\"type\":\"message\",\"role\":\"user\","
                                     "\"content\":\"go\"}]");
  CHECK_STR_CONTAINS(canned_request, "\"instructions\":\"be brief\"");
  CHECK_STR_CONTAINS(canned_request, "\"tools\":[{\"type\":\"function\",\"name\":\"search\"");
  CHECK_STR_CONTAINS(canned_request, "\"max_output_tokens\":64");
  CHECK_STR_CONTAINS(canned_request, "\"store\":false");
  CHECK(!strstr(canned_request, "\"messages\""));
  CHECK(!strstr(canned_request, "stream_options"));
  fm_chat_result_free(&r);
}

TEST(refuses_messages_or_tools_that_are_not_json_arrays) {
  fake_clock clk = {0};
  fm_client *c = client(&clk, "http://127.0.0.1:1/v1", NULL);
  fm_chat_request req = {.messages = "[{\"role\":"};
  CHECK(fm_call_new(c, &req) == NULL);
  req = (fm_chat_request){.prompt = "hi", .tools = "{}"};
  CHECK(fm_call_new(c, &req) == NULL);
  fm_client_free(c);
}

/* The server's auto rule (issue 13): tools are called while no tool result
 * follows the last user message, and the answer is text once one does. */
TEST_BOTH_WIRES(the_server_calls_tools_then_answers_after_the_tool_results) {
  REQUIRE(server() == 0);
  admin("POST", "/admin/reset", "{}");
  fake_clock clk = {0};
  fm_client *c = client(&clk, api, NULL);
  for (int stream = 0; stream <= 1; stream++) {
    fm_chat_request req = {.messages = "[{\"role\":\"user\",\"content\":\"find the logs\"}]",
                           .tools = tools_json,
                           .tool_choice = "auto",
                           .max_tokens = 64,
                           .stream = stream};
    fm_chat_result r;
    REQUIRE(fm_chat(c, &req, &r) == 0);
    CHECK_EQ_INT(r.outcome, FM_OUTCOME_OK);
    CHECK_STR(r.finish_reason, "tool_calls");
    REQUIRE(r.n_tool_calls >= 1);
    CHECK(r.n_tool_calls <= 2);
    char conv[4096];
    int n = snprintf(conv, sizeof conv,
                     "[{\"role\":\"user\",\"content\":\"find the logs\"},{\"role\":\"assistant\","
                     "\"content\":null,\"tool_calls\":[");
    for (int i = 0; i < r.n_tool_calls; i++) {
      const fm_tool_call *t = &r.tool_calls[i];
      CHECK_STR_PREFIX(t->id, "call_");
      CHECK(strcmp(t->name, "search") == 0 || strcmp(t->name, "read") == 0);
      CHECK(t->arguments_ok);
      cJSON *args = cJSON_CreateString(t->arguments);
      char *quoted = cJSON_PrintUnformatted(args);
      n += snprintf(conv + n, sizeof conv - (size_t)n,
                    "%s{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":\"%s\","
                    "\"arguments\":%s}}",
                    i ? "," : "", t->id, t->name, quoted);
      free(quoted);
      cJSON_Delete(args);
    }
    n += snprintf(conv + n, sizeof conv - (size_t)n, "]}");
    for (int i = 0; i < r.n_tool_calls; i++)
      n += snprintf(conv + n, sizeof conv - (size_t)n,
                    ",{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":\"3 results\"}",
                    r.tool_calls[i].id);
    snprintf(conv + n, sizeof conv - (size_t)n, "]");
    fm_chat_result_free(&r);
    req.messages = conv;
    REQUIRE(fm_chat(c, &req, &r) == 0);
    CHECK_EQ_INT(r.outcome, FM_OUTCOME_OK);
    CHECK_EQ_INT(r.n_tool_calls, 0);
    CHECK(strcmp(r.finish_reason, "stop") == 0 || strcmp(r.finish_reason, "length") == 0);
    CHECK(r.content && strlen(r.content) > 0);
    fm_chat_result_free(&r);
  }
  fm_client_free(c);
}

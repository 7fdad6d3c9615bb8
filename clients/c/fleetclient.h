/* fleetclient.h — the reference C client of the routing pattern (SPEC §7).
 *
 * The pattern: send on Standard by default. On a 503, and only a 503, turn
 * Priority on for a window (30 simulated minutes by default), retry that
 * request there, and drift back to Standard when the window ends. On a 429,
 * back off for at least Retry-After and retry on the same tier. Never
 * escalate a batch route. Keep metrics (priority_until, escalations, 503
 * rate, consecutive windows) and call an alert when Priority stays on for
 * several windows in a row: that is the signal to buy capacity.
 *
 * Two layers:
 *   - the policy (fm_policy_*): pure decisions, "what to do after status X
 *     at time t", with no I/O and no clock of its own. Unit tests drive it
 *     with a fake clock and the shared behaviour list
 *     (clients/behaviours.json).
 *   - the client (fm_client_*, fm_call_*, fm_chat): chat completions (or the
 *     Responses API, fm_client_config.api) over libcurl that ask the policy
 *     before every attempt and after every answer. fm_chat blocks; fm_call
 *     hands out one easy handle per attempt so an event loop (curl multi, as
 *     fleetdrill does) can drive many.
 *
 * Times: the policy works in milliseconds of the client's clock (real,
 * monotonic by default). window_s and the backoff settings are in the
 * server's simulated time and are divided by time_scale, so against
 * `fleetmock --time-scale 60` a 30-minute window lasts 30 real seconds.
 * Retry-After is already real time (the server divides it) and is used as is.
 *
 * A client is single-threaded: use one per thread, or lock around it. */
#ifndef FLEETCLIENT_H
#define FLEETCLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLEETCLIENT_VERSION "0.1.0"

typedef enum { FM_STANDARD, FM_PRIORITY } fm_client_tier;

/* What the caller is: batch work can wait, so it is never escalated. */
typedef enum { FM_ROUTE_INTERACTIVE, FM_ROUTE_AGENT, FM_ROUTE_BATCH } fm_route_class;

/* The pattern and the baselines fleetdrill compares it with. */
typedef enum {
  FM_STRATEGY_ESCALATE,       /* the pattern (default) */
  FM_STRATEGY_BACKOFF,        /* Standard only; retry 503/429/5xx/network with jittered backoff */
  FM_STRATEGY_NAIVE,          /* Standard only; one attempt, no retry */
  FM_STRATEGY_ALWAYS_PRIORITY /* Priority for everything (batch too); retries like BACKOFF */
} fm_strategy;

/* How a call ended: served, shed by the fleet (503), refused by the
 * account's rate limits (429), or anything else (4xx, network, stream cut). */
typedef enum { FM_OUTCOME_OK, FM_OUTCOME_SHED, FM_OUTCOME_LIMITED, FM_OUTCOME_ERROR } fm_outcome;

/* Not HTTP statuses: what an attempt ended with when there was no answer. */
#define FM_STATUS_NETWORK 0       /* no HTTP answer: refused, reset, timed out */
#define FM_STATUS_STREAM_ERROR -1 /* 200, then an SSE error event or a cut stream */

typedef struct fm_policy {
  double window_s;         /* simulated seconds Priority stays on after a 503 (1800) */
  double time_scale;       /* the server's --time-scale; divides window and backoff (1) */
  int64_t backoff_base_ms; /* simulated; first backoff before jitter (500) */
  int64_t backoff_cap_ms;  /* simulated; largest backoff before jitter (30000) */
  int max_attempts;        /* attempts per call, the first included (4) */
  int alert_windows;       /* alert when this many windows run back to back; 0 = never (3) */
  fm_strategy strategy;    /* FM_STRATEGY_ESCALATE */
} fm_policy;

/* The defaults, in one place: fleetdrill's --help and docs/retry-design.md read them here. */
#define FM_POLICY_DEFAULT_WINDOW_S 1800.0
#define FM_POLICY_DEFAULT_BACKOFF_BASE_MS 500
#define FM_POLICY_DEFAULT_BACKOFF_CAP_MS 30000
#define FM_POLICY_DEFAULT_MAX_ATTEMPTS 4
#define FM_POLICY_DEFAULT_ALERT_WINDOWS 3

/* Fills *p with the defaults above. */
void fm_policy_default(fm_policy *p);

/* The policy's memory and the metrics, one per client. Zero it to start. */
typedef struct fm_state {
  int64_t priority_until_ms;              /* Priority is on while now < this; 0 = never escalated */
  int64_t escalations;                    /* windows opened */
  int64_t requests;                       /* attempts answered or failed, retries included */
  int64_t status_503, status_429, errors; /* errors: network, stream, other statuses */
  int64_t on_priority;                    /* attempts sent on Priority */
  int consecutive_windows;                /* windows in the current back-to-back run */
  int64_t alerts;                         /* times the alert fired */
} fm_state;

/* What an attempt ended with, as the policy sees it. */
typedef struct fm_attempt {
  fm_client_tier tier;    /* the tier the attempt was sent on */
  int attempt;            /* 1 for the first attempt of a call */
  int status;             /* HTTP status, FM_STATUS_NETWORK or FM_STATUS_STREAM_ERROR */
  int64_t retry_after_ms; /* from retry-after-ms, else Retry-After; -1 when absent */
} fm_attempt;

typedef struct fm_decision {
  bool retry;          /* send again on `tier` after `delay_ms`; else the call ends */
  fm_client_tier tier; /* tier of the retry */
  int64_t delay_ms;    /* client-clock ms to wait before the retry */
  fm_outcome outcome;  /* how the call ended, when !retry */
  bool escalated;      /* this answer opened a Priority window */
  bool alert;          /* this escalation made the run alert_windows long */
} fm_decision;

/* The tier for a new call on route `route` at `now_ms`. Never fails. */
fm_client_tier fm_policy_start(const fm_state *s, const fm_policy *p, fm_route_class route,
                               int64_t now_ms);

/* Decides what follows attempt `a` at `now_ms` and updates *s. `jitter` is
 * a draw in [0, 1) that spreads backoffs; the decision is otherwise a pure
 * function of its arguments. Never fails. */
fm_decision fm_policy_decide(fm_state *s, const fm_policy *p, fm_route_class route,
                             const fm_attempt *a, int64_t now_ms, double jitter);

/* The window length and backoff for attempt n, in client-clock ms. */
int64_t fm_policy_window_ms(const fm_policy *p);
int64_t fm_policy_backoff_ms(const fm_policy *p, int attempt, double jitter);

/* Retry-After from the two headers (either may be NULL): retry-after-ms
 * first, then Retry-After in seconds. Returns -1 when neither parses. */
int64_t fm_parse_retry_after(const char *retry_after_ms, const char *retry_after);

/* status_503 / requests, 0 when nothing was sent. */
double fm_state_503_rate(const fm_state *s);

/* Whether Priority is on for non-batch calls at now_ms. */
bool fm_state_priority_on(const fm_state *s, int64_t now_ms);

const char *fm_outcome_name(fm_outcome o);   /* "ok", "shed", "limited", "error" */
const char *fm_tier_name(fm_client_tier t);  /* "standard", "priority" */
const char *fm_route_name(fm_route_class r); /* "interactive", "agent", "batch" */
const char *fm_strategy_name(fm_strategy s); /* "escalate", "backoff", "naive", "always-priority" */
int fm_strategy_parse(const char *name, fm_strategy *out); /* 0, or -1 for an unknown name */
int fm_route_parse(const char *name, fm_route_class *out); /* 0, or -1 for an unknown name */

/* The wire a client speaks; the policy, the statuses and the result are the same on both.
 *   FM_API_CHAT       POST base_url/chat/completions (the default)
 *   FM_API_RESPONSES  POST base_url/responses: the request (chat-form messages and tools
 *                     included) is sent as Responses input items, with `store: false`
 *                     since every call carries its whole conversation; the answer's output
 *                     items and typed stream events are read back into an fm_chat_result
 *                     (see fm_chat_request below). */
typedef enum { FM_API_CHAT, FM_API_RESPONSES } fm_client_api;
const char *fm_api_name(fm_client_api a);               /* "chat", "responses" */
int fm_api_parse(const char *name, fm_client_api *out); /* 0, or -1 for an unknown name */

/* ---- The client ---- */

typedef int64_t (*fm_clock_fn)(void *ctx);          /* monotonic milliseconds */
typedef void (*fm_sleep_fn)(void *ctx, int64_t ms); /* wait that long on the same clock */

typedef struct fm_alert {
  int consecutive_windows;
  int64_t escalations;
  int64_t priority_until_ms;
  double rate_503;
} fm_alert;
typedef void (*fm_alert_fn)(void *ctx, const fm_alert *alert);

typedef struct fm_client_config {
  const char *base_url; /* e.g. http://127.0.0.1:8080/v1 (no trailing /chat/completions) */
  fm_client_api api;    /* FM_API_CHAT (default) or FM_API_RESPONSES */
  const char *api_key;
  const char *model;
  fm_route_class route;
  fm_policy policy;
  fm_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
  fm_sleep_fn sleep; /* NULL: nanosleep; used by fm_chat only */
  void *clock_ctx;   /* passed to clock and sleep */
  fm_alert_fn on_alert;
  void *alert_ctx;
  uint64_t seed;   /* jitter draws; 0 picks a fixed default */
  long timeout_ms; /* per attempt; 0: 120000 */
} fm_client_config;

typedef struct fm_client fm_client;

/* Fills *cfg with the defaults (policy included); the caller then sets
 * base_url, api_key and model. */
void fm_client_config_default(fm_client_config *cfg);

/* A client, or NULL when an argument is missing (or `api` is neither
 * FM_API_CHAT nor FM_API_RESPONSES) or memory runs out. The strings are
 * copied. */
fm_client *fm_client_new(const fm_client_config *cfg);
void fm_client_free(fm_client *c);

/* The policy state and metrics, live. */
const fm_state *fm_client_state(const fm_client *c);
const fm_policy *fm_client_policy(const fm_client *c);
/* Changes the time scale (e.g. after reading /admin/state). */
void fm_client_set_time_scale(fm_client *c, double time_scale);
int64_t fm_client_now(const fm_client *c);

typedef struct fm_chat_request {
  const char *system;    /* optional system message */
  const char *prompt;    /* the user message (required unless `messages` is given) */
  int max_tokens;        /* 0: the server's default */
  bool stream;           /* SSE, with stream_options.include_usage */
  const char *cache_key; /* optional: prompt_cache_key and x-session-affinity */
  const char *api_key;   /* optional: overrides the client's key */
  /* Tool calling. `messages` is the whole conversation as a JSON array text
   * (OpenAI chat messages, tool calls and tool results included); when set,
   * `system` and `prompt` are ignored. `tools` is a JSON array text of
   * {type:"function", function:{name, description, parameters}}, and
   * `tool_choice` is "auto", "none", "required" or a JSON object text. A
   * call whose messages or tools do not parse is refused by fm_call_new.
   *
   * With FM_API_RESPONSES the same fields are sent in the Responses form:
   * `system` (or a first message of role system) becomes `instructions`,
   * `prompt` the `input` string; `messages` become input items (a user,
   * assistant or later system message a message item; an assistant's
   * tool_calls one `function_call` item each, {call_id, name, arguments};
   * a tool message a `function_call_output` {call_id, output}); each tool
   * becomes {type:"function", name, description, parameters, strict};
   * tool_choice {type:"function", function:{name}} becomes {type:"function",
   * name}; max_tokens is `max_output_tokens`, cache_key `prompt_cache_key`.
   * The answer is read back into the same result: message text is
   * `content`, each function_call item a tool call (id = its call_id),
   * finish_reason "length" when the response is incomplete, else
   * "tool_calls" when it made calls, else "stop"; usage input_tokens,
   * input_tokens_details.cached_tokens and output_tokens are prompt, cached
   * and completion tokens. A stream ends at response.completed or
   * response.incomplete; response.failed, an error event or a stream cut
   * before either is a stream error, as on chat. */
  const char *messages;
  const char *tools;
  const char *tool_choice;
} fm_chat_request;

#define FM_TOOL_CALLS_MAX 16 /* tool calls kept per answer; more are dropped */

/* One tool call of an answer, assembled from the stream's deltas when streamed. */
typedef struct fm_tool_call {
  char *id;          /* "call_..." (NULL when the server sent none) */
  char *name;        /* the function's name (NULL when none) */
  char *arguments;   /* the arguments as sent: JSON text ("" when none) */
  bool arguments_ok; /* `arguments` parses (cJSON) as a JSON object */
} fm_tool_call;

typedef struct fm_chat_result {
  fm_outcome outcome;
  int attempts;
  int status;          /* of the last attempt (see FM_STATUS_*) */
  fm_client_tier tier; /* the tier the last attempt was served (or refused) on */
  bool escalated;      /* this call opened a Priority window */
  int64_t prompt_tokens, cached_tokens, completion_tokens;
  int64_t latency_ms; /* first send to end, client clock, backoffs included */
  int64_t last_retry_after_ms;
  char pool[64];            /* x-fleetmock-pool, when the server sent it */
  char error[256];          /* what went wrong, for outcomes other than ok */
  char *content;            /* the assistant text (NULL unless ok); freed by fm_chat_result_free */
  char finish_reason[24];   /* of choices[0] ("stop", "length", "tool_calls"...), "" if none */
                            /* (Responses: from status and calls, see fm_chat_request) */
  fm_tool_call *tool_calls; /* n_tool_calls of them (NULL unless ok); freed with the result */
  int n_tool_calls;
} fm_chat_result;

void fm_chat_result_free(fm_chat_result *r);

/* Runs one chat completion under the policy, blocking (sleeping through
 * backoffs with the client's sleep). Returns 0 with *out filled (look at
 * out->outcome), or -1 when the request is invalid or memory runs out. */
int fm_chat(fm_client *c, const fm_chat_request *req, fm_chat_result *out);

/* ---- The same call, step by step, for an event loop ----
 *
 *   fm_call *call = fm_call_new(client, &req);
 *   for (;;) {
 *     CURL *e = fm_call_easy(call);           // add to your multi, run it
 *     int64_t wait = fm_call_done(call, rc);  // when the multi says it ended
 *     if (wait < 0) break;                    // finished: fm_call_result(call)
 *     ...wait `wait` ms on the client's clock...
 *   }
 *   fm_call_free(call);
 *
 * The easy handle belongs to the call; CURLINFO_PRIVATE holds the call. */
typedef struct fm_call fm_call;

/* A call (the request is copied), or NULL for a bad request (no prompt nor
 * messages, messages or tools that are not JSON arrays) or no memory. */
fm_call *fm_call_new(fm_client *c, const fm_chat_request *req);
/* The easy handle set up for the next attempt, or NULL when the call has finished. */
CURL *fm_call_easy(fm_call *call);
/* After the transfer ended with `rc`: ms to wait before the next attempt,
 * or -1 when the call has finished. */
int64_t fm_call_done(fm_call *call, CURLcode rc);
/* The result so far (final once fm_call_done returned -1). */
const fm_chat_result *fm_call_result(const fm_call *call);
/* The tier the next (or last) attempt is sent on. */
fm_client_tier fm_call_tier(const fm_call *call);
void *fm_call_userdata(const fm_call *call);
void fm_call_set_userdata(fm_call *call, void *userdata);
void fm_call_free(fm_call *call);

#ifdef __cplusplus
}
#endif
#endif

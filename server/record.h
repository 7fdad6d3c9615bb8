/* record.h — --record FILE --upstream URL: fleetmock as a recording proxy
 * (docs/replies.md, "Record and replay").
 *
 * Every inference request (chat/completions, completions, messages) is sent
 * on to the upstream (any OpenAI- or Anthropic-compatible API: a real
 * Fireworks account, or another fleetmock) with its body and its API key
 * headers, and the upstream's answer goes back to the client byte for byte.
 * Each 200 exchange is appended to FILE as one JSON Lines reply rule: the
 * request's match keys (model, route, the last user message, the tool
 * result, the turn), the reply (text, reasoning, tool calls, finish_reason,
 * prompt and cached tokens), how the upstream cut its tokens ("pieces") and
 * its pace ("timing"), with "pace": "recorded" and "count": 1, so that
 * `--replies FILE` replays the exchanges in order. The upstream call runs on
 * a thread of its own, so the loop keeps serving. */
#ifndef FM_RECORD_H
#define FM_RECORD_H

#include "server.h"

/* Once at start in record mode, before any thread (curl_global_init). */
void fm_record_init(void);

/* Proxies r to the upstream and records the exchange; route is
 * "chat/completions", "completions" or "messages". */
void fm_record_proxy(fm_req *r, const char *route);

/* Builds the reply rule for one exchange (exposed for the unit tests):
 * request and response bodies, whether the response is an event stream, the
 * arrival time of each event (ms after the request, one per "\n\n"), and the
 * total time. Returns a cJSON rule (the caller deletes it), or NULL when the
 * answer is not one a rule can hold. */
struct cJSON *fm_record_rule(const char *route, const char *req, size_t req_len, const char *resp,
                             size_t resp_len, bool stream, const double *event_ms, int n_events,
                             double total_ms);

#endif

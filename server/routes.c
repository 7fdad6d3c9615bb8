/* routes.c — the route table. Paths under /inference/v1 and /v1 are the
 * same API (SDKs with a custom base URL call the latter). */
#include "routes.h"

#include "api.h"

#include <string.h>

static bool has_prefix(const char *s, const char *p, const char **rest) {
  size_t n = strlen(p);
  if (strncmp(s, p, n) != 0) return false;
  *rest = s + n;
  return true;
}

static void method_not_allowed(fm_req *r, const char *allow) {
  fm_req_header(r, "Allow", "%s", allow);
  fm_api_error(r, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed on %s; use %s", r->method,
               r->url, allow);
}

/* Returns true when the method is the allowed one; otherwise answers 405.
 * HEAD is allowed wherever GET is (RFC 9110 §9.3.2): the same answer, and
 * http.c leaves the body out. */
static bool want(fm_req *r, const char *method) {
  bool get = strcmp(method, "GET") == 0;
  if (strcmp(r->method, method) == 0 || (get && strcmp(r->method, "HEAD") == 0)) return true;
  method_not_allowed(r, get ? "GET, HEAD" : method);
  return false;
}

static bool authorized(fm_req *r) {
  const char *key = fm_bearer_key(r);
  if (key && !r->srv->cfg.accounts.reject_unknown_keys) return true;
  if (key && fm_accounts_get(&r->srv->accounts, key)) return true;
  if (key) {
    fm_api_error(r, 401, "UNAUTHENTICATED", NULL,
                 "unknown API key: this server only accepts the keys listed in its config "
                 "(accounts.keys); check the key you send");
    return false;
  }
  fm_api_error(r, 401, "UNAUTHENTICATED", NULL,
               "missing API key: send the header 'Authorization: Bearer <your key>'%s (any "
               "non-empty key works unless the config rejects unknown keys)",
               r->kind == FM_ROUTE_ANTHROPIC ? " or 'x-api-key: <your key>'" : "");
  return false;
}

static void health(fm_req *r) {
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, r->srv->draining ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}");
  fm_req_reply(r, r->srv->draining ? 503 : 200, "application/json", &b);
}

static void inference(fm_req *r, const char *rest) {
  r->kind = FM_ROUTE_OPENAI;
  const char *id;
  if (strcmp(rest, "messages") == 0) {
    r->kind = FM_ROUTE_ANTHROPIC;
    if (want(r, "POST") && authorized(r)) fm_api_messages(r);
  } else if (strcmp(rest, "chat/completions") == 0) {
    if (want(r, "POST") && authorized(r)) fm_api_chat(r);
  } else if (strcmp(rest, "completions") == 0) {
    if (want(r, "POST") && authorized(r)) fm_api_completions(r);
  } else if (strcmp(rest, "responses") == 0) {
    if (authorized(r)) fm_api_responses(r, NULL);
  } else if (has_prefix(rest, "responses/", &id) && *id) {
    if (authorized(r)) fm_api_responses(r, id);
  } else if (strcmp(rest, "embeddings") == 0) {
    if (want(r, "POST") && authorized(r)) fm_api_embeddings(r);
  } else if (strcmp(rest, "models") == 0) {
    if (want(r, "GET") && authorized(r)) fm_api_models(r);
  } else if (has_prefix(rest, "models/", &id) && *id) {
    if (want(r, "GET") && authorized(r)) fm_api_model(r, id);
  } else {
    fm_api_error(r, 404, "NOT_FOUND", NULL,
                 "no route %s %s; the API serves chat/completions, completions, messages, "
                 "responses, responses/{id}, embeddings, models and models/{id} under "
                 "/inference/v1 and /v1",
                 r->method, r->url);
  }
}

void fm_route(fm_req *r) {
  const char *rest;
  size_t n = strlen(r->url);
  if (n >= 9 && strcmp(r->url + n - 9, "/messages") == 0) r->kind = FM_ROUTE_ANTHROPIC;
  if (r->head_status) { /* the HTTP layer refused the head or the chunked body */
    static const struct {
      int status;
      const char *code;
    } codes[] = {{400, "INVALID_ARGUMENT"},
                 {431, "REQUEST_HEADER_FIELDS_TOO_LARGE"},
                 {501, "NOT_IMPLEMENTED"},
                 {505, "HTTP_VERSION_NOT_SUPPORTED"}};
    const char *code = "INVALID_ARGUMENT";
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
      if (codes[i].status == r->head_status) code = codes[i].code;
    fm_api_error_msg(r, r->head_status, code, NULL, r->head_why);
  } else if (r->head_bytes > FM_MAX_HEAD_BYTES) {
    fm_req_header_str(r, "Connection", "close");
    fm_api_error(r, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", NULL,
                 "request headers are %zu bytes, more than the %d this server accepts; send "
                 "fewer or shorter headers",
                 r->head_bytes, FM_MAX_HEAD_BYTES);
  } else if (r->length_conflict) {
    fm_api_error(r, 400, "INVALID_ARGUMENT", NULL,
                 "the request has two Content-Length headers with different values; send "
                 "exactly one");
  } else if (r->too_large) {
    fm_api_error(r, 413, "PAYLOAD_TOO_LARGE", NULL,
                 "request body is larger than %zu bytes; send a smaller body (the limit is "
                 "server.max_body_bytes in the config, or --max-body-bytes)",
                 r->srv->cfg.max_body_bytes);
  } else if (strcmp(r->url, "/healthz") == 0) {
    if (want(r, "GET")) health(r);
  } else if (strcmp(r->url, "/metrics") == 0) {
    r->kind = FM_ROUTE_ADMIN;
    if (want(r, "GET")) fm_api_metrics(r);
  } else if (strcmp(r->url, "/ui") == 0 || strcmp(r->url, "/ui/") == 0) {
    r->kind = FM_ROUTE_ADMIN;
    fm_api_ui(r, NULL);
  } else if (has_prefix(r->url, "/ui/", &rest)) {
    r->kind = FM_ROUTE_ADMIN;
    fm_api_ui(r, rest);
  } else if (has_prefix(r->url, "/admin/", &rest)) {
    fm_api_admin(r, rest);
  } else if (has_prefix(r->url, "/inference/v1/", &rest) || has_prefix(r->url, "/v1/", &rest)) {
    inference(r, rest);
  } else {
    fm_api_error(r, 404, "NOT_FOUND", NULL,
                 "no route %s %s; inference routes live under /inference/v1 and /v1", r->method,
                 r->url);
  }
}

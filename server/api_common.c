/* api_common.c — what every API surface shares: error bodies in the
 * caller's wire format, and the glue between a connection and the readers
 * (api_read.h): the request's bytes and headers in, their error record or
 * the live account out. */
#include "api.h"

#include "infer.h"
#include "jsonscan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors --------------------------------------------------------------- */

const char *fm_openai_error_type(int status) {
  switch (status) {
  case 401:
    return "authentication_error";
  case 402: /* OpenAI's type for "check your plan and billing": clients know not to retry it */
    return "insufficient_quota";
  case 404:
    return "error"; /* what the real API sends for an unknown model */
  case 429:
    return "rate_limit_error";
  case 500:
    return "internal_error";
  case 503:
    return "server_error";
  default:
    return "invalid_request_error";
  }
}

/* An error body is JSON, so UTF-8, whatever its message quotes: a URL's %FF
 * arrives as the byte 0xff, and "no route", "no pool named" and the like
 * echo the URL. */
static void put_text(fm_buf *b, const char *text) {
  char *copy = text ? strdup(text) : NULL;
  fm_buf_json_str(b, copy ? fm_utf8_clean(copy) : text);
  free(copy);
}

void fm_openai_error_msg(fm_req *r, int status, const char *code, const char *param,
                         const char *msg) {
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_printf(&b, "{\"error\":{\"object\":\"error\",\"type\":\"%s\",\"code\":\"%s\",\"message\":",
                fm_openai_error_type(status), code);
  put_text(&b, msg);
  fm_buf_puts(&b, ",\"param\":");
  put_text(&b, param);
  fm_buf_puts(&b, "}}");
  fm_req_reply(r, status, "application/json", &b);
  fm_buf_free(&b);
}

void fm_openai_error(fm_req *r, int status, const char *code, const char *param, const char *fmt,
                     ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fm_openai_error_msg(r, status, code, param, msg);
}

/* ---- errors in the caller's format ------------------------------------------ */

static const char *anthropic_type(int status) {
  switch (status) {
  case 401:
    return "authentication_error";
  case 402:
    return "billing_error"; /* Anthropic's 402 type, listed for Fireworks' Messages route too */
  case 403:
    return "permission_error";
  case 404:
    return "not_found_error";
  case 413:
    return "request_too_large";
  case 429:
    return "rate_limit_error";
  case 500:
    return "api_error";
  case 503:
  case 529:
    return "overloaded_error";
  default:
    return "invalid_request_error";
  }
}

void fm_anthropic_error_msg(fm_req *r, int status, const char *code, const char *param,
                            const char *msg) {
  (void)code;
  (void)param;
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_printf(
      &b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", anthropic_type(status));
  put_text(&b, msg);
  fm_buf_printf(&b, "},\"request_id\":\"%s\"}", r->request_id);
  if (!fm_req_has_header(r, "request-id")) fm_req_header(r, "request-id", "%s", r->request_id);
  fm_req_reply(r, status, "application/json", &b);
  fm_buf_free(&b);
}

void fm_api_error_msg(fm_req *r, int status, const char *code, const char *param, const char *msg) {
  if (r->kind == FM_ROUTE_ANTHROPIC)
    fm_anthropic_error_msg(r, status, code, param, msg);
  else
    fm_openai_error_msg(r, status, code, param, msg);
  /* Every refusal before a job goes through here (a job's errors go through
   * its renderer), so this is where the journal sees them. */
  fm_api_journal_refused(r, status, code, msg);
}

void fm_api_error(fm_req *r, int status, const char *code, const char *param, const char *fmt,
                  ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fm_api_error_msg(r, status, code, param, msg);
}

/* ---- between a connection and the readers ------------------------------------ */

static const char *req_header(void *ctx, const char *name) {
  return fm_req_header_in(ctx, name);
}

fm_read_in fm_api_read_in(fm_req *r) {
  return (fm_read_in){.body = r->body.data,
                      .len = r->body.len,
                      .header = req_header,
                      .header_ctx = r,
                      .cfg = &r->srv->cfg,
                      .seed = r->srv->opt.seed};
}

void fm_api_reply_err(fm_req *r, const fm_api_err *e) {
  fm_api_error_msg(r, e->status, e->code, e->has_param ? e->param : NULL, e->message);
}

const char *fm_bearer_key(fm_req *r) {
  return fm_read_api_key(req_header, r, r->kind == FM_ROUTE_ANTHROPIC);
}

bool fm_api_account(fm_req *r, fm_infer_params *p) {
  fm_server *s = r->srv;
  p->account = fm_accounts_get(&s->accounts, fm_bearer_key(r));
  if (p->account) return true;
  fm_infer_params_free(p);
  if (s->cfg.accounts.reject_unknown_keys)
    fm_api_error(r, 401, "UNAUTHENTICATED", NULL,
                 "unknown API key: this server only accepts the keys listed in its config "
                 "(accounts.keys); check the key you send");
  else
    fm_api_error(r, 500, "INTERNAL", NULL, "out of memory creating the account; retry");
  return false;
}

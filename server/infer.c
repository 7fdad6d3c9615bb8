/* infer.c — admission, pacing and generation for one inference request. */
#include "infer.h"

#include "api.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Stop filling a stream buffer past this size and let MHD send it first. */
#define FILL_HIGH_WATER (64 * 1024)

/* Adds the request to its account's totals for the path it was served on.
 * A stream cut short is billed for the tokens it produced. */
static void bill(fm_job *j) {
  if (!j->p.account || !j->status) return;
  fm_metrics *m = &j->srv->metrics;
  fm_metrics_request(m, j->p.route, j->p.model, (int)j->p.path, j->status);
  if (j->status != 200) {
    fm_accounts_bill(&j->srv->accounts, j->p.account, j->p.path, j->status, 0, 0, 0, 0);
    return;
  }
  uint64_t generated = 0;
  for (int i = 0; i < j->p.n; i++)
    generated += j->choices[i].turn.produced;
  const fm_price *price = &j->srv->cfg.models[j->p.model].prices[j->p.path];
  double cost = fm_cost_usd(price, j->p.prompt_tokens, j->p.cached_tokens, generated);
  fm_accounts_bill(&j->srv->accounts, j->p.account, j->p.path, 200, j->p.prompt_tokens,
                   j->p.cached_tokens, generated, cost);
  m->tokens[0][j->p.path] += j->p.prompt_tokens;
  m->tokens[1][j->p.path] += j->p.cached_tokens;
  m->tokens[2][j->p.path] += generated;
  m->cost[j->p.path] += cost;
  fm_metrics_observe(&m->ttft[j->p.path], fm_us_to_s(j->first_token_us - j->arrived_us));
  if (j->done_us)
    fm_metrics_observe(&m->duration[j->p.path], fm_us_to_s(j->done_us - j->arrived_us));
}

static void job_close(fm_req *r) {
  fm_job *j = r->ctx;
  if (!j) return;
  fm_fleet_release(&j->srv->fleet, &j->ticket);
  bill(j);
  fm_api_journal_job(j);
  /* Last use of the account and its limiter: from here it may be evicted. */
  if (j->p.account) fm_accounts_release(&j->srv->accounts, j->p.account);
  if (j->choices) {
    for (int i = 0; i < j->p.n; i++) {
      fm_turn_free(&j->choices[i].turn);
      fm_buf_free(&j->choices[i].tok_ends);
    }
    free(j->choices);
  }
  fm_buf_free(&j->prefix);
  free(j->pace_gaps_ms);
  fm_infer_params_free(&j->p);
  free(j);
  r->ctx = NULL;
}

/* The wait before the next token: the recorded one for a reply replayed at
 * its recorded pace (real milliseconds, in simulated time), else the pool's. */
static uint64_t token_gap(fm_job *j) {
  if (!j->paced) return fm_fleet_token_gap_us(&j->srv->fleet, j->p.pool, &j->timing_rng);
  if (j->n_pace == 0) return 0;
  int k = j->pace_next < j->n_pace ? j->pace_next++ : j->n_pace - 1;
  return (uint64_t)((double)j->pace_gaps_ms[k] * 1000.0 * j->srv->opt.time_scale);
}

/* The stop sequences in the form the generator reads, built once per job. */
static void stop_set(fm_job *j) {
  j->stops.n = j->p.n_stop;
  for (int i = 0; i < j->p.n_stop; i++) {
    j->stops.s[i] = j->p.stop[i];
    j->stops.len[i] = strlen(j->p.stop[i]);
  }
}

/* Keeps a non-streaming token: in its part, and where it ends for logprobs. */
static void keep(fm_job *j, fm_choice *c, int part, const char *tok, size_t n) {
  fm_part *p = &c->turn.parts[part];
  fm_buf_put(&p->text, tok, n);
  if (p->kind == FM_PART_TEXT && n > 0 && (j->p.turn.logprobs || j->p.turn.completion_logprobs)) {
    uint32_t end = (uint32_t)p->text.len;
    fm_buf_put(&c->tok_ends, &end, sizeof(end));
  }
}

/* A choice has produced its last token: its finish reason and its tokens counted. */
static void finish_choice(fm_job *j, fm_choice *c) {
  c->finished = true;
  c->finish_reason = fm_turn_finish_reason(&c->turn, j->p.turn.wire);
  j->completion_tokens += c->turn.produced;
  j->choices_left--;
}

/* Advances every unfinished choice by one token; out == NULL keeps the text
 * in the choice (non-streaming), otherwise the renderer writes it. */
static void step(fm_job *j, fm_buf *out) {
  char tok[FM_GEN_OUT_MAX];
  const fm_renderer *rd = j->render;
  for (int i = 0; i < j->p.n; i++) {
    fm_choice *c = &j->choices[i];
    if (c->finished) continue;
    bool at_end = c->at_end_known ? c->at_end : fm_turn_done(&c->turn);
    if (!at_end) {
      int part;
      size_t n = fm_turn_next(&c->turn, &j->stops, tok, &part);
      if (j->limiter) fm_limiter_generated(j->limiter, 1);
      if (out && part != c->open_part) {
        if (c->open_part >= 0 && rd->stream_part_end) rd->stream_part_end(j, out, i, c->open_part);
        c->open_part = part;
        if (rd->stream_part_start) rd->stream_part_start(j, out, i, part);
      }
      if (out)
        rd->stream_token(j, out, i, part, tok, n);
      else
        keep(j, c, part, tok, n);
      if (c->turn.parts[part].kind == FM_PART_TEXT && n > 0) c->content_tokens++;
      at_end = c->at_end = fm_turn_done(&c->turn);
      c->at_end_known = true;
    }
    if (!at_end) continue;
    finish_choice(j, c);
    if (out && c->open_part >= 0 && rd->stream_part_end)
      rd->stream_part_end(j, out, i, c->open_part);
    if (out) rd->stream_choice_end(j, out, i, c->finish_reason);
  }
}

/* What step(j, NULL) until every choice is finished does, a part at a time
 * (fm_turn_run), for a request with no stop sequences and no logprobs: the
 * same text, counts and finish reasons. Returns the steps that would have
 * taken (the most tokens of any choice, at least 1): one token gap each
 * after the first. */
static uint32_t produce_all(fm_job *j) {
  uint32_t steps = 1, tokens = 0;
  for (int i = 0; i < j->p.n; i++) {
    fm_choice *c = &j->choices[i];
    if (c->finished) continue;
    uint32_t before = c->turn.produced;
    while (!fm_turn_done(&c->turn)) {
      int part;
      uint32_t nonempty;
      if (fm_turn_run(&c->turn, &part, &nonempty) == 0) break;
      if (c->turn.parts[part].kind == FM_PART_TEXT) c->content_tokens += nonempty;
    }
    uint32_t made = c->turn.produced - before;
    tokens += made;
    if (made > steps) steps = made;
    c->at_end = c->at_end_known = true;
    finish_choice(j, c);
  }
  if (j->limiter) fm_limiter_generated(j->limiter, tokens);
  return steps;
}

/* Reply rules and faults have seen the request: the facts and the parsed
 * body are not needed while the job runs (the body tree is the reader's
 * scratch tree, whose arena the next request wants). */
static void matched(fm_job *j, fm_match_facts *f) {
  fm_match_facts_free(f);
  cJSON_Delete(j->p.body_tree);
  j->p.body_tree = NULL;
}

static void end_generation(fm_job *j, uint64_t now) {
  j->done_us = now;
  fm_fleet_release(&j->srv->fleet, &j->ticket); /* the slot is free the moment generation ends */
}

/* A stream fault's moment has come: an error event, a dropped connection,
 * or a stall that holds the slot until the client gives up. */
static void stream_fault(fm_job *j, fm_buf *out, uint64_t now, uint64_t *next_due, bool *done) {
  switch (j->fault.kind) {
  case FM_FAULT_STALL:
    if (!j->req->peer_gone) {
      *next_due = UINT64_MAX;
      return;
    }
    /* the client gave up on the stall: close the connection */
    __attribute__((fallthrough));
  case FM_FAULT_DISCONNECT:
    end_generation(j, now);
    j->req->drop = true;
    j->closed = true;
    *done = true;
    return;
  default:
    end_generation(j, now);
    j->render->stream_error(j, out, 503, "SERVICE_OVERLOADED",
                            "injected fault: the stream failed mid-way (x-fleetmock-fault or "
                            "/admin/faults); retry the request");
    j->closed = true;
    *done = true;
  }
}

static void stream_fill(fm_req *r, fm_buf *out, uint64_t now, uint64_t *next_due, bool *done) {
  fm_job *j = r->ctx;
  if (j->closed) {
    *done = true;
    return;
  }
  if (j->srv->force_end) {
    end_generation(j, now);
    j->render->stream_error(j, out, 503, "SERVICE_UNAVAILABLE",
                            "the server is shutting down and its grace period ended; retry the "
                            "request against a running server");
    j->closed = true;
    *done = true;
    return;
  }
  if (!j->opened && j->render->open_early) {
    j->render->stream_open(j, out);
    j->opened = true;
    j->next_ping_us = now + j->render->ping_us;
  }
  while (j->choices_left > 0 && now >= j->next_due_us && out->len < FILL_HIGH_WATER) {
    if (!j->opened) {
      j->render->stream_open(j, out);
      j->opened = true;
    }
    if (j->has_fault && j->steps >= j->fault.after_tokens) {
      if (out->len > 0 && j->fault.kind != FM_FAULT_ERROR) {
        *next_due = now; /* let the tokens before the fault go out first */
        return;
      }
      stream_fault(j, out, now, next_due, done);
      return;
    }
    j->first_token_sent = true;
    j->steps++;
    step(j, out);
    j->next_due_us += token_gap(j);
  }
  if (j->choices_left == 0) {
    if (!j->opened) { /* zero-token completions still open the stream */
      j->render->stream_open(j, out);
      j->opened = true;
    }
    end_generation(j, now);
    j->render->stream_close(j, out);
    j->closed = true;
    *done = true;
    return;
  }
  *next_due = j->next_due_us;
  if (j->render->ping_us && !j->first_token_sent) { /* keep-alive while the model "thinks" */
    if (now >= j->next_ping_us) {
      j->render->stream_ping(j, out);
      j->next_ping_us = now + j->render->ping_us;
    }
    if (j->next_ping_us < *next_due) *next_due = j->next_ping_us;
  }
}

/* About what a non-streaming body takes: the text generated and ~420 bytes
 * of JSON around it (logprobs grow it further), so the body is allocated
 * once, not grown through 256, 512, 1024 ... Kept tight on purpose: a
 * buffer of 1 KiB comes from glibc's per-thread cache, one of 2 KiB from its
 * large bins, where every allocation first consolidates the fast bins
 * (malloc_consolidate, ~1 400 instructions here). */
static size_t answer_bytes(const fm_job *j) {
  size_t n = 320;
  for (int i = 0; i < j->p.n; i++) {
    const fm_turn *t = &j->choices[i].turn;
    n += 192;
    for (int k = 0; k < t->n_parts; k++)
      n += t->parts[k].text.len + t->parts[k].text.len / 8; /* and its escapes */
  }
  return n;
}

static void reply_full(fm_req *r) {
  fm_job *j = r->ctx;
  fm_server *s = r->srv;
  if (s->force_end) {
    j->render->error(r, 503, "SERVICE_UNAVAILABLE", NULL,
                     "the server is shutting down and its grace period ended; retry the "
                     "request against a running server");
    return;
  }
  if (j->has_fault && j->fault.kind == FM_FAULT_STALL && !r->peer_gone && !s->force_end) {
    fm_req_park(r, reply_full); /* never answers; wakes only when the client leaves */
    return;
  }
  if (r->peer_gone) {
    r->drop = true;
    return;
  }
  end_generation(j, fm_server_now(s));
  if (j->has_fault && j->fault.kind == FM_FAULT_DISCONNECT) {
    r->drop = true;
    return;
  }
  if (j->has_fault) {
    j->status = 503;
    j->render->error(r, 503, "SERVICE_OVERLOADED", NULL,
                     "injected fault: the request failed (x-fleetmock-fault or "
                     "/admin/faults); retry the request");
    return;
  }
  fm_req_header_secs(r, "fireworks-server-processing-time", j->done_us - j->arrived_us);
  fm_buf body;
  fm_buf_init(&body);
  fm_buf_reserve(&body, answer_bytes(j));
  j->render->body(j, &body);
  fm_req_reply(r, 200, "application/json", &body);
  fm_buf_free(&body);
}

/* The account's limits for this model, and (extension) what is left of them. */
static void ratelimit_headers(fm_job *j) {
  const fm_limiter *l = j->limiter;
  if (!l) return;
  fm_req *r = j->req;
  /* Integers, written without printf: every response carries these. */
  fm_req_header_int(r, "X-Ratelimit-Limit-Tokens-Prompt", llround(l->b[FM_LIMIT_PROMPT].limit));
  fm_req_header_int(r, "X-Ratelimit-Limit-Tokens-Cache-Adjusted-Prompt",
                    llround(l->b[FM_LIMIT_UNCACHED].limit));
  fm_req_header_int(r, "X-Ratelimit-Limit-Tokens-Generated",
                    llround(l->b[FM_LIMIT_GENERATED].limit));
  if (!j->srv->cfg.accounts.ratelimit_extension_headers) return;
  static const char *const names[FM_LIMIT_N] = {
      NULL, "x-ratelimit-remaining-tokens-prompt",
      "x-ratelimit-remaining-tokens-cache-adjusted-prompt",
      "x-ratelimit-remaining-tokens-generated"};
  for (int k = FM_LIMIT_PROMPT; k < FM_LIMIT_N; k++)
    fm_req_header_int(r, names[k], l->b[k].level > 0 ? (long long)l->b[k].level : 0LL);
  fm_req_header_int(r, "x-ratelimit-limit-requests", llround(l->b[FM_LIMIT_REQUESTS].limit));
  fm_req_header_int(r, "x-ratelimit-remaining-requests",
                    l->b[FM_LIMIT_REQUESTS].level > 0 ? (long long)l->b[FM_LIMIT_REQUESTS].level
                                                      : 0LL);
  if (fm_limiter_over(l)) fm_req_header_str(r, "x-ratelimit-over-limit", "yes");
}

static void fleet_headers(fm_job *j, uint64_t now) {
  fm_req *r = j->req;
  fm_req_header_str(r, "x-fleetmock-pool", j->srv->fleet.pools[j->p.pool].cfg.name);
  fm_fleet_replica_cache(&j->srv->fleet, j->p.pool, &j->replica, j->p.affinity);
  fm_req_header_int(r, "x-fleetmock-replica", j->replica.index);
  fm_req_header_str(r, "x-fleetmock-service-tier", fm_path_names[j->p.path]);
  fm_req_header_int(r, "x-fleetmock-queue-ms", (long long)((now - j->arrived_us + 500) / 1000));
}

/* A spent budget: 402, as the real API answers when an account's spend limit
 * is reached. Waiting does not help (the budget is monthly and fleetmock's
 * spend never resets by itself), so it carries no Retry-After and says
 * x-should-retry: false, which Stainless SDKs obey. */
static void over_budget(fm_job *j) {
  fm_server *s = j->srv;
  fm_account *acc = j->p.account;
  j->status = 402;
  fm_accounts_refused(&s->accounts, acc, FM_LIMIT_BUDGET);
  s->metrics.over_budget++;
  fm_req_header_str(j->req, "x-should-retry", "false");
  ratelimit_headers(j);
  char msg[600];
  snprintf(msg, sizeof(msg),
           "spend limit reached: this account has spent $%.6f of its $%.6f monthly budget; "
           "raise accounts.limits.budget_usd (or the key's own limits.budget_usd) in the config, "
           "or POST /admin/reset to zero the spend; retrying will not help",
           acc->spent_usd, acc->limits->budget_usd);
  j->render->error(j->req, 402, "BUDGET_EXCEEDED", NULL, msg);
}

/* 429: say which limit, its value, and when to retry, in simulated and real time. */
static void rate_limited(fm_job *j, fm_limit_verdict v) {
  fm_server *s = j->srv;
  fm_account *acc = j->p.account;
  j->status = 429;
  fm_accounts_refused(&s->accounts, acc, v.hit);
  s->metrics.limited[v.hit]++;
  double real_s = (double)v.retry_after_us / 1e6 / s->opt.time_scale;
  long retry_s = (long)ceil(real_s);
  if (retry_s < 1) retry_s = 1;
  fm_req_header(j->req, "Retry-After", "%ld", retry_s);
  fm_req_header(j->req, "retry-after-ms", "%.0f", ceil(real_s * 1000.0));
  ratelimit_headers(j);
  char msg[600];
  const char *model = s->cfg.models[j->p.model].id;
  static const char *const what[FM_LIMIT_N] = {"requests per minute", "prompt tokens per second",
                                               "uncached prompt tokens per second",
                                               "generated tokens per second"};
  snprintf(msg, sizeof(msg),
           "rate limit exceeded: %s for %s on this account is %.0f (limit \"%s\"); retry after "
           "%.3f s (Retry-After) and ramp up gradually: limits grow while you use most of them",
           what[v.hit], model, v.limit, fm_limit_names[v.hit], real_s);
  j->render->error(j->req, 429, "RATE_LIMITED", NULL, msg);
}

static const char *fault_code(int status) {
  switch (status) {
  case 400:
    return "INVALID_ARGUMENT";
  case 401:
    return "UNAUTHENTICATED";
  case 403:
    return "PERMISSION_DENIED";
  case 404:
    return "NOT_FOUND";
  case 408:
    return "DEADLINE_EXCEEDED";
  case 429:
    return "RATE_LIMITED";
  case 503:
    return "SERVICE_OVERLOADED";
  case 529:
    return "SERVICE_OVERLOADED";
  default:
    return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

/* A fault chose this request: the header's own, else the first stored one
 * that matches and fires. Returns true when the request was answered. */
static bool apply_fault(fm_job *j, fm_match_facts *facts) {
  fm_req *r = j->req;
  fm_server *s = j->srv;
  fm_fault_action a;
  if (j->p.fault_kind == FM_HEADER_FAULT_BAD) {
    j->render->error(r, 400, "INVALID_ARGUMENT", NULL,
                     "x-fleetmock-fault: must be an error status 400-599 such as 503, or error@N, "
                     "disconnect@N or stall@N (N tokens before the fault)");
    return true;
  }
  if (j->p.fault_kind == FM_HEADER_FAULT_SET) {
    a = j->p.header_fault;
  } else {
    const fm_fault *f = s->faults.head ? fm_faults_fire(&s->faults, facts) : NULL;
    if (!f) return false;
    a = f->action;
    j->fault_id = f->id;
  }
  s->metrics.faults_fired++;
  if (a.kind != FM_FAULT_STATUS) {
    j->has_fault = true;
    j->fault = a;
    return false;
  }
  j->status = a.status;
  if (a.status == 429) {
    fm_req_header(r, "Retry-After", "1");
    fm_req_header(r, "retry-after-ms", "1000");
  }
  char msg[200];
  snprintf(msg, sizeof(msg), "injected fault: status %d from x-fleetmock-fault or /admin/faults",
           a.status);
  j->render->error(r, a.status, fault_code(a.status), NULL, msg);
  return true;
}

/* A non-streaming body is built whole in memory before it is sent, at about
 * 6 bytes a token, so one request could otherwise take hundreds of MB
 * (n 128 × max_tokens 262000 with ignore_eos). Its total is capped by
 * server.max_nonstream_tokens; a stream costs nothing per token and is not.
 * total is the sum of the targets drawn for the choices, the most they can
 * produce, so the cap holds with or without max_tokens, and a large
 * max_tokens the pool's lengths never reach passes. Returns true when the
 * request was answered (400 naming max_tokens). */
static bool too_long(fm_job *j, uint64_t total) {
  unsigned long long cap = (unsigned long long)j->srv->cfg.max_nonstream_tokens;
  if (j->p.stream || total <= cap) return false;
  char msg[512];
  if (j->p.n > 1)
    snprintf(msg, sizeof(msg),
             "max_tokens: the %d choices (n) would generate up to %llu tokens in all, more than "
             "one non-streaming response may hold (server.max_nonstream_tokens: %llu); lower "
             "max_tokens or n, or stream the response (\"stream\": true)",
             j->p.n, (unsigned long long)total, cap);
  else
    snprintf(msg, sizeof(msg),
             "max_tokens: this response would generate up to %llu tokens, more than one "
             "non-streaming response may hold (server.max_nonstream_tokens: %llu); lower "
             "max_tokens, or stream the response (\"stream\": true)",
             (unsigned long long)total, cap);
  j->render->error(j->req, 400, "INVALID_ARGUMENT", "max_tokens", msg);
  return true;
}

/* server.unmatched "error": no reply rule answers this request. A 404, as
 * WireMock answers an unmatched request: the SDKs do not retry it, and the
 * message names the closest rule and the condition it failed. */
static void unmatched(fm_job *j, fm_match_facts *f) {
  fm_server *s = j->srv;
  j->status = 404;
  const char *failed = NULL;
  const fm_reply_rule *near = fm_replies_closest(&s->replies, f, &failed);
  char msg[512];
  if (near)
    snprintf(msg, sizeof(msg),
             "no reply rule matched this request (server.unmatched is \"error\"); the closest "
             "is rule %u, whose condition \"%s\" does not hold (GET /admin/replies/%u)",
             near->id, failed ? failed : "?", near->id);
  else
    snprintf(msg, sizeof(msg),
             "no reply rule matched this request (server.unmatched is \"error\") and none is "
             "active: add one with POST /admin/replies");
  j->render->error(j->req, 404, "NO_REPLY_RULE", NULL, msg);
}

/* Room for each part's text before it is produced: its planned bytes, or
 * about 7 bytes a word token (words and their spaces), instead of growing
 * it token by token. An estimate short of the text grows as before. */
static void reserve_text(fm_job *j) {
  for (int i = 0; i < j->p.n; i++) {
    fm_turn *t = &j->choices[i].turn;
    for (int k = 0; k < t->n_parts; k++) {
      fm_part *pt = &t->parts[k];
      size_t want = pt->fixed ? pt->bytes.len : (size_t)pt->tokens * 7;
      if (want > 0 && want <= 65536) fm_buf_reserve(&pt->text, want);
    }
  }
}

/* The request holds a slot: send headers, then pace or compute the tokens. */
/* now: the simulated time of the admission decision (the arrival, when it
 * was admitted at once), so the work done since does not count as queueing. */
static void admitted(fm_job *j, uint64_t now) {
  fm_req *r = j->req;
  fm_server *s = j->srv;
  j->status = 200;
  j->admitted_us = now;
  j->decided_us = now;
  j->decided = true;
  if (j->limiter)
    fm_limiter_charge(j->limiter, j->p.prompt_tokens, j->p.prompt_tokens - j->p.cached_tokens);
  fm_cache_insert(fm_fleet_replica_cache(&s->fleet, j->p.pool, &j->replica, j->p.affinity),
                  &j->p.prefix, j->cache_salt);
  uint32_t uncached = j->p.prompt_tokens - j->p.cached_tokens;
  j->first_token_us =
      now + (j->paced ? j->pace_ttft_us : fm_fleet_first_token_us(&s->fleet, j->p.pool, uncached));
  j->next_due_us = j->first_token_us;

  fm_req_header_int(r, "fireworks-prompt-tokens", j->p.prompt_tokens);
  fm_req_header_int(r, "fireworks-cached-prompt-tokens", j->p.cached_tokens);
  fm_req_header_secs(r, "fireworks-server-time-to-first-token", j->first_token_us - j->arrived_us);
  fleet_headers(j, now);
  ratelimit_headers(j);

  if (j->p.stream) {
    r->fill = stream_fill;
    fm_req_stream(r);
    return;
  }
  /* Non-streaming: produce everything now, answer when the last token would be out. */
  reserve_text(j);
  uint64_t due = j->first_token_us;
  if (!j->p.turn.logprobs && !j->p.turn.completion_logprobs && j->stops.n == 0) {
    uint32_t k = produce_all(j);
    /* the pool's gaps are 0 under --timing instant (and draw nothing): no loop */
    if (j->paced || !s->fleet.instant)
      for (; k > 1; k--)
        due += token_gap(j);
  } else {
    bool first = true;
    while (j->choices_left > 0) {
      if (!first) due += token_gap(j);
      first = false;
      step(j, NULL);
    }
  }
  if (due <= now)
    reply_full(r);
  else
    fm_req_wait_until(r, due, reply_full);
}

static void on_shed(fm_job *j, uint64_t now) {
  fm_pool *p = &j->srv->fleet.pools[j->p.pool];
  j->status = 503;
  j->decided_us = now;
  j->decided = true;
  j->srv->metrics.sheds[(size_t)j->p.pool * FM_TIER_N + j->p.tier]++;
  fm_req_header_int(j->req, "fireworks-prompt-tokens", j->p.prompt_tokens);
  fm_req_header_int(j->req, "fireworks-cached-prompt-tokens", j->p.cached_tokens);
  fleet_headers(j, now);
  ratelimit_headers(j);
  char msg[512];
  snprintf(msg, sizeof(msg),
           "Service overloaded: pool %s is shedding %s traffic (utilisation %.2f). Priority is "
           "shed last: retry with service_tier \"priority\", or back off and retry later.",
           p->cfg.name, fm_path_names[j->p.path], fm_pool_utilisation(p));
  j->render->error(j->req, 503, "SERVICE_OVERLOADED", NULL, msg);
}

static void after_queue(fm_req *r) {
  fm_job *j = r->ctx;
  if (r->peer_gone) { /* nobody to answer; MHD ends the request */
    j->render->error(r, 499, "CLIENT_CLOSED", NULL, "the client closed the connection");
    return;
  }
  if (j->ticket.state == FM_TICKET_RUNNING)
    admitted(j, fm_server_now(j->srv));
  else
    on_shed(j, fm_server_now(j->srv));
}

/* The client left while queued or waiting for tokens: free the slot now. */
static void job_peer_gone(fm_req *r) {
  fm_job *j = r->ctx;
  if (j) fm_fleet_release(&j->srv->fleet, &j->ticket);
}

static void on_decided(fm_ticket *t, fm_admit outcome) {
  (void)outcome;
  fm_job *j = (fm_job *)((char *)t - offsetof(fm_job, ticket));
  fm_req_wake(j->req);
}

void fm_infer_start(fm_req *r, fm_infer_params *p, const fm_renderer *render) {
  fm_server *s = r->srv;
  fm_job *j = calloc(1, sizeof(*j));
  /* An embeddings request has no choices (n 0): nothing is planned or
   * generated, choices_left starts at 0, and a non-streaming answer goes out
   * at the first-token time (TTFT + prefill of its inputs). */
  fm_choice *choices = calloc(p->n > 0 ? (size_t)p->n : 1, sizeof(fm_choice));
  if (!j || !choices) {
    free(j);
    free(choices);
    fm_infer_params_free(p);
    render->error(r, 500, "INTERNAL", NULL, "out of memory; retry later");
    return;
  }
  j->req = r;
  j->srv = s;
  j->render = render;
  j->p = *p;
  memset(p, 0, sizeof(*p));
  j->choices = choices;
  j->choices_left = (uint32_t)j->p.n;
  j->created = (long long)time(NULL);
  size_t id_len = strnlen(r->request_id, sizeof(j->id) - 1);
  memcpy(j->id, r->request_id, id_len); /* j is zeroed: the id ends in a NUL */
  j->arrived_us = fm_server_now(s);
  fm_rng_seed(&j->timing_rng, fm_rng_next(&s->fleet.rng));
  r->ctx = j;
  r->on_close = job_close;
  r->on_peer_gone = job_peer_gone;
  /* The job points at the account (and into its limiters) until job_close:
   * held, it is never evicted under it. */
  if (j->p.account) fm_accounts_hold(&s->accounts, j->p.account);
  if (j->p.account) fm_req_header_str(r, "x-fleetmock-key-id", j->p.account->key_id);

  stop_set(j);
  /* Reply rules, then faults, see the request as these facts (match.h). */
  fm_match_facts facts = {.model = s->cfg.models[j->p.model].id,
                          .path = (int)j->p.path,
                          .api_key = j->p.account ? j->p.account->key : NULL,
                          .key_id = j->p.account ? j->p.account->key_id : NULL,
                          .route = j->p.route,
                          .test_id = j->p.test_id,
                          .body = r->body.data,
                          .body_len = r->body.len};
  facts.given = j->p.body_tree; /* parsed once, by the reader */
  /* A fault answering with a status comes first: the rule a retry should
   * meet again (a sequence's step) is not used up by a failed attempt. */
  if (apply_fault(j, &facts)) {
    matched(j, &facts);
    return;
  }
  const fm_reply *reply =
      s->replies.head ? fm_replies_pick(&s->replies, &facts, &j->reply_id) : NULL;
  if (!reply && s->cfg.unmatched_error) {
    unmatched(j, &facts);
    matched(j, &facts);
    return;
  }
  if (reply) {
    s->metrics.replies_fired++;
    if (reply->prompt_tokens >= 0) j->p.prompt_tokens = (uint32_t)reply->prompt_tokens;
    if (reply->recorded_pace && !s->opt.instant) {
      j->paced = true;
      j->pace_ttft_us = (uint64_t)((double)reply->ttft_ms * 1000.0 * s->opt.time_scale);
      if (reply->n_gaps && (j->pace_gaps_ms = malloc((size_t)reply->n_gaps * sizeof(uint32_t)))) {
        memcpy(j->pace_gaps_ms, reply->gaps_ms, (size_t)reply->n_gaps * sizeof(uint32_t));
        j->n_pace = reply->n_gaps;
      }
    }
    if (reply->has_fault && !j->has_fault) {
      j->has_fault = true;
      j->fault = reply->fault;
    }
  }
  const fm_pool_cfg *pc = &s->fleet.pools[j->p.pool].cfg;
  long room = s->cfg.models[j->p.model].context_length - (long)j->p.prompt_tokens;
  uint64_t total = 0; /* the most tokens the choices can generate in all */
  const fm_model_cfg *mc = &s->cfg.models[j->p.model];
  uint32_t limit = j->p.max_tokens;
  if (room > 0 && (!limit || (long)limit > room)) limit = (uint32_t)room;
  for (int i = 0; i < j->p.n; i++) {
    uint64_t seed = fm_gen_seed(j->p.seed, j->p.prompt_digest, (uint32_t)i);
    uint32_t target;
    if (j->p.ignore_eos && j->p.max_tokens) {
      target = j->p.max_tokens;
    } else {
      fm_rng lr;
      fm_rng_seed(&lr, seed ^ 0x1e46e7ULL);
      target = fm_gen_draw_length(&lr, pc->out_min, pc->out_mean, pc->out_max);
    }
    choices[i].open_part = -1;
    bool planned = reply ? fm_turn_plan_reply(&choices[i].turn, reply, &facts, &j->p.turn, seed,
                                              limit, j->p.max_tokens > 0)
                         : fm_turn_plan(&choices[i].turn, &j->p.turn, &mc->agent, seed, target,
                                        limit, j->p.max_tokens > 0);
    if (!planned) {
      matched(j, &facts);
      render->error(r, 500, "INTERNAL", NULL, "out of memory; retry later");
      return;
    }
    total += fm_turn_planned(&choices[i].turn);
  }

  matched(j, &facts);
  if (too_long(j, total)) return;

  /* Prompt cache: the replica this request lands on, and what it already holds. */
  fm_pool *pool = &s->fleet.pools[j->p.pool];
  fm_account *acc = j->p.account;
  j->replica = fm_fleet_pick_replica(&s->fleet, j->p.pool, j->p.affinity);
  j->cache_salt =
      fm_mix64(fm_hash64(acc->key_id, strlen(acc->key_id), 0) ^
               (j->p.isolation ? fm_hash64(j->p.isolation, strlen(j->p.isolation), 1) : 0));
  uint64_t cached =
      (uint64_t)fm_cache_lookup(&pool->caches[j->replica.index], &j->p.prefix, j->cache_salt) *
      FM_CACHE_BLOCK_TOKENS;
  j->p.cached_tokens = (uint32_t)(cached < j->p.prompt_tokens ? cached : j->p.prompt_tokens);
  if (reply && reply->cached_tokens >= 0)
    j->p.cached_tokens = (uint32_t)(reply->cached_tokens < j->p.prompt_tokens ? reply->cached_tokens
                                                                              : j->p.prompt_tokens);
  if (!j->p.embed.n) /* embeddings never look in the prompt cache */
    fm_accounts_cache_lookup(&s->accounts, acc, j->p.cached_tokens > 0);

  /* Account limits come before the fleet: a 429 never takes a slot. */
  uint64_t now = j->arrived_us;
  j->limiter = fm_account_limiter(acc, j->p.model, s->cfg.n_models, now);
  if (acc->limits->budget_usd > 0 && acc->spent_usd >= acc->limits->budget_usd) {
    over_budget(j);
    return;
  }
  if (j->limiter) {
    fm_limit_verdict v = fm_limiter_check(j->limiter, acc->limits, now, j->p.prompt_tokens,
                                          j->p.prompt_tokens - j->p.cached_tokens);
    if (!v.ok) {
      rate_limited(j, v);
      return;
    }
  }

  j->ticket.decided = on_decided;
  switch (fm_fleet_admit(&s->fleet, &j->ticket, j->p.pool, j->p.tier)) {
  case FM_ADMIT_OK:
    admitted(j, j->arrived_us);
    break;
  case FM_ADMIT_QUEUED:
    fm_req_park(r, after_queue);
    break;
  case FM_ADMIT_SHED:
    on_shed(j, j->arrived_us);
    break;
  }
}

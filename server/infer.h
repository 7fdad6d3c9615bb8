/* infer.h — one inference request from admission to its last token.
 *
 * The API modules translate a request (its body and the headers it carries)
 * into fm_infer_params and supply a renderer for their wire format; this
 * module does the rest the same way for every API: admission on the fleet,
 * time to first token, token pacing, generation, usage and the final
 * events. It answers through the request but never reads it. */
#ifndef FM_INFER_H
#define FM_INFER_H

#include "buf.h"
#include "cache.h"
#include "faults.h"
#include "fleet.h"
#include "infer_params.h"
#include "server.h"
#include "textgen.h"
#include "turn.h"

typedef struct fm_job fm_job;

/* How one API writes what the job produces. */
typedef struct fm_renderer {
  /* Stream: when true, stream_open runs at admission (before the first
   * token) and stream_ping every ping_us while waiting for that token. */
  bool open_early;
  uint64_t ping_us;
  void (*stream_ping)(fm_job *j, fm_buf *out);
  /* Stream: first event(s), before any token. */
  void (*stream_open)(fm_job *j, fm_buf *out);
  /* Stream: a part of a choice's turn begins (before its first token); may be NULL. */
  void (*stream_part_start)(fm_job *j, fm_buf *out, int choice, int part);
  /* Stream: one token of one part of one choice (len may be 0: held back). */
  void (*stream_token)(fm_job *j, fm_buf *out, int choice, int part, const char *text, size_t len);
  /* Stream: a part has ended (after its last token); may be NULL. */
  void (*stream_part_end)(fm_job *j, fm_buf *out, int choice, int part);
  /* Stream: a choice has finished. */
  void (*stream_choice_end)(fm_job *j, fm_buf *out, int choice, const char *finish_reason);
  /* Stream: everything after the last choice ended (usage, terminators). */
  void (*stream_close)(fm_job *j, fm_buf *out);
  /* Stream: a failure after the stream started; the stream ends after it. */
  void (*stream_error)(fm_job *j, fm_buf *out, int status, const char *code, const char *msg);
  /* Non-streaming body. */
  void (*body)(fm_job *j, fm_buf *out);
  /* Error response before anything was sent. */
  void (*error)(fm_req *r, int status, const char *code, const char *param, const char *msg);
} fm_renderer;

typedef struct fm_choice {
  fm_turn turn;
  bool finished;
  bool at_end_known, at_end; /* fm_turn_done as of the last token (steps read it once each) */
  const char *finish_reason;
  int open_part;           /* the part whose tokens are going out, -1 before the first */
  uint32_t content_tokens; /* tokens of text parts so far: the logprobs index */
  fm_buf tok_ends;         /* non-streaming with logprobs: uint32 end offsets of the text tokens */
} fm_choice;

struct fm_job {
  fm_req *req;
  fm_server *srv;
  const fm_renderer *render;
  fm_infer_params p;
  fm_ticket ticket;
  fm_rng timing_rng;
  char id[40];
  long long created;   /* unix seconds */
  uint64_t arrived_us; /* simulated time the request arrived */
  uint64_t admitted_us;
  uint64_t decided_us; /* simulated time the fleet admitted or shed it (when decided) */
  bool decided;
  uint64_t first_token_us; /* simulated time the first token is due */
  uint64_t next_due_us;
  uint64_t done_us;
  uint32_t completion_tokens;
  int status;         /* what the client was answered: 200, 402, 429, or 503 when shed */
  fm_replica replica; /* picked on arrival; checked again at admission (it may have queued) */
  uint64_t cache_salt;
  fm_limiter *limiter; /* the account's buckets for this model */
  uint32_t reply_id;   /* the reply rule that answered it (0: none) */
  bool paced;          /* a recorded reply's own pace, not the pool's */
  uint64_t pace_ttft_us;
  uint32_t *pace_gaps_ms; /* owned */
  int n_pace, pace_next;
  uint32_t fault_id; /* the stored fault that fired (0: none, or the header's own) */
  bool has_fault;    /* a stream fault waits for its token count */
  fm_fault_action fault;
  uint32_t steps; /* decode steps taken (tokens per choice) */
  uint32_t choices_left;
  bool opened;
  int render_state; /* the renderer's own (Anthropic: the content block open) */
  bool closed;
  bool first_token_sent;
  uint64_t next_ping_us;
  fm_buf prefix; /* a renderer's per-stream constant chunk prefix, built once */
  fm_choice *choices;
  fm_stops stops; /* p.stop as the generator reads it */
};

/* Starts the job for an already validated request; answers through r. Takes
 * ownership of p's strings. */
void fm_infer_start(fm_req *r, fm_infer_params *p, const fm_renderer *render);

/* The service_tier the OpenAI-shaped routes echo for a serving path. */
static inline const char *fm_path_echo(fm_path path) {
  return path == FM_PATH_PRIORITY     ? "priority"
         : path == FM_PATH_BACKGROUND ? "background"
                                      : "default";
}

/* Milliseconds between two simulated times, for headers and perf_metrics. */
static inline double fm_us_to_s(uint64_t us) {
  return (double)us / 1e6;
}

#endif

/* turn.c — planning a turn and taking it one token at a time (turn.h). */
#include "turn.h"

#include "jsonscan.h"
#include "match.h"
#include "replies.h"
#include "rng.h"
#include "schema.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Salts, so each decision draws from its own stream of the choice's seed. */
#define SALT_PLAN 0x7a11ULL
#define SALT_REASONING 0x4ea5ULL
#define SALT_PART 0x9a47ULL
#define SALT_LOGPROB 0x109bULL

static const char id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Tokens in planned bytes: pieces of FM_PIECE_BYTES, never ending inside a
 * UTF-8 character. */
static size_t piece_len(const char *b, size_t len, size_t off) {
  size_t n = len - off < FM_PIECE_BYTES ? len - off : FM_PIECE_BYTES;
  while (off + n < len && ((unsigned char)b[off + n] & 0xC0) == 0x80)
    n++;
  return n;
}

/* A part spread evenly: token k ends at (k+1)/tokens of its bytes, moved on
 * to the end of a character (so a token may be empty). */
static size_t even_len(const fm_part *p) {
  size_t len = p->bytes.len;
  size_t end =
      p->produced + 1 >= p->tokens ? len : (size_t)((uint64_t)(p->produced + 1) * len / p->tokens);
  if (end > p->off + FM_PIECE_MAX) end = p->off + FM_PIECE_MAX; /* the plan keeps it below */
  while (end < len && ((unsigned char)p->bytes.data[end] & 0xC0) == 0x80)
    end++;
  return end > p->off ? end - p->off : 0;
}

/* Whether a fixed part's tokens are all FM_PIECE_BYTES long (the last one
 * shorter): no recorded cut, no spread, nothing to keep whole. */
static bool four_byte_pieces(const fm_part *p) {
  return p->ascii && !p->cuts && !p->even;
}

/* Whether no byte is above 0x7f, eight at a time. */
static bool all_ascii(const char *b, size_t len) {
  uint64_t any = 0;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    any |= w;
  }
  for (; i < len; i++)
    any |= (unsigned char)b[i];
  return !(any & 0x8080808080808080ULL);
}

/* A fixed part's tokens, its pieces; notes whether they are all whole 4-byte ones. */
static uint32_t count_pieces(fm_part *p) {
  const fm_buf *b = &p->bytes;
  p->ascii = all_ascii(b->data, b->len);
  if (p->ascii) return (uint32_t)((b->len + FM_PIECE_BYTES - 1) / FM_PIECE_BYTES);
  uint32_t n = 0;
  for (size_t off = 0; off < b->len; off += piece_len(b->data, b->len, off))
    n++;
  return n;
}

static fm_part *add_part(fm_turn *t, fm_part_kind kind, bool fixed) {
  fm_part *p = &t->parts[t->n_parts++];
  memset(p, 0, sizeof(*p));
  p->kind = kind;
  p->fixed = fixed;
  p->tool = -1;
  p->call = -1;
  fm_buf_init(&p->bytes);
  fm_buf_init(&p->text);
  return p;
}

/* Whether this turn calls tools, and which: fills calls[] with tool indexes. */
static int pick_calls(const fm_turn_spec *s, const fm_model_agent *a, fm_rng *rng, int *calls) {
  if (s->n_tools == 0 || s->tool_choice == FM_TOOLS_NONE) return 0;
  if (s->tool_choice == FM_TOOLS_NAMED) {
    calls[0] = s->named;
    return 1;
  }
  if (s->tool_choice == FM_TOOLS_AUTO) {
    if (s->after_tool_result) return 0;
    if (fm_rng_unit(rng) >= a->auto_probability) return 0;
  }
  int most = s->parallel && s->wire == FM_WIRE_TOOLS ? a->max_parallel : 1;
  if (most > s->n_tools) most = s->n_tools;
  int k = 1 + (int)fm_rng_below(rng, (uint32_t)most);
  /* k distinct tools: the first k of a seeded partial shuffle */
  int order[FM_TOOLS_MAX];
  for (int i = 0; i < s->n_tools; i++)
    order[i] = i;
  for (int i = 0; i < k; i++) {
    int j = i + (int)fm_rng_below(rng, (uint32_t)(s->n_tools - i));
    int tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
    calls[i] = order[i];
  }
  return k;
}

/* The reasoning this turn does before it answers, in tokens. */
static uint32_t reasoning_tokens(const fm_turn_spec *s, const fm_model_agent *a, fm_rng *rng) {
  if (!a->reasoning || s->effort == FM_EFFORT_NONE) return 0;
  uint32_t mean = a->effort_tokens[s->effort];
  uint32_t r = fm_gen_draw_length(rng, (int)(mean / 2), (int)mean, (int)(mean * 2));
  if (s->reasoning_cap && r > s->reasoning_cap) r = s->reasoning_cap;
  return r;
}

static bool plan_answer(fm_turn *t, const fm_turn_spec *s, uint64_t seed, uint32_t text_tokens) {
  if (s->format == FM_FORMAT_TEXT) {
    fm_part *p = add_part(t, FM_PART_TEXT, false);
    p->tokens = text_tokens;
    return true;
  }
  fm_part *p = add_part(t, FM_PART_TEXT, true);
  fm_schema_err e;
  switch (s->format) {
  case FM_FORMAT_JSON_OBJECT:
    fm_schema_generate_object(seed, &p->bytes);
    break;
  case FM_FORMAT_JSON_SCHEMA:
    if (!fm_schema_emit(s->schema, seed, &p->bytes, &e)) fm_buf_puts(&p->bytes, "{}");
    break;
  default:
    if (!fm_grammar_generate(s->grammar, seed, &p->bytes)) fm_buf_puts(&p->bytes, "");
    break;
  }
  p->tokens = count_pieces(p);
  return !p->bytes.oom;
}

static bool plan_call(fm_turn *t, const fm_turn_spec *s, fm_rng *rng, int tool, int call) {
  fm_part *p = add_part(t, FM_PART_TOOL_CALL, true);
  p->tool = tool;
  p->call = call;
  for (int i = 0; i < FM_CALL_ID_LEN; i++)
    p->id[i] = id_chars[fm_rng_below(rng, sizeof(id_chars) - 1)];
  p->id[FM_CALL_ID_LEN] = '\0';
  const fm_schema *schema = s->tools[tool].schema;
  fm_schema_err e;
  if (!schema || !fm_schema_emit(schema, fm_rng_next(rng), &p->bytes, &e)) {
    p->bytes.len = 0;
    fm_buf_puts(&p->bytes, "{}");
  }
  p->tokens = count_pieces(p);
  return !p->bytes.oom;
}

/* Cuts the plan to the limit: later parts lose their tokens first. */
static void apply_limit(fm_turn *t, uint32_t limit, bool max_tokens) {
  uint64_t total = fm_turn_planned(t);
  if (!limit || total < limit) return;
  if (max_tokens) {
    bool words_end = t->n_parts > 0 && !t->parts[t->n_parts - 1].fixed;
    t->capped = total > limit || words_end;
  }
  uint32_t left = limit;
  for (int i = 0; i < t->n_parts; i++) {
    fm_part *p = &t->parts[i];
    if (p->tokens > left) p->tokens = left;
    left -= p->tokens;
  }
  while (t->n_parts > 1 && t->parts[t->n_parts - 1].tokens == 0) {
    t->n_parts--;
    fm_buf_free(&t->parts[t->n_parts].bytes);
    free(t->parts[t->n_parts].name);
    free(t->parts[t->n_parts].cuts);
    t->parts[t->n_parts].name = NULL;
    t->parts[t->n_parts].cuts = NULL;
  }
}

bool fm_turn_plan(fm_turn *t, const fm_turn_spec *s, const fm_model_agent *a, uint64_t seed,
                  uint32_t text_tokens, uint32_t limit, bool max_tokens) {
  memset(t, 0, sizeof(*t));
  t->seed = seed;
  t->stop_index = -1;
  fm_rng rng;
  fm_rng_seed(&rng, seed ^ SALT_PLAN);
  int calls[FM_TOOLS_MAX];
  int n_calls = pick_calls(s, a, &rng, calls);
  fm_rng rr;
  fm_rng_seed(&rr, seed ^ SALT_REASONING);
  uint32_t reasoning = reasoning_tokens(s, a, &rr);
  t->parts = calloc((size_t)(2 + n_calls), sizeof(fm_part));
  if (!t->parts) return false;
  bool ok = true;
  if (reasoning > 0) add_part(t, FM_PART_REASONING, false)->tokens = reasoning;
  if (n_calls == 0) {
    ok = plan_answer(t, s, fm_mix64(seed ^ SALT_PART), text_tokens);
  } else {
    t->calls = true;
    for (int i = 0; i < n_calls && ok; i++)
      ok = plan_call(t, s, &rng, calls[i], i);
  }
  if (!ok) {
    fm_turn_free(t);
    return false;
  }
  apply_limit(t, limit, max_tokens);
  return true;
}

/* A JSON tree with the templates of its strings expanded (a copy). */
static void expand_tree(cJSON *v, fm_match_facts *f, int depth) {
  for (; v && depth < 64; v = v->next) {
    if (cJSON_IsString(v) && strstr(v->valuestring, "{{")) {
      fm_buf b;
      fm_buf_init(&b);
      fm_reply_expand(v->valuestring, f, &b);
      fm_buf_putc(&b, '\0');
      if (!b.oom) cJSON_SetValuestring(v, b.data);
      fm_buf_free(&b);
    }
    if (v->child) expand_tree(v->child, f, depth + 1);
  }
}

static void put_expanded_json(fm_buf *out, const cJSON *v, fm_match_facts *f) {
  cJSON *copy = cJSON_Duplicate(v, true);
  if (!copy) {
    out->oom = true;
    return;
  }
  expand_tree(copy, f, 0);
  fm_json_write(out, copy);
  cJSON_Delete(copy);
}

/* A recorded cut, when it still fits the bytes (a template may have changed them). */
static void take_cuts(fm_part *p, const fm_pieces *pc) {
  if (!pc->n) return;
  uint64_t sum = 0;
  for (int i = 0; i < pc->n; i++) {
    if (pc->len[i] > FM_PIECE_MAX) return;
    sum += pc->len[i];
  }
  if (sum != p->bytes.len) return;
  p->cuts = malloc((size_t)pc->n * sizeof(uint32_t));
  if (!p->cuts) return;
  memcpy(p->cuts, pc->len, (size_t)pc->n * sizeof(uint32_t));
  p->tokens = (uint32_t)pc->n;
}

bool fm_turn_plan_reply(fm_turn *t, const fm_reply *r, fm_match_facts *f, const fm_turn_spec *s,
                        uint64_t seed, uint32_t limit, bool max_tokens) {
  memset(t, 0, sizeof(*t));
  t->seed = seed;
  t->stop_index = -1;
  t->parts = calloc((size_t)(2 + r->n_calls), sizeof(fm_part));
  if (!t->parts) return false;
  fm_rng rng;
  fm_rng_seed(&rng, seed ^ SALT_PLAN);
  const fm_pieces *cuts[2 + FM_REPLY_CALLS_MAX];
  if (r->reasoning) {
    cuts[t->n_parts] = &r->reasoning_pieces;
    fm_reply_expand(r->reasoning, f, &add_part(t, FM_PART_REASONING, true)->bytes);
  }
  for (int i = 0; i < r->n_calls; i++) {
    cuts[t->n_parts] = &r->calls[i].pieces;
    fm_part *p = add_part(t, FM_PART_TOOL_CALL, true);
    p->call = i;
    for (int k = 0; k < s->n_tools && p->tool < 0; k++)
      if (!strcmp(s->tools[k].name, r->calls[i].name)) p->tool = k;
    if (p->tool < 0) p->name = strdup(r->calls[i].name);
    for (int k = 0; k < FM_CALL_ID_LEN; k++)
      p->id[k] = id_chars[fm_rng_below(&rng, sizeof(id_chars) - 1)];
    p->id[FM_CALL_ID_LEN] = '\0';
    if (r->calls[i].arguments_text) /* as recorded: sent exactly as written */
      fm_buf_puts(&p->bytes, r->calls[i].arguments_text);
    else
      put_expanded_json(&p->bytes, r->calls[i].arguments, f);
  }
  t->calls = r->n_calls > 0;
  if (!t->calls) {
    cuts[t->n_parts] = &r->content_pieces;
    fm_part *p = add_part(t, FM_PART_TEXT, true);
    if (r->json)
      put_expanded_json(&p->bytes, r->json, f);
    else if (r->content)
      fm_reply_expand(r->content, f, &p->bytes);
  }
  bool oom = false;
  uint64_t bytes = 0;
  for (int i = 0; i < t->n_parts; i++) {
    fm_part *p = &t->parts[i];
    oom = oom || p->bytes.oom || (p->tool < 0 && p->kind == FM_PART_TOOL_CALL && !p->name);
    p->tokens = count_pieces(p);
    take_cuts(p, cuts[i]);
    bytes += p->bytes.len;
  }
  if (oom) {
    fm_turn_free(t);
    return false;
  }
  /* usage.completion_tokens: exactly that many, each part's share by its bytes (at least 1) */
  if (r->completion_tokens >= 0) {
    uint64_t want = (uint64_t)r->completion_tokens, given = 0;
    for (int i = 0; i < t->n_parts; i++) {
      fm_part *p = &t->parts[i];
      uint64_t share = bytes ? want * p->bytes.len / bytes : want / (uint64_t)t->n_parts;
      if (share < 1) share = 1;
      if (i == t->n_parts - 1) share = want > given ? want - given : 1;
      /* no token longer than FM_PIECE_MAX: too few tokens for the text are raised */
      uint64_t least = (p->bytes.len + FM_PIECE_MAX - 4) / (FM_PIECE_MAX - 3);
      if (share < least) share = least;
      p->tokens = (uint32_t)share;
      p->even = true;
      free(p->cuts); /* the usage given wins over a recorded cut */
      p->cuts = NULL;
      given += share;
    }
  }
  if (r->finish_reason) snprintf(t->finish, sizeof(t->finish), "%s", r->finish_reason);
  apply_limit(t, limit, max_tokens);
  return true;
}

void fm_turn_free(fm_turn *t) {
  for (int i = 0; i < t->n_parts; i++) {
    fm_buf_free(&t->parts[i].bytes);
    fm_buf_free(&t->parts[i].text);
    free(t->parts[i].name);
    free(t->parts[i].cuts);
  }
  free(t->parts);
  t->parts = NULL;
  t->n_parts = 0;
}

uint32_t fm_turn_planned(const fm_turn *t) {
  uint64_t total = 0;
  for (int i = 0; i < t->n_parts; i++)
    total += t->parts[i].tokens;
  return total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
}

/* Skips parts with nothing left to produce. */
static void settle(fm_turn *t) {
  while (t->cur < t->n_parts && t->parts[t->cur].produced >= t->parts[t->cur].tokens)
    t->cur++;
}

bool fm_turn_done(const fm_turn *t) {
  if (t->stopped) return true;
  for (int i = t->cur; i < t->n_parts; i++)
    if (t->parts[i].produced < t->parts[i].tokens) return false;
  return true;
}

/* The byte length of a fixed part's next token. */
static size_t fixed_len(const fm_part *p) {
  if (four_byte_pieces(p)) {
    size_t left = p->bytes.len - p->off;
    return left < FM_PIECE_BYTES ? left : FM_PIECE_BYTES;
  }
  if (!p->cuts) return p->even ? even_len(p) : piece_len(p->bytes.data, p->bytes.len, p->off);
  size_t n = p->cuts[p->produced];
  return n > p->bytes.len - p->off ? p->bytes.len - p->off : n;
}

size_t fm_turn_next(fm_turn *t, const fm_stops *stops, char *out, int *part) {
  settle(t);
  *part = t->cur;
  if (t->cur >= t->n_parts) return 0;
  fm_part *p = &t->parts[t->cur];
  size_t n;
  if (p->fixed) {
    n = fixed_len(p);
    if (n > 0) memcpy(out, p->bytes.data + p->off, n); /* an empty part has no data at all */
    p->off += n;
  } else {
    if (p->produced == 0)
      fm_gen_start(&t->gen, fm_mix64(t->seed ^ (SALT_PART + (uint64_t)t->cur)), p->tokens);
    n = fm_gen_next(&t->gen, p->kind == FM_PART_TEXT ? stops : NULL, out);
    if (t->gen.stopped) {
      t->stopped = true;
      t->stop_index = t->gen.stop_index;
    }
  }
  p->produced++;
  t->produced++;
  if (p->kind == FM_PART_REASONING) t->reasoning_produced++;
  return n;
}

uint32_t fm_turn_run(fm_turn *t, int *part, uint32_t *nonempty) {
  settle(t);
  *part = t->cur;
  *nonempty = 0;
  if (t->cur >= t->n_parts) return 0;
  fm_part *p = &t->parts[t->cur];
  uint32_t left = p->tokens - p->produced;
  if (p->fixed) {
    size_t from = p->off;
    if (four_byte_pieces(p)) {
      /* whole 4-byte pieces, none empty: tokens never outnumber the pieces here */
      size_t end = p->off + (size_t)left * FM_PIECE_BYTES;
      p->off = end < p->bytes.len ? end : p->bytes.len;
      p->produced += left;
      *nonempty = left;
    } else
      for (uint32_t k = 0; k < left; k++) {
        size_t n = fixed_len(p);
        *nonempty += n > 0;
        p->off += n;
        p->produced++;
      }
    fm_buf_put(&p->text, p->bytes.data + from, p->off - from);
  } else {
    /* fm_gen_next's words without its stop handling: each word (after a
     * space but the part's first) copied straight into the text */
    if (p->produced == 0)
      fm_gen_start(&t->gen, fm_mix64(t->seed ^ (SALT_PART + (uint64_t)t->cur)), p->tokens);
    fm_buf *b = &p->text;
    for (uint32_t k = 0; k < left; k++) {
      size_t wl;
      const char *word = fm_gen_word_len(&t->gen.rng, &wl);
      bool space = t->gen.produced++ > 0;
      /* room for the space, a whole padded word (copied as one block) and the NUL */
      if (b->len + FM_TOKEN_MAX_BYTES + 2 > b->cap &&
          !fm_buf_reserve(b, (size_t)(left - k) * 8 + FM_TOKEN_MAX_BYTES + 1))
        continue; /* out of memory: the draws still advance, nothing is kept */
      char *w = b->data + b->len;
      if (space) *w++ = ' ';
      memcpy(w, word, FM_TOKEN_MAX_BYTES);
      b->len = (size_t)(w + wl - b->data);
    }
    if (b->data) b->data[b->len] = '\0';
    p->produced += left;
    *nonempty = left;
  }
  t->produced += left;
  if (p->kind == FM_PART_REASONING) t->reasoning_produced += left;
  return left;
}

const char *fm_turn_finish_reason(const fm_turn *t, fm_tool_wire wire) {
  if (t->finish[0] && !t->capped) return t->finish;
  if (t->stopped) return "stop";
  if (t->capped) return "length";
  if (t->calls) return wire == FM_WIRE_FUNCTIONS ? "function_call" : "tool_calls";
  return "stop";
}

void fm_turn_signature(const fm_turn *t, int part, char *out) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  fm_rng rng;
  fm_rng_seed(&rng, t->seed ^ (0x5194ULL + (uint64_t)part));
  for (int i = 0; i < FM_SIGNATURE_LEN; i++)
    out[i] = b64[fm_rng_below(&rng, 64)];
  out[FM_SIGNATURE_LEN] = '\0';
}

double fm_turn_logprob(uint64_t seed, uint32_t index, int rank) {
  uint64_t h = fm_mix64(seed ^ SALT_LOGPROB ^ ((uint64_t)index << 8));
  /* the chosen token: -0.0001 .. -2.5; each rank after it 0.2 .. 1.2 lower */
  double lp = -0.0001 - 2.5 * (double)(h >> 11) / 9007199254740992.0;
  for (int r = 1; r <= rank; r++) {
    h = fm_mix64(h + (uint64_t)r);
    lp -= 0.2 + (double)(h >> 11) / 9007199254740992.0;
  }
  return lp;
}

void fm_turn_alt_token(uint64_t seed, uint32_t index, int rank, char *out) {
  fm_rng rng;
  fm_rng_seed(&rng, seed ^ SALT_LOGPROB ^ ((uint64_t)index << 8) ^ (uint64_t)rank);
  const char *w = fm_gen_word(&rng);
  size_t n = 0;
  if (index > 0) out[n++] = ' ';
  size_t wl = strlen(w);
  memcpy(out + n, w, wl);
  out[n + wl] = '\0';
}

/* api_embeddings.c — POST embeddings: the OpenAI-shaped embeddings route.
 *
 * The reader (api_read_embeddings.c) checks the request into
 * fm_infer_params with its inputs in p.embed; the request then runs through
 * infer.c like any other (faults, account limits, admission on the model's
 * pool, billing on its input tokens, the journal), as a job with no choices
 * that answers at its first-token time. This file only writes the answer:
 * one vector per input from embed.c, as numbers or as base64 float32. */
#include "api.h"

#include "embed.h"
#include "infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Vectors up to this size live on the stack while the body is written. */
#define STACK_DIMS 4096

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The first k values of v as little-endian float32 bytes, base64 (RFC 4648,
 * padded), written straight into the reserved buffer. */
static void put_base64(fm_buf *b, const float *v, int k) {
  size_t n = (size_t)k * 4, out_len = (n + 2) / 3 * 4;
  if (!fm_buf_reserve(b, out_len + 2)) return;
  char *o = b->data + b->len;
  *o++ = '"';
  unsigned char tri[3];
  size_t t = 0;
  for (int i = 0; i < k; i++) {
    uint32_t u;
    memcpy(&u, &v[i], sizeof(u));
    for (int s = 0; s < 32; s += 8) {
      tri[t++] = (unsigned char)(u >> s);
      if (t < 3) continue;
      *o++ = B64[tri[0] >> 2];
      *o++ = B64[((tri[0] & 3) << 4) | (tri[1] >> 4)];
      *o++ = B64[((tri[1] & 15) << 2) | (tri[2] >> 6)];
      *o++ = B64[tri[2] & 63];
      t = 0;
    }
  }
  if (t) {
    if (t == 1) tri[1] = 0;
    *o++ = B64[tri[0] >> 2];
    *o++ = B64[((tri[0] & 3) << 4) | (tri[1] >> 4)];
    *o++ = t == 2 ? B64[(tri[1] & 15) << 2] : '=';
    *o++ = '=';
  }
  *o++ = '"';
  *o = '\0'; /* as fm_buf_put leaves it */
  b->len = (size_t)(o - b->data);
}

/* One value in plain decimal, rounded to 8 places, trailing zeros dropped
 * ("0.0491849", "-1", "0"): 1e-8 is finer than a unit vector's float32
 * values need, and printf("%g") cost ~170 ns a value, most of a request. */
static size_t put_value(char *out, float v) {
  double d = fabs((double)v);
  if (!(d < 1e9)) return (size_t)snprintf(out, 24, "%.9g", (double)v); /* never on a unit vector */
  uint64_t q = (uint64_t)llround(d * 1e8);
  if (q == 0) {
    out[0] = '0';
    return 1;
  }
  size_t n = 0;
  if (v < 0) out[n++] = '-';
  uint64_t ip = q / 100000000u, fp = q % 100000000u;
  char digits[12];
  int k = 0;
  do {
    digits[k++] = (char)('0' + ip % 10);
    ip /= 10;
  } while (ip);
  while (k)
    out[n++] = digits[--k];
  if (fp) {
    char frac[8];
    for (int i = 7; i >= 0; i--, fp /= 10)
      frac[i] = (char)('0' + fp % 10);
    int len = 8;
    while (frac[len - 1] == '0')
      len--;
    out[n++] = '.';
    memcpy(out + n, frac, (size_t)len);
    n += (size_t)len;
  }
  return n;
}

/* At most 1 + 24 bytes a value ("," and "%.9g"): reserved once, written in place. */
static void put_floats(fm_buf *b, const float *v, int k) {
  if (!fm_buf_reserve(b, (size_t)k * 25 + 2)) return;
  char *o = b->data + b->len;
  *o++ = '[';
  for (int i = 0; i < k; i++) {
    if (i) *o++ = ',';
    o += put_value(o, v[i]);
  }
  *o++ = ']';
  *o = '\0';
  b->len = (size_t)(o - b->data);
}

static void body(fm_job *j, fm_buf *b) {
  const fm_embed_spec *e = &j->p.embed;
  const fm_model_cfg *mc = &j->srv->cfg.models[j->p.model];
  int dims = mc->embedding_dims;
  float stack[STACK_DIMS];
  float *vec = dims <= STACK_DIMS ? stack : malloc((size_t)dims * sizeof(float));
  if (!vec) {
    fm_buf_puts(b, "{\"error\":{\"object\":\"error\",\"type\":\"internal_error\",\"code\":"
                   "\"INTERNAL\",\"message\":\"out of memory writing the vectors; retry later\","
                   "\"param\":null}}");
    return;
  }
  /* About 11 bytes a number, 16/3 a value in base64: reserve once. */
  size_t per = e->base64 ? (size_t)e->dimensions * 16 / 3 + 64 : (size_t)e->dimensions * 12 + 64;
  fm_buf_reserve(b, (size_t)e->n * per + 256);
  uint64_t seed = fm_embed_seed(mc->id);
  fm_buf_puts(b, "{\"object\":\"list\",\"data\":[");
  for (int i = 0; i < e->n; i++) {
    size_t from = i ? e->end[i - 1] : 0;
    fm_embed(seed, e->text + from, e->end[i] - from, dims, e->dimensions, e->normalize, vec);
    fm_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
    if (e->base64)
      put_base64(b, vec, e->dimensions);
    else
      put_floats(b, vec, e->dimensions);
    fm_buf_putc(b, '}');
  }
  fm_buf_puts(b, "],\"model\":");
  fm_buf_json_str(b, j->p.model_name);
  fm_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%u,\"total_tokens\":%u}}", j->p.prompt_tokens,
                j->p.prompt_tokens);
  if (vec != stack) free(vec);
}

/* No stream: the job never calls the stream hooks (p.stream is false). */
static const fm_renderer embeddings_renderer = {
    .body = body,
    .error = fm_openai_error_msg,
};

void fm_api_embeddings(fm_req *r) {
  fm_read_in in = fm_api_read_in(r);
  fm_infer_params p;
  fm_api_err e = {0};
  if (!fm_read_embeddings(&in, &p, &e)) {
    fm_api_reply_err(r, &e);
    return;
  }
  if (!fm_api_account(r, &p)) return;
  fm_infer_start(r, &p, &embeddings_renderer);
}

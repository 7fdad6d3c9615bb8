/* fuzz_http1.c — libFuzzer harness for the HTTP/1.1 request head parser
 * and the chunked body decoder (fm_http_parse_head, fm_chunked_feed,
 * http1.c). The input is what a client writes on a connection: a head, then
 * a body or the next request. It is parsed from an exact-size copy (the
 * parser rewrites the head in place) with the server's head limit; a head
 * that says chunked has the rest fed to the decoder with a small body limit,
 * so both the kept and the dropped paths run.
 *
 * The promises checked: a parsed head lies inside what arrived, every field
 * and argument points into the copy, the path is origin form or `*`; the
 * decoder never consumes more than it is given nor keeps more than its
 * limit; a refusal has one of the statuses http1.h names and a reason. */
#include "fuzz_input.h"
#include "http1.h"

#define FZ_HEAD_MAX 12288
#define FZ_BODY_LIMIT 4096

/* s is a NUL-terminated string that starts and ends inside [lo, hi). */
static int fz_inside(const char *s, const char *lo, const char *hi) {
  if (!s || s < lo || s >= hi) return 0;
  const char *nul = memchr(s, '\0', (size_t)(hi - s));
  return nul != NULL;
}

/* One pass of the decoder over in[0, len), in one call or two (split at
 * `split`): what it returned, where it stopped, the body and the flag. */
typedef struct fz_decoded {
  fm_chunked_result res;
  size_t used; /* in all, over both calls */
  fm_buf out;
  bool too_large;
} fz_decoded;

static void fz_decode(fz_decoded *d, const char *in, size_t len, size_t split) {
  fm_chunked c = {0};
  fm_buf_init(&d->out);
  d->too_large = false;
  d->used = 0;
  size_t parts[2] = {split, len - split};
  for (int i = 0; i < 2; i++) {
    size_t used = (size_t)-1;
    const char *why = NULL;
    d->res = fm_chunked_feed(&c, in + d->used, parts[i], &d->out, FZ_BODY_LIMIT, &d->too_large,
                             &used, &why);
    if (d->res == FM_CHUNKED_BAD) {
      fz_require(why && *why);
      return;
    }
    fz_require(used <= parts[i]);
    if (d->res == FM_CHUNKED_MORE) fz_require(used == parts[i]);
    d->used += used;
    fz_require(d->out.len <= FZ_BODY_LIMIT);
    fz_require(!d->out.oom);
    if (d->res == FM_CHUNKED_END) return;
  }
}

/* The body after a chunked head: decoded whole, then again in two pieces,
 * which must give the same result, end and (within the limit) body. */
static void fz_chunked(const char *rest, size_t len) {
  fz_decoded whole, split;
  fz_decode(&whole, rest, len, len);
  fz_decode(&split, rest, len, len / 2);
  fz_require(whole.res == split.res);
  if (whole.res == FM_CHUNKED_END) fz_require(whole.used == split.used);
  fz_require(whole.too_large == split.too_large);
  if (whole.res != FM_CHUNKED_BAD && !whole.too_large)
    fz_require(whole.out.len == split.out.len &&
               (!whole.out.len || memcmp(whole.out.data, split.out.data, whole.out.len) == 0));
  fm_buf_free(&whole.out);
  fm_buf_free(&split.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  fm_http_head *h = malloc(sizeof(*h));
  if (!h) {
    free(buf);
    return 0;
  }
  size_t used = (size_t)-1;
  int status = 0;
  const char *why = NULL;
  const char *end = buf + size;
  fm_http_result res = fm_http_parse_head(buf, size, FZ_HEAD_MAX, h, &used, &status, &why);
  if (res == FM_HTTP_DONE) {
    fz_require(used <= size);
    fz_require(h->head_bytes < used);
    fz_require(h->head_bytes <= FZ_HEAD_MAX);
    fz_require(h->minor == 0 || h->minor == 1);
    fz_require(fz_inside(h->method, buf, end) && *h->method);
    /* In the copy even when made up ("/" for `http://host`): http.c moves
     * every pointer of a head with its buffer when the buffer grows. */
    fz_require(fz_inside(h->path, buf, end));
    fz_require(h->path[0] == '/' || strcmp(h->path, "*") == 0);
    fz_require(h->n_fields <= FM_HTTP_MAX_FIELDS);
    for (size_t i = 0; i < h->n_fields; i++) {
      fz_require(fz_inside(h->field[i].name, buf, end) && *h->field[i].name);
      fz_require(fz_inside(h->field[i].value, buf, end));
    }
    fz_require(h->n_args <= FM_HTTP_MAX_ARGS);
    for (size_t i = 0; i < h->n_args; i++) {
      fz_require(fz_inside(h->arg[i].name, buf, end));
      fz_require(!h->arg[i].value || fz_inside(h->arg[i].value, buf, end));
    }
    fz_require(!(h->chunked && h->has_length));
    if (h->n_fields) fz_require(fm_http_field_get(h, h->field[0].name) != NULL);
    if (h->chunked) fz_chunked(buf + used, size - used);
  } else if (res == FM_HTTP_BAD) {
    fz_require(status == 400 || status == 431 || status == 501 || status == 505);
    fz_require(why && *why);
  } else {
    fz_require(res == FM_HTTP_PARTIAL);
  }
  free(h);
  free(buf);
  return 0;
}

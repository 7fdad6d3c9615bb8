/* admin.c — control-plane calls: time scale, reset, scenario, cost.
 *
 * Each call is one blocking libcurl transfer with a short timeout; the
 * control plane answers at once (no simulated delay), so a slow answer
 * means the server is not there. */
#define _POSIX_C_SOURCE 200809L
#include "admin.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_ADMIN_BODY_MAX (16u << 20)
#define FD_ADMIN_TIMEOUT_MS 10000L

typedef struct fd_body {
  char *p;
  size_t n;
} fd_body;

static size_t fd_admin_on_data(char *data, size_t size, size_t n, void *ud) {
  fd_body *b = ud;
  size_t len = size * n;
  if (b->n + len > FD_ADMIN_BODY_MAX) return 0;
  char *p = realloc(b->p, b->n + len + 1);
  if (!p) return 0;
  memcpy(p + b->n, data, len);
  b->p = p;
  b->n += len;
  b->p[b->n] = '\0';
  return len;
}

static char fd_admin_auth[512];
static char fd_admin_tok[480];

void fd_admin_set_token(const char *token) {
  snprintf(fd_admin_tok, sizeof fd_admin_tok, "%s", token);
  snprintf(fd_admin_auth, sizeof fd_admin_auth, "Authorization: Bearer %s", token);
}

const char *fd_admin_token(void) {
  return fd_admin_tok[0] ? fd_admin_tok : NULL;
}

int fd_admin_call(const char *root, const char *method, const char *path, const char *body,
                  cJSON **out, char *err, size_t errlen) {
  char url[1024];
  snprintf(url, sizeof url, "%s%s", root, path);
  if (out) *out = NULL;
  CURL *e = curl_easy_init();
  if (!e) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  fd_body b = {0};
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  if (fd_admin_auth[0] && h) h = curl_slist_append(h, fd_admin_auth);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fd_admin_on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, FD_ADMIN_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(e);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  int ret = -1;
  if (rc != CURLE_OK) {
    snprintf(err, errlen, "%s %s: %s", method, url, curl_easy_strerror(rc));
  } else if (code < 200 || code > 299) {
    snprintf(err, errlen, "%s %s: HTTP %ld: %.300s", method, url, code, b.p ? b.p : "");
  } else {
    if (out && b.p) *out = cJSON_Parse(b.p);
    ret = 0;
  }
  free(b.p);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  return ret;
}

double fd_admin_time_scale(const char *root, char *err, size_t errlen) {
  cJSON *st;
  if (fd_admin_call(root, "GET", "/admin/state", NULL, &st, err, errlen) != 0) return -1;
  const cJSON *ts = cJSON_GetObjectItemCaseSensitive(st, "time_scale");
  double v = cJSON_IsNumber(ts) && ts->valuedouble > 0 ? ts->valuedouble : -1;
  if (v < 0) snprintf(err, errlen, "GET /admin/state: no time_scale in the answer");
  cJSON_Delete(st);
  return v;
}

int fd_admin_reset(const char *root, char *err, size_t errlen) {
  return fd_admin_call(root, "POST", "/admin/reset", "{}", NULL, err, errlen);
}

/* The whole file, or NULL. */
static char *fd_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *p = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *q = realloc(p, cap);
      if (!q) {
        free(p);
        fclose(f);
        return NULL;
      }
      p = q;
    }
    size_t k = fread(p + n, 1, 4096, f);
    n += k;
    if (k < 4096) break;
  }
  fclose(f);
  p[n] = '\0';
  return p;
}

int fd_admin_scenario(const char *root, const char *scenario, double *duration_s, char *err,
                      size_t errlen) {
  char *body = NULL;
  if (strchr(scenario, '/') || strstr(scenario, ".json")) {
    if (!(body = fd_read_file(scenario))) {
      snprintf(err, errlen, "cannot read scenario file %s", scenario);
      return -1;
    }
  } else {
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "name", scenario)) body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
  }
  cJSON *ans;
  int rc = fd_admin_call(root, "POST", "/admin/scenario", body, &ans, err, errlen);
  free(body);
  if (rc != 0) return -1;
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(ans, "duration_s");
  *duration_s = cJSON_IsNumber(d) ? d->valuedouble : 0;
  cJSON_Delete(ans);
  return 0;
}

double fd_admin_cost(const char *root, char *err, size_t errlen) {
  cJSON *doc;
  if (fd_admin_call(root, "GET", "/admin/accounts", NULL, &doc, err, errlen) != 0) return -1;
  /* The server's own sum over every account, evicted ones included: one
   * page of accounts is not all of them once the table has evicted. */
  const cJSON *totals = cJSON_GetObjectItemCaseSensitive(doc, "totals");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(totals, "total"), "cost_usd");
  double sum = cJSON_IsNumber(c) ? c->valuedouble : 0;
  if (!totals) { /* a server older than the bounded table lists every account */
    const cJSON *acct;
    cJSON_ArrayForEach(acct, cJSON_GetObjectItemCaseSensitive(doc, "accounts")) {
      const cJSON *total = cJSON_GetObjectItemCaseSensitive(acct, "total");
      c = cJSON_GetObjectItemCaseSensitive(total, "cost_usd");
      if (cJSON_IsNumber(c)) sum += c->valuedouble;
    }
  }
  cJSON_Delete(doc);
  return sum;
}

double fd_admin_utilisation(const cJSON *state, const char *pool) {
  const cJSON *pools = cJSON_GetObjectItemCaseSensitive(state, "pools");
  const cJSON *u;
  if (pool && *pool) {
    u = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pools, pool),
                                         "utilisation");
    if (cJSON_IsNumber(u)) return u->valuedouble;
  }
  double best = -1;
  const cJSON *p;
  cJSON_ArrayForEach(p, pools) {
    u = cJSON_GetObjectItemCaseSensitive(p, "utilisation");
    if (cJSON_IsNumber(u) && u->valuedouble > best) best = u->valuedouble;
  }
  return best;
}

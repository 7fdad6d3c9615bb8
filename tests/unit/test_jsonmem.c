/* test_jsonmem.c — the fast parser (jsonmem.h) against cJSON itself: on every
 * body it accepts, the tree must be the one cJSON builds (types, values,
 * keys, links) and it must stop where cJSON stops; every body cJSON refuses
 * it must give up on. Hand-written edge cases, then seeded random documents
 * and their byte mutations (a bounded count, the same on every run). */
#include "check.h"
#include "jsonmem.h"
#include "rng.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int index_in(const cJSON *first, const cJSON *x) {
  int i = 0;
  for (const cJSON *c = first; c; c = c->next, i++)
    if (c == x) return i;
  return x ? -2 : -1;
}

/* The same tree, node for node, with the same prev links (a's containers
 * may carry their source span, fm_json_source, where cJSON's hold zeros). */
static bool same(const cJSON *a, const cJSON *b) {
  for (; a && b; a = a->next, b = b->next) {
    bool container = a->type & (cJSON_Object | cJSON_Array);
    if (a->type != b->type || (!container && a->valueint != b->valueint)) return false;
    if (!container && memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0) return false;
    if (!a->valuestring != !b->valuestring) return false;
    if (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0) return false;
    if (!a->string != !b->string) return false;
    if (a->string && strcmp(a->string, b->string) != 0) return false;
    if (!!a->child != !!b->child) return false;
    if (a->child) {
      if (index_in(a->child, a->child->prev) != index_in(b->child, b->child->prev)) return false;
      for (const cJSON *x = a->child->next, *y = b->child->next; x && y; x = x->next, y = y->next)
        if (index_in(a->child, x->prev) != index_in(b->child, y->prev)) return false;
      if (!same(a->child, b->child)) return false;
    }
  }
  return !a && !b;
}

static int accepted;

/* Both parsers on text[0, n): the fast one may give up, never disagree. */
static bool agrees(const char *text, size_t n) {
  const char *fe = NULL, *ce = NULL;
  cJSON *f = fm_json_parse_fast(text, n, &fe);
  cJSON *c = cJSON_ParseWithLengthOpts(text, n, &ce, false);
  bool ok = !f || (c && same(f, c) && fe == ce);
  if (f) accepted++;
  if (!ok) fprintf(stderr, "disagree on %.*s\n", (int)(n > 200 ? 200 : n), text);
  cJSON_Delete(f);
  cJSON_Delete(c);
  return ok;
}

static bool fast_takes(const char *text) {
  cJSON *f = fm_json_parse_fast(text, strlen(text), NULL);
  cJSON_Delete(f);
  return f != NULL;
}

TEST(strict_json_reads_as_cjson_reads_it) {
  const char *bodies[] = {
      "{}",
      "[]",
      " \t\r\n{ } ",
      "{\"a\":1}",
      "[1,2,3]",
      "{\"\":\"\"}",
      ("{\"model\":\"accounts/fireworks/models/kimi-k2p6\",\"messages\":[{\"role\":\"user\","
       "\"content\":\"Say hello.\"}],\"max_tokens\":64,\"ignore_eos\":true,\"seed\":7}"),
      "{\"a\":[true,false,null],\"b\":{\"c\":{\"d\":[]}}}",
      "[0,-0,1,-1,10,2147483647,2147483648,-2147483648,-2147483649,123456789012345]",
      "[1234567890123456,12345678901234567890,1e3,1E-3,-1.5e+10,0.1,0.7,3.14159,1e308,1e309]",
      "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"h\xc3\xa9llo \xe2\x98\x83\"]",
      "{\"a\":1,\"a\":2}",
      "[[[[[[[[[[1]]]]]]]]]]",
      "{\"k\" : [ 1 , 2 ] , \"l\" : { } }",
      "{\"a\":1} trailing",
      "[1]]",
  };
  for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
    CHECK(agrees(bodies[i], strlen(bodies[i])));
  CHECK(fast_takes("{\"a\":[1,\"x\",true]}"));
  CHECK(fast_takes("[0.7,-2.5e3]"));
  /* \u escapes, as Python's json.dumps writes every non-ASCII character:
   * one, two and three UTF-8 bytes, and a surrogate pair's four */
  const char *escaped[] = {
      "{\"a\":\"caf\\u00e9 \\u00E9\"}",
      "{\"a\":\"\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\"}",
      "{\"a\":\"snow \\u2603, face \\ud83d\\ude00, last \\udbff\\udfff\"}",
      "{\"k\\u00e9y\":[\"\\u4e2d\\u6587\"]}",
  };
  for (size_t i = 0; i < sizeof(escaped) / sizeof(escaped[0]); i++) {
    CHECK(fast_takes(escaped[i]));
    CHECK(agrees(escaped[i], strlen(escaped[i])));
  }
  cJSON *v = fm_json_parse_fast(escaped[2], strlen(escaped[2]), NULL);
  REQUIRE(v);
  CHECK_STR(v->child->valuestring,
            "snow \xe2\x98\x83, face \xf0\x9f\x98\x80, last \xf4\x8f\xbf\xbf");
  cJSON_Delete(v);
}

TEST(containers_know_the_bytes_they_came_from) {
  const char *text = " {\"tools\": [ {\"name\":\"a\", \"p\":{}} ,[1, 2]], \"n\": 3 } ";
  size_t len = strlen(text);
  cJSON *root = fm_json_parse_fast(text, len, NULL);
  REQUIRE(root);
  const char *at;
  size_t n;
  CHECK(fm_json_source(root, text, len, &at, &n));
  CHECK(at == text + 1 && n == len - 2);
  const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
  CHECK(fm_json_source(tools, text, len, &at, &n));
  CHECK(n == strlen("[ {\"name\":\"a\", \"p\":{}} ,[1, 2]]") && memcmp(at, "[ {", 3) == 0);
  CHECK(fm_json_source(tools->child, text, len, &at, &n));
  CHECK(n == strlen("{\"name\":\"a\", \"p\":{}}") && at[0] == '{' && at[n - 1] == '}');
  CHECK(fm_json_source(cJSON_GetObjectItemCaseSensitive(tools->child, "p"), text, len, &at, &n));
  CHECK(n == 2 && memcmp(at, "{}", 2) == 0);
  CHECK(fm_json_source(tools->child->next, text, len, &at, &n));
  CHECK(n == 6 && memcmp(at, "[1, 2]", 6) == 0);
  /* a scalar, a tree cJSON parsed, another text: no span */
  CHECK(!fm_json_source(cJSON_GetObjectItemCaseSensitive(root, "n"), text, len, &at, &n));
  CHECK(!fm_json_source(tools, text, 10, &at, &n));
  cJSON *c = cJSON_Parse(text);
  CHECK(c && !fm_json_source(c, text, len, &at, &n));
  cJSON_Delete(c);
  cJSON_Delete(root);
}

TEST(it_gives_up_where_cjson_is_looser_or_the_body_is_wrong) {
  const char *not_taken[] = {
      "\"\\u00e9\"", /* a lone scalar */
      "{\"a\":\"\\u0000\"}",
      "{\"a\":\"\\ud83d\"}",
      "{\"a\":\"\\ude00x\"}",
      "{\"a\":\"\\ud83d\\u0041\"}",
      "{\"a\":\"\\ud83dx\\ude00\"}",
      "{\"a\":\"\\u00g9\"}",
      "{\"a\":\"\\u00e\"}",
      "{\"a\":\"\\ud83d\\ude0\"}",
      "{\"a\":\"x\ty\"}",
      "[01]",
      "[+1]",
      "[.5]",
      "[1.]",
      "[1e]",
      "[-]",
      "{\x01}",
      "\xef\xbb\xbf{}",
      "7",
      "\"s\"",
      "true",
      "{",
      "{\"a\":}",
      "[1,]",
      "{\"a\" 1}",
      "[1 2]",
      "{'a':1}",
      "[tru]",
      "[nul]",
      "[\"abc]",
      "{\"a\":1,}",
      "[1-2]",
      "[1.5.3]",
      "[truex]",
      "",
      "   ",
  };
  for (size_t i = 0; i < sizeof(not_taken) / sizeof(not_taken[0]); i++) {
    CHECK(!fast_takes(not_taken[i]));
    CHECK(agrees(not_taken[i], strlen(not_taken[i])));
  }
  char deep[2100];
  memset(deep, '[', 1050);
  memset(deep + 1050, ']', 1050);
  CHECK(fast_takes(
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]")); /* 72 deep */
  CHECK(agrees(deep, sizeof(deep))); /* past cJSON's 1 000: both refuse */
  char longnum[80] = "[1";
  memset(longnum + 2, '0', 70);
  memcpy(longnum + 72, "]", 2);
  CHECK(!fast_takes(longnum)); /* more than 63 characters: cJSON cuts it */
}

/* ---- seeded documents ----------------------------------------------------- */

static void put(char **w, const char *s) {
  size_t n = strlen(s);
  memcpy(*w, s, n);
  *w += n;
}

static void gen_string(fm_rng *r, char **w) {
  static const char *const pieces[] = {"a",
                                       "model",
                                       " ",
                                       "\\\"",
                                       "\\\\",
                                       "\\/",
                                       "\\n",
                                       "\\t",
                                       "\\b",
                                       "\\f",
                                       "\\r",
                                       "\xc3\xa9",
                                       "\xe2\x98\x83",
                                       "x1",
                                       "\\u0041",
                                       "\\u00e9",
                                       "\\u2603",
                                       "\\ud83d\\ude00",
                                       "\\uFFFD",
                                       "\x7f",
                                       "\\ud83d",
                                       "\\u0000"};
  put(w, "\"");
  int n = (int)fm_rng_below(r, 6);
  /* \u escapes now and then (a lone surrogate and \u0000, rarer: those go to cJSON) */
  for (int i = 0; i < n; i++)
    put(w, pieces[fm_rng_below(r, fm_rng_chance(r, 0.1) ? (fm_rng_chance(r, 0.2) ? 22 : 20) : 14)]);
  put(w, "\"");
}

static void gen_value(fm_rng *r, char **w, int depth) {
  static const char *const numbers[] = {"0",
                                        "-0",
                                        "7",
                                        "-12",
                                        "2147483647",
                                        "2147483648",
                                        "-2147483649",
                                        "0.5",
                                        "-0.25",
                                        "1e2",
                                        "1E+2",
                                        "1e-7",
                                        "123456789012345",
                                        "1234567890123456789",
                                        "9007199254740993",
                                        "0.1",
                                        "3.0e0",
                                        "-1.5E-3"};
  int k = (int)fm_rng_below(r, depth > 4 ? 4 : 6);
  const char *ws = fm_rng_chance(r, 0.2) ? " \n" : "";
  put(w, ws);
  switch (k) {
  case 0:
    put(w, numbers[fm_rng_below(r, sizeof(numbers) / sizeof(numbers[0]))]);
    break;
  case 1:
    gen_string(r, w);
    break;
  case 2:
    put(w, fm_rng_chance(r, 0.5) ? "true" : fm_rng_chance(r, 0.5) ? "false" : "null");
    break;
  case 3:
    gen_string(r, w);
    break;
  case 4: {
    put(w, "[");
    int n = (int)fm_rng_below(r, 4);
    for (int i = 0; i < n; i++) {
      if (i) put(w, ",");
      gen_value(r, w, depth + 1);
    }
    put(w, "]");
    break;
  }
  default: {
    put(w, "{");
    int n = (int)fm_rng_below(r, 4);
    for (int i = 0; i < n; i++) {
      if (i) put(w, ",");
      gen_string(r, w);
      put(w, ws);
      put(w, ":");
      gen_value(r, w, depth + 1);
    }
    put(w, "}");
  }
  }
  put(w, ws);
}

TEST(seeded_documents_and_their_mutations_agree) {
  static char doc[1 << 16], mut[1 << 16];
  fm_rng r;
  fm_rng_seed(&r, 20261203);
  int before = accepted, docs = 0, failures = 0;
  for (int i = 0; i < 3000; i++) {
    char *w = doc;
    put(&w, "{\"k\":");
    gen_value(&r, &w, 0);
    put(&w, "}");
    size_t n = (size_t)(w - doc);
    docs++;
    failures += !agrees(doc, n);
    for (int m = 0; m < 8; m++) { /* a byte changed, dropped or doubled */
      memcpy(mut, doc, n);
      size_t at = fm_rng_below(&r, n), len = n;
      static const char bytes[] = "{}[]\",:.-+eE0 \\ntuDd\x01\x80";
      switch (fm_rng_below(&r, 3)) {
      case 0:
        mut[at] = bytes[fm_rng_below(&r, sizeof(bytes) - 1)];
        break;
      case 1:
        memmove(mut + at, mut + at + 1, n - at - 1);
        len--;
        break;
      default:
        memmove(mut + at + 1, mut + at, n - at);
        len++;
      }
      failures += !agrees(mut, len);
    }
  }
  CHECK_EQ_INT(failures, 0);
  CHECK(accepted - before > docs * 8 / 10); /* most of the valid ones took the fast path */
}

/* test_http1.c — HTTP/1.1 on the wire (http1.h): the request head parser
 * (request line, target forms, fields, what they say of the body and the
 * connection, what is refused and with which status), the chunked body
 * decoder fed whole and one byte at a time, and the reason phrases.
 *
 * Every input is parsed from an exact-size heap copy, never from a string
 * literal: the parser rewrites the head in place on DONE, and a read one
 * byte past what arrived is an AddressSanitizer report in the sanitizer
 * build. */
#include "check.h"
#include "http1.h"

#include <stdbool.h>

#define MAX_HEAD 8192

/* One parse of one copy: what fm_http_parse_head returned and set. */
typedef struct parsed {
  char *buf; /* the copy, exactly len bytes, rewritten in place on DONE */
  size_t len;
  fm_http_head h;
  fm_http_result res;
  size_t used;
  int status;
  const char *why;
} parsed;

/* Parses the first len bytes of text from a fresh copy. used, status and
 * why start as values the parser never sets, so a test sees what it set. */
static void parse_n(parsed *p, const char *text, size_t len, size_t max_bytes) {
  p->buf = malloc(len ? len : 1);
  p->len = len;
  memcpy(p->buf, text, len);
  p->used = (size_t)-1;
  p->status = 0;
  p->why = NULL;
  p->res = fm_http_parse_head(p->buf, len, max_bytes, &p->h, &p->used, &p->status, &p->why);
}

static void parse(parsed *p, const char *text) {
  parse_n(p, text, strlen(text), MAX_HEAD);
}

static void parsed_free(parsed *p) {
  free(p->buf);
  p->buf = NULL;
}

/* A head that must be refused: BAD with that status and a reason. */
static int refused_with(const char *text, int status) {
  parsed p;
  parse(&p, text);
  int ok = p.res == FM_HTTP_BAD && p.status == status && p.why && *p.why;
  if (!ok)
    printf("  %s: result %d, status %d, why %s\n", text, (int)p.res, p.status,
           p.why ? p.why : "(null)");
  parsed_free(&p);
  return ok;
}

/* The keep_alive a complete head ends with. */
static bool keep_alive_of(const char *text) {
  parsed p;
  parse(&p, text);
  bool k = p.res == FM_HTTP_DONE && p.h.keep_alive;
  if (p.res != FM_HTTP_DONE) printf("  %s: result %d, not DONE\n", text, (int)p.res);
  parsed_free(&p);
  return k;
}

/* ---- the request line and the target ---------------------------------------- */

TEST(a_get_with_a_query_has_its_method_path_fields_and_decoded_args) {
  const char *req = "GET /admin/requests?limit=%41&flag&q=a%20b HTTP/1.1\r\n"
                    "Host: localhost:8080\r\n"
                    "Accept: */*\r\n"
                    "\r\n";
  parsed p;
  parse(&p, req);
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_U64(p.used, strlen(req));
  CHECK_STR(p.h.method, "GET");
  CHECK_STR(p.h.path, "/admin/requests");
  CHECK_EQ_INT(p.h.minor, 1);
  CHECK_EQ_U64(p.h.n_fields, 2);
  CHECK_STR(p.h.field[0].name, "Host");
  CHECK_STR(p.h.field[0].value, "localhost:8080");
  CHECK_STR(p.h.field[1].name, "Accept");
  CHECK_STR(p.h.field[1].value, "*/*");
  REQUIRE(p.h.n_args == 3);
  CHECK_STR(p.h.arg[0].name, "limit");
  CHECK_STR(p.h.arg[0].value, "A");
  CHECK_STR(p.h.arg[1].name, "flag");
  CHECK(p.h.arg[1].value == NULL); /* no '=': no value, not an empty one */
  CHECK_STR(p.h.arg[2].name, "q");
  CHECK_STR(p.h.arg[2].value, "a b");
  CHECK_STR(fm_http_arg_get(&p.h, "limit"), "A");
  CHECK_STR(fm_http_arg_get(&p.h, "q"), "a b");
  CHECK(fm_http_arg_get(&p.h, "flag") == NULL);
  CHECK(fm_http_arg_get(&p.h, "LIMIT") == NULL); /* argument names are case-sensitive */
  CHECK(fm_http_arg_get(&p.h, "absent") == NULL);
  CHECK_STR(fm_http_field_get(&p.h, "host"), "localhost:8080"); /* field names are not */
  CHECK_STR(fm_http_field_get(&p.h, "ACCEPT"), "*/*");
  CHECK(fm_http_field_get(&p.h, "Content-Type") == NULL);
  CHECK(!p.h.has_length);
  CHECK(!p.h.chunked);
  CHECK(!p.h.length_conflict);
  CHECK(!p.h.expect_continue);
  CHECK(p.h.keep_alive);
  parsed_free(&p);
}

TEST(query_argument_names_are_percent_decoded_too) {
  parsed p;
  parse(&p, "GET /admin/requests?%74est_id=checkout%2Etest&status=5xx HTTP/1.1\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(fm_http_arg_get(&p.h, "test_id"), "checkout.test");
  CHECK_STR(fm_http_arg_get(&p.h, "status"), "5xx");
  CHECK_EQ_U64(p.h.n_args, 2);
  parsed_free(&p);
}

TEST(a_path_without_a_query_has_no_args) {
  parsed p;
  parse(&p, "GET /healthz HTTP/1.1\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(p.h.path, "/healthz");
  CHECK_EQ_U64(p.h.n_args, 0);
  CHECK_EQ_U64(p.h.n_fields, 0);
  CHECK(fm_http_arg_get(&p.h, "limit") == NULL);
  parsed_free(&p);
}

TEST(the_path_is_percent_decoded_in_either_case_of_hex) {
  parsed p;
  parse(&p, "GET /v1/models/accounts%2Ffireworks%2fmodels%2Fkimi%7ek2 HTTP/1.1\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(p.h.path, "/v1/models/accounts/fireworks/models/kimi~k2");
  parsed_free(&p);
}

TEST(a_percent_00_in_the_path_or_query_is_kept_as_written) {
  parsed p;
  parse(&p, "GET /admin%00/x?q=a%00b HTTP/1.1\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(p.h.path, "/admin%00/x");
  CHECK_STR(fm_http_arg_get(&p.h, "q"), "a%00b");
  parsed_free(&p);
}

TEST(an_absolute_form_target_keeps_its_path_and_query) {
  parsed p;
  parse(&p, "GET http://localhost:8080/admin/requests?limit=2 HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(p.h.path, "/admin/requests");
  CHECK_STR(fm_http_arg_get(&p.h, "limit"), "2");
  parsed_free(&p);
  parse(&p, "GET http://localhost:8080 HTTP/1.1\r\n\r\n"); /* an empty path is "/" */
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(p.h.path, "/");
  /* Inside the buffer like every other string of the head: http.c moves the
   * head's pointers with its buffer when that grows. */
  CHECK(p.h.path >= p.buf && p.h.path < p.buf + p.len);
  parsed_free(&p);
}

TEST(an_asterisk_target_is_kept_as_the_path) {
  parsed p;
  parse(&p, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(p.h.method, "OPTIONS");
  CHECK_STR(p.h.path, "*");
  parsed_free(&p);
}

TEST(a_request_line_that_is_not_method_target_version_is_400) {
  CHECK(refused_with("GARBAGE\r\n\r\n", 400));
  CHECK(refused_with("GET /\r\n\r\n", 400)); /* HTTP/0.9 */
  CHECK(refused_with("GET  / HTTP/1.1\r\n\r\n", 400));
  CHECK(refused_with(" GET / HTTP/1.1\r\n\r\n", 400));
  CHECK(refused_with("GET v1/models HTTP/1.1\r\n\r\n", 400)); /* not origin, absolute or * */
}

TEST(http_2_and_later_majors_are_505) {
  CHECK(refused_with("GET / HTTP/2.0\r\n\r\n", 505));
  CHECK(refused_with("GET / HTTP/3.0\r\n\r\n", 505));
}

TEST(a_version_that_is_not_http_major_dot_minor_is_400) {
  CHECK(refused_with("GET / HTTP/1.x\r\n\r\n", 400));
  CHECK(refused_with("GET / HTTP/1\r\n\r\n", 400));
  CHECK(refused_with("GET / HTTP/1.1x\r\n\r\n", 400));
  CHECK(refused_with("GET / http/1.1\r\n\r\n", 400)); /* HTTP-name is case-sensitive */
  CHECK(refused_with("GET / FTP/1.1\r\n\r\n", 400));
}

TEST(http_1_0_has_minor_0) {
  parsed p;
  parse(&p, "GET / HTTP/1.0\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_INT(p.h.minor, 0);
  parsed_free(&p);
}

/* http1.h: minor is "0 or 1". A later 1.x is read as the highest minor the
 * server speaks (RFC 9110 §2.5), so the rules of 1.1 apply to it. */
TEST(a_later_http_1_minor_is_read_as_1_1) {
  parsed p;
  parse(&p, "GET / HTTP/1.2\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_INT(p.h.minor, 1);
  CHECK(p.h.keep_alive);
  parsed_free(&p);
}

/* ---- where the head ends ------------------------------------------------------ */

/* Every prefix of a head is PARTIAL, one byte at a time, up to the last
 * byte of its blank line: each is a fresh copy of the first n bytes, as a
 * connection's buffer holds after n one-byte reads. */
TEST(a_head_is_partial_until_the_last_byte_of_its_blank_line) {
  const char *req = "POST /v1/chat/completions HTTP/1.1\r\n"
                    "Host: x\r\n"
                    "Content-Length: 2\r\n"
                    "\r\n"
                    "{}";
  size_t head_len = strlen(req) - 2;
  for (size_t n = 0; n < head_len; n++) {
    parsed p;
    parse_n(&p, req, n, MAX_HEAD);
    if (p.res != FM_HTTP_PARTIAL) printf("  prefix of %zu bytes: result %d\n", n, (int)p.res);
    CHECK(p.res == FM_HTTP_PARTIAL);
    parsed_free(&p);
  }
  parsed p;
  parse_n(&p, req, head_len, MAX_HEAD);
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_U64(p.used, head_len);
  CHECK_STR(p.h.path, "/v1/chat/completions");
  CHECK_EQ_U64(p.h.content_length, 2);
  parsed_free(&p);
}

TEST(a_head_with_bare_lf_line_endings_is_read_like_crlf) {
  const char *req = "POST /v1/chat/completions HTTP/1.1\n"
                    "Host: x\n"
                    "Content-Length: 2\n"
                    "\n"
                    "{}";
  parsed p;
  parse(&p, req);
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_U64(p.used, strlen(req) - 2);
  CHECK_EQ_U64(p.h.head_bytes, strlen(req) - 3);
  CHECK_STR(p.h.path, "/v1/chat/completions");
  CHECK_EQ_U64(p.h.n_fields, 2);
  CHECK_STR(p.h.field[0].value, "x"); /* no stray CR */
  CHECK(p.h.has_length);
  CHECK_EQ_U64(p.h.content_length, 2);
  parsed_free(&p);
  /* Mixed in one head. */
  parse(&p, "GET / HTTP/1.1\r\nA: 1\nB: 2\r\n\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(fm_http_field_get(&p.h, "A"), "1");
  CHECK_STR(fm_http_field_get(&p.h, "B"), "2");
  parsed_free(&p);
}

TEST(used_is_the_head_with_its_blank_line_and_the_next_request_is_left_alone) {
  const char *first = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const char *second = "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
  char both[256];
  snprintf(both, sizeof(both), "%s%s", first, second);
  parsed p;
  parse(&p, both);
  REQUIRE(p.res == FM_HTTP_DONE);
  REQUIRE(p.used == strlen(first));
  CHECK_STR(p.h.path, "/healthz");
  CHECK(memcmp(p.buf + p.used, second, strlen(second)) == 0);
  /* The rest parses as the request it is. */
  parsed q;
  parse_n(&q, p.buf + p.used, p.len - p.used, MAX_HEAD);
  REQUIRE(q.res == FM_HTTP_DONE);
  CHECK_STR(q.h.method, "POST");
  CHECK_EQ_U64(q.h.content_length, 2);
  CHECK_EQ_U64(q.used, strlen(second) - 2); /* the body is not the head's */
  parsed_free(&q);
  parsed_free(&p);
}

TEST(head_bytes_is_the_request_line_and_fields_without_the_blank_line) {
  parsed p;
  parse(&p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); /* 16 + 9, then 2 */
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_U64(p.h.head_bytes, 25);
  CHECK_EQ_U64(p.used, 27);
  parsed_free(&p);
  parse(&p, "GET / HTTP/1.1\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_U64(p.h.head_bytes, 16);
  CHECK_EQ_U64(p.used, 18);
  parsed_free(&p);
}

/* RFC 9112 §2.2: empty lines before the request line are ignored. They
 * are consumed (used) but are not the head's bytes. */
TEST(blank_lines_before_the_request_line_are_skipped) {
  parsed p;
  parse(&p, "\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_STR(p.h.path, "/healthz");
  CHECK_EQ_U64(p.used, 4 + 25);
  CHECK_EQ_U64(p.h.head_bytes, 23);
  parsed_free(&p);
}

/* ---- header fields -------------------------------------------------------------- */

TEST(field_values_are_trimmed_and_names_kept_as_sent) {
  parsed p;
  parse(&p, "GET / HTTP/1.1\r\nx-Request-ID: \t abc def \t \r\nX-Empty:\r\nX-Colon: a:b\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  REQUIRE(p.h.n_fields == 3);
  CHECK_STR(p.h.field[0].name, "x-Request-ID");
  CHECK_STR(p.h.field[0].value, "abc def");
  CHECK_STR(p.h.field[1].name, "X-Empty");
  CHECK_STR(p.h.field[1].value, "");
  CHECK_STR(p.h.field[2].value, "a:b");
  parsed_free(&p);
}

TEST(the_first_of_two_fields_of_one_name_is_the_one_looked_up) {
  parsed p;
  parse(&p, "GET / HTTP/1.1\r\nX-Tag: one\r\nx-tag: two\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_U64(p.h.n_fields, 2);
  CHECK_STR(fm_http_field_get(&p.h, "X-TAG"), "one");
  parsed_free(&p);
}

TEST(a_space_before_the_colon_is_400) {
  CHECK(refused_with("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400));
  CHECK(refused_with("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400));
}

TEST(a_field_line_without_a_colon_or_a_name_is_400) {
  CHECK(refused_with("GET / HTTP/1.1\r\nHello\r\n\r\n", 400));
  CHECK(refused_with("GET / HTTP/1.1\r\n: x\r\n\r\n", 400));
}

TEST(obsolete_line_folding_is_400) {
  CHECK(refused_with("GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n", 400));
  CHECK(refused_with("GET / HTTP/1.1\r\nX-A: 1\r\n\tcontinued\r\n\r\n", 400));
}

/* A head of `GET / HTTP/1.1` and n fields `X-Fnnn: v`. */
static char *head_with_fields(int n) {
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < n; i++)
    fm_buf_printf(&b, "X-F%03d: v\r\n", i);
  fm_buf_puts(&b, "\r\n");
  return fm_buf_steal(&b, NULL);
}

TEST(a_hundred_fields_are_read_and_a_hundred_and_one_are_431) {
  char *hundred = head_with_fields(FM_HTTP_MAX_FIELDS);
  parsed p;
  parse(&p, hundred);
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK_EQ_U64(p.h.n_fields, 100);
  CHECK_STR(p.h.field[99].name, "X-F099");
  parsed_free(&p);
  free(hundred);
  char *more = head_with_fields(FM_HTTP_MAX_FIELDS + 1);
  CHECK(refused_with(more, 431));
  free(more);
}

/* ---- how big a head may be ------------------------------------------------------- */

/* A head whose request line and fields are exactly `bytes` long: a request
 * line, then one X-Pad field padding it out; eol is "\r\n" or "\n". */
static char *head_of(size_t bytes, const char *eol, bool ended) {
  char line[64];
  int n = snprintf(line, sizeof(line), "GET / HTTP/1.1%sX-Pad: ", eol);
  size_t pad = bytes - (size_t)n - strlen(eol);
  char *s = malloc(bytes + strlen(eol) + 1);
  memcpy(s, line, (size_t)n);
  memset(s + n, 'a', pad);
  strcpy(s + n + pad, eol);
  if (ended) strcat(s, eol);
  return s;
}

TEST(a_head_of_exactly_max_bytes_is_read_and_one_byte_more_is_431) {
  const char *eols[] = {"\r\n", "\n"};
  for (int i = 0; i < 2; i++) {
    char *at = head_of(1024, eols[i], true);
    parsed p;
    parse_n(&p, at, strlen(at), 1024);
    CHECK(p.res == FM_HTTP_DONE);
    if (p.res == FM_HTTP_DONE) CHECK_EQ_U64(p.h.head_bytes, 1024);
    parsed_free(&p);
    free(at);
    char *over = head_of(1025, eols[i], true);
    parse_n(&p, over, strlen(over), 1024);
    if (p.res != FM_HTTP_BAD) printf("  %s line endings: result %d\n", i ? "LF" : "CRLF", p.res);
    CHECK(p.res == FM_HTTP_BAD);
    CHECK_EQ_INT(p.status, 431);
    CHECK(p.why && *p.why);
    parsed_free(&p);
    free(over);
  }
}

/* A client that sends a long head without ever ending it is refused once
 * more than max_bytes have arrived, not held while it fills memory. */
TEST(a_head_past_max_bytes_without_its_end_is_431_and_under_it_partial) {
  char *open = head_of(2000, "\r\n", false); /* no blank line */
  parsed p;
  parse_n(&p, open, strlen(open), 1024);
  CHECK(p.res == FM_HTTP_BAD);
  CHECK_EQ_INT(p.status, 431);
  CHECK(p.why && *p.why);
  parsed_free(&p);
  parse_n(&p, open, strlen(open), 4096);
  CHECK(p.res == FM_HTTP_PARTIAL);
  parsed_free(&p);
  /* Still open in the middle of its padding. */
  parse_n(&p, open, 1500, 1024);
  CHECK(p.res == FM_HTTP_BAD);
  CHECK_EQ_INT(p.status, 431);
  parsed_free(&p);
  parse_n(&p, open, 1000, 1024);
  CHECK(p.res == FM_HTTP_PARTIAL);
  parsed_free(&p);
  free(open);
}

/* A head of exactly max_bytes whose blank line has begun (its CR is in, its
 * LF is not) may still end within the limit: it is not refused yet. */
TEST(a_head_of_max_bytes_with_half_its_blank_line_is_partial) {
  char *at = head_of(1024, "\r\n", true);
  parsed p;
  parse_n(&p, at, 1025, 1024);
  CHECK(p.res == FM_HTTP_PARTIAL);
  parsed_free(&p);
  parse_n(&p, at, 1026, 1024);
  CHECK(p.res == FM_HTTP_DONE);
  parsed_free(&p);
  free(at);
}

/* ---- what the head says of the connection ------------------------------------- */

TEST(http_1_1_is_kept_alive_unless_it_says_connection_close) {
  CHECK(keep_alive_of("GET / HTTP/1.1\r\n\r\n"));
  CHECK(keep_alive_of("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"));
  CHECK(!keep_alive_of("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
  CHECK(!keep_alive_of("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
  CHECK(keep_alive_of("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n")); /* not the token */
}

TEST(http_1_0_is_closed_unless_it_says_connection_keep_alive) {
  CHECK(!keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
  CHECK(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  CHECK(keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  CHECK(!keep_alive_of("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"));
}

TEST(connection_is_read_as_a_token_list) {
  CHECK(!keep_alive_of("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n"));
  CHECK(!keep_alive_of("GET / HTTP/1.1\r\nConnection: close,foo\r\n\r\n"));
  CHECK(keep_alive_of("GET / HTTP/1.0\r\nConnection: Upgrade, keep-alive\r\n\r\n"));
  CHECK(!keep_alive_of("GET / HTTP/1.0\r\nConnection: foo, bar\r\n\r\n"));
}

TEST(expect_100_continue_is_noted) {
  parsed p;
  parse(&p, "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\n"
            "Expect: 100-continue\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(p.h.expect_continue);
  CHECK_EQ_U64(p.h.content_length, 5);
  parsed_free(&p);
  parse(&p, "POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(p.h.expect_continue); /* the expectation is case-insensitive (RFC 9110 §10.1.1) */
  parsed_free(&p);
  parse(&p, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(!p.h.expect_continue);
  parsed_free(&p);
}

/* ---- what the head says of the body ---------------------------------------------- */

TEST(content_length_is_read_as_digits_with_spaces_trimmed) {
  parsed p;
  parse(&p, "POST / HTTP/1.1\r\nContent-Length:  1048576 \r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(p.h.has_length);
  CHECK_EQ_U64(p.h.content_length, 1048576);
  CHECK(!p.h.chunked);
  parsed_free(&p);
  parse(&p, "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(p.h.has_length);
  CHECK_EQ_U64(p.h.content_length, 0);
  parsed_free(&p);
}

TEST(content_length_repeated_with_one_value_is_one_length) {
  parsed p;
  parse(&p, "POST / HTTP/1.1\r\nContent-Length: 42\r\nContent-Length: 42\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(p.h.has_length);
  CHECK_EQ_U64(p.h.content_length, 42);
  CHECK(!p.h.length_conflict);
  parsed_free(&p);
}

/* Not refused by the parser: the router answers it with its own 400. */
TEST(content_lengths_with_two_values_are_a_conflict) {
  parsed p;
  parse(&p, "POST / HTTP/1.1\r\nContent-Length: 42\r\nContent-Length: 43\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(p.h.has_length);
  CHECK(p.h.length_conflict);
  parsed_free(&p);
}

TEST(a_content_length_that_is_not_digits_is_400_naming_it) {
  const char *values[] = {"abc", "-1", "12a", "+5", "1 2", "0x10", "", "99999999999999999999999"};
  for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    char req[128];
    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nContent-Length: %s\r\n\r\n", values[i]);
    parsed p;
    parse(&p, req);
    if (p.res != FM_HTTP_BAD) printf("  Content-Length: %s: result %d\n", values[i], p.res);
    CHECK(p.res == FM_HTTP_BAD);
    CHECK_EQ_INT(p.status, 400);
    CHECK_STR_CONTAINS(p.why, "Content-Length");
    parsed_free(&p);
  }
}

TEST(transfer_encoding_chunked_marks_the_body_chunked) {
  parsed p;
  parse(&p, "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(p.h.chunked);
  CHECK(!p.h.has_length);
  parsed_free(&p);
  parse(&p, "POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n");
  REQUIRE(p.res == FM_HTTP_DONE);
  CHECK(p.h.chunked);
  parsed_free(&p);
}

TEST(transfer_encoding_with_content_length_is_400_in_either_order) {
  const char *reqs[] = {
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  for (int i = 0; i < 2; i++) {
    parsed p;
    parse(&p, reqs[i]);
    CHECK(p.res == FM_HTTP_BAD);
    CHECK_EQ_INT(p.status, 400);
    CHECK_STR_CONTAINS(p.why, "Transfer-Encoding");
    parsed_free(&p);
  }
}

TEST(a_transfer_encoding_other_than_chunked_is_501) {
  parsed p;
  parse(&p, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
  CHECK(p.res == FM_HTTP_BAD);
  CHECK_EQ_INT(p.status, 501);
  CHECK_STR_CONTAINS(p.why, "Transfer-Encoding");
  parsed_free(&p);
  CHECK(refused_with("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501));
}

/* ---- the chunked body ------------------------------------------------------------ */

/* What feeding a chunked body gave: the result of the last call, the body,
 * where END was (bytes from the start), the flag and the reason. */
typedef struct decoded {
  fm_chunked_result res;
  fm_buf body;
  size_t end; /* bytes consumed in all; on END, where the body ended */
  bool too_large;
  const char *why;
  int calls;
} decoded;

/* Feeds text `step` bytes at a time (0: all at once) from an exact-size
 * copy. Every MORE must have consumed all it was given. */
static void decode(decoded *d, const char *text, size_t len, size_t step, size_t limit) {
  char *in = malloc(len ? len : 1);
  memcpy(in, text, len);
  memset(d, 0, sizeof(*d));
  fm_buf_init(&d->body);
  fm_chunked c = {0};
  d->res = FM_CHUNKED_MORE;
  size_t pos = 0;
  while (pos < len) {
    size_t n = step && len - pos > step ? step : len - pos;
    size_t used = (size_t)-1;
    d->res = fm_chunked_feed(&c, in + pos, n, &d->body, limit, &d->too_large, &used, &d->why);
    d->calls++;
    if (d->res == FM_CHUNKED_BAD) break;
    if (used > n) {
      check_fail(__FILE__, __LINE__, "call %d: used %zu of %zu", d->calls, used, n);
      break;
    }
    if (d->res == FM_CHUNKED_MORE && used != n)
      check_fail(__FILE__, __LINE__, "call %d: MORE after using %zu of %zu", d->calls, used, n);
    pos += used;
    if (d->res == FM_CHUNKED_END) break;
  }
  d->end = pos;
  free(in);
}

static const char CHUNKED[] = "5;foo=bar\r\nhello\r\n"
                              "1\r\n \r\n"
                              "5\r\nworld\r\n"
                              "0\r\n"
                              "X-Checksum: abc\r\n"
                              "X-Other: 1\r\n"
                              "\r\n";
static const char NEXT[] = "GET /healthz HTTP/1.1\r\n\r\n";

TEST(chunks_with_an_extension_and_trailers_decode_to_their_data) {
  decoded d;
  decode(&d, CHUNKED, strlen(CHUNKED), 0, 4096);
  CHECK(d.res == FM_CHUNKED_END);
  CHECK_EQ_U64(d.end, strlen(CHUNKED));
  CHECK_EQ_U64(d.body.len, 11);
  CHECK_STR(d.body.data, "hello world");
  CHECK(!d.too_large);
  fm_buf_free(&d.body);
}

TEST(end_leaves_the_next_requests_bytes_unread) {
  char both[256];
  snprintf(both, sizeof(both), "%s%s", CHUNKED, NEXT);
  decoded d;
  decode(&d, both, strlen(both), 0, 4096);
  CHECK(d.res == FM_CHUNKED_END);
  CHECK_EQ_INT(d.calls, 1);
  CHECK_EQ_U64(d.end, strlen(CHUNKED));
  CHECK_STR(d.body.data, "hello world");
  fm_buf_free(&d.body);
}

TEST(a_body_fed_one_byte_at_a_time_decodes_the_same) {
  char both[256];
  snprintf(both, sizeof(both), "%s%s", CHUNKED, NEXT);
  decoded d;
  decode(&d, both, strlen(both), 1, 4096);
  CHECK(d.res == FM_CHUNKED_END);
  CHECK_EQ_U64(d.end, strlen(CHUNKED));
  CHECK_EQ_INT(d.calls, (int)strlen(CHUNKED)); /* none past the end */
  CHECK_STR(d.body.data, "hello world");
  CHECK(!d.too_large);
  fm_buf_free(&d.body);
}

TEST(a_body_cut_before_its_last_chunk_wants_more) {
  const char *cut = "5\r\nhello\r\n0\r\n"; /* the blank line after the trailers is missing */
  decoded d;
  decode(&d, cut, strlen(cut), 0, 4096);
  CHECK(d.res == FM_CHUNKED_MORE);
  CHECK_EQ_U64(d.end, strlen(cut));
  CHECK_STR(d.body.data, "hello");
  fm_buf_free(&d.body);
}

TEST(chunk_sizes_are_hex_in_either_case) {
  const char *body = "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n";
  decoded d;
  decode(&d, body, strlen(body), 0, 4096);
  CHECK(d.res == FM_CHUNKED_END);
  CHECK_EQ_U64(d.body.len, 20);
  CHECK_STR(d.body.data, "0123456789abcdefghij");
  fm_buf_free(&d.body);
}

TEST(a_body_of_exactly_the_limit_is_kept_whole) {
  const char *body = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
  decoded d;
  decode(&d, body, strlen(body), 0, 10);
  CHECK(d.res == FM_CHUNKED_END);
  CHECK(!d.too_large);
  CHECK_STR(d.body.data, "helloworld");
  fm_buf_free(&d.body);
}

/* Past the limit the data is dropped, but the body is still read to its
 * end, so the router can answer 413 and the connection carry on. */
TEST(a_body_past_the_limit_is_too_large_and_still_read_to_its_end) {
  char both[256];
  snprintf(both, sizeof(both), "%s%s", "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", NEXT);
  size_t body_len = strlen(both) - strlen(NEXT);
  size_t steps[] = {0, 1, 7};
  for (int i = 0; i < 3; i++) {
    decoded d;
    decode(&d, both, strlen(both), steps[i], 8);
    CHECK(d.res == FM_CHUNKED_END);
    CHECK_EQ_U64(d.end, body_len);
    CHECK(d.too_large);
    CHECK(d.body.len <= 8);
    CHECK(d.body.len >= 5 && memcmp(d.body.data, "hello", 5) == 0); /* within the limit: kept */
    fm_buf_free(&d.body);
  }
}

TEST(a_malformed_chunk_size_line_is_bad) {
  const char *bodies[] = {"zz\r\nhello\r\n0\r\n\r\n", "\r\nhello\r\n0\r\n\r\n",
                          "0x5\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n"};
  for (int i = 0; i < 4; i++) {
    decoded d;
    decode(&d, bodies[i], strlen(bodies[i]), 0, 4096);
    CHECK(d.res == FM_CHUNKED_BAD);
    CHECK(d.why && *d.why);
    fm_buf_free(&d.body);
  }
}

TEST(chunk_data_not_followed_by_crlf_is_bad) {
  const char *bodies[] = {"5\r\nhelloXX\r\n0\r\n\r\n", "5\r\nhello\rX0\r\n\r\n",
                          "3\r\nhello\r\n0\r\n\r\n"};
  for (int i = 0; i < 3; i++) {
    for (size_t step = 0; step <= 1; step++) {
      decoded d;
      decode(&d, bodies[i], strlen(bodies[i]), step, 4096);
      CHECK(d.res == FM_CHUNKED_BAD);
      CHECK(d.why && *d.why);
      fm_buf_free(&d.body);
    }
  }
}

TEST(a_chunk_size_of_17_hex_digits_is_bad_and_of_16_is_read) {
  const char *over = "10000000000000000\r\nhello\r\n0\r\n\r\n";
  decoded d;
  decode(&d, over, strlen(over), 0, 4096);
  CHECK(d.res == FM_CHUNKED_BAD);
  CHECK(d.why && *d.why);
  fm_buf_free(&d.body);
  const char *max = "ffffffffffffffff\r\nabc"; /* 2^64 - 1 bytes announced, 3 sent */
  decode(&d, max, strlen(max), 0, 4096);
  CHECK(d.res == FM_CHUNKED_MORE);
  CHECK_EQ_U64(d.end, strlen(max));
  CHECK_STR(d.body.data, "abc");
  fm_buf_free(&d.body);
}

/* ---- reason phrases -------------------------------------------------------------- */

TEST(reason_phrases_are_the_standard_ones) {
  CHECK_STR(fm_http_reason(100), "Continue");
  CHECK_STR(fm_http_reason(200), "OK");
  CHECK_STR(fm_http_reason(404), "Not Found");
  CHECK_STR(fm_http_reason(429), "Too Many Requests");
  CHECK_STR(fm_http_reason(431), "Request Header Fields Too Large");
  CHECK_STR(fm_http_reason(503), "Service Unavailable");
  CHECK_STR(fm_http_reason(505), "HTTP Version Not Supported");
}

TEST(an_unknown_status_has_the_reason_unknown) {
  CHECK_STR(fm_http_reason(999), "Unknown");
  CHECK_STR(fm_http_reason(0), "Unknown");
  CHECK_STR(fm_http_reason(-1), "Unknown");
}

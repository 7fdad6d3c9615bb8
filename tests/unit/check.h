/* check.h — the unit tests' harness: registration, checks, and a runner.
 *
 * Header-only and dependency-free so a test file is one .c file linked
 * against fleetmock_core and nothing else. Each file holds one feature's
 * tests and includes this header exactly once (it defines main).
 *
 *   TEST(chance_zero_never_fires) { ... CHECK_EQ_INT(fired, 0); }
 *
 * A failed CHECK prints file:line, the expression and both values, marks
 * the test failed and carries on, so one run shows every broken assertion;
 * REQUIRE stops the test when going on would only crash. The runner runs
 * every test in file order (or only the one named by argv[1]) and exits
 * non-zero if any failed. Registration uses GCC/Clang constructors, which
 * every compiler this project builds with supports. */
#ifndef FM_CHECK_H
#define FM_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_MAX_TESTS 256

typedef struct check_test {
  const char *name;
  void (*fn)(void);
  int line; /* tests run in the order they appear in the file */
} check_test;

static check_test check_tests[CHECK_MAX_TESTS];
static int check_n_tests;
static int check_failures; /* failed checks in the running test */

static inline void check_register(const char *name, void (*fn)(void), int line) {
  if (check_n_tests == CHECK_MAX_TESTS) {
    fprintf(stderr, "check.h: more than %d tests in one file\n", CHECK_MAX_TESTS);
    exit(2);
  }
  check_tests[check_n_tests++] = (check_test){name, fn, line};
}

static inline void check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void check_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s:%d: ", file, line);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  check_failures++;
}

#define TEST(name)                                                                                 \
  static void test_##name(void);                                                                   \
  __attribute__((constructor)) static void check_register_##name(void) {                           \
    check_register(#name, test_##name, __LINE__);                                                  \
  }                                                                                                \
  static void test_##name(void)

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) check_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                        \
  } while (0)

/* Like CHECK, but ends the test at once: for preconditions later steps rely on. */
#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      check_fail(__FILE__, __LINE__, "REQUIRE(%s) failed", #cond);                                 \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
  do {                                                                                             \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                \
    if (check_a_ != check_b_)                                                                      \
      check_fail(__FILE__, __LINE__, "CHECK_EQ_INT(%s, %s): %lld != %lld", #a, #b, check_a_,       \
                 check_b_);                                                                        \
  } while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
  do {                                                                                             \
    unsigned long long check_a_ = (unsigned long long)(a), check_b_ = (unsigned long long)(b);     \
    if (check_a_ != check_b_)                                                                      \
      check_fail(__FILE__, __LINE__, "CHECK_EQ_U64(%s, %s): %llu != %llu", #a, #b, check_a_,       \
                 check_b_);                                                                        \
  } while (0)

/* |a - b| <= eps; NaN on either side fails. */
#define CHECK_NEAR(a, b, eps)                                                                      \
  do {                                                                                             \
    double check_a_ = (double)(a), check_b_ = (double)(b), check_e_ = (double)(eps);               \
    if (!(fabs(check_a_ - check_b_) <= check_e_))                                                  \
      check_fail(__FILE__, __LINE__, "CHECK_NEAR(%s, %s, %s): %.17g vs %.17g (off by %.6g)", #a,   \
                 #b, #eps, check_a_, check_b_, fabs(check_a_ - check_b_));                         \
  } while (0)

/* Equal strings; two NULLs are equal, NULL and a string are not. */
#define CHECK_STR(a, b)                                                                            \
  do {                                                                                             \
    const char *check_a_ = (a), *check_b_ = (b);                                                   \
    if (check_a_ != check_b_ && (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0))       \
      check_fail(__FILE__, __LINE__, "CHECK_STR(%s, %s): \"%s\" != \"%s\"", #a, #b,                \
                 check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");                  \
  } while (0)

#define CHECK_STR_PREFIX(s, prefix)                                                                \
  do {                                                                                             \
    const char *check_a_ = (s), *check_b_ = (prefix);                                              \
    if (!check_a_ || strncmp(check_a_, check_b_, strlen(check_b_)) != 0)                           \
      check_fail(__FILE__, __LINE__,                                                               \
                 "CHECK_STR_PREFIX(%s, %s): \"%s\" does not start with \"%s\"", #s, #prefix,       \
                 check_a_ ? check_a_ : "(null)", check_b_);                                        \
  } while (0)

#define CHECK_STR_CONTAINS(s, needle)                                                              \
  do {                                                                                             \
    const char *check_a_ = (s), *check_b_ = (needle);                                              \
    if (!check_a_ || !strstr(check_a_, check_b_))                                                  \
      check_fail(__FILE__, __LINE__, "CHECK_STR_CONTAINS(%s, %s): \"%s\" does not contain \"%s\"", \
                 #s, #needle, check_a_ ? check_a_ : "(null)", check_b_);                           \
  } while (0)

static inline int check_by_line(const void *a, const void *b) {
  return ((const check_test *)a)->line - ((const check_test *)b)->line;
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  qsort(check_tests, (size_t)check_n_tests, sizeof(check_tests[0]), check_by_line);
  int ran = 0, failed = 0;
  for (int i = 0; i < check_n_tests; i++) {
    if (only && strcmp(only, check_tests[i].name) != 0) continue;
    check_failures = 0;
    check_tests[i].fn();
    ran++;
    if (check_failures) failed++;
    printf("%s %s\n", check_failures ? "FAIL" : "ok  ", check_tests[i].name);
    fflush(stdout);
  }
  if (only && ran == 0) {
    printf("no test named %s\n", only);
    return 2;
  }
  printf("%d of %d tests passed\n", ran - failed, ran);
  return failed ? 1 : 0;
}

#endif

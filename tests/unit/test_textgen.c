/* test_textgen.c — the token-count rule and the deterministic fake text. */
#include "check.h"
#include "textgen.h"

#include <ctype.h>

/* This seed writes "drill same care answers makes gives finds usage steady with"; the
 * stop tests cut that text, but work out what to expect from a run without stops. */
#define SEED 12346

/* The text a generator writes, call by call, until it says it is done. */
typedef struct run {
  char tok[64][FM_GEN_OUT_MAX + 1];
  size_t len[64];
  int n; /* calls that returned bytes */
  int calls;
  char text[4096];
} run;

static void run_gen(run *r, uint64_t seed, uint32_t target, const fm_stops *stops) {
  fm_gen g;
  memset(r, 0, sizeof(*r));
  fm_gen_start(&g, seed, target);
  size_t used = 0;
  for (int i = 0; i < 64 && !fm_gen_done(&g); i++) {
    char out[FM_GEN_OUT_MAX];
    size_t n = fm_gen_next(&g, stops, out);
    r->calls++;
    if (n == 0) continue;
    memcpy(r->tok[r->n], out, n);
    r->len[r->n++] = n;
    memcpy(r->text + used, out, n);
    used += n;
  }
}

static fm_stops one_stop(const char *s) {
  fm_stops st = {.n = 1};
  st.s[0] = s;
  st.len[0] = strlen(s);
  return st;
}

TEST(tokens_for_bytes_rounds_up_to_whole_tokens) {
  CHECK_EQ_INT(fm_tokens_for_bytes(0), 0);
  CHECK_EQ_INT(fm_tokens_for_bytes(1), 1);
  CHECK_EQ_INT(fm_tokens_for_bytes(4), 1);
  CHECK_EQ_INT(fm_tokens_for_bytes(5), 2);
  CHECK_EQ_INT(fm_tokens_for_bytes(8), 2);
  CHECK_EQ_INT(fm_tokens_for_bytes(4000), 1000);
}

TEST(same_seed_gives_identical_tokens) {
  static run a, b;
  run_gen(&a, SEED, 40, NULL);
  run_gen(&b, SEED, 40, NULL);
  CHECK_EQ_INT(a.n, 40);
  CHECK_EQ_INT(b.n, 40);
  for (int i = 0; i < 40; i++)
    CHECK_STR(a.tok[i], b.tok[i]);
}

TEST(different_seed_gives_different_text) {
  static run a, b;
  run_gen(&a, SEED, 40, NULL);
  run_gen(&b, SEED + 1, 40, NULL);
  CHECK(strcmp(a.text, b.text) != 0);
}

TEST(gen_seed_depends_on_seed_prompt_and_choice) {
  uint64_t base = fm_gen_seed(1, 100, 0);
  CHECK_EQ_U64(fm_gen_seed(1, 100, 0), base);
  CHECK(fm_gen_seed(2, 100, 0) != base);
  CHECK(fm_gen_seed(1, 101, 0) != base);
  CHECK(fm_gen_seed(1, 100, 1) != base);
}

TEST(target_n_gives_exactly_n_tokens_then_nothing) {
  fm_gen g;
  fm_gen_start(&g, SEED, 25);
  char out[FM_GEN_OUT_MAX];
  int produced = 0;
  while (!fm_gen_done(&g) && produced < 100) {
    CHECK(fm_gen_next(&g, NULL, out) > 0);
    produced++;
  }
  CHECK_EQ_INT(produced, 25);
  CHECK_EQ_INT(g.produced, 25);
  CHECK_EQ_INT(fm_gen_next(&g, NULL, out), 0);
  CHECK_EQ_INT(fm_gen_next(&g, NULL, out), 0);
  CHECK(!g.stopped);
}

TEST(target_zero_gives_no_tokens) {
  fm_gen g;
  fm_gen_start(&g, SEED, 0);
  char out[FM_GEN_OUT_MAX];
  CHECK(fm_gen_done(&g));
  CHECK_EQ_INT(fm_gen_next(&g, NULL, out), 0);
}

TEST(first_token_has_no_leading_space_and_later_ones_do) {
  static run r;
  run_gen(&r, SEED, 30, NULL);
  REQUIRE(r.n == 30);
  CHECK(r.tok[0][0] != ' ');
  for (int i = 1; i < r.n; i++)
    CHECK(r.tok[i][0] == ' ');
}

TEST(tokens_are_single_lowercase_words_that_fit) {
  static run r;
  run_gen(&r, SEED, 60, NULL);
  for (int i = 0; i < r.n; i++) {
    CHECK(r.len[i] <= FM_TOKEN_MAX_BYTES);
    for (size_t k = i > 0 ? 1 : 0; k < r.len[i]; k++)
      CHECK(islower((unsigned char)r.tok[i][k]));
  }
}

TEST(stop_inside_a_token_truncates_it_and_ends_the_text) {
  static run ref;
  run_gen(&ref, SEED, 10, NULL);
  /* The stop is token 4 without its space and first letter: " xyz" keeps " x". */
  const char *word = ref.tok[4] + 1;
  REQUIRE(strlen(word) >= 3);
  const char *stop = word + 1;
  char before[2048];
  snprintf(before, sizeof(before), "%s%s%s%s", ref.tok[0], ref.tok[1], ref.tok[2], ref.tok[3]);
  REQUIRE(strstr(before, stop) == NULL); /* the scene: no earlier match */

  fm_stops st = one_stop(stop);
  fm_gen g;
  fm_gen_start(&g, SEED, 10);
  char out[FM_GEN_OUT_MAX];
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(fm_gen_next(&g, &st, out), ref.len[i]);
  CHECK(!g.stopped);
  CHECK_EQ_INT(fm_gen_next(&g, &st, out), 2);
  CHECK(out[0] == ' ' && out[1] == word[0]);
  CHECK(g.stopped);
  CHECK(fm_gen_done(&g));
  CHECK_EQ_INT(fm_gen_next(&g, &st, out), 0);
  CHECK_EQ_INT(g.produced, 5);
  CHECK_STR(fm_gen_finish_reason(&g, false), "stop");
}

TEST(stop_matching_a_whole_token_drops_that_token) {
  static run ref, got;
  run_gen(&ref, SEED, 10, NULL);
  char before[2048];
  snprintf(before, sizeof(before), "%s%s%s", ref.tok[0], ref.tok[1], ref.tok[2]);
  REQUIRE(strstr(before, ref.tok[3]) == NULL);
  fm_stops st = one_stop(ref.tok[3]);
  run_gen(&got, SEED, 10, &st);
  CHECK_EQ_INT(got.n, 3);
  CHECK_STR(got.text, before);
}

TEST(stop_spanning_two_tokens_is_never_sent_even_in_part) {
  static run ref;
  run_gen(&ref, SEED, 10, NULL);
  /* Last two letters of token 3, the space, first two letters of token 4. */
  REQUIRE(ref.len[3] >= 3 && ref.len[4] >= 3);
  char stop[8];
  snprintf(stop, sizeof(stop), "%.2s %.2s", ref.tok[3] + ref.len[3] - 2, ref.tok[4] + 1);
  char upto3[2048];
  snprintf(upto3, sizeof(upto3), "%s%s%s%s", ref.tok[0], ref.tok[1], ref.tok[2], ref.tok[3]);
  REQUIRE(strstr(upto3, stop) == NULL);

  fm_stops st = one_stop(stop);
  fm_gen g;
  fm_gen_start(&g, SEED, 10);
  char out[FM_GEN_OUT_MAX];
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(fm_gen_next(&g, &st, out), ref.len[i]);
  /* Token 3 ends with the stop's first two letters: they are held back. */
  CHECK_EQ_INT(fm_gen_next(&g, &st, out), ref.len[3] - 2);
  CHECK(!g.stopped);
  /* Token 4 completes the stop: the held letters are dropped, nothing is sent. */
  CHECK_EQ_INT(fm_gen_next(&g, &st, out), 0);
  CHECK(g.stopped);
  CHECK(fm_gen_done(&g));
  CHECK_EQ_INT(g.produced, 5);
  CHECK_STR(fm_gen_finish_reason(&g, true), "stop");
}

TEST(held_back_text_that_does_not_become_a_stop_goes_out_with_the_next_token) {
  static run ref, got;
  run_gen(&ref, SEED, 10, NULL);
  /* Token 3's last two letters, then something the text never has. */
  char stop[8];
  snprintf(stop, sizeof(stop), "%.2sQ", ref.tok[3] + ref.len[3] - 2);
  fm_stops st = one_stop(stop);
  run_gen(&got, SEED, 10, &st);
  CHECK_STR(got.text, ref.text); /* every byte arrives, in order */
  CHECK_EQ_INT(got.calls, 10);
  CHECK_EQ_INT(got.len[3], ref.len[3] - 2);
  CHECK_EQ_INT(got.len[4], 2 + ref.len[4]);
}

TEST(the_last_token_holds_nothing_back) {
  static run ref, got;
  run_gen(&ref, SEED, 10, NULL);
  char stop[8]; /* the last token's last letter, then a letter that never follows */
  snprintf(stop, sizeof(stop), "%.1sQ", ref.tok[9] + ref.len[9] - 1);
  fm_stops st = one_stop(stop);
  run_gen(&got, SEED, 10, &st);
  CHECK_STR(got.text, ref.text);
}

TEST(no_chunk_carries_part_of_a_stop_whatever_the_stop) {
  /* Every stop cut out of a long text, at every offset and length up to 12:
   * the chunks joined are the text before the stop's first occurrence, and no
   * chunk ends with a byte of the stop that the text then completes. */
  static run ref, got;
  run_gen(&ref, SEED, 40, NULL);
  size_t total = strlen(ref.text);
  int cases = 0;
  for (size_t at = 0; at + 2 < total && at < 120; at += 3) {
    for (size_t len = 2; len <= 12 && at + len <= total; len += 5) {
      char stop[16];
      memcpy(stop, ref.text + at, len);
      stop[len] = '\0';
      const char *first = strstr(ref.text, stop);
      REQUIRE(first != NULL);
      fm_stops st = one_stop(stop);
      run_gen(&got, SEED, 40, &st);
      size_t keep = (size_t)(first - ref.text);
      CHECK_EQ_INT(strlen(got.text), keep);
      CHECK(strncmp(got.text, ref.text, keep) == 0);
      cases++;
    }
  }
  CHECK(cases > 50);
}

TEST(earliest_of_several_stops_wins) {
  static run ref, got;
  run_gen(&ref, SEED, 10, NULL);
  char before[2048];
  snprintf(before, sizeof(before), "%s%s", ref.tok[0], ref.tok[1]);
  REQUIRE(strstr(before, ref.tok[2]) == NULL);
  REQUIRE(strstr(before, ref.tok[5]) == NULL);
  fm_stops st = {.n = 2};
  st.s[0] = ref.tok[5]; /* later stop listed first */
  st.len[0] = ref.len[5];
  st.s[1] = ref.tok[2];
  st.len[1] = ref.len[2];
  run_gen(&got, SEED, 10, &st);
  CHECK_STR(got.text, before);
}

TEST(stop_never_seen_changes_nothing) {
  static run ref, got;
  run_gen(&ref, SEED, 20, NULL);
  fm_stops st = one_stop("XYZ"); /* the text is lowercase only */
  run_gen(&got, SEED, 20, &st);
  CHECK_EQ_INT(got.n, 20);
  CHECK_STR(got.text, ref.text);
}

TEST(finish_reason_is_length_when_capped_and_stop_otherwise) {
  fm_gen g;
  char out[FM_GEN_OUT_MAX];
  fm_gen_start(&g, SEED, 3);
  while (fm_gen_next(&g, NULL, out) > 0) {
  }
  CHECK_STR(fm_gen_finish_reason(&g, true), "length"); /* ran into max_tokens */
  CHECK_STR(fm_gen_finish_reason(&g, false), "stop");  /* drawn length: a natural end */
}

TEST(draw_length_stays_within_min_and_max) {
  fm_rng r;
  fm_rng_seed(&r, SEED);
  int out = 0, at_min = 0, at_max = 0;
  for (int i = 0; i < 20000; i++) {
    uint32_t n = fm_gen_draw_length(&r, 16, 150, 600);
    out += n < 16 || n > 600;
    at_min += n == 16;
    at_max += n == 600;
  }
  CHECK_EQ_INT(out, 0);
  /* The exponential tail past 600 is clipped onto 600: P = exp(-584/134) ~ 1.3%. */
  CHECK(at_max > 100);
  CHECK(at_min > 0);
}

TEST(draw_length_mean_is_the_configured_mean) {
  /* max far out so clipping does not pull the mean down. */
  fm_rng r;
  fm_rng_seed(&r, SEED);
  double sum = 0;
  for (int i = 0; i < 20000; i++)
    sum += fm_gen_draw_length(&r, 16, 150, 1000000);
  CHECK_NEAR(sum / 20000, 150, 3); /* standard error ~ 134 / sqrt(20000) ~ 0.95 */
}

TEST(draw_length_with_min_equal_max_is_fixed) {
  fm_rng r;
  fm_rng_seed(&r, SEED);
  for (int i = 0; i < 100; i++)
    CHECK_EQ_INT(fm_gen_draw_length(&r, 64, 64, 64), 64);
}

TEST(draw_length_repeats_for_the_same_rng_state) {
  fm_rng a, b;
  fm_rng_seed(&a, SEED);
  fm_rng_seed(&b, SEED);
  for (int i = 0; i < 100; i++)
    CHECK_EQ_INT(fm_gen_draw_length(&a, 16, 150, 600), fm_gen_draw_length(&b, 16, 150, 600));
}

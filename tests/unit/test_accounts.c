/* test_accounts.c — the bounded account table: its bound, least-recently-used
 * eviction of idle unnamed accounts, exact totals after eviction, lookups
 * after backward-shift deletions, and listing pages in key id order. */
#include "accounts.h"
#include "check.h"
#include "rng.h"

static fm_accounts_cfg no_keys(void) {
  fm_accounts_cfg c = {0};
  return c;
}

static const char *key(int i) {
  static char buf[8][32];
  static int next;
  char *b = buf[next++ % 8];
  snprintf(b, 32, "sk-test-%d", i);
  return b;
}

static bool present(const fm_accounts *a, const char *k) {
  char id[16];
  fm_key_id(k, id);
  return fm_accounts_by_id(a, id) != NULL;
}

TEST(a_full_table_holds_its_bound) {
  fm_accounts_cfg cfg = no_keys();
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 2, 8);
  for (int i = 0; i < 100; i++)
    REQUIRE(fm_accounts_get(&a, key(i)));
  CHECK_EQ_U64(a.n, 8);
  CHECK_EQ_U64(a.n_evicted, 92);
  for (int i = 92; i < 100; i++) /* the last eight stay */
    CHECK(present(&a, key(i)));
  CHECK(!present(&a, key(91)));
  fm_accounts_free(&a);
}

TEST(the_least_recently_used_idle_account_is_evicted_first) {
  fm_accounts_cfg cfg = no_keys();
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 2, 3);
  fm_accounts_get(&a, "alpha");
  fm_accounts_get(&a, "bravo");
  fm_accounts_get(&a, "charlie");
  fm_accounts_get(&a, "alpha"); /* alpha is now the most recent: bravo is the oldest */
  fm_accounts_get(&a, "delta");
  CHECK(!present(&a, "bravo"));
  CHECK(present(&a, "alpha"));
  CHECK(present(&a, "charlie"));
  CHECK(present(&a, "delta"));
  fm_accounts_get(&a, "echo"); /* then charlie */
  CHECK(!present(&a, "charlie"));
  CHECK(present(&a, "alpha"));
  CHECK_EQ_U64(a.n_evicted, 2);
  fm_accounts_free(&a);
}

TEST(a_named_account_is_never_evicted) {
  fm_key_cfg keys[1] = {{.key = "sk-named", .name = "team-a"}};
  fm_accounts_cfg cfg = {.keys = keys, .n_keys = 1};
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 2, 2);
  fm_account *named = fm_accounts_get(&a, "sk-named");
  REQUIRE(named);
  CHECK(named->named);
  for (int i = 0; i < 50; i++)
    fm_accounts_get(&a, key(i));
  CHECK(present(&a, "sk-named"));
  CHECK(fm_accounts_get(&a, "sk-named") == named);
  CHECK_EQ_U64(a.n, 2);
  CHECK_EQ_U64(a.n_evicted, 49);
  fm_accounts_free(&a);
}

TEST(an_account_in_use_is_never_evicted) {
  fm_accounts_cfg cfg = no_keys();
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 2, 2);
  fm_account *busy = fm_accounts_get(&a, "busy");
  fm_accounts_hold(&a, busy);
  for (int i = 0; i < 20; i++)
    fm_accounts_get(&a, key(i));
  CHECK(present(&a, "busy"));
  CHECK_EQ_U64(a.n, 2);
  CHECK_EQ_U64(a.n_evicted, 19);
  /* Released, it is the most recent idle account: the other one goes first. */
  fm_accounts_release(&a, busy);
  fm_accounts_get(&a, "next");
  CHECK(present(&a, "busy"));
  CHECK(!present(&a, key(19)));
  fm_accounts_free(&a);
}

TEST(with_every_account_in_use_the_table_runs_over_and_is_trimmed_when_they_end) {
  fm_accounts_cfg cfg = no_keys();
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 2, 2);
  fm_account *held[5];
  for (int i = 0; i < 5; i++) {
    held[i] = fm_accounts_get(&a, key(i));
    REQUIRE(held[i]);
    fm_accounts_hold(&a, held[i]);
    fm_accounts_hold(&a, held[i]); /* two requests on one account */
  }
  CHECK_EQ_U64(a.n, 5); /* over the bound by the accounts in use, none lost */
  CHECK_EQ_U64(a.n_evicted, 0);
  for (int i = 0; i < 5; i++)
    fm_accounts_release(&a, held[i]);
  CHECK_EQ_U64(a.n, 5); /* each still has a request */
  for (int i = 0; i < 5; i++)
    fm_accounts_release(&a, held[i]);
  CHECK_EQ_U64(a.n, 2); /* back to the bound: the first ones released went first */
  CHECK_EQ_U64(a.n_evicted, 3);
  CHECK(present(&a, key(3)));
  CHECK(present(&a, key(4)));
  fm_accounts_free(&a);
}

TEST(trim_evicts_only_idle_unnamed_accounts_oldest_first) {
  fm_key_cfg keys[1] = {{.key = "sk-named", .name = "team-a"}};
  fm_accounts_cfg cfg = {.keys = keys, .n_keys = 1};
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 2, 100);
  fm_accounts_get(&a, "sk-named");
  fm_accounts_hold(&a, fm_accounts_get(&a, "sk-busy"));
  for (int i = 0; i < 8; i++)
    fm_accounts_get(&a, key(i));
  CHECK_EQ_U64(a.n, 10);
  a.max = 3; /* named + busy + the most recent idle one */
  CHECK_EQ_U64(fm_accounts_trim(&a, 0), 7);
  CHECK(present(&a, "sk-named"));
  CHECK(present(&a, "sk-busy"));
  CHECK(present(&a, key(7)));
  CHECK(!present(&a, key(6)));
  CHECK_EQ_U64(fm_accounts_trim(&a, 0), 0); /* at the bound: nothing more */
  CHECK_EQ_U64(fm_accounts_trim(&a, 1), 1); /* room for one: the last idle one goes */
  CHECK_EQ_U64(fm_accounts_trim(&a, 3), 0); /* the rest are named or in use */
  CHECK_EQ_U64(a.n, 2);
  fm_accounts_free(&a);
}

/* Account i makes i + 1 requests of 200 (10 prompt, 4 cached, 7 generated
 * tokens, $0.25 each: exact in binary, so sums compare equal) plus one 429,
 * two 402s and three 503s, and one cache lookup per 200, one of them a hit. */
static void spend(fm_accounts *a, fm_account *acc, fm_path path, uint64_t n) {
  for (uint64_t k = 0; k < n; k++) {
    fm_accounts_bill(a, acc, path, 200, 10, 4, 7, 0.25);
    fm_accounts_cache_lookup(a, acc, k == 0);
  }
  fm_accounts_bill(a, acc, path, 429, 0, 0, 0, 0);
  fm_accounts_refused(a, acc, FM_LIMIT_PROMPT);
  for (int k = 0; k < 2; k++) {
    fm_accounts_bill(a, acc, path, 402, 0, 0, 0, 0);
    fm_accounts_refused(a, acc, FM_LIMIT_BUDGET);
  }
  for (int k = 0; k < 3; k++)
    fm_accounts_bill(a, acc, path, 503, 0, 0, 0, 0);
}

static uint64_t requests_of(const fm_usage by_path[FM_PATH_N]) {
  uint64_t n = 0;
  for (int p = 0; p < FM_PATH_N; p++)
    n += by_path[p].requests;
  return n;
}

TEST(totals_stay_exact_after_eviction_and_the_evicted_part_is_folded) {
  fm_accounts_cfg cfg = no_keys();
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 2, 4);
  uint64_t ok = 0;
  for (int i = 0; i < 40; i++) {
    fm_account *acc = fm_accounts_get(&a, key(i));
    REQUIRE(acc);
    spend(&a, acc, (fm_path)(i % FM_PATH_N), (uint64_t)i + 1);
    CHECK(acc->spent_usd == 0.25 * (double)(i + 1));
    ok += (uint64_t)i + 1;
  }
  CHECK_EQ_U64(a.n_evicted, 36);
  /* All 40 accounts, evicted or not. */
  const fm_tally *t = &a.all;
  uint64_t got_ok = 0, gen = 0;
  double cost = 0;
  for (int p = 0; p < FM_PATH_N; p++) {
    got_ok += t->by_path[p].ok;
    gen += t->by_path[p].generated_tokens;
    cost += t->by_path[p].cost_usd;
    CHECK_EQ_U64(t->by_path[p].limited, 10); /* 40 accounts, 10 per tier */
    CHECK_EQ_U64(t->by_path[p].over_budget, 20);
    CHECK_EQ_U64(t->by_path[p].shed, 30);
  }
  CHECK_EQ_U64(requests_of(t->by_path), ok + 40 * 6);
  CHECK_EQ_U64(got_ok, ok);
  CHECK_EQ_U64(gen, 7 * ok);
  CHECK_EQ_U64(t->cache_lookups, ok);
  CHECK_EQ_U64(t->cache_hits, 40);
  CHECK_EQ_U64(t->limited_by[FM_LIMIT_PROMPT], 40);
  CHECK_EQ_U64(t->limited_by[FM_LIMIT_BUDGET], 80);
  CHECK(cost == 0.25 * (double)ok);
  CHECK(t->spent_usd == 0.25 * (double)ok);
  /* The evicted part: accounts 0..35, i + 1 200s and 6 refusals each. */
  CHECK_EQ_U64(requests_of(a.evicted.by_path), 36 * 37 / 2 + 36 * 6);
  CHECK(a.evicted.spent_usd == 0.25 * (36 * 37 / 2));
  /* And all = evicted + the accounts held, field by field. */
  fm_tally sum = a.evicted;
  for (size_t i = 0; i < a.cap; i++)
    if (a.slots[i]) fm_tally_add(&sum, a.slots[i]);
  CHECK(memcmp(&sum, &a.all, sizeof(sum)) == 0);
  fm_accounts_reset(&a, 0);
  CHECK_EQ_U64(requests_of(a.all.by_path), 0);
  CHECK_EQ_U64(requests_of(a.evicted.by_path), 0);
  CHECK_EQ_U64(a.n_evicted, 0);
  fm_accounts_free(&a);
}

/* Churn against a model of what must survive: 64 slots at up to 75 % load
 * make long clusters, so every backward shift is exercised many times. */
TEST(lookups_find_every_survivor_after_deletions) {
  enum { MAX = 48, KEYS = 300, OPS = 30000 };
  fm_accounts_cfg cfg = no_keys();
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 1, MAX);
  int order[KEYS]; /* model: keys held, least recent first */
  int held = 0;
  fm_rng rng;
  fm_rng_seed(&rng, 7);
  for (int op = 0; op < OPS; op++) {
    int k = (int)fm_rng_below(&rng, KEYS);
    size_t before = a.n;
    REQUIRE(fm_accounts_get(&a, key(k)));
    int found = -1;
    for (int i = 0; i < held; i++)
      if (order[i] == k) found = i;
    if (found >= 0) { /* a hit moves it to the recent end */
      CHECK_EQ_U64(a.n, before);
      for (int i = found; i < held - 1; i++)
        order[i] = order[i + 1];
      order[held - 1] = k;
    } else {
      if (held == MAX) { /* full: the oldest went */
        for (int i = 0; i < held - 1; i++)
          order[i] = order[i + 1];
        held--;
      }
      order[held++] = k;
    }
    REQUIRE(a.n == (size_t)held);
    if (op % 97 == 0) {
      bool in[KEYS] = {false};
      for (int i = 0; i < held; i++)
        in[order[i]] = true;
      for (int i = 0; i < KEYS; i++) {
        if (in[i] != present(&a, key(i)))
          check_fail(__FILE__, __LINE__, "op %d: key %d present %d, model says %d", op, i,
                     present(&a, key(i)), in[i]);
      }
    }
  }
  CHECK_EQ_U64(a.n, MAX);
  fm_accounts_free(&a);
}

TEST(pages_walk_every_account_once_in_key_id_order) {
  fm_accounts_cfg cfg = no_keys();
  fm_accounts a;
  fm_accounts_init(&a, &cfg, 1, 1000);
  for (int i = 0; i < 53; i++)
    fm_accounts_get(&a, key(i));
  fm_account *page[7];
  uint64_t after = 0, last = 0;
  bool from_start = true, more = true;
  int seen = 0, pages = 0;
  while (more) {
    size_t n = fm_accounts_page(&a, from_start ? NULL : &after, 7, page, &more);
    pages++;
    CHECK(n == 7 || !more);
    for (size_t i = 0; i < n; i++) {
      CHECK(seen == 0 || page[i]->id_bits > last);
      last = page[i]->id_bits;
      seen++;
    }
    if (n) after = page[n - 1]->id_bits;
    from_start = false;
  }
  CHECK_EQ_INT(seen, 53);
  CHECK_EQ_INT(pages, 8); /* 7 full pages and 4 on the last */
  /* A cursor that is no longer in the table still marks its place. */
  uint64_t gone = page[0]->id_bits - 1;
  bool m;
  size_t n = fm_accounts_page(&a, &gone, 7, page, &m);
  CHECK(n >= 1 && page[0]->id_bits > gone);
  fm_accounts_free(&a);
}

TEST(key_ids_parse_back_to_their_bits) {
  uint64_t bits;
  char id[16];
  fm_key_id("sk-anything", id);
  REQUIRE(fm_key_id_parse(id, &bits));
  char again[16];
  snprintf(again, sizeof(again), "k-%012llx", (unsigned long long)bits);
  CHECK_STR(again, id);
  CHECK(!fm_key_id_parse("k-3f9a1c2b7d4", &bits));   /* short */
  CHECK(!fm_key_id_parse("k-3f9a1c2b7d40a", &bits)); /* long */
  CHECK(!fm_key_id_parse("k-3F9A1C2B7D40", &bits));  /* ids are lower case */
  CHECK(!fm_key_id_parse("x-3f9a1c2b7d40", &bits));
}

/* test_schema.c — JSON Schema check, generation and validation (server/schema.c).
 *
 * The corpus under tests/schemas (FM_SCHEMA_CORPUS, set by CMake) holds the
 * schemas zod 4, the openai SDK's zodResponseFormat and the AI SDK produce,
 * plus hand-written edge cases of each keyword: every one must pass the
 * check, and what is generated for it must validate. tests/schemas/invalid
 * holds schemas the check must refuse, with the path it must name. */
#include "check.h"
#include "schema.h"

#include <cjson/cJSON.h>
#include <dirent.h>

#define SEEDS 50

static cJSON *read_json(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  return cJSON_Parse(buf);
}

static char *gen(const cJSON *schema, uint64_t seed) {
  fm_buf b;
  fm_buf_init(&b);
  fm_schema_err e;
  if (!fm_schema_generate(schema, seed, &b, &e)) {
    printf("  generate failed: %s: %s\n", e.path, e.message);
    fm_buf_free(&b);
    return NULL;
  }
  return fm_buf_steal(&b, NULL);
}

static bool valid(const char *schema_json, const char *value_json) {
  cJSON *s = cJSON_Parse(schema_json), *v = cJSON_Parse(value_json);
  fm_schema_err e;
  bool ok = s && v && fm_schema_validate(s, v, &e);
  cJSON_Delete(s);
  cJSON_Delete(v);
  return ok;
}

static bool checks(const char *schema_json, fm_schema_err *e) {
  cJSON *s = cJSON_Parse(schema_json);
  bool ok = s && fm_schema_check(s, "schema", e);
  cJSON_Delete(s);
  return ok;
}

TEST(every_corpus_schema_passes_the_check_and_its_values_validate) {
  DIR *d = opendir(FM_SCHEMA_CORPUS);
  REQUIRE(d);
  int files = 0, with_plain = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", FM_SCHEMA_CORPUS, de->d_name);
    cJSON *s = read_json(path);
    if (!s) {
      check_fail(__FILE__, __LINE__, "%s does not parse", de->d_name);
      continue;
    }
    files++;
    fm_schema_err e;
    if (!fm_schema_check(s, "schema", &e)) {
      check_fail(__FILE__, __LINE__, "%s refused: %s: %s", de->d_name, e.path, e.message);
      cJSON_Delete(s);
      continue;
    }
    /* The compiled form (what requests use, its plain subschemas written
     * without the general machinery) gives the same bytes. */
    fm_schema *compiled = fm_schema_accept(s, "schema", &e);
    CHECK(compiled != NULL);
    if (compiled && fm_schema_plain_count(compiled) > 0) with_plain++;
    for (uint64_t seed = 1; seed <= 20 && compiled; seed++) {
      char *a = gen(s, seed);
      fm_buf c;
      fm_buf_init(&c);
      CHECK(fm_schema_emit(compiled, seed, &c, &e));
      fm_buf_putc(&c, 0);
      if (a && strcmp(a, c.data) != 0)
        check_fail(__FILE__, __LINE__, "%s seed %llu: compiled gives %s, not %s", de->d_name,
                   (unsigned long long)seed, c.data, a);
      fm_buf_free(&c);
      free(a);
    }
    fm_schema_release(compiled);
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
      char *a = gen(s, seed), *b = gen(s, seed);
      if (!a || !b) {
        check_fail(__FILE__, __LINE__, "%s seed %llu: no value", de->d_name,
                   (unsigned long long)seed);
      } else {
        if (strcmp(a, b) != 0)
          check_fail(__FILE__, __LINE__, "%s seed %llu: two runs differ", de->d_name,
                     (unsigned long long)seed);
        cJSON *v = cJSON_Parse(a);
        if (!v)
          check_fail(__FILE__, __LINE__, "%s seed %llu: not JSON: %s", de->d_name,
                     (unsigned long long)seed, a);
        else if (!fm_schema_validate(s, v, &e))
          check_fail(__FILE__, __LINE__, "%s seed %llu: %s invalid at %s: %s", de->d_name,
                     (unsigned long long)seed, a, e.path, e.message);
        cJSON_Delete(v);
      }
      free(a);
      free(b);
    }
    cJSON_Delete(s);
  }
  closedir(d);
  CHECK(files >= 70);
  /* the plain path is compared on many of them, not on none */
  printf("  %d of %d corpus schemas have plain subschemas\n", with_plain, files);
  CHECK(with_plain >= 20);
}

TEST(invalid_schemas_are_refused_at_the_expected_path) {
  FILE *f = fopen(FM_SCHEMA_CORPUS "/invalid/expected.tsv", "r");
  REQUIRE(f);
  char line[2048];
  int n = 0;
  while (fgets(line, sizeof(line), f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    line[strcspn(line, "\r\n")] = 0;
    char *tab = strchr(line, '\t');
    REQUIRE(tab);
    *tab = 0;
    const char *want = tab + 1;
    char path[4096];
    snprintf(path, sizeof(path), "%s/invalid/%.1000s", FM_SCHEMA_CORPUS, line);
    cJSON *s = read_json(path);
    if (!s) {
      check_fail(__FILE__, __LINE__, "%s does not parse", line);
      continue;
    }
    n++;
    fm_schema_err e;
    if (fm_schema_check(s, "schema", &e)) {
      check_fail(__FILE__, __LINE__, "%s was accepted", line);
    } else {
      /* e->path is bounded: a long expected path must start with what was reported */
      bool truncated = strlen(e.path) == sizeof(e.path) - 1;
      if (truncated ? strncmp(want, e.path, strlen(e.path)) != 0 : strcmp(want, e.path) != 0)
        check_fail(__FILE__, __LINE__, "%s: path %s, want %s (%s)", line, e.path, want, e.message);
      if (strlen(e.message) < 10) check_fail(__FILE__, __LINE__, "%s: no message", line);
    }
    cJSON_Delete(s);
  }
  fclose(f);
  CHECK(n >= 30);
}

TEST(the_path_names_the_request_field_and_the_keyword) {
  fm_schema_err e;
  cJSON *s = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"age\":{\"type\":\"integer\","
                         "\"minimum\":10,\"maximum\":5}}}");
  CHECK(!fm_schema_check(s, "response_format.json_schema.schema", &e));
  CHECK_STR(e.path, "response_format.json_schema.schema.properties.age.minimum");
  CHECK_STR_CONTAINS(e.message, "lower the minimum or raise the maximum");
  CHECK(!fm_schema_check(s, "tools[0].function.parameters", &e));
  CHECK_STR(e.path, "tools[0].function.parameters.properties.age.minimum");
  cJSON_Delete(s);
}

TEST(unsupported_patterns_are_refused_with_a_reason) {
  fm_schema_err e;
  CHECK(!checks("{\"type\":\"string\",\"pattern\":\"^(?=a).*$\"}", &e));
  CHECK_STR(e.path, "schema.pattern");
  CHECK_STR_CONTAINS(e.message, "lookarounds");
  CHECK(!checks("{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", &e));
  CHECK_STR_CONTAINS(e.message, "backreferences");
}

TEST(hostile_schemas_are_refused_quickly) {
  fm_schema_err e;
  CHECK(!checks("{\"type\":\"array\",\"minItems\":1000000000}", &e));
  CHECK_STR(e.path, "schema.minItems");
  CHECK(!checks("{\"type\":\"string\",\"minLength\":1000000000}", &e));
  CHECK_STR(e.path, "schema.minLength");
  CHECK(!checks("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
                "\"$ref\":\"#/$defs/a\"}",
                &e));
  CHECK_STR(e.path, "schema");
  /* 256^4 items if generated naively: the output bound refuses it */
  CHECK(!checks("{\"type\":\"array\",\"minItems\":256,\"items\":{\"type\":\"array\",\"minItems\":"
                "256,\"items\":{\"type\":\"array\",\"minItems\":256,\"items\":{\"type\":\"array\","
                "\"minItems\":256}}}}",
                &e));
  CHECK_STR(e.path, "schema");
}

TEST(generate_on_an_unchecked_hostile_schema_stops_at_a_bound) {
  cJSON *s = cJSON_Parse("{\"type\":\"array\",\"minItems\":256,\"items\":{\"type\":\"array\","
                         "\"minItems\":256,\"items\":{\"type\":\"string\",\"minLength\":100}}}");
  fm_buf b;
  fm_buf_init(&b);
  fm_buf_puts(&b, "x");
  fm_schema_err e;
  CHECK(!fm_schema_generate(s, 1, &b, &e));
  CHECK_EQ_INT(b.len, 1); /* out is back at its old length */
  fm_buf_free(&b);
  cJSON_Delete(s);
}

TEST(the_validator_rejects_what_the_schema_forbids) {
  CHECK(!valid("{\"type\":\"integer\"}", "1.5"));
  CHECK(valid("{\"type\":\"integer\"}", "2.0"));
  CHECK(!valid("{\"type\":\"string\"}", "1"));
  CHECK(!valid("{\"type\":[\"string\",\"null\"]}", "true"));
  CHECK(!valid("{\"minimum\":3}", "2"));
  CHECK(!valid("{\"exclusiveMaximum\":3}", "3"));
  CHECK(!valid("{\"maximum\":3,\"exclusiveMaximum\":true}", "3"));
  CHECK(!valid("{\"multipleOf\":0.1}", "0.35"));
  CHECK(!valid("{\"minLength\":3}", "\"ab\""));
  CHECK(valid("{\"maxLength\":2}", "\"\xc3\xa9\xc3\xa9\"")); /* two code points, four bytes */
  CHECK(!valid("{\"pattern\":\"^[a-z]+$\"}", "\"abC\""));
  CHECK(valid("{\"pattern\":\"b+\"}", "\"abbc\"")); /* unanchored: a match anywhere */
  CHECK(!valid("{\"format\":\"date\"}", "\"2023-02-29\""));
  CHECK(!valid("{\"format\":\"email\"}", "\"no-at-sign\""));
  CHECK(!valid("{\"format\":\"uuid\"}", "\"1234\""));
  CHECK(!valid("{\"format\":\"ipv4\"}", "\"256.1.1.1\""));
  CHECK(!valid("{\"format\":\"date-time\"}", "\"2024-01-01T10:00:00\"")); /* no zone */
  CHECK(!valid("{\"required\":[\"a\"]}", "{}"));
  CHECK(!valid("{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "{\"b\":1}"));
  CHECK(!valid("{\"additionalProperties\":{\"type\":\"string\"}}", "{\"b\":1}"));
  CHECK(!valid("{\"items\":{\"type\":\"string\"}}", "[\"a\",1]"));
  CHECK(!valid("{\"prefixItems\":[{}],\"items\":false}", "[1,2]"));
  CHECK(!valid("{\"uniqueItems\":true}", "[{\"a\":1},{\"a\":1.0}]"));
  CHECK(!valid("{\"minItems\":2}", "[1]"));
  CHECK(!valid("{\"enum\":[1,2]}", "3"));
  CHECK(!valid("{\"const\":{\"a\":1}}", "{\"a\":1,\"b\":2}"));
  CHECK(!valid("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}", "5"));
  CHECK(valid("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}", "-5"));
  CHECK(!valid("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "0"));
  CHECK(!valid("{\"allOf\":[{\"minimum\":1},{\"maximum\":2}]}", "3"));
  CHECK(!valid("{\"not\":{\"type\":\"null\"}}", "null"));
  CHECK(!valid("false", "null"));
  CHECK(!valid("{\"$defs\":{\"p\":{\"type\":\"integer\"}},\"items\":{\"$ref\":\"#/$defs/p\"}}",
               "[1,\"x\"]"));
  CHECK(!valid("{\"propertyNames\":{\"maxLength\":2}}", "{\"abc\":1}"));
}

TEST(validation_errors_name_the_place_in_the_value) {
  cJSON *s = cJSON_Parse("{\"properties\":{\"items\":{\"items\":{\"properties\":{\"qty\":"
                         "{\"minimum\":1}}}}}}");
  cJSON *v = cJSON_Parse("{\"items\":[{\"qty\":1},{\"qty\":0}]}");
  fm_schema_err e;
  CHECK(!fm_schema_validate(s, v, &e));
  CHECK_STR(e.path, "$.items[1].qty");
  CHECK_STR_CONTAINS(e.message, "minimum");
  cJSON_Delete(s);
  cJSON_Delete(v);
}

TEST(the_same_seed_gives_the_same_bytes_and_seeds_differ) {
  cJSON *s = read_json(FM_SCHEMA_CORPUS "/zod-order.json");
  REQUIRE(s);
  char *a = gen(s, 7), *b = gen(s, 7), *c = gen(s, 8);
  REQUIRE(a && b && c);
  CHECK_STR(a, b);
  CHECK(strcmp(a, c) != 0);
  free(a);
  free(b);
  free(c);
  cJSON_Delete(s);
}

TEST(required_properties_are_always_there_and_optional_ones_sometimes) {
  cJSON *s = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"r\":{\"type\":\"string\"},"
                         "\"o\":{\"type\":\"string\"}},\"required\":[\"r\"]}");
  int with_o = 0;
  for (uint64_t seed = 1; seed <= 100; seed++) {
    char *v = gen(s, seed);
    REQUIRE(v);
    CHECK_STR_CONTAINS(v, "\"r\":");
    with_o += strstr(v, "\"o\":") != NULL;
    free(v);
  }
  CHECK(with_o > 30 && with_o < 90); /* FM_SCHEMA_OPTIONAL_P = 0.6 */
  cJSON_Delete(s);
}

TEST(strings_are_plain_lowercase_words) {
  cJSON *s = cJSON_Parse("{\"type\":\"string\"}");
  for (uint64_t seed = 1; seed <= 20; seed++) {
    char *v = gen(s, seed);
    REQUIRE(v);
    for (const char *p = v + 1; p[1]; p++)
      CHECK((*p >= 'a' && *p <= 'z') || *p == ' ');
    free(v);
  }
  cJSON_Delete(s);
}

TEST(a_recursive_schema_ends_in_bounded_depth) {
  cJSON *s = read_json(FM_SCHEMA_CORPUS "/zod-json.json");
  REQUIRE(s);
  for (uint64_t seed = 1; seed <= 200; seed++) {
    char *v = gen(s, seed);
    REQUIRE(v);
    int depth = 0, max = 0;
    for (const char *p = v; *p; p++) {
      if (*p == '[' || *p == '{') max = ++depth > max ? depth : max;
      if (*p == ']' || *p == '}') depth--;
    }
    CHECK(max <= FM_SCHEMA_LEAN_DEPTH + 2);
    free(v);
  }
  cJSON_Delete(s);
}

TEST(json_object_mode_gives_one_to_four_properties) {
  for (uint64_t seed = 1; seed <= 50; seed++) {
    fm_buf a, b;
    fm_buf_init(&a);
    fm_buf_init(&b);
    fm_schema_generate_object(seed, &a);
    fm_schema_generate_object(seed, &b);
    fm_buf_putc(&a, 0);
    fm_buf_putc(&b, 0);
    CHECK_STR(a.data, b.data);
    cJSON *v = cJSON_Parse(a.data);
    CHECK(cJSON_IsObject(v));
    int n = cJSON_GetArraySize(v);
    CHECK(n >= 1 && n <= 4);
    cJSON_Delete(v);
    fm_buf_free(&a);
    fm_buf_free(&b);
  }
}

TEST(grammars_of_literal_alternatives_generate_one_of_them) {
  fm_schema_err e;
  CHECK(fm_grammar_check("root ::= \"yes\" | \"no\" | \"a \\\"q\\\"\"", "response_format.grammar",
                         &e));
  int seen[3] = {0};
  for (uint64_t seed = 1; seed <= 40; seed++) {
    fm_buf b;
    fm_buf_init(&b);
    CHECK(fm_grammar_generate("root ::= \"yes\" | \"no\" | \"a \\\"q\\\"\"", seed, &b));
    fm_buf_putc(&b, '\0');
    if (!strcmp(b.data, "yes"))
      seen[0]++;
    else if (!strcmp(b.data, "no"))
      seen[1]++;
    else if (!strcmp(b.data, "a \"q\""))
      seen[2]++;
    else
      CHECK(!"an output outside the grammar");
    fm_buf_free(&b);
  }
  CHECK(seen[0] && seen[1] && seen[2]);
}

TEST(grammars_outside_the_subset_are_refused_naming_the_field) {
  fm_schema_err e;
  static const char *const bad[] = {"root ::= [a-z]+", "start ::= \"a\"", "root ::= \"a\" x",
                                    "root ::= \"unterminated", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK(!fm_grammar_check(bad[i], "response_format.grammar", &e));
    CHECK_STR(e.path, "response_format.grammar");
  }
  fm_buf b;
  fm_buf_init(&b);
  CHECK(!fm_grammar_generate("root ::= [a-z]+", 1, &b));
  CHECK(b.len == 0);
  fm_buf_free(&b);
}

TEST(the_same_schema_is_compiled_once_and_shared_until_its_last_holder_lets_go) {
  cJSON *a = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"integer\"}}}");
  cJSON *a2 = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"integer\"}}}");
  cJSON *b = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}");
  fm_schema_err e;
  fm_schema *x = fm_schema_accept(a, "tools[0]", &e);
  fm_schema *y = fm_schema_accept(a2, "tools[1]", &e); /* an equal tree, sent again */
  fm_schema *z = fm_schema_accept(b, "tools[2]", &e);
  REQUIRE(x && y && z);
  CHECK(x == y);
  CHECK(x != z);
  CHECK(fm_schema_tree(x) != a); /* a copy: the request's tree may go */
  cJSON_Delete(a);
  cJSON_Delete(a2);
  fm_schema_release(y);
  /* Emptying the cache leaves holders with a working schema. */
  fm_schema_cache_clear();
  fm_buf out;
  fm_buf_init(&out);
  CHECK(fm_schema_emit(x, 5, &out, &e));
  fm_buf_putc(&out, 0);
  cJSON *v = cJSON_Parse(out.data);
  CHECK(v && cJSON_IsNumber(cJSON_GetObjectItem(v, "q")) == !!cJSON_GetObjectItem(v, "q"));
  cJSON_Delete(v);
  fm_buf_free(&out);
  fm_schema_release(x);
  fm_schema *w = fm_schema_accept(b, "tools[0]", &e); /* compiled anew after the clear */
  CHECK(w != NULL && w != z);
  fm_schema_release(w);
  fm_schema_release(z);
  fm_schema_release(NULL);
  cJSON_Delete(b);
}

TEST(a_refused_schema_names_the_path_each_time_it_is_sent) {
  cJSON *s = cJSON_Parse("{\"type\":\"integer\",\"minimum\":5,\"maximum\":1}");
  fm_schema_err e;
  for (int i = 0; i < 2; i++) {
    CHECK(fm_schema_accept(s, i ? "tools[3].function.parameters" : "response_format.schema", &e) ==
          NULL);
    CHECK(!e.oom);
    CHECK(strncmp(e.path, i ? "tools[3].function.parameters" : "response_format.schema",
                  i ? 28 : 22) == 0);
  }
  cJSON_Delete(s);
}

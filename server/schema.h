/* schema.h — JSON Schema: is it one we support, a value valid under it, and a validator.
 *
 * Tool-call arguments and structured outputs (response_format json_schema,
 * Anthropic output_config) are values the mock makes up under a schema the
 * client sent. This module knows nothing of HTTP: it takes a cJSON tree and
 * a seed and writes JSON text into an fm_buf. Three steps:
 *
 *   fm_schema_check     at request time: is the schema one we support and can
 *                       satisfy, within the bounds below? If not, where (a
 *                       path into the request) and how to fix it, for a 400.
 *   fm_schema_generate  a compact JSON value valid under the schema, a pure
 *                       function of (schema, seed).
 *   fm_schema_validate  the same keywords as a validator (tests, oneOf).
 *
 * Keywords: type (also arrays of types), enum, const, properties, required,
 * additionalProperties, propertyNames, patternProperties (validated; never
 * generated), items (schema or draft-7 array), prefixItems, additionalItems,
 * minItems, maxItems, uniqueItems, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum (draft 2020 numbers and draft 4 booleans), multipleOf
 * (ajv's rule: value / multipleOf is an integer), minLength, maxLength (code
 * points), format, pattern (the subset below), allOf (merged), anyOf, oneOf
 * (exactly one branch; generation validates and retries), not, $ref to "#",
 * "#/$defs/..." and "#/definitions/..." (any JSON pointer to a subschema of
 * the same document), the boolean schemas true and false. Annotations
 * (title, description, default, examples, $schema, $id, $comment) and
 * unknown keywords are ignored: they neither fail the check nor constrain
 * the value, so a schema using e.g. minProperties or contains may get a
 * value that a full validator rejects.
 *
 * Formats generated and validated (ajv-formats "full" semantics): date,
 * time (always written with "Z"), date-time, email, uri, url, uri-reference,
 * iri, uuid, ipv4, ipv6, hostname, duration. Other formats are ignored.
 *
 * Patterns (ECMAScript, as ajv runs them with the "u" flag): literals,
 * escapes \. \\ \/ \- \n \t \r \f \v \xHH \uHHHH (ASCII), classes [a-z0-9_]
 * and [^...], \d \D \w \W \s \S, ".", groups (...) and (?:...), alternation
 * |, quantifiers ? * + {m} {m,} {m,n} (lazy forms too), anchors ^ and $.
 * Not supported, and refused by fm_schema_check: lookarounds, named groups,
 * backreferences, \b, \p{...}, non-ASCII characters in the pattern.
 *
 * Values: strings are plain lowercase words (fm_gen_word); numbers are
 * "nice" (integers when the range holds one, small multiples otherwise)
 * inside the bounds; an optional property is present with probability
 * FM_SCHEMA_OPTIONAL_P; nullable types are null with FM_SCHEMA_NULL_P.
 * Deep in a recursive schema (FM_SCHEMA_LEAN_DEPTH) or once the output is
 * large (FM_SCHEMA_LEAN_BYTES) the generator goes lean: optional properties
 * left out, arrays at minItems, the anyOf/oneOf branch that ends soonest. A
 * schema whose required parts recurse without end is refused by the check. */
#ifndef FM_SCHEMA_H
#define FM_SCHEMA_H

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>

struct cJSON;

/* Bounds: a schema over any of them is refused by fm_schema_check. */
#define FM_SCHEMA_MAX_NODES 4096         /* subschemas in one schema */
#define FM_SCHEMA_MAX_DEPTH 32           /* nesting of subschemas, and of generated values */
#define FM_SCHEMA_MAX_REFS 4096          /* $ref expansions while generating one value */
#define FM_SCHEMA_MAX_OUTPUT (64 * 1024) /* bytes of one generated value */
#define FM_SCHEMA_MAX_ITEMS 256          /* minItems, and the items of one array */
#define FM_SCHEMA_MAX_STRING 1024        /* minLength, and the shortest match of a pattern */
#define FM_SCHEMA_MAX_PATTERN 512        /* bytes of one pattern */
#define FM_SCHEMA_MAX_STEPS 200000       /* generator and validator steps for one value */
/* Generation choices. */
#define FM_SCHEMA_OPTIONAL_P 0.6 /* an optional property is present */
#define FM_SCHEMA_NULL_P 0.2     /* a type list with "null" gives null */
#define FM_SCHEMA_LEAN_DEPTH 5   /* value depth from which the generator goes lean */
#define FM_SCHEMA_LEAN_BYTES (16 * 1024)
#define FM_SCHEMA_RETRIES 12    /* tries for oneOf, uniqueItems, a format with a pattern */
#define FM_SCHEMA_CHECK_SEEDS 4 /* trial generations fm_schema_check validates */

typedef struct fm_schema_err {
  char path[192];
  char message[512];
  bool oom; /* fm_schema_accept: refused for want of memory, not for the schema */
} fm_schema_err;

/* Compiled schemas: what fm_schema_accept returns, shared and immutable. */
typedef struct fm_schema fm_schema;
#define FM_SCHEMA_CACHE 256               /* compiled schemas kept for reuse */
#define FM_SCHEMA_CACHE_BYTES (16u << 20) /* their memory, in all (one: a 16th of it) */

/* Checks `schema` as fm_schema_check does and returns it compiled (a copy of
 * the tree and its node table): the same object for every request that sends
 * the same schema while it stays in the cache, so an agent's repeated tools
 * are checked once. NULL with *e set when refused. The caller owns one
 * reference: fm_schema_release it. */
fm_schema *fm_schema_accept(const struct cJSON *schema, const char *path, fm_schema_err *e);
void fm_schema_release(fm_schema *s); /* NULL is fine */
/* How many of its subschemas the compiled form writes without the general
 * machinery (plain: objects, strings and booleans with nothing to choose,
 * merge or validate); the value is the same either way. For tests. */
int fm_schema_plain_count(const fm_schema *s);
/* fm_schema_generate for a compiled schema (no table to build). */
bool fm_schema_emit(const fm_schema *s, uint64_t seed, fm_buf *out, fm_schema_err *e);
const struct cJSON *fm_schema_tree(const fm_schema *s);
/* Drops the cache's references (at exit, so leak checkers see nothing held). */
void fm_schema_cache_clear(void);

/* Checks that `schema` is one fleetmock supports and can satisfy, within the
 * bounds above. `path` names it in the request ("tools[0].function.parameters");
 * returns false with e->path = path + a suffix naming the keyword
 * (".properties.age.minimum", ".anyOf[1]") and e->message saying how to fix it. */
bool fm_schema_check(const struct cJSON *schema, const char *path, fm_schema_err *e);

/* Appends to out one compact JSON value valid under `schema`, a pure function
 * of (schema, seed). Succeeds for a schema fm_schema_check accepted; returns
 * false with *e set (out back at its old length) when a bound is hit. */
bool fm_schema_generate(const struct cJSON *schema, uint64_t seed, fm_buf *out, fm_schema_err *e);

/* True when value is valid under schema for the keywords above; false with
 * e->path the place in the value ("$.items[2].qty") and e->message why. */
bool fm_schema_validate(const struct cJSON *schema, const struct cJSON *value, fm_schema_err *e);

/* A JSON object for response_format json_object (no schema): 1-4 properties
 * whose values are words, small integers or booleans. */
void fm_schema_generate_object(uint64_t seed, fm_buf *out);

/* GBNF grammars (response_format type "grammar"): the subset is described in
 * schema.c. fm_grammar_check returns false with e naming what is unsupported;
 * fm_grammar_generate appends a string the grammar accepts (false only on a
 * grammar fm_grammar_check refuses). */
bool fm_grammar_check(const char *gbnf, const char *path, fm_schema_err *e);
bool fm_grammar_generate(const char *gbnf, uint64_t seed, fm_buf *out);

#endif

/* jsonscan.h — checks on JSON text that the parser cannot make, and the
 * JSON path of a place in the text.
 *
 * cJSON decodes "\u0000" into a NUL byte inside a C string, so a value with
 * an embedded NUL reaches its reader cut short ("kimi-k2p6\u0000junk" reads
 * as "kimi-k2p6"), and it accepts bytes that are not UTF-8. Both can only be
 * seen in the text, before parsing. fm_json_prescan makes that one pass over
 * request bodies (UTF-8, nesting, NUL) and over config and scenario files
 * (NUL only); fm_json_path_at then names the place it stopped at, in the
 * form the readers use in their errors (messages[0].content). */
#ifndef FM_JSONSCAN_H
#define FM_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  FM_JSON_OK,
  FM_JSON_BAD_UTF8, /* a byte that does not start or continue a UTF-8 sequence (RFC 3629) */
  FM_JSON_TOO_DEEP, /* an array or object opened deeper than max_depth */
  FM_JSON_NUL,      /* a string below the top level holds \u0000 or a raw 0 byte */
} fm_json_issue;

typedef struct fm_json_scan {
  fm_json_issue issue;
  size_t offset;      /* the bad byte, the bracket, or the opening quote of the string */
  unsigned char byte; /* FM_JSON_BAD_UTF8: the byte */
} fm_json_scan;

/* Walks the text once and stops at the first problem: bytes that are not
 * UTF-8 (when utf8 is set), nesting deeper than max_depth (when it is > 0),
 * a string holding a NUL. Strings at the top level are not checked for NUL:
 * every caller rejects a top-level value that is not an object anyway.
 * Returns out->issue, FM_JSON_OK when there was none. */
fm_json_issue fm_json_prescan(const char *p, size_t n, bool utf8, int max_depth, fm_json_scan *out);

/* How deep fm_json_path_at names a place; a path below it ends in "...". */
#define FM_JSON_PATH_DEPTH 64

/* Writes into out the JSON path of the value or key whose string starts at
 * byte at (a key names its own member): messages[0].content, or
 * metadata["odd key"] for a key that is not plain (the key as sent, escapes
 * left as they are, bytes that are not UTF-8 shown as '?'). The members of
 * the object at path `secret` (the config's accounts.keys, whose keys are
 * API keys) are named by position, [i], so an error never prints one. Empty
 * for a value at the top level. Returns out. */
const char *fm_json_path_at(const char *p, size_t n, size_t at, const char *secret, char *out,
                            size_t cap);

/* The length of the UTF-8 sequence starting at s (n bytes available), or 0
 * when it is not a well-formed one. */
size_t fm_utf8_seq_len(const unsigned char *s, size_t n);

/* Makes s UTF-8 in place: every byte that is not part of a well-formed
 * sequence, a cut one at the end included, becomes '?'. For messages that
 * quote what a client sent (a URL's %FF arrives as the byte 0xff, a %.200s
 * may cut a character in two): they go into JSON answers, which must be
 * UTF-8 whatever came in. Returns s. */
char *fm_utf8_clean(char *s);

struct cJSON;
struct fm_buf;
/* Appends v as compact JSON text, as cJSON_PrintUnformatted would but
 * without its allocations: numbers in the shortest form that reads back
 * the same, strings escaped as fm_buf_json_strn does. Nesting past 512 is
 * written as null (request trees are bounded far below it). */
void fm_json_write(struct fm_buf *b, const struct cJSON *v);
/* fm_json_write of an object without its member named skip (any other value: as it is). */
void fm_json_write_without(struct fm_buf *b, const struct cJSON *obj, const char *skip);
/* A number as fm_json_write writes it (null when not finite). */
void fm_json_write_number(struct fm_buf *b, double v);
/* The value of `digits` hex digits at s (either case), or -1 when one is
 * not a hex digit; s must hold that many bytes (a NUL stops it as a bad digit). */
int fm_hex_digits(const char *s, int digits);
/* A 64-bit digest of a JSON value (the key of a member is not part of it),
 * never 0: its types, keys, strings and numbers in order, salted. Caches of
 * what a value compiles to find it by this; two values with the same digest
 * are taken to be the same (odds 2^-64 per pair). Nesting past 4096 is not
 * looked at. */
uint64_t fm_json_digest(const struct cJSON *v, uint64_t salt);

#endif

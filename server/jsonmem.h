/* jsonmem.h — where cJSON's memory comes from.
 *
 * A request reader parses the body, reads the tree and deletes it before it
 * returns. That tree is ~40 small allocations for a short chat request
 * (nodes, keys, strings), each a malloc and a free. fm_json_parse_scratch
 * takes them from a scratch arena of the calling thread instead: a bump of a
 * pointer to allocate, nothing to free, and the whole arena used again by
 * the next scratch parse once every block of the last one has been freed.
 *
 * cJSON's hooks are installed once, before main (a constructor), so every
 * cJSON block of the process goes through them: a block from the arena is
 * "freed" by counting it, any other block is malloc's, as before. Only the
 * parse itself draws on the arena; what cJSON allocates afterwards (added
 * items, copies, printed text, every other parse) comes from malloc. A tree,
 * or part of one, kept past its reader (the Responses reader keeps its body)
 * is safe: while any block of the arena is live, scratch parses use malloc.
 * The arena is FM_JSONMEM_ARENA bytes a thread; a body whose tree needs more
 * takes the rest from malloc. A scratch tree must be deleted on the thread
 * that parsed it (every reader runs on its loop's thread).
 *
 * Under AddressSanitizer the arena's free and unused bytes are poisoned, so
 * a read of a freed node is reported as it would be for malloc's. */
#ifndef FM_JSONMEM_H
#define FM_JSONMEM_H

#include <stdbool.h>
#include <stddef.h>

#define FM_JSONMEM_ARENA 16384

struct cJSON;

/* cJSON_ParseWithLengthOpts (no NUL needed at the end), its blocks from the
 * arena while it is idle. *end: where parsing stopped (as cJSON's). */
struct cJSON *fm_json_parse_scratch(const char *text, size_t len, const char **end);

/* The parser behind it, alone (tests): strict JSON without \u escapes or raw
 * control bytes, into the tree cJSON would build; NULL whenever it is not
 * sure (then cJSON parses it). Its blocks come from the arena only inside
 * fm_json_parse_scratch. */
struct cJSON *fm_json_parse_fast(const char *text, size_t len, const char **end);

/* The bytes of text (the len bytes it parsed) an object or array of a tree
 * fm_json_parse_fast built came from: false for a scalar, for a tree cJSON
 * parsed, or when the node does not point into text as a container would.
 * A key for what the JSON compiles to that costs no walk of the tree (the
 * tool-definition memo, api_read_turn.c). */
bool fm_json_source(const struct cJSON *v, const char *text, size_t len, const char **at,
                    size_t *n);

/* True when no block of this thread's arena is live (tests: a reader freed
 * its whole tree). */
bool fm_jsonmem_idle(void);
/* Blocks this thread has ever drawn from its arena (tests: it is used). */
unsigned long long fm_jsonmem_drawn(void);

#endif

/* log.h — leveled logs on stderr, as text or JSON lines.
 *
 * fm_log(FM_LOG_INFO, "listening", "url", "http://...", NULL) writes either
 *   2026-11-21T10:00:00.123Z info listening url=http://...
 * or
 *   {"ts":"2026-11-21T10:00:00.123Z","level":"info","msg":"listening","url":"http://..."}
 * Fields are key/value string pairs closed by NULL. */
#ifndef FM_LOG_H
#define FM_LOG_H

#include <stdbool.h>

typedef enum { FM_LOG_DEBUG, FM_LOG_INFO, FM_LOG_WARN, FM_LOG_ERROR } fm_log_level;

/* Returns false when name is not a level or format name. */
bool fm_log_set_level(const char *name);
bool fm_log_set_format(const char *name);
bool fm_log_enabled(fm_log_level level);
void fm_log(fm_log_level level, const char *msg, ...) __attribute__((sentinel));

#endif

/* log.c — text or JSON-lines logging to stderr. One write(2) per line so
 * lines from a dying process are never interleaved. */
#include "log.h"

#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static fm_log_level min_level = FM_LOG_INFO;
static bool json_format = false;
static const char *level_names[] = {"debug", "info", "warn", "error"};

bool fm_log_set_level(const char *name) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(name, level_names[i]) == 0) {
      min_level = (fm_log_level)i;
      return true;
    }
  }
  return false;
}

bool fm_log_set_format(const char *name) {
  if (strcmp(name, "text") == 0)
    json_format = false;
  else if (strcmp(name, "json") == 0)
    json_format = true;
  else
    return false;
  return true;
}

bool fm_log_enabled(fm_log_level level) {
  return level >= min_level;
}

void fm_log(fm_log_level level, const char *msg, ...) {
  if (!fm_log_enabled(level)) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[40];
  size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

  fm_buf b;
  fm_buf_init(&b);
  if (json_format) {
    fm_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]);
    fm_buf_json_str(&b, msg);
  } else {
    fm_buf_printf(&b, "%s %s %s", ts, level_names[level], msg);
  }
  va_list ap;
  va_start(ap, msg);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k) break;
    const char *v = va_arg(ap, const char *);
    if (!v) v = "";
    if (json_format) {
      fm_buf_putc(&b, ',');
      fm_buf_json_str(&b, k);
      fm_buf_putc(&b, ':');
      fm_buf_json_str(&b, v);
    } else if (strpbrk(v, " \"=")) {
      fm_buf_printf(&b, " %s=", k);
      fm_buf_json_str(&b, v);
    } else {
      fm_buf_printf(&b, " %s=%s", k, v);
    }
  }
  va_end(ap);
  fm_buf_puts(&b, json_format ? "}\n" : "\n");
  if (!b.oom) {
    ssize_t w = write(STDERR_FILENO, b.data, b.len);
    (void)w;
  }
  fm_buf_free(&b);
}

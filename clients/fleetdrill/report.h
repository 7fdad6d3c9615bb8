/* report.h — what fleetdrill prints: the side-by-side table, CSV, and a
 * self-contained HTML report with inline SVG charts (no script, no fetch). */
#ifndef FD_REPORT_H
#define FD_REPORT_H

#include "drill.h"

#include <stdio.h>

typedef struct fd_report_meta {
  const char *scenario; /* NULL: none */
  const char *model;
  const char *api; /* the wire drilled: "chat" or "responses" */
  uint64_t seed;
  int users;
  double duration_s, time_scale, window_s;
  int mix[3];
} fd_report_meta;

/* The runs side by side, one column per strategy. */
void fd_report_table(FILE *f, const fd_report_meta *m, const fd_run *runs, int n);

/* A header line, then one line per run. */
void fd_report_csv(FILE *f, const fd_report_meta *m, const fd_run *runs, int n);

/* Writes the HTML report to path. Returns 0, or -1 when it cannot be written. */
int fd_report_html(const char *path, const fd_report_meta *m, const fd_run *runs, int n);

#endif

/* report.c — the table, the CSV and the HTML report.
 *
 * The three formats read the same rows (fd_report_rows), so a number in the
 * HTML is the number in the CSV. The HTML is one file with inline SVG and a
 * little CSS: it opens offline and in a headless browser, with no script. */
#include "report.h"

#include <math.h>
#include <string.h>

typedef enum { FD_PCT, FD_INT, FD_SEC, FD_USD, FD_RATIO } fd_fmt;

typedef struct fd_row {
  const char *label; /* table and HTML */
  const char *csv;   /* CSV column */
  fd_fmt fmt;
  double (*get)(const fd_run *r);
} fd_row;

static double fd_interactive(const fd_run *r) {
  return fd_run_pct(r->ok[FM_ROUTE_INTERACTIVE], r->requests[FM_ROUTE_INTERACTIVE]);
}
static double fd_chains(const fd_run *r) {
  return fd_run_pct(r->chains_ok, r->chains);
}
static double fd_batch(const fd_run *r) {
  return fd_run_pct(r->ok[FM_ROUTE_BATCH], r->requests[FM_ROUTE_BATCH]);
}
static double fd_success(const fd_run *r) {
  return fd_run_success_pct(r);
}
static double fd_interactive_n(const fd_run *r) {
  return (double)r->requests[FM_ROUTE_INTERACTIVE];
}
static double fd_chains_n(const fd_run *r) {
  return (double)r->chains;
}
static double fd_chains_ok_n(const fd_run *r) {
  return (double)r->chains_ok;
}
static double fd_tool_calls(const fd_run *r) {
  return (double)r->tool_calls;
}
static double fd_tool_steps(const fd_run *r) {
  return (double)r->tool_steps;
}
static double fd_broken_no_call(const fd_run *r) {
  return (double)r->chains_broken[FD_CHAIN_BROKEN_NO_CALL - FD_CHAIN_BROKEN_NO_CALL];
}
static double fd_broken_no_text(const fd_run *r) {
  return (double)r->chains_broken[FD_CHAIN_BROKEN_NO_TEXT - FD_CHAIN_BROKEN_NO_CALL];
}
static double fd_broken_bad_call(const fd_run *r) {
  return (double)r->chains_broken[FD_CHAIN_BROKEN_BAD_CALL - FD_CHAIN_BROKEN_NO_CALL];
}
static double fd_broken(const fd_run *r) {
  return fd_broken_no_call(r) + fd_broken_no_text(r) + fd_broken_bad_call(r);
}
static double fd_batch_n(const fd_run *r) {
  return (double)r->requests[FM_ROUTE_BATCH];
}
static double fd_attempts(const fd_run *r) {
  return (double)r->attempts;
}
static double fd_503(const fd_run *r) {
  return (double)r->status_503;
}
static double fd_429(const fd_run *r) {
  return (double)r->status_429;
}
static double fd_errors(const fd_run *r) {
  return (double)r->errors;
}
static double fd_p50(const fd_run *r) {
  return r->p50_s;
}
static double fd_p95(const fd_run *r) {
  return r->p95_s;
}
static double fd_p99(const fd_run *r) {
  return r->p99_s;
}
static double fd_priority(const fd_run *r) {
  return fd_run_priority_share(r);
}
static double fd_cost(const fd_run *r) {
  return r->cost_usd;
}
static double fd_cost_ratio(const fd_run *r) {
  return fd_run_cost_ratio(r);
}
static double fd_server_cost(const fd_run *r) {
  return r->server_cost_usd;
}
static double fd_escalations(const fd_run *r) {
  return (double)r->escalations;
}
static double fd_alerts(const fd_run *r) {
  return (double)r->alerts;
}
static double fd_unfinished(const fd_run *r) {
  return (double)r->unfinished;
}

static const fd_row fd_rows[] = {
    {"interactive ok", "interactive_ok_pct", FD_PCT, fd_interactive},
    {"agent chains completed", "chains_completed_pct", FD_PCT, fd_chains},
    {"batch ok", "batch_ok_pct", FD_PCT, fd_batch},
    {"all requests ok", "success_pct", FD_PCT, fd_success},
    {"interactive requests", "interactive_requests", FD_INT, fd_interactive_n},
    {"agent chains", "chains", FD_INT, fd_chains_n},
    {"agent chains completed (n)", "chains_completed", FD_INT, fd_chains_ok_n},
    {"tool calls made", "tool_calls", FD_INT, fd_tool_calls},
    {"tool-calling steps", "tool_steps", FD_INT, fd_tool_steps},
    {"chains broken (all)", "chains_broken", FD_INT, fd_broken},
    {"  expected tool call", "broken_expected_tool_call", FD_INT, fd_broken_no_call},
    {"  expected final answer", "broken_expected_answer", FD_INT, fd_broken_no_text},
    {"  invalid tool call", "broken_invalid_tool_call", FD_INT, fd_broken_bad_call},
    {"batch requests", "batch_requests", FD_INT, fd_batch_n},
    {"attempts sent", "attempts", FD_INT, fd_attempts},
    {"503s", "status_503", FD_INT, fd_503},
    {"429s", "status_429", FD_INT, fd_429},
    {"other errors", "errors", FD_INT, fd_errors},
    {"latency p50 (sim s)", "p50_s", FD_SEC, fd_p50},
    {"latency p95 (sim s)", "p95_s", FD_SEC, fd_p95},
    {"latency p99 (sim s)", "p99_s", FD_SEC, fd_p99},
    {"attempts on Priority", "priority_share_pct", FD_PCT, fd_priority},
    {"cost (USD)", "cost_usd", FD_USD, fd_cost},
    {"cost vs all-Standard", "cost_vs_standard", FD_RATIO, fd_cost_ratio},
    {"server-billed cost (USD)", "server_cost_usd", FD_USD, fd_server_cost},
    {"escalations", "escalations", FD_INT, fd_escalations},
    {"alerts", "alerts", FD_INT, fd_alerts},
    {"unfinished at the end", "unfinished", FD_INT, fd_unfinished},
};
#define FD_NROWS (sizeof fd_rows / sizeof fd_rows[0])

static void fd_format(char *buf, size_t n, fd_fmt fmt, double v, bool csv) {
  switch (fmt) {
  case FD_PCT:
    snprintf(buf, n, csv ? "%.2f" : "%.1f %%", v);
    break;
  case FD_INT:
    snprintf(buf, n, "%.0f", v);
    break;
  case FD_SEC:
    snprintf(buf, n, csv ? "%.3f" : "%.2f", v);
    break;
  case FD_USD:
    if (v < 0)
      snprintf(buf, n, csv ? "" : "n/a");
    else
      snprintf(buf, n, "%.4f", v);
    break;
  case FD_RATIO:
    if (v <= 0)
      snprintf(buf, n, csv ? "" : "n/a");
    else
      snprintf(buf, n, csv ? "%.4f" : "%.2fx", v);
    break;
  }
}

static void fd_report_title(FILE *f, const fd_report_meta *m) {
  fprintf(f,
          "%s, api %s, seed %llu, %d users, mix interactive=%d agent=%d batch=%d, %.0f s simulated "
          "at time scale %g, window %g s\n",
          m->scenario ? m->scenario : "no scenario", m->api, (unsigned long long)m->seed, m->users,
          m->mix[0], m->mix[1], m->mix[2], m->duration_s, m->time_scale, m->window_s);
}

void fd_report_table(FILE *f, const fd_report_meta *m, const fd_run *runs, int n) {
  fd_report_title(f, m);
  fprintf(f, "%-26s", "");
  for (int i = 0; i < n; i++)
    fprintf(f, " %16s", fm_strategy_name(runs[i].strategy));
  fputc('\n', f);
  for (size_t k = 0; k < FD_NROWS; k++) {
    fprintf(f, "%-26s", fd_rows[k].label);
    for (int i = 0; i < n; i++) {
      char v[64];
      fd_format(v, sizeof v, fd_rows[k].fmt, fd_rows[k].get(&runs[i]), false);
      fprintf(f, " %16s", v);
    }
    fputc('\n', f);
  }
}

void fd_report_csv(FILE *f, const fd_report_meta *m, const fd_run *runs, int n) {
  fprintf(f, "strategy,scenario,api,seed,users,duration_s,time_scale");
  for (size_t k = 0; k < FD_NROWS; k++)
    fprintf(f, ",%s", fd_rows[k].csv);
  fputc('\n', f);
  for (int i = 0; i < n; i++) {
    fprintf(f, "%s,%s,%s,%llu,%d,%g,%g", fm_strategy_name(runs[i].strategy),
            m->scenario ? m->scenario : "", m->api, (unsigned long long)m->seed, m->users,
            m->duration_s, m->time_scale);
    for (size_t k = 0; k < FD_NROWS; k++) {
      char v[64];
      fd_format(v, sizeof v, fd_rows[k].fmt, fd_rows[k].get(&runs[i]), true);
      fprintf(f, ",%s", v);
    }
    fputc('\n', f);
  }
}

/* ---- HTML ---- */

static void fd_html_text(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '&':
      fputs("&amp;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    default:
      fputc(*s, f);
    }
  }
}

#define FD_W 640
#define FD_H 190
#define FD_L 48 /* left margin, for the y labels */
#define FD_B 24 /* bottom margin, for the x labels */

static double fd_x(int i, int n) {
  return FD_L + (double)(FD_W - FD_L - 8) * i / n;
}

/* Frame, y labels (0 and ymax), x labels in simulated seconds. */
static void fd_svg_axes(FILE *f, const char *title, double ymax, const char *yunit,
                        double duration_s) {
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
          "%d\" role=\"img\">\n",
          FD_W, FD_H, FD_W, FD_H);
  fprintf(f, "<title>");
  fd_html_text(f, title);
  fprintf(f,
          "</title>\n<rect x=\"%d\" y=\"8\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
          "stroke=\"#ccc\"/>\n",
          FD_L, FD_W - FD_L - 8, FD_H - FD_B - 8);
  fprintf(f, "<text x=\"%d\" y=\"16\" class=\"ax\" text-anchor=\"end\">%.4g%s</text>\n", FD_L - 4,
          ymax, yunit);
  fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"end\">0</text>\n", FD_L - 4,
          FD_H - FD_B);
  for (int q = 0; q <= 4; q++) {
    double x = fd_x(q, 4);
    const char *anchor = q == 0 ? "start" : q == 4 ? "end" : "middle";
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"%s\">%.0f s</text>\n", x,
            FD_H - 8, anchor, duration_s * q / 4);
  }
}

static double fd_y(double v, double ymax) {
  double h = FD_H - FD_B - 8;
  if (ymax <= 0) ymax = 1;
  if (v > ymax) v = ymax;
  return 8 + h - h * v / ymax;
}

static void fd_svg_outcomes(FILE *f, const fd_run *r) {
  double ymax = 1;
  for (int i = 0; i < FD_BUCKETS; i++) {
    const fd_bucket *b = &r->buckets[i];
    double t = (double)(b->ok + b->shed + b->limited + b->error);
    if (t > ymax) ymax = t;
  }
  fd_svg_axes(f, "attempts by outcome over time", ymax, "", r->duration_s);
  static const char *const colors[] = {"#2e7d32", "#c62828", "#ef6c00", "#757575"};
  for (int i = 0; i < FD_BUCKETS; i++) {
    const fd_bucket *b = &r->buckets[i];
    double v[4] = {(double)b->ok, (double)b->shed, (double)b->limited, (double)b->error};
    double x = fd_x(i, FD_BUCKETS), w = fd_x(i + 1, FD_BUCKETS) - x - 0.5, base = 0;
    for (int k = 0; k < 4; k++) {
      if (v[k] <= 0) continue;
      double y1 = fd_y(base + v[k], ymax), y0 = fd_y(base, ymax);
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x,
              y1, w, y0 - y1, colors[k]);
      base += v[k];
    }
  }
  fprintf(f, "</svg>\n");
}

/* A line (and the area under it) of one value per bucket; NaN leaves a gap. */
static void fd_svg_line(FILE *f, const char *title, const double *v, double ymax, const char *unit,
                        const char *color, double duration_s, double guide) {
  fd_svg_axes(f, title, ymax, unit, duration_s);
  if (guide > 0)
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" "
            "stroke-dasharray=\"4 3\"/>\n",
            FD_L, FD_W - 8, fd_y(guide, ymax), fd_y(guide, ymax));
  fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
  for (int i = 0; i < FD_BUCKETS; i++) {
    if (isnan(v[i])) continue;
    double x = (fd_x(i, FD_BUCKETS) + fd_x(i + 1, FD_BUCKETS)) / 2;
    fprintf(f, "%.1f,%.1f ", x, fd_y(v[i], ymax));
  }
  fprintf(f, "\"/>\n</svg>\n");
}

static void fd_html_table(FILE *f, const fd_run *runs, int n) {
  fprintf(f, "<table>\n<tr><th></th>");
  for (int i = 0; i < n; i++)
    fprintf(f, "<th>%s</th>", fm_strategy_name(runs[i].strategy));
  fprintf(f, "</tr>\n");
  for (size_t k = 0; k < FD_NROWS; k++) {
    fprintf(f, "<tr><td>%s</td>", fd_rows[k].label);
    for (int i = 0; i < n; i++) {
      char v[64];
      fd_format(v, sizeof v, fd_rows[k].fmt, fd_rows[k].get(&runs[i]), false);
      fprintf(f, "<td>%s</td>", v);
    }
    fprintf(f, "</tr>\n");
  }
  fprintf(f, "</table>\n");
}

static void fd_html_run(FILE *f, const fd_run *r) {
  double share[FD_BUCKETS], util[FD_BUCKETS], umax = 1.5;
  for (int i = 0; i < FD_BUCKETS; i++) {
    const fd_bucket *b = &r->buckets[i];
    int64_t t = b->ok + b->shed + b->limited + b->error;
    share[i] = t ? 100.0 * (double)b->priority / (double)t : NAN;
    util[i] = b->util_n ? b->util_sum / (double)b->util_n : NAN;
    if (!isnan(util[i]) && util[i] > umax) umax = ceil(util[i] * 2) / 2;
  }
  fprintf(f, "<section class=\"run\">\n<h2>%s</h2>\n", fm_strategy_name(r->strategy));
  fprintf(f,
          "<p>Interactive ok %.1f %%, agent chains completed %.1f %% (%lld tool calls, %.0f "
          "chains broken by a reply of the wrong kind), %lld 503s, %lld 429s, %.1f %% of "
          "attempts on Priority, cost %.2fx all-Standard.</p>\n",
          fd_interactive(r), fd_chains(r), (long long)r->tool_calls, fd_broken(r),
          (long long)r->status_503, (long long)r->status_429, fd_priority(r), fd_run_cost_ratio(r));
  fprintf(f, "<h3>Attempts by outcome</h3>\n<p class=\"key\"><span style=\"color:#2e7d32\">&#9632; "
             "ok</span> <span style=\"color:#c62828\">&#9632; 503</span> <span "
             "style=\"color:#ef6c00\">&#9632; 429</span> <span style=\"color:#757575\">&#9632; "
             "other error</span></p>\n");
  fd_svg_outcomes(f, r);
  fprintf(f, "<h3>Share of attempts on Priority</h3>\n");
  fd_svg_line(f, "share of attempts on Priority (%)", share, 100, " %", "#6a1b9a", r->duration_s,
              0);
  fprintf(f, "<h3>Server utilisation (from /admin/state; dashed: 1.0 = full)</h3>\n");
  fd_svg_line(f, "pool utilisation", util, umax, "", "#1565c0", r->duration_s, 1.0);
  fprintf(f, "</section>\n");
}

int fd_report_html(const char *path, const fd_report_meta *m, const fd_run *runs, int n) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(
      f,
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>fleetdrill: ");
  fd_html_text(f, m->scenario ? m->scenario : "drill");
  fprintf(f, "</title>\n<style>\nbody{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\n"
             "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px "
             "8px;text-align:right}\n"
             "td:first-child{text-align:left}.run{margin-top:24px}.ax{font-size:11px;fill:#555}\n"
             ".key span{margin-right:12px}svg{display:block}\n</style>\n</head>\n<body>\n");
  fprintf(f, "<h1>fleetdrill: ");
  fd_html_text(f, m->scenario ? m->scenario : "no scenario");
  fprintf(f, "</h1>\n<p>");
  fd_html_text(f, m->model);
  fprintf(f, ", api %s", m->api);
  fprintf(f,
          ", seed %llu, %d users, mix interactive %d / agent %d / batch %d, %.0f s simulated at "
          "time scale %g, Priority window %g s.</p>\n",
          (unsigned long long)m->seed, m->users, m->mix[0], m->mix[1], m->mix[2], m->duration_s,
          m->time_scale, m->window_s);
  fd_html_table(f, runs, n);
  for (int i = 0; i < n; i++)
    fd_html_run(f, &runs[i]);
  fprintf(f, "</body>\n</html>\n");
  return fclose(f) == 0 ? 0 : -1;
}

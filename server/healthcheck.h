/* healthcheck.h — a self-contained HTTP probe for container health checks. */
#ifndef FM_HEALTHCHECK_H
#define FM_HEALTHCHECK_H

/* GETs url; returns 0 on a 200 answer, 1 otherwise, 2 on a malformed URL. */
int fm_healthcheck(const char *url);

#endif

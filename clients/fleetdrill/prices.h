/* prices.h — the public price list fleetdrill costs its requests with.
 *
 * The same rows as server/default-config.json (USD per million tokens), so
 * the drill can say what a run cost and what the same tokens would have
 * cost on Standard, without the server's help. GET /admin/accounts gives
 * the server's own total, which the report shows beside it. */
#ifndef FD_PRICES_H
#define FD_PRICES_H

#include <fleetclient.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct fd_price {
  double input, cached, output; /* USD per million tokens */
} fd_price;

/* The row for model on tier; false when the model is not in the list. */
bool fd_price_lookup(const char *model, fm_client_tier tier, fd_price *out);

/* USD for one answer's usage at a price row. */
double fd_price_cost(const fd_price *p, int64_t prompt, int64_t cached, int64_t completion);

#endif

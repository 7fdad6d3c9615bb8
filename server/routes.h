/* routes.h — which handler answers which method and path. */
#ifndef FM_ROUTES_H
#define FM_ROUTES_H

#include "server.h"

/* Answers r (or starts its work) according to its method and path. */
void fm_route(fm_req *r);

#endif

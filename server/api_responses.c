/* api_responses.c — the Responses API (placeholder until the route is built). */
#include "api.h"

void fm_api_responses(fm_req *r, const char *id) {
  (void)id;
  fm_api_error(r, 501, "NOT_IMPLEMENTED", NULL, "responses are not served yet");
}

/* api_embeddings.c — POST embeddings (placeholder until the route is built). */
#include "api.h"

void fm_api_embeddings(fm_req *r) {
  fm_api_error(r, 501, "NOT_IMPLEMENTED", NULL, "embeddings are not served yet");
}

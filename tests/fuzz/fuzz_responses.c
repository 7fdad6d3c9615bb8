/* fuzz_responses.c — libFuzzer harness for the Responses API reader
 * (fm_read_responses, api_read.h): header lines, an empty line, the body
 * (fuzz_input.h). A fake store holds one response, "resp_fz", so
 * previous_response_id and item_reference inputs reach the stored paths. */
#include "fuzz_input.h"

#include <cjson/cJSON.h>

FZ_JSON_MUTATOR(FZ_JSON_REQUEST)

static bool fake_store(void *ctx, const char *id, bool response, fm_buf *out) {
  (void)ctx;
  if (strcmp(id, "resp_fz") != 0) return false;
  fm_buf_puts(out, response ? "{\"id\":\"resp_fz\",\"object\":\"response\",\"output\":["
                              "{\"id\":\"msg_fz_0\",\"type\":\"message\",\"role\":\"assistant\","
                              "\"content\":[{\"type\":\"output_text\",\"text\":\"hi\"}]},"
                              "{\"id\":\"fc_fz_1\",\"type\":\"function_call\",\"call_id\":"
                              "\"call_1\",\"name\":\"f\",\"arguments\":\"{}\"}]}"
                            : "\"resp_fz\"\n[{\"role\":\"user\","
                              "\"content\":\"q\"},{\"type\":\"function_call\",\"call_id\":"
                              "\"call_1\",\"name\":\"f\",\"arguments\":\"{}\"}]");
  return true;
}

static bool read_responses(const fm_read_in *in, fm_infer_params *p, fm_api_err *e) {
  bool ok = fm_read_responses(in, fake_store, NULL, p, e);
  if (ok) {
    /* what the renderer and the store rely on: present, and JSON where it is JSON */
    fz_require(p->resp && p->resp->echo && p->resp->items && p->body_tree);
    fz_require(p->n == 1);
    cJSON *items = cJSON_Parse(p->resp->items);
    fz_require(cJSON_IsArray(items) &&
               cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(p->body_tree, "messages")));
    cJSON_Delete(items);
  } else {
    fz_require(p->resp == NULL);
  }
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_infer(data, size, read_responses);
  return 0;
}

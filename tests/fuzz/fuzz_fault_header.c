/* fuzz_fault_header.c — libFuzzer harness for the x-fleetmock-fault header
 * parser (fm_fault_parse_header, faults.c). The input is the header value;
 * the HTTP layer hands it over NUL-terminated (a NUL in a head is a 400),
 * so it is cut at the first NUL. An accepted value must be an injectable
 * status or a stream fault within FM_FAULT_AFTER_MAX tokens. */
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *v = malloc(size + 1);
  if (!v) return 0;
  memcpy(v, data, size);
  v[size] = '\0';
  fm_fault_action a;
  if (fm_fault_parse_header(v, &a)) {
    if (a.kind == FM_FAULT_STATUS)
      fz_require(fm_fault_status_ok(a.status));
    else
      fz_require(a.kind >= FM_FAULT_ERROR && a.kind <= FM_FAULT_STALL &&
                 a.after_tokens <= FM_FAULT_AFTER_MAX);
  }
  free(v);
  return 0;
}

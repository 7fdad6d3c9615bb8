/* fuzz_messages.c — libFuzzer harness for the Anthropic Messages reader
 * (fm_read_messages, api_read.h): header lines, an empty line, the body
 * (fuzz_input.h). */
#include "fuzz_input.h"

FZ_JSON_MUTATOR(FZ_JSON_REQUEST)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_infer(data, size, fm_read_messages);
  return 0;
}

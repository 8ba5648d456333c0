#pragma once
// Shared by the libFuzzer targets (one per executable): each defines fuzz_one(input). An
// attnlab::UserError is an expected rejection of bad input; anything else escapes, and
// libFuzzer reports it (an uncaught exception aborts), as it does a crash or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

void fuzz_one(std::string_view input);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fuzz_one(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const attnlab::UserError&) {
  }
  return 0;
}

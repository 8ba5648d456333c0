// parse_run_config on arbitrary text: no overrides, no scale.
#include "fuzz_common.h"
#include "io/config.h"

void fuzz_one(std::string_view input) { (void)attnlab::parse_run_config(input, "fuzz.toml", {}, ""); }

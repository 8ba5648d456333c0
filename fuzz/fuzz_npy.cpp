// The .npy parser on arbitrary bytes.
#include "fuzz_common.h"
#include "io/npy.h"

void fuzz_one(std::string_view input) { (void)attnlab::parse_npy(input, "fuzz.npy"); }

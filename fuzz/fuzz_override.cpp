// One command-line override ("key=value", the input) applied to a small valid config.
#include "fuzz_common.h"
#include "io/config.h"

namespace {
const char* kConfig = R"(seed = 3
[task]
kind = "sparse_memory"
seq_len = 64
lags = [1, 8, 32]
[model]
d_model = 64
layers = 2
heads = 4
head_dim = 16
[train]
steps = 10
)";
}  // namespace

void fuzz_one(std::string_view input) { (void)attnlab::parse_run_config(kConfig, "fuzz.toml", {std::string(input)}, ""); }

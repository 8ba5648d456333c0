// The experiment spec parser through its path API (load_spec reads the spec, then its [base]
// through load_run_config): the input is written to a file in /dev/shm per call, next to a
// valid `base.toml` that a spec may name; the directory is $ATTNLAB_FUZZ_DIR (scripts/fuzz.sh
// makes and removes it) or /dev/shm/attnlab-fuzz-spec-PID. Then the same with scale "quick",
// and expand() of the runs.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fuzz_common.h"
#include "sweep/spec.h"

namespace {

const std::string& spec_path() {
  static const std::string path = [] {
    const char* env = std::getenv("ATTNLAB_FUZZ_DIR");
    const std::filesystem::path dir =
        env && *env ? std::string(env) : "/dev/shm/attnlab-fuzz-spec-" + std::to_string(getpid());
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "base.toml") << "[task]\nkind = \"sparse_memory\"\nseq_len = 16\nlags = [1, 4]\n"
                                        "[model]\nd_model = 8\nlayers = 1\nheads = 2\nhead_dim = 4\n[train]\nsteps = 5\n";
    return (dir / "spec.toml").string();
  }();
  return path;
}

void run(const std::string& scale) {
  const attnlab::ExperimentSpec s = attnlab::load_spec(spec_path(), scale);
  size_t runs = s.seeds.size();  // expand() builds the whole grid: only small ones
  for (const auto& ax : s.axes) runs = std::min<size_t>(runs * ax.values.size(), 1u << 20);
  if (runs <= 4096)
    for (const auto& r : attnlab::expand(s)) (void)attnlab::run_dir_name(r.id);
}

}  // namespace

void fuzz_one(std::string_view input) {
  {
    std::ofstream f(spec_path(), std::ios::binary | std::ios::trunc);
    f.write(input.data(), std::streamsize(input.size()));
  }
  try {
    run("");
  } catch (const attnlab::UserError&) {
  }
  run("quick");
}

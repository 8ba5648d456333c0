#pragma once
// Experiment specs (TOML): [experiment] name/title/result/description, [base] (inline or
// base = "file.toml"), [sweep] axes (grid), zip groups and seeds, [scale.NAME] overrides,
// [[figure]] and [[claim]]. expand() turns a spec into the list of runs.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace attnlab {

// Values are kept as TOML text ("32", "\"log\"", "[8, 4]") so that they pass through
// `key=value` overrides unchanged and compare exactly.
using Point = std::map<std::string, std::string>;

struct Axis {
  std::vector<std::string> keys;                 // one key (grid axis) or several (zip group)
  std::vector<std::vector<std::string>> values;  // values[i] = the i-th tuple, one entry per key
};

struct FigureSpec {
  std::string x, y, series, title;
  bool logx = false, logy = false;
};

struct ClaimSpec {
  std::string kind;  // slope | flat | monotone | compare | plateau
  std::string x, y, text;
  Point filter;      // `series = { "model.kind" = "indrnn" }`: only these runs
  std::string series;  // or a series key: the claim is checked for each of its values
  double lo = 0, hi = 0, value = 0, after = 0;
  std::string direction;  // monotone: decreasing | increasing
  Point a, b;             // compare
};

struct ExperimentSpec {
  std::string path, name, title, result, description, scale;
  std::vector<Axis> axes;
  std::vector<int64_t> seeds;
  std::vector<FigureSpec> figures;
  std::vector<ClaimSpec> claims;
};

struct RunSpec {
  std::string id;   // "<experiment>/<k=v,...>/seed=N": stable across expansions
  Point point;      // axis key -> value (TOML text), without the seed
  int64_t seed = 1;
  std::vector<std::string> overrides;  // key=value for `attnlab train SPEC --scale S ...`
};

// Reads and checks a spec; scale "" = none. UserError (file: key: message) on bad input.
ExperimentSpec load_spec(const std::string& path, const std::string& scale);
// Every run: the grid product of the axes (zip groups move together) times the seeds.
std::vector<RunSpec> expand(const ExperimentSpec& spec);
// A directory-safe name for a run id.
std::string run_dir_name(const std::string& id);

}  // namespace attnlab

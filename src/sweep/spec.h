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
  Point where;  // only these runs (as a claim's where)
  bool logx = false, logy = false;
  // `guide = { slope = -0.5, label = "m^-1/2, theory" }`: a reference power law c x^slope
  // drawn beside each series, c fitted to the series' means (least squares in log-log).
  bool guide = false;
  double guide_slope = 0;
  std::string guide_label;
  std::string not_at_scale;  // set when `where` names a value the base sweep runs but this scale does not
};

struct ClaimSpec {
  std::string kind;  // slope | flat | monotone | compare | plateau | optimum | level | crossing
  std::string x, y, text;
  Point where;         // `where = { "model.kind" = "indrnn" }` (or the older `series = {...}`): only these runs
  std::string series;  // `series = "model.kind"`: the claim is checked for each of its values
  double lo = 0, hi = 0, value = 0, after = 0;
  std::string direction;  // monotone: decreasing | increasing (strictly) | nonincreasing | nondecreasing (steps of 0 allowed)
  Point a, b;             // compare, ratio; crossing: the slope of a minus the slope of b
  std::string across;     // crossing: the axis searched for the level (e.g. model.width)
  double level = 0;       // crossing: the level of y
  // `require_converged = true`: n/a unless every completed run of every point converged
  // (summary.json "converged"); otherwise unconverged points are only named in the note.
  bool require_converged = false;
  // `requires = [{ y = "attn_entropy_ratio", min = 0.7 }, ...]`: the regime the paper's theorem
  // assumes; per point, the seed mean of y must lie in [min, max], else the claim is n/a.
  // A gate may name another precondition (label = "left the initial plateau"): notes name it.
  struct Gate {
    std::string y;
    double min = -1e308, max = 1e308;
    std::string label;
  };
  std::vector<Gate> gates;
  std::string finding;  // `finding = "..."`: the spec's explanation of a result that does not hold
  // Set when a selector names a value the base [sweep] runs but this scale does not
  // ("task.kind = \"ngram_noise\" is not run at scale quick"): the claim is n/a with that note.
  std::string not_at_scale;
};

struct ExperimentSpec {
  std::string path, name, title, result, description, scale;
  std::string text;  // the spec file's text, as read
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
  std::string config;       // the resolved config it will run with (train.threads = 0), set by the runner
  std::string config_hash;  // hash_hex(config)
  double cost = 0;          // estimated FLOPs (set by the runner): the costliest runs are claimed first
};

// Reads and checks a spec; scale "" = none. UserError (file: key: message) on bad input.
ExperimentSpec load_spec(const std::string& path, const std::string& scale);
// The same from a spec's text (`path` names it in errors). check_base = false skips loading
// the [base] config (which may name a file relative to a spec that is not here): what a
// report needs (axes, figures, claims) does not depend on it.
ExperimentSpec parse_spec(const std::string& text, const std::string& path, const std::string& scale, bool check_base);
// Every run: the grid product of the axes (zip groups move together) times the seeds.
std::vector<RunSpec> expand(const ExperimentSpec& spec);
// A directory-safe name for a run id: its readable characters (at most 100) and a hash of
// the whole id, so that distinct ids never share a directory and no name is too long.
std::string run_dir_name(const std::string& id);
// 16 hex digits of a 64-bit FNV-1a hash of s.
std::string hash_hex(const std::string& s);
// The first dotted key (in sorted order) whose value differs between two TOML texts, with
// both values ("(absent)" if missing); "" if they are equal.
std::string first_changed_key(const std::string& old_toml, const std::string& new_toml, std::string* old_value,
                              std::string* new_value);

}  // namespace attnlab

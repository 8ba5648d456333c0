#pragma once
// Run configs: TOML file + `key=value` overrides -> validated RunConfig. Every error is a
// UserError naming the source (file or "command line"), the key and what is allowed.
#include <string>
#include <string_view>
#include <vector>

#include "core/run_config.h"

namespace attnlab {

// Reads the file, applies overrides ("model.heads=[8,4]", "task.readout=mlp"), validates.
// The file may also be an experiment spec (it has an [experiment] table): then its [base]
// (inline [base.task] ... or base = "file.toml", relative to the spec) is the config, and
// `scale` ("quick", "full") applies that [scale.NAME]'s keys that are not sweep axes.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides,
                          const std::string& scale = "");
// Same, from TOML text; `source` names it in errors.
RunConfig parse_run_config(std::string_view toml_text, const std::string& source,
                           const std::vector<std::string>& overrides, const std::string& scale = "");
// The resolved config (every default and derived value written out) as TOML text.
std::string resolved_toml(const RunConfig& cfg);

const char* to_string(Rpe r);
const char* to_string(Pos p);
const char* to_string(Norm n);
const char* to_string(Act a);

}  // namespace attnlab

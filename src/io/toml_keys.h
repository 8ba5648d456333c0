#pragma once
// Dotted keys, both spellings. TOML reads a bare `model.heads = [1, 2]` as a table `model`
// holding `heads`, and a quoted `"model.heads" = [1, 2]` as one key with a dot in it; specs
// may use either (in [sweep], [scale.*], and claims' a/b/where), so both flatten to the
// same dotted key here.
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

namespace attnlab {

// Every leaf of t (a value that is not a table) with its dotted path, in the table's order.
inline void dotted_entries(const toml::table& t, std::vector<std::pair<std::string, const toml::node*>>& out,
                           const std::string& prefix = "") {
  for (const auto& [k, v] : t) {
    const std::string key = prefix + std::string(k.str());
    if (const toml::table* sub = v.as_table()) dotted_entries(*sub, out, key + ".");
    else out.push_back({key, &v});
  }
}

inline std::vector<std::pair<std::string, const toml::node*>> dotted_entries(const toml::table& t) {
  std::vector<std::pair<std::string, const toml::node*>> out;
  dotted_entries(t, out);
  return out;
}

}  // namespace attnlab

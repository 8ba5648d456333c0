#include "core/profile.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace attnlab::prof {

bool enabled = false;

namespace {
struct Entry {
  const char* name;
  double seconds;
  long calls;
};
std::vector<Entry>& table() {
  static std::vector<Entry> t;
  return t;
}
}  // namespace

void add(const char* name, double seconds) {
  for (Entry& e : table())
    if (e.name == name || std::strcmp(e.name, name) == 0) {
      e.seconds += seconds;
      ++e.calls;
      return;
    }
  table().push_back({name, seconds, 1});
}

void reset() { table().clear(); }

void print(std::FILE* f, int steps) {
  std::vector<Entry> t = table();
  double total = 0;
  for (const Entry& e : t) total += e.seconds;
  std::sort(t.begin(), t.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
  std::fprintf(f, "  %-28s %10s %7s %8s\n", "phase", "ms/step", "share", "calls");
  for (const Entry& e : t)
    std::fprintf(f, "  %-28s %10.2f %6.1f%% %8.1f\n", e.name, 1000.0 * e.seconds / steps,
                 total > 0 ? 100.0 * e.seconds / total : 0.0, double(e.calls) / steps);
  std::fprintf(f, "  %-28s %10.2f\n", "sum of phases", 1000.0 * total / steps);
}

}  // namespace attnlab::prof

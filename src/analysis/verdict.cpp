// Verdicts (issue 24): an evaluated claim's interval against its expectation, the seeds an
// undecided one needs, and the requirements (regime gates, convergence) that make it n/a.
#include "analysis/verdict.h"

#include "train/summary_fields.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace attnlab {

std::string fmt_num(double v) {
  std::ostringstream ss;
  ss << v;
  return ss.str();
}

void add_note(ClaimResult& r, const std::string& s) {
  if (!s.empty()) r.note = r.note.empty() ? s : s + "; " + r.note;
}

// Undecided: the interval's half-width narrows like 1/sqrt(seeds), so a bound b at distance
// d = |measured - b| is cleared once the half-width on its side, w, has shrunk to d: after
// about seeds (w / d)^2 seeds. Holding needs every straddled bound cleared; refuting, the one
// between the estimate and the expectation. Infinite when the estimate sits on that bound or
// the interval is unbounded on that side: more seeds alone would not decide it.
namespace {
double seeds_needed(const ClaimResult& r, double lo, double hi) {
  auto need = [&](double b) {
    const double d = std::fabs(r.measured - b), w = b < r.measured ? r.measured - r.ci_low : r.ci_high - r.measured;
    return d > 0 && std::isfinite(w) ? std::ceil(r.seeds * (w / d) * (w / d)) : INFINITY;
  };
  const bool inside = r.measured >= lo && r.measured <= hi;
  double n = 0;
  for (double b : {lo, hi}) {
    if (!std::isfinite(b) || !(r.ci_low <= b && b <= r.ci_high)) continue;
    if (inside) n = std::max(n, need(b));
    else if ((r.measured < lo) == (b == lo)) n = need(b);  // the bound facing the estimate
  }
  return n > 0 ? std::max(n, double(r.seeds + 1)) : INFINITY;
}

}  // namespace

// The verdict of an evaluated claim whose expectation is [lo, hi] (an end may be infinite;
// `strict`: the finite ends are excluded): holds, refuted or undecided, and for an undecided
// one the seeds likely to decide it, also in its note.
void decide(ClaimResult& r, double lo, double hi, bool strict) {
  if (!r.evaluated) return;
  auto above = [strict](double v, double b) { return std::isinf(b) || (strict ? v > b : v >= b); };  // v inside of lower end b
  auto below = [strict](double v, double b) { return std::isinf(b) || (strict ? v < b : v <= b); };  // v inside of upper end b
  const bool inside = above(r.ci_low, lo) && below(r.ci_high, hi);
  const bool outside = (std::isfinite(lo) && !above(r.ci_high, lo)) || (std::isfinite(hi) && !below(r.ci_low, hi));
  r.decided = inside ? "holds" : outside ? "refuted" : "undecided";
  r.holds = inside;
  if (r.decided != "undecided") return;
  r.seeds_to_decide = seeds_needed(r, lo, hi);
  add_note(r, std::isfinite(r.seeds_to_decide)
                  ? "about " + fmt_num(r.seeds_to_decide) + " seeds would likely decide it (now " + std::to_string(r.seeds) +
                        "; the interval narrows like 1/sqrt(seeds))"
                  : "more seeds alone would likely not decide it (the estimate sits on the bound, or the interval is unbounded)");
}

namespace {
// An evaluated claim that cannot be cited: n/a, the reason first in its note.
void not_applicable(ClaimResult& r, const std::string& why) {
  r.evaluated = false;
  r.holds = false;
  r.decided.clear();
  r.seeds_to_decide = NAN;
  r.note = why + (r.note.empty() ? "" : "; " + r.note);
}

}  // namespace

// What a verdict needs besides its interval (issue 24): every point inside the theorem's
// regime (the claim's gates: the seed mean of each gated field over the point's completed
// runs), and, with require_converged, every completed run converged; unconverged points are
// otherwise named in the note. A claim on a field measured at initialization ignores convergence.
void check_requirements(ClaimResult& r, const ClaimSpec& c) {
  std::string outside, unconverged;
  int unconverged_points = 0;
  for (const auto& p : r.points) {
    int u = 0, done = 0;
    for (const Observation* o : p.members)
      if (o->status == "completed") {
        ++done;
        u += o->summary.is_object() && o->summary.contains("converged") && o->summary["converged"].is_boolean() &&
             !o->summary["converged"].get<bool>();
      }
    if (u > 0) {
      ++unconverged_points;
      unconverged += (unconverged.empty() ? "" : "; ") + p.label + " (" + std::to_string(u) + " of " + std::to_string(done) + " runs)";
    }
    for (const auto& g : c.gates) {
      double sum = 0;
      int n = 0;
      for (const Observation* o : p.members)
        if (const double v = o->status == "completed" ? summary_value(o->summary, g.y) : NAN; std::isfinite(v)) { sum += v; ++n; }
      const std::string at = " at " + p.label + (g.label.empty() ? "" : " (needed: " + g.label + ")");
      if (n == 0 && done > 0) outside += (outside.empty() ? "" : "; ") + g.y + " missing" + at;
      if (n == 0) continue;
      const double m = sum / n;
      if (m < g.min) outside += (outside.empty() ? "" : "; ") + g.y + " = " + fmt_num(m) + " < " + fmt_num(g.min) + at;
      if (m > g.max) outside += (outside.empty() ? "" : "; ") + g.y + " = " + fmt_num(m) + " > " + fmt_num(g.max) + at;
    }
  }
  for (auto& p : r.points) p.members.clear();
  if (!outside.empty()) return not_applicable(r, "out of regime: " + outside);
  if (unconverged_points == 0 || is_init_field(c.y)) return;  // a probe at init: training's end is not its regime
  if (c.require_converged) return not_applicable(r, "not converged (the claim requires it) at " + unconverged);
  add_note(r, "not converged at " + std::to_string(unconverged_points) + " of " + std::to_string(r.points.size()) + " points: " + unconverged);
}

}  // namespace attnlab

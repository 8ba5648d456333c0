// Crossing claims on synthetic grids with known answers: the width (or heads) needed for a
// level against n, two selections' difference, bounds where a curve never crosses.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <initializer_list>

#include "analysis/claims.h"
#include "claims_util.h"
#include "core/rng.h"

using namespace attnlab;

// crossing: with y = sqrt(log(n) / m) (1 + noise), the width where y reaches the level is
// m* = log(n) / level^2, whose log-log slope on n over 500 .. 50000 is about 0.12 (logarithmic
// growth); with y = sqrt(n^0.5 / m) it is m* = n^0.5 / level^2, slope 0.5.
namespace {
// Runs at n in {500, 5000, 50000}, the widths, seeds 1..6, with err = f(n, width, seed).
std::vector<Observation> crossing_grid(const std::function<double(int, int, int)>& f,
                                       const std::vector<int>& widths = {4, 8, 16, 32, 64, 128, 256, 512, 1024}) {
  std::vector<Observation> obs;
  for (int n : {500, 5000, 50000})
    for (int m : widths)
      for (int sd = 1; sd <= 6; ++sd) {
        Observation o;
        o.point["task.n"] = std::to_string(n);
        o.point["model.width"] = std::to_string(m);
        o.seed = sd;
        o.summary["err"] = f(n, m, sd);
        obs.push_back(o);
      }
  return obs;
}

std::vector<Observation> width_needed(bool logarithmic, uint64_t seed) {
  uint64_t k = 0;
  return crossing_grid([&](int n, int m, int) {
    const double need = logarithmic ? std::log(double(n)) : std::sqrt(double(n));
    return std::sqrt(need / m) * (1.0 + 0.03 * rng_normal(seed, 2, k++));
  });
}

// A crossing claim of err at 0.5 across model.width, against task.n.
ClaimSpec crossing_at_half() {
  ClaimSpec c;
  c.kind = "crossing";
  c.x = "task.n";
  c.across = "model.width";
  c.y = "err";
  c.level = 0.5;
  return c;
}

// Two crossing grids told apart by the axis "growth" (its values quoted, as specs store
// strings), err(n, m) from f(growth, n, m).
template <class F>
std::vector<Observation> two_growths(std::initializer_list<const char*> kinds, F f) {
  std::vector<Observation> obs;
  for (const char* kind : kinds) {
    auto part = crossing_grid([&](int n, int m, int) { return f(std::string(kind), n, m); });
    for (auto& o : part) o.point["growth"] = std::string("\"") + kind + "\"";
    obs.insert(obs.end(), part.begin(), part.end());
  }
  return obs;
}
}  // namespace

TEST(Claims, CrossingIsTheSlopeOfTheWidthThatReachesTheLevel) {
  ClaimSpec c = crossing_at_half();
  c.lo = -INFINITY;
  c.hi = 0.16;
  const double truth = std::log(std::log(50000.0) / std::log(500.0)) / std::log(100.0);
  const auto a = evaluate_claims(spec_with(c), width_needed(true, 1));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_TRUE(a[0].evaluated) << a[0].note;
  EXPECT_NEAR(a[0].measured, truth, 0.03);  // log-log interpolation between powers of 2
  EXPECT_TRUE(a[0].holds) << a[0].ci_low << " " << a[0].ci_high;
  const auto b = evaluate_claims(spec_with(c), width_needed(false, 1));
  EXPECT_NEAR(b[0].measured, 0.5, 0.03);
  EXPECT_FALSE(b[0].holds);
  // A level that the curves never reach (or reach at the smallest width) is no verdict.
  c.level = 0.01;
  const auto never = evaluate_claims(spec_with(c), width_needed(true, 1));
  EXPECT_FALSE(never[0].evaluated);
  EXPECT_EQ(never[0].note, "the mean err does not cross 0.01 inside the model.width grid at task.n = 500 (never), 5000 (never), 50000 (never)");
}

// crossing with a and b: the slope of one selection minus the other's, over the same seeds
// (paper 2's rate: the heads needed against the lag, lin- against log-type).
TEST(Claims, CrossingWithTwoSelectionsIsTheDifferenceOfTheirSlopes) {
  uint64_t k = 0;
  const auto obs = two_growths({"sqrt", "log"}, [&](const std::string& kind, int n, int m) {
    const double need = kind == "log" ? std::log(double(n)) : std::sqrt(double(n));
    return std::sqrt(need / m) * (1.0 + 0.03 * rng_normal(3, 2, k++));
  });
  ClaimSpec c = crossing_at_half();
  c.a = {{"growth", "\"sqrt\""}};
  c.b = {{"growth", "\"log\""}};
  c.lo = 0.2;
  c.hi = INFINITY;
  const double truth = 0.5 - std::log(std::log(50000.0) / std::log(500.0)) / std::log(100.0);
  const auto r = evaluate_claims(spec_with(c), obs);
  ASSERT_EQ(r.size(), 1u);
  ASSERT_TRUE(r[0].evaluated) << r[0].note;
  EXPECT_NEAR(r[0].measured, truth, 0.05);
  EXPECT_TRUE(r[0].holds);
  EXPECT_EQ(r[0].points.size(), 2u * 3u * 9u);  // both selections' points are counted
  std::swap(c.a, c.b);
  const auto swapped = evaluate_claims(spec_with(c), obs);
  EXPECT_NEAR(swapped[0].measured, -r[0].measured, 1e-12);
  EXPECT_FALSE(swapped[0].holds);
}

// A zipped design may give each x its own grid of `across` (E7: the depths K - 1 to K + 1
// for K hops): each x crosses on its own values, and the slope is the one the full grid
// gives where the crossings lie inside both. A planned run without a value is still missing.
TEST(Claims, CrossingTakesEachXsOwnGrid) {
  const auto full = width_needed(true, 1);
  std::vector<Observation> own;
  for (const auto& o : full) {
    const int n = std::stoi(o.point.at("task.n")), m = std::stoi(o.point.at("model.width"));
    if ((n == 500 && m > 128) || (n == 50000 && m < 16)) continue;  // off this x's grid
    own.push_back(o);
  }
  ClaimSpec c = crossing_at_half();
  c.lo = -INFINITY;
  c.hi = 0.16;
  const auto want = evaluate_claims(spec_with(c), full), got = evaluate_claims(spec_with(c), own);
  ASSERT_TRUE(got[0].evaluated) << got[0].note;
  EXPECT_DOUBLE_EQ(got[0].measured, want[0].measured);
  EXPECT_EQ(got[0].points.size(), 27u - 3u - 2u);
  for (auto& o : own)
    if (o.point.at("task.n") == "5000" && o.point.at("model.width") == "64") o.status = "failed";
  const auto failed = evaluate_claims(spec_with(c), own);
  EXPECT_FALSE(failed[0].evaluated);
  EXPECT_EQ(failed[0].note.rfind("no completed run with err at task.n = 5000, model.width = 64: ", 0), 0u) << failed[0].note;
}

// A selection whose curve never reaches the level at some x has a slope known only as a
// bound; the difference is then bounded too, and decides where its whole interval lies on one
// side (here a needs more than the grid at the largest n, so its slope is at least ~0.5).
TEST(Claims, CrossingDecidesOnABoundWhenACurveNeverReachesTheLevel) {
  uint64_t k = 0;
  const auto obs = two_growths({"never", "log"}, [&](const std::string& kind, int n, int m) {
    if (kind == "never") return n == 50000 ? 1.0 : std::sqrt(std::sqrt(double(n)) / m) * (1.0 + 0.03 * rng_normal(4, 2, k++));
    return std::sqrt(std::log(double(n)) / m) * (1.0 + 0.03 * rng_normal(4, 2, k++));
  });
  ClaimSpec c = crossing_at_half();
  c.a = {{"growth", "\"log\""}};
  c.b = {{"growth", "\"never\""}};
  c.lo = 0.0;
  c.hi = INFINITY;  // "a grows at least as fast as b": refuted by the bound alone
  const auto r = evaluate_claims(spec_with(c), obs);
  ASSERT_TRUE(r[0].evaluated) << r[0].note;
  EXPECT_TRUE(std::isnan(r[0].measured));
  EXPECT_EQ(r[0].decided, "refuted");
  EXPECT_EQ(r[0].ci_low, -INFINITY);
  EXPECT_LT(r[0].ci_high, -0.2);
  EXPECT_NE(r[0].note.find("on the data the statistic is only bounded, in [-inf, "), std::string::npos) << r[0].note;
  EXPECT_NE(r[0].note.find("the mean err b does not cross 0.5 inside the model.width grid at task.n = 50000 (never)"), std::string::npos) << r[0].note;
}

// Defect (issue 23): a bootstrap resample whose curve at some x never reaches the level inside
// the grid was dropped, and those are the resamples that need the largest widths, so the
// upper bound was biased down. Here the width needed grows like log n, but the seeds differ
// by +-30% and the level is reached at n = 50000 only at the last widths: about 40% of the
// resamples (those drawing the high seeds) never reach it there. Their slope is only known to
// be above a bound, so the interval's upper end is infinite and the claim does not hold; it
// held on the remaining resamples alone.
TEST(Claims, CrossingCountsResamplesBeyondTheGridAgainstTheClaim) {
  const double factor[6] = {0.7, 0.8, 0.9, 1.1, 1.2, 1.3};
  const auto err = [&](int n, int m, int sd) { return std::sqrt(std::log(double(n)) / m) * factor[sd - 1]; };
  std::vector<Observation> obs = crossing_grid(err);
  ClaimSpec c = crossing_at_half();
  c.level = 0.105;  // the seed mean at n = 50000 reaches it between widths 512 and 1024
  c.lo = -INFINITY;
  c.hi = 0.16;
  const auto r = evaluate_claims(spec_with(c), obs);
  ASSERT_EQ(r.size(), 1u);
  ASSERT_TRUE(r[0].evaluated) << r[0].note;
  EXPECT_NEAR(r[0].measured, std::log(std::log(50000.0) / std::log(500.0)) / std::log(100.0), 0.03);
  EXPECT_GT(r[0].resamples_beyond_grid, 100);
  EXPECT_EQ(r[0].resamples_dropped, 0);
  EXPECT_EQ(r[0].ci_high, INFINITY);
  EXPECT_FALSE(r[0].holds);
  EXPECT_NE(r[0].note.find(std::to_string(r[0].resamples_beyond_grid) + " of " + std::to_string(r[0].resamples) +
                           " bootstrap resamples reach 0.105 outside the model.width grid at some task.n: counted as beyond it"),
            std::string::npos)
      << r[0].note;
  // A grid twice as wide decides it: every resample crosses inside, and the claim holds.
  const auto wider = crossing_grid(err, {2048});
  obs.insert(obs.end(), wider.begin(), wider.end());
  const auto wide = evaluate_claims(spec_with(c), obs);
  EXPECT_EQ(wide[0].resamples_beyond_grid, 0);
  EXPECT_TRUE(wide[0].holds) << wide[0].ci_low << " " << wide[0].ci_high;
}


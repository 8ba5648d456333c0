// Figures of a sweep: CSV fields quoted, numeric series in numeric order, theory guides
// fitted to the data (the report run on stores built by hand).
#include "core/error.h"
#include "report/figures.h"
#include "store_fixture.h"

using namespace store_fixture;

// Defect 8: list-valued x and names with quotes and commas are quoted in the CSV.
TEST(Figures, CsvFieldsAreQuoted) {
  const fs::path d = fresh("csv");
  const std::string spec = kHead +
      "[sweep]\n\"model.heads\" = [[8, 4], [4, 8]]\n\"model.rpe\" = [\"a\\\"b\", \"c,d\"]\nseeds = [1]\n"
      "[[figure]]\nx = \"model.heads\"\ny = \"err\"\nseries = \"model.rpe\"\n";
  make_store(d / "store", spec, [](const RunSpec& r, std::string& st, json& s) {
    st = "completed";
    s = {{"err", r.point.at("model.heads") == "[8, 4]" ? 1.0 : 2.0}};
  });
  ASSERT_EQ(run_cli({"report", (d / "store").string(), "-o", (d / "rep").string()}, d).status, 0);
  const auto rows = parse_csv(slurp(d / "rep" / "synthetic" / "fig1.csv"));
  ASSERT_EQ(rows.size(), 5u);
  std::set<std::string> xs, series;
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].size(), rows[0].size()) << "row " << i;
    series.insert(rows[i][0]);
    xs.insert(rows[i][1]);
  }
  EXPECT_EQ(xs, (std::set<std::string>{"[8, 4]", "[4, 8]"}));
  EXPECT_EQ(series, (std::set<std::string>{"a\"b", "c,d"}));
  fs::remove_all(d);
}

// Numeric series (FFN widths) come in numeric order, in the CSV and so in the legend.
TEST(Figures, NumericSeriesAreInNumericOrder) {
  const fs::path d = fresh("series_order");
  const std::string spec = kHead +
      "[sweep]\n\"model.heads\" = [1, 8]\n\"model.ffn\" = [256, 4, 16]\nseeds = [1]\n"
      "[[figure]]\nx = \"model.heads\"\ny = \"err\"\nseries = \"model.ffn\"\n";
  make_store(d / "store", spec, [](const RunSpec&, std::string& st, json& s) {
    st = "completed";
    s = {{"err", 1.0}};
  });
  ASSERT_EQ(run_cli({"report", (d / "store").string(), "-o", (d / "rep").string()}, d).status, 0);
  const auto rows = parse_csv(slurp(d / "rep" / "synthetic" / "fig1.csv"));
  ASSERT_EQ(rows.size(), 7u);
  std::vector<std::string> order;
  for (size_t i = 1; i < rows.size(); ++i)
    if (order.empty() || order.back() != rows[i][0]) order.push_back(rows[i][0]);
  EXPECT_EQ(order, (std::vector<std::string>{"4", "16", "256"}));
  fs::remove_all(d);
}

// Theory lines: a figure's guide is the power law c x^slope with c fitted to each series'
// means (least squares in log-log with the slope fixed), drawn dashed in the series' colour;
// the free fit and the guide's constant are reported; bad guides are spec errors.
TEST(Figures, GuidesAreFittedPowerLaws) {
  // Exact power law y = 3 x^-0.5: the free fit recovers it, and a guide of slope -1 gets the
  // constant exp(mean(log y + log x)).
  std::vector<std::pair<double, double>> pts;
  for (double x : {8.0, 32.0, 128.0}) pts.push_back({x, 3.0 / std::sqrt(x)});
  const GuideFit g = fit_guide(pts, -0.5), g1 = fit_guide(pts, -1.0);
  ASSERT_TRUE(g.ok);
  EXPECT_NEAR(g.fit_slope, -0.5, 1e-12);
  EXPECT_NEAR(g.fit_c, 3.0, 1e-12);
  EXPECT_NEAR(g.guide_c, 3.0, 1e-12);
  double mean = 0;
  for (const auto& [x, y] : pts) mean += std::log(y * x) / 3.0;
  EXPECT_NEAR(g1.guide_c, std::exp(mean), 1e-12);
  EXPECT_FALSE(fit_guide({{4.0, 1.0}}, -0.5).ok);
  EXPECT_FALSE(fit_guide({{4.0, 1.0}, {4.0, 2.0}}, -0.5).ok);        // one distinct x
  EXPECT_FALSE(fit_guide({{4.0, 1.0}, {8.0, -2.0}}, -0.5).ok);       // y <= 0 is left out

  const fs::path d = fresh("guide");
  const std::string spec = kHead +
      "[sweep]\n\"model.heads\" = [1, 4, 16]\nseeds = [1, 2]\n"
      "[[figure]]\nx = \"model.heads\"\ny = \"err\"\nlogx = true\nlogy = true\nguide = { slope = -0.5, label = \"H^-1/2, theory\" }\n";
  make_store(d / "store", spec, [](const RunSpec& r, std::string& st, json& s) {
    st = "completed";
    s = {{"err", 2.0 / std::sqrt(std::stod(r.point.at("model.heads")))}};
  });
  ASSERT_EQ(run_cli({"report", (d / "store").string(), "-o", (d / "rep").string()}, d).status, 0);
  const std::string gp = slurp(d / "rep" / "synthetic" / "fig1.gp");
  EXPECT_NE(gp.find("* x**(-0.5) with lines lt 1 dt 2"), std::string::npos) << gp;
  EXPECT_NE(gp.find("title 'H^-1/2, theory'"), std::string::npos) << gp;
  const std::string html = slurp(d / "rep" / "index.html");
  EXPECT_NE(html.find("fitted y = 2 x^-0.5; guide H^-1/2, theory = 2 x^-0.5"), std::string::npos);

  const fs::path bad = d / "bad.toml";
  auto error_of = [&](const std::string& fig) -> std::string {
    { std::ofstream f(bad); f << kHead + "[sweep]\n\"model.heads\" = [1, 4]\n[[figure]]\nx = \"model.heads\"\ny = \"err\"\n" + fig; }
    try { load_spec(bad.string(), ""); } catch (const UserError& e) { return e.what(); }
    return "(no error)";
  };
  EXPECT_EQ(error_of("guide = { label = \"x\" }\n"), bad.string() + ": figure[0].guide: needs a slope");
  EXPECT_EQ(error_of("guide = { slope = \"-1/2\" }\n"), bad.string() + ": figure[0].guide.slope: expected a finite number");
  EXPECT_EQ(error_of("guide = { slope = -0.5, colour = \"red\" }\n"),
            bad.string() + ": figure[0].guide.colour: unknown key (allowed: slope, label)");
  EXPECT_EQ(error_of("guide = -0.5\n"),
            bad.string() + ": figure[0].guide: expected a table, e.g. { slope = -0.5, label = \"m^-1/2, theory\" }");
  fs::remove_all(d);
}

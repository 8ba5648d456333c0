#include "report/report.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "io/atomic_file.h"
#include "report/figures.h"
#include "sweep/spec.h"
#include "sweep/store.h"

extern "C" char* openblas_get_corename(void);

namespace attnlab {

namespace fs = std::filesystem;

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v) {
  if (!std::isfinite(v)) return "–";
  std::ostringstream ss;
  ss.precision(4);
  ss << v;
  return ss.str();
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string l; std::getline(f, l);)
    if (l.rfind("model name", 0) == 0) return l.substr(l.find(':') + 2);
  return "unknown";
}

std::vector<fs::path> find_stores(const std::vector<std::string>& inputs) {
  std::vector<fs::path> out;
  for (const auto& in : inputs) {
    const fs::path p(in);
    if (fs::exists(p / "runs.db")) { out.push_back(p / "runs.db"); continue; }
    if (!fs::is_directory(p)) throw UserError(in + ": not a sweep directory (no runs.db) nor a directory of sweeps");
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(p))
      if (e.is_directory() && fs::exists(e.path() / "runs.db")) found.push_back(e.path() / "runs.db");
    if (found.empty()) throw UserError(in + ": no runs.db here or in its subdirectories");
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

struct Section {
  ExperimentSpec spec;
  std::vector<RunRow> rows;
  std::vector<Observation> obs;
  std::vector<FigureFiles> figures;
  std::vector<ClaimResult> claims;
};

}  // namespace

std::string claims_table(const std::vector<ClaimResult>& claims) {
  std::ostringstream ss;
  ss << "result  experiment                claim                                                    measured [95% CI]                holds\n";
  for (const auto& c : claims) {
    std::string claim = c.claim + (c.series.empty() ? "" : " [" + c.series + "]");
    if (claim.size() > 56) claim = claim.substr(0, 53) + "...";
    std::string m = num(c.measured) + " [" + num(c.ci_low) + ", " + num(c.ci_high) + "]";
    char line[512];
    std::snprintf(line, sizeof line, "%-7s %-25s %-56s %-32s %s\n", c.result.c_str(), c.experiment.substr(0, 25).c_str(),
                  claim.c_str(), m.c_str(), !c.note.empty() ? "n/a" : c.holds ? "yes" : "NO");
    ss << line;
  }
  return ss.str();
}

std::vector<ClaimResult> write_report(const std::vector<std::string>& inputs, const std::string& out) {
  const auto stores = find_stores(inputs);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw UserError(out + ": cannot create the report directory: " + ec.message());
  std::vector<Section> sections;
  std::vector<ClaimResult> all;
  for (const auto& db : stores) {
    Store store(db.string());
    Section sec;
    const std::string scale = store.meta("scale"), path = store.meta("spec");
    std::string spec_path = path;
    if (path.empty() || !fs::exists(path)) {  // the spec moved: use the copy in the store
      spec_path = (fs::path(out) / (".spec_" + db.parent_path().filename().string() + ".toml")).string();
      write_file_atomic(spec_path, store.meta("spec_text"));
    }
    sec.spec = load_spec(spec_path, scale);
    sec.rows = store.runs(sec.spec.name);
    for (const auto& r : sec.rows) {
      if (r.status != "completed" || r.summary.empty()) continue;
      sec.obs.push_back({r.point, r.seed, nlohmann::json::parse(r.summary)});
    }
    const fs::path fig_dir = fs::path(out) / sec.spec.name;
    fs::create_directories(fig_dir);
    for (size_t i = 0; i < sec.spec.figures.size(); ++i)
      sec.figures.push_back(render_figure(sec.spec.figures[i], sec.obs, fig_dir.string(), "fig" + std::to_string(i + 1)));
    sec.claims = evaluate_claims(sec.spec, sec.obs);
    all.insert(all.end(), sec.claims.begin(), sec.claims.end());
    sections.push_back(std::move(sec));
  }

  // claims.json
  nlohmann::ordered_json cj = nlohmann::ordered_json::array();
  auto jnum = [](double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); };
  for (const auto& c : all)
    cj.push_back({{"result", c.result}, {"experiment", c.experiment}, {"claim", c.claim}, {"series", c.series},
                  {"kind", c.kind}, {"expected", c.expected}, {"measured", jnum(c.measured)}, {"ci_low", jnum(c.ci_low)},
                  {"ci_high", jnum(c.ci_high)}, {"holds", c.holds}, {"note", c.note}});
  write_file_atomic((fs::path(out) / "claims.json").string(), cj.dump(2) + "\n");

  // index.html
  std::ostringstream h;
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const char* core = openblas_get_corename();
  int holds = 0, evaluated = 0;
  for (const auto& c : all) {
    evaluated += c.note.empty();
    holds += c.note.empty() && c.holds;
  }
  h << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>attnlab report</title>\n<style>\n"
    << "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\n"
    << "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}\n"
    << "th{background:#f3f3f3}.yes{color:#1a7f37;font-weight:bold}.no{color:#cf222e;font-weight:bold}.na{color:#888}\n"
    << ".figs{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figure img{width:520px;border:1px solid #ddd}\n"
    << "pre{white-space:pre-wrap;background:#f8f8f8;padding:.6em}code{font-size:.9em}\n</style></head>\n<body>\n"
    << "<h1>attnlab report</h1>\n<p>" << holds << " of " << evaluated << " evaluated claims hold; " << all.size() - size_t(evaluated)
    << " could not be evaluated. Generated " << date << ".</p>\n"
    << "<table><tr><th>attnlab</th><td>" << ATTNLAB_VERSION << " (commit " << ATTNLAB_COMMIT << ")</td></tr>"
    << "<tr><th>CPU</th><td>" << esc(cpu_model()) << ", " << std::thread::hardware_concurrency() << " threads</td></tr>"
    << "<tr><th>BLAS kernel</th><td>OpenBLAS " << esc(core ? core : "unknown") << "</td></tr></table>\n"
    << "<h2>Claims</h2>\n<table><tr><th>result</th><th>experiment</th><th>claim</th><th>expected</th><th>measured</th>"
    << "<th>95% CI</th><th>holds</th></tr>\n";
  auto claim_row = [&](const ClaimResult& c, bool with_exp) {
    h << "<tr>";
    if (with_exp) h << "<td>" << esc(c.result) << "</td><td><a href=\"#" << esc(c.experiment) << "\">" << esc(c.experiment) << "</a></td>";
    h << "<td>" << esc(c.claim) << (c.series.empty() ? "" : " <i>[" + esc(c.series) + "]</i>") << "</td><td>" << esc(c.expected)
      << "</td><td>" << num(c.measured) << "</td><td>[" << num(c.ci_low) << ", " << num(c.ci_high) << "]</td><td class=\""
      << (!c.note.empty() ? "na\">n/a: " + esc(c.note) : c.holds ? "yes\">yes" : "no\">no") << "</td></tr>\n";
  };
  for (const auto& c : all) claim_row(c, true);
  h << "</table>\n";
  for (const auto& s : sections) {
    int done = 0, div = 0, failed = 0;
    for (const auto& r : s.rows) {
      done += r.status == "completed";
      div += r.status == "diverged";
      failed += r.status == "failed";
    }
    h << "<h2 id=\"" << esc(s.spec.name) << "\">" << esc(s.spec.title) << "</h2>\n<p><code>" << esc(s.spec.name) << "</code> · result "
      << esc(s.spec.result) << " · scale " << esc(s.spec.scale.empty() ? "base" : s.spec.scale) << " · " << s.rows.size()
      << " runs (" << done << " completed, " << div << " diverged, " << failed << " failed)</p>\n<pre>" << esc(s.spec.description)
      << "</pre>\n<div class=\"figs\">\n";
    for (size_t i = 0; i < s.figures.size(); ++i) {
      const auto& f = s.figures[i];
      const std::string base = s.spec.name + "/";
      if (f.ok)
        h << "<figure><img class=\"fig\" src=\"" << esc(base + f.svg) << "\" alt=\"" << esc(s.spec.figures[i].title)
          << "\"><figcaption>" << esc(s.spec.figures[i].title) << " · <a href=\"" << esc(base + f.csv) << "\">CSV</a></figcaption></figure>\n";
      else
        h << "<p class=\"na\">Figure '" << esc(s.spec.figures[i].title) << "': " << esc(f.error) << "</p>\n";
    }
    h << "</div>\n";
    if (!s.claims.empty()) {
      h << "<h3>Claims</h3><table><tr><th>claim</th><th>expected</th><th>measured</th><th>95% CI</th><th>holds</th></tr>\n";
      for (const auto& c : s.claims) claim_row(c, false);
      h << "</table>\n";
    }
    std::vector<std::string> ys = {"final_train_loss", "min_val_loss"};
    for (const auto& f : s.spec.figures)
      if (std::find(ys.begin(), ys.end(), f.y) == ys.end()) ys.push_back(f.y);
    h << "<details><summary>Runs (" << s.rows.size() << ")</summary><table><tr><th>point</th><th>seed</th><th>status</th>";
    for (const auto& y : ys) h << "<th>" << esc(y) << "</th>";
    h << "<th>wall s</th></tr>\n";
    for (const auto& r : s.rows) {
      std::string pt;
      for (const auto& [k, v] : r.point) pt += (pt.empty() ? "" : ", ") + k + "=" + v;
      nlohmann::json sj = r.summary.empty() ? nlohmann::json::object() : nlohmann::json::parse(r.summary);
      h << "<tr><td>" << esc(pt) << "</td><td>" << r.seed << "</td><td>" << esc(r.status)
        << (r.error.empty() ? "" : ": " + esc(r.error)) << (sj.contains("diverged_reason") ? ": " + esc(sj["diverged_reason"].get<std::string>()) : "")
        << "</td>";
      for (const auto& y : ys) h << "<td>" << num(summary_value(sj, y)) << "</td>";
      h << "<td>" << num(r.wall_s) << "</td></tr>\n";
    }
    h << "</table></details>\n";
  }
  // Marks the page once every figure has loaded (the end-to-end test reads data-figures).
  h << "<script>\nwindow.addEventListener('load', function () {\n"
    << "  var imgs = document.querySelectorAll('img.fig'), ok = 0;\n"
    << "  imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) ok++; else console.error('figure failed: ' + i.src); });\n"
    << "  document.body.setAttribute('data-figures', ok + '/' + imgs.length);\n});\n</script>\n</body></html>\n";
  write_file_atomic((fs::path(out) / "index.html").string(), h.str());
  return all;
}

}  // namespace attnlab

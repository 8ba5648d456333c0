#include "report/report.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v) {
  if (std::isnan(v)) return "–";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";  // (a crossing claim's bound beyond its grid)
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
  std::string key;    // folder of its figures and anchor in the page: unique per store
  fs::path dir;       // the sweep directory
  ExperimentSpec spec;
  std::vector<std::string> foreign;  // stored runs that the stored spec does not give (left out)
  std::vector<RunRow> rows;
  std::vector<Observation> obs;
  std::vector<FigureFiles> figures;
  std::vector<ClaimResult> claims;
};

// One sweep store read for the report: its stored spec, every run the spec gives (stored or
// not) and their observations.
Section load_section(const fs::path& db) {
  Store store(db.string(), true);
  Section sec;
  sec.dir = db.parent_path();
  const std::string scale = store.meta("scale"), text = store.meta("spec_text"), path = store.meta("spec");
  // The spec the runs were made with is the one stored with them, not whatever file is at
  // its old path now; the [base] config is not needed for figures and claims.
  if (!text.empty()) sec.spec = parse_spec(text, db.string() + " (stored spec)", scale, false);
  else if (!path.empty() && fs::exists(path)) sec.spec = parse_spec(read_file(path, "experiment spec"), path, scale, false);
  else throw UserError(db.string() + ": the store holds no spec text and its spec file '" + path + "' is gone");
  // Every run the stored spec gives is counted, stored or not; its point and seed are the
  // spec's (a stored row whose point or seed disagrees with its id is someone else's).
  std::map<std::string, RunRow> stored;
  for (auto& r : store.runs(sec.spec.name)) stored[r.id] = std::move(r);
  for (const auto& run : expand(sec.spec)) {
    RunRow row;
    auto it = stored.find(run.id);
    if (it != stored.end()) {
      if (it->second.point == run.point && it->second.seed == run.seed) row = it->second;
      else sec.foreign.push_back(run.id + " (its stored point or seed disagrees with its id)");
      stored.erase(it);
    }
    if (row.id.empty()) {  // not in the store: never run here
      row.id = run.id;
      row.status = "pending";
    }
    row.point = run.point;
    row.seed = run.seed;
    nlohmann::json summary;
    if (!row.summary.empty()) {
      try {
        summary = nlohmann::json::parse(row.summary);
      } catch (const nlohmann::json::exception&) {
        throw UserError(db.string() + ": run " + row.id + ": its stored summary is not valid JSON");
      }
    }
    sec.obs.push_back({row.id, row.point, row.seed, row.status, summary});
    sec.rows.push_back(std::move(row));
  }
  for (const auto& [id, r] : stored) sec.foreign.push_back(id);
  return sec;
}

}  // namespace

namespace {
// The papers (claim results: p1, p2, ...) in order of first appearance.
std::vector<std::string> papers_of(const std::vector<ClaimResult>& claims) {
  std::vector<std::string> out;
  for (const auto& c : claims)
    if (std::find(out.begin(), out.end(), c.result) == out.end()) out.push_back(c.result);
  return out;
}

std::string paper_title(const std::string& r) {
  if (r == "p1") return "Paper 1 (heads and head dimensions across layers)";
  if (r == "p2") return "Paper 2 (expressive power for long, sparse, adaptive memory)";
  if (r == "p3") return "Paper 3 (gradient descent for shallow Transformers)";
  return r.empty() ? std::string("Other claims") : r;
}

// The report's top: one line per paper with its verdict counts, linking to its claims.
std::string papers_headline(const std::vector<ClaimResult>& all) {
  std::string out = "<ul id=\"papers\">\n";
  for (const std::string& paper : papers_of(all)) {
    std::vector<ClaimResult> mine;
    for (const auto& c : all)
      if (c.result == paper) mine.push_back(c);
    out += "<li><a href=\"#paper-" + esc(paper) + "\">" + esc(paper_title(paper)) + "</a>: " + esc(verdict_counts(mine)) + "</li>\n";
  }
  return out + "</ul>\n";
}
}  // namespace

std::string verdict_counts(const std::vector<ClaimResult>& claims) {
  std::map<std::string, int> n;
  for (const auto& c : claims) ++n[c.verdict()];
  return std::to_string(n["holds"]) + " hold, " + std::to_string(n["refuted"]) + " refuted, " + std::to_string(n["undecided"]) +
         " undecided, " + std::to_string(n["n/a"]) + " n/a of " + std::to_string(claims.size()) + " claims";
}

std::string claims_table(const std::vector<ClaimResult>& claims) {
  // Strings from a store reach a terminal: no control characters (escape sequences).
  auto clean = [](std::string t) {
    for (char& ch : t)
      if (uint8_t(ch) < 0x20 || ch == 0x7f) ch = '?';
    return t;
  };
  std::ostringstream ss;
  ss << "result  experiment                claim                                                    measured [95% CI]                verdict\n";
  for (const auto& c : claims) {
    std::string claim = clean(c.claim + (c.series.empty() ? "" : " [" + c.series + "]"));
    if (claim.size() > 56) claim = claim.substr(0, 53) + "...";
    auto plain = [](double v) { return !std::isnan(v) ? num(v) : std::string("-"); };  // printf pads bytes, not glyphs
    std::string m = plain(c.measured) + " [" + plain(c.ci_low) + ", " + plain(c.ci_high) + "]";
    char line[512];
    const std::string v = c.verdict() == "refuted" ? "REFUTED" : c.verdict();
    std::snprintf(line, sizeof line, "%-7s %-25s %-56s %-32s %s\n", c.result.c_str(), c.experiment.substr(0, 25).c_str(),
                  claim.c_str(), m.c_str(), v.c_str());
    ss << line;
  }
  // The power laws of slope claims, then why a claim is n/a and what an evaluated one is
  // missing, under the table.
  for (const auto& c : claims)
    if (std::isfinite(c.fit_c))
      ss << "  fit (" << c.experiment << ", " << clean(c.claim.substr(0, 40)) << (c.claim.size() > 40 ? "..." : "") << "): y = "
         << num(c.fit_c) << " x^" << num(c.fit_exponent) << "\n";
  for (size_t i = 0; i < claims.size(); ++i) {
    const auto& c = claims[i];
    if (c.note.empty()) continue;
    std::string note = clean(c.note.size() > 300 ? c.note.substr(0, 297) + "..." : c.note);
    ss << "  note (" << c.experiment << ", " << c.verdict() << "): " << note << "\n";
  }
  ss << "claims: " << verdict_counts(claims) << "\n";
  return ss.str();
}

nlohmann::ordered_json claims_json(const std::vector<ClaimResult>& claims) {
  nlohmann::ordered_json cj = nlohmann::ordered_json::array();
  auto jnum = [](double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); };
  // An interval's bound may be infinite (JSON has no infinity): the string "inf" or "-inf".
  auto jbound = [&jnum](double v) { return std::isinf(v) ? nlohmann::ordered_json(v > 0 ? "inf" : "-inf") : jnum(v); };
  for (const auto& c : claims) {
    nlohmann::ordered_json points = nlohmann::ordered_json::array();
    for (const auto& p : c.points)
      points.push_back({{"point", p.label}, {"runs", p.runs}, {"completed", p.completed}, {"diverged", p.diverged},
                        {"failed", p.failed}, {"not_run", p.unfinished}, {"no_value", p.no_value}});
    cj.push_back({{"result", c.result}, {"experiment", c.experiment}, {"store", c.store}, {"claim", c.claim},
                  {"series", c.series}, {"kind", c.kind}, {"expected", c.expected}, {"measured", jnum(c.measured)},
                  {"ci_low", jbound(c.ci_low)}, {"ci_high", jbound(c.ci_high)}, {"holds", c.holds}, {"verdict", c.verdict()},
                  {"seeds", c.seeds}, {"seeds_to_decide", jbound(c.seeds_to_decide)}, {"finding", c.finding},
                  {"note", c.note}, {"fit_c", jnum(c.fit_c)}, {"fit_exponent", jnum(c.fit_exponent)},
                  {"resamples", c.resamples}, {"resamples_dropped", c.resamples_dropped},
                  {"resamples_beyond_grid", c.resamples_beyond_grid},
                  {"points", points}});
  }
  return cj;
}

std::vector<Observation> store_observations(const std::string& dir, ExperimentSpec* spec) {
  Section sec = load_section(fs::path(dir) / "runs.db");
  if (spec) *spec = sec.spec;
  return sec.obs;
}

std::vector<ClaimResult> sweep_claims(const std::vector<std::string>& inputs) {
  std::vector<ClaimResult> all;
  for (const auto& db : find_stores(inputs)) {
    Section sec = load_section(db);
    for (auto& c : evaluate_claims(sec.spec, sec.obs)) {
      c.store = sec.dir.string();
      all.push_back(std::move(c));
    }
  }
  return all;
}

std::vector<ClaimResult> write_report(const std::vector<std::string>& inputs, const std::string& out) {
  const auto stores = find_stores(inputs);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw UserError(out + ": cannot create the report directory: " + ec.message());
  std::vector<Section> sections;
  std::vector<ClaimResult> all;
  for (const auto& db : stores) sections.push_back(load_section(db));
  // Stores of the same experiment (shards and their merge) get folders of their own.
  std::map<std::string, int> per_name;
  for (const auto& s : sections) ++per_name[s.spec.name];
  std::set<std::string> keys;
  for (auto& s : sections) {
    std::string key = s.spec.name;
    if (per_name[s.spec.name] > 1) {
      std::string d;
      for (char c : s.dir.filename().string()) d += std::isalnum(uint8_t(c)) || c == '-' || c == '_' ? c : '_';
      key += "--" + d.substr(0, 80);
    }
    for (int k = 2; keys.count(key); ++k) key = s.spec.name + "--" + std::to_string(k);
    keys.insert(key);
    s.key = key;
  }
  for (auto& sec : sections) {
    const fs::path fig_dir = fs::path(out) / sec.key;
    fs::create_directories(fig_dir);
    for (size_t i = 0; i < sec.spec.figures.size(); ++i)
      sec.figures.push_back(
          render_figure(sec.spec.figures[i], sec.spec.axes, sec.obs, fig_dir.string(), "fig" + std::to_string(i + 1)));
    sec.claims = evaluate_claims(sec.spec, sec.obs);
    for (auto& c : sec.claims) c.store = sec.dir.string();
    all.insert(all.end(), sec.claims.begin(), sec.claims.end());
  }

  // claims.json
  write_file_atomic((fs::path(out) / "claims.json").string(), claims_json(all).dump(2) + "\n");

  // index.html
  std::ostringstream h;
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const char* core = openblas_get_corename();
  h << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>attnlab report</title>\n<style>\n"
    << "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\n"
    << "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}\n"
    << "th{background:#f3f3f3}.holds{color:#1a7f37;font-weight:bold}.refuted{color:#cf222e;font-weight:bold}"
    << ".undecided{color:#9a6700;font-weight:bold}.na{color:#888}.no{color:#cf222e}\n"
    << ".figs{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figure img{width:520px;border:1px solid #ddd}\n"
    << "pre{white-space:pre-wrap;background:#f8f8f8;padding:.6em}code{font-size:.9em}\n"
    << ".finding{font-weight:normal;color:#444;font-size:.9em;margin-top:.3em;max-width:28em}td small{font-weight:normal;color:#555}\n"
    << "#papers li{margin:.2em 0}\n</style></head>\n<body>\n"
    << "<h1>attnlab report</h1>\n<p id=\"headline\"><b>" << esc(verdict_counts(all)) << "</b>. Generated " << date << ".</p>\n"
    << papers_headline(all)
    << "<table><tr><th>attnlab</th><td>" << ATTNLAB_VERSION << " (commit " << ATTNLAB_COMMIT << ")</td></tr>"
    << "<tr><th>CPU</th><td>" << esc(cpu_model()) << ", " << std::thread::hardware_concurrency() << " threads</td></tr>"
    << "<tr><th>BLAS kernel</th><td>OpenBLAS " << esc(core ? core : "unknown") << "</td></tr></table>\n"
    << "<h2>Claims</h2>\n";
  std::map<std::string, std::string> key_of_store;
  for (const auto& s : sections) key_of_store[s.dir.string()] = s.key;
  // A claim's figure: the first of its experiment's figures with its y (and x, if it has one).
  std::map<std::string, const Section*> section_of_store;
  for (const auto& s : sections) section_of_store[s.dir.string()] = &s;
  auto figure_of = [&](const ClaimResult& c) -> std::string {
    const Section* s = section_of_store[c.store];
    if (!s) return "";
    for (size_t i = 0; i < s->spec.figures.size(); ++i)
      if (s->spec.figures[i].y == c.y && (c.x.empty() || s->spec.figures[i].x == c.x) && i < s->figures.size() && s->figures[i].ok)
        return s->key + "-fig" + std::to_string(i + 1);
    return "";
  };
  auto claim_row = [&](const ClaimResult& c, bool with_exp) {
    h << "<tr>";
    if (with_exp) {
      const std::string fig = figure_of(c);
      h << "<td><a href=\"#" << esc(key_of_store[c.store]) << "\">" << esc(key_of_store[c.store]) << "</a>"
        << (fig.empty() ? "" : "<br><small><a href=\"#" + esc(fig) + "\">figure</a></small>") << "</td>";
    }
    // Per point: completed / diverged / failed / not run; the points not all completed in full.
    int runs = 0, completed = 0, diverged = 0, failed = 0, unfinished = 0;
    std::string detail;
    for (const auto& p : c.points) {
      runs += p.runs; completed += p.completed; diverged += p.diverged; failed += p.failed; unfinished += p.unfinished;
      detail += "<tr><td>" + esc(p.label) + "</td><td>" + std::to_string(p.completed - p.no_value) + "</td><td>" +
                std::to_string(p.diverged) + "</td><td>" + std::to_string(p.failed) + "</td><td>" + std::to_string(p.unfinished) +
                "</td></tr>";
    }
    const std::string note = c.note.empty() ? "" : "<br><small>" + esc(c.note) + "</small>";
    h << "<td>" << esc(c.claim) << (c.series.empty() ? "" : " <i>[" + esc(c.series) + "]</i>") << "</td><td>" << esc(c.expected)
      << "</td><td>" << num(c.measured)
      << (std::isfinite(c.fit_c) ? "<br><small>y = " + esc(num(c.fit_c)) + " x<sup>" + esc(num(c.fit_exponent)) + "</sup></small>" : "")
      << "</td><td>[" << num(c.ci_low) << ", " << num(c.ci_high) << "]</td><td><details><summary>"
      << c.points.size() << " points: " << completed << " completed" << (diverged ? ", " + std::to_string(diverged) + " diverged" : "")
      << (failed ? ", " + std::to_string(failed) + " failed" : "") << (unfinished ? ", " + std::to_string(unfinished) + " not run" : "")
      << "</summary><table><tr><th>point</th><th>with value</th><th>diverged</th><th>failed</th><th>not run</th></tr>" << detail
      << "</table></details></td><td class=\"" << (c.verdict() == "n/a" ? "na" : c.verdict()) << "\">" << c.verdict() << note
      << (c.verdict() != "holds" && !c.finding.empty() ? "<div class=\"finding\">" + esc(c.finding) + "</div>" : "") << "</td></tr>\n";
    (void)runs;
  };
  // Grouped by paper, in the report's order (experiments within a paper stay together).
  for (const std::string& paper : papers_of(all)) {
    std::vector<ClaimResult> mine;
    for (const auto& c : all)
      if (c.result == paper) mine.push_back(c);
    h << "<h3 id=\"paper-" << esc(paper) << "\">" << esc(paper_title(paper)) << ": " << esc(verdict_counts(mine)) << "</h3>\n"
      << "<table><tr><th>experiment</th><th>claim</th><th>expected</th><th>measured</th><th>95% CI</th><th>runs</th><th>verdict</th></tr>\n";
    for (const auto& c : mine) claim_row(c, true);
    h << "</table>\n";
  }
  for (const auto& s : sections) {
    int done = 0, div = 0, failed = 0;
    for (const auto& r : s.rows) {
      done += r.status == "completed";
      div += r.status == "diverged";
      failed += r.status == "failed";
    }
    h << "<h2 id=\"" << esc(s.key) << "\">" << esc(s.spec.title) << "</h2>\n<p><code>" << esc(s.spec.name) << "</code> · sweep <code>"
      << esc(s.dir.string()) << "</code> · result " << esc(s.spec.result) << " · scale " << esc(s.spec.scale.empty() ? "base" : s.spec.scale)
      << " · " << s.rows.size() << " runs (" << done << " completed, " << div << " diverged, " << failed << " failed, "
      << (s.rows.size() - size_t(done + div + failed)) << " not run)</p>\n";
    if (!s.foreign.empty())
      h << "<p class=\"no\">" << s.foreign.size() << " stored run(s) are not runs of the stored spec and are left out (the spec's run "
        << "counts as not run), e.g. " << esc(s.foreign[0]) << "</p>\n";
    h << "<pre>" << esc(s.spec.description) << "</pre>\n<div class=\"figs\">\n";
    for (size_t i = 0; i < s.figures.size(); ++i) {
      const auto& f = s.figures[i];
      if (!s.spec.figures[i].not_at_scale.empty()) {
        h << "<p class=\"na\">Figure '" << esc(s.spec.figures[i].title) << "': " << esc(s.spec.figures[i].not_at_scale) << "</p>\n";
        continue;
      }
      const std::string base = s.key + "/";
      std::string missing;
      for (const auto& m : f.incomplete) missing += (missing.empty() ? "" : "; ") + m;
      if (!missing.empty()) missing = "<br><small class=\"no\">Not every seed completed (red n/N on the plot: the mean is over n): " + esc(missing) + "</small>";
      for (const auto& fit : f.fits) missing += "<br><small>" + esc(fit) + "</small>";
      if (!f.pooled.empty())
        missing += "<br><small class=\"no\">Each point averages runs that also differ in " + esc(f.pooled) +
                   " (add a series to tell them apart).</small>";
      if (f.ok)
        h << "<figure id=\"" << esc(s.key + "-fig" + std::to_string(i + 1)) << "\"><img class=\"fig\" src=\"" << esc(base + f.svg) << "\" alt=\"" << esc(s.spec.figures[i].title)
          << "\"><figcaption>" << esc(s.spec.figures[i].title) << " · <a href=\"" << esc(base + f.csv) << "\">CSV</a>" << missing
          << "</figcaption></figure>\n";
      else
        h << "<p class=\"na\">Figure '" << esc(s.spec.figures[i].title) << "': " << esc(f.error) << missing << "</p>\n";
    }
    h << "</div>\n";
    if (!s.claims.empty()) {
      h << "<h3>Claims</h3><table><tr><th>claim</th><th>expected</th><th>measured</th><th>95% CI</th><th>runs</th><th>verdict</th></tr>\n";
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
      const nlohmann::json sj = r.summary.empty() ? nlohmann::json::object() : nlohmann::json::parse(r.summary);
      const bool reason = sj.is_object() && sj.contains("diverged_reason") && sj["diverged_reason"].is_string();
      h << "<tr><td>" << esc(pt) << "</td><td>" << r.seed << "</td><td>" << esc(r.status)
        << (r.error.empty() ? "" : ": " + esc(r.error)) << (reason ? ": " + esc(sj["diverged_reason"].get<std::string>()) : "")
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

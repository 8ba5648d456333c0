#include "sweep/spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "core/rng.h"
#include "io/config.h"
#include "io/toml_keys.h"
#include "train/summary_fields.h"

namespace attnlab {

namespace {

std::string text_of(const toml::node& n) {
  std::ostringstream ss;
  if (const auto* a = n.as_array()) {
    ss << "[";
    for (size_t i = 0; i < a->size(); ++i) ss << (i ? ", " : "") << text_of(*a->get(i));
    ss << "]";
  } else if (n.is_string()) {
    ss << '"' << n.as_string()->get() << '"';
  } else if (n.is_floating_point()) {
    ss << toml::value<double>(n.as_floating_point()->get());
  } else {
    n.visit([&](const auto& v) { ss << v; });
  }
  return ss.str();
}

Point read_point(const toml::node* n, const std::string& where) {
  Point p;
  if (!n) return p;
  const toml::table* t = n->as_table();
  if (!t) throw UserError(where + ": expected an inline table like { \"model.rpe\" = \"log\" }");
  for (const auto& [k, v] : dotted_entries(*t)) p[k] = text_of(*v);  // { model.rpe = "log" } too
  return p;
}

double number(const toml::node& n, const std::string& where) {
  if (n.is_integer()) return double(n.as_integer()->get());
  if (n.is_floating_point()) return n.as_floating_point()->get();
  throw UserError(where + ": expected a number");
}

// `requires = [{ y = "field", min = ..., max = ..., label = "..." }, ...]`: each y a summary
// field some run writes, with min and/or max; label (optional) names the condition in notes.
std::vector<ClaimSpec::Gate> read_gates(const toml::node& n, const std::string& where) {
  const toml::array* a = n.as_array();
  if (!a) throw UserError(where + ": expected an array of { y = \"<summary field>\", min = ..., max = ... }");
  std::vector<ClaimSpec::Gate> gates;
  for (size_t j = 0; j < a->size(); ++j) {
    const std::string at = where + "[" + std::to_string(j) + "]";
    const toml::table* t = a->get(j)->as_table();
    if (!t) throw UserError(at + ": expected a table { y = \"<summary field>\", min = ..., max = ... }");
    ClaimSpec::Gate g;
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      if (key == "y") {
        if (!v.is_string()) throw UserError(at + ".y: expected a string");
        g.y = v.as_string()->get();
      } else if (key == "min" || key == "max") {
        (key == "min" ? g.min : g.max) = number(v, at + "." + key);
      } else if (key == "label") {
        if (!v.is_string()) throw UserError(at + ".label: expected a string");
        g.label = v.as_string()->get();
      } else {
        throw UserError(at + "." + key + ": unknown key (allowed: y, min, max, label)");
      }
    }
    if (g.y.empty()) throw UserError(at + ".y: missing (the summary field the regime is read from)");
    if (!is_summary_field(g.y))
      throw UserError(at + ".y: '" + g.y + "' is not a field any run writes to summary.json (e.g. attn_entropy_ratio, max_abs_logit, final_val_rel)");
    if (!t->contains("min") && !t->contains("max")) throw UserError(at + ": needs min and/or max");
    if (g.min > g.max) throw UserError(at + ": min > max");
    gates.push_back(g);
  }
  return gates;
}

void flatten(const toml::table& t, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [k, v] : t) {
    const std::string key = prefix + std::string(k.str());
    if (const auto* sub = v.as_table()) flatten(*sub, key + ".", out);
    else out[key] = text_of(v);
  }
}

}  // namespace

std::string first_changed_key(const std::string& old_toml, const std::string& new_toml, std::string* old_value,
                              std::string* new_value) {
  std::map<std::string, std::string> a, b;
  try {
    flatten(toml::parse(old_toml), "", a);
  } catch (const toml::parse_error&) {
    a.clear();
  }
  try {
    flatten(toml::parse(new_toml), "", b);
  } catch (const toml::parse_error&) {
    b.clear();
  }
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  for (const auto& k : keys) {
    auto ia = a.find(k), ib = b.find(k);
    const std::string va = ia == a.end() ? "(absent)" : ia->second, vb = ib == b.end() ? "(absent)" : ib->second;
    if (va == vb) continue;
    if (old_value) *old_value = va;
    if (new_value) *new_value = vb;
    return k;
  }
  return old_toml == new_toml ? "" : "(the text)";
}

std::string hash_hex(const std::string& s) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(stream_id(s)));
  return buf;
}

std::string run_dir_name(const std::string& id) {
  std::string s;
  for (char c : id) {
    if (s.size() >= 100) break;
    s += (std::isalnum(uint8_t(c)) || c == '.' || c == '-' || c == '_' || c == '=') ? c : '_';
  }
  if (!s.empty() && s[0] == '.') s[0] = '_';  // never "." or ".."
  return s + "-" + hash_hex(id);
}

ExperimentSpec load_spec(const std::string& path, const std::string& scale) {
  return parse_spec(read_file(path, "experiment spec"), path, scale, true);
}

ExperimentSpec parse_spec(const std::string& text, const std::string& path, const std::string& scale, bool check_base) {
  ExperimentSpec s;
  s.path = path;
  s.scale = scale;
  s.text = text;
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw UserError(path + ":" + std::to_string(e.source().begin.line) + ": TOML syntax error: " + std::string(e.description()));
  }
  const toml::table* ex = root.get_as<toml::table>("experiment");
  if (!ex) throw UserError(path + ": experiment: a spec needs an [experiment] table with name, title, result, description");
  for (const auto& [k, v] : *ex) {
    const std::string key(k.str());
    if (key != "name" && key != "title" && key != "result" && key != "description")
      throw UserError(path + ": experiment." + key + ": unknown key (allowed: name, title, result, description)");
    if (!v.is_string()) throw UserError(path + ": experiment." + key + ": expected a string");
  }
  s.name = ex->get_as<std::string>("name") ? ex->get_as<std::string>("name")->get() : "";
  s.title = ex->get_as<std::string>("title") ? ex->get_as<std::string>("title")->get() : s.name;
  s.result = ex->get_as<std::string>("result") ? ex->get_as<std::string>("result")->get() : "";
  s.description = ex->get_as<std::string>("description") ? ex->get_as<std::string>("description")->get() : "";
  if (s.name.empty() || s.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
    throw UserError(path + ": experiment.name: must be a non-empty lowercase identifier (letters, digits, _)");
  if (s.result != "p1" && s.result != "p2" && s.result != "p3")
    throw UserError(path + ": experiment.result: '" + s.result + "' is not allowed (allowed: p1, p2, p3)");
  for (const auto& [k, v] : root) {
    const std::string key(k.str());
    static const std::set<std::string> allowed = {"experiment", "base", "sweep", "scale", "figure", "claim"};
    if (!allowed.count(key))
      throw UserError(path + ": " + key + ": unknown key (allowed at the top level: experiment, base, sweep, scale, figure, claim)");
  }

  // The base config must be valid on its own (and with the scale applied).
  if (check_base) (void)load_run_config(path, {}, scale);

  // Sweep axes, with the scale's replacements.
  // Axis keys as dotted strings, whichever way the spec spells them (bare or quoted).
  toml::table sweep;
  if (const toml::node* n = root.get("sweep")) {
    if (!n->is_table()) throw UserError(path + ": sweep: expected a table [sweep]");
    for (const auto& [key, v] : dotted_entries(*n->as_table())) {
      if (sweep.get(key)) throw UserError(path + ": sweep." + key + ": given twice");
      sweep.insert_or_assign(key, *v);
    }
  }
  const toml::table unscaled = sweep;  // what the other scales' selectors are checked against
  if (!scale.empty()) {
    const toml::table* sc = root.at_path("scale." + scale).as_table();
    if (!sc) throw UserError(path + ": scale." + scale + ": no such scale in this spec");
    for (const auto& [key, v] : dotted_entries(*sc))
      if (key == "seeds" || sweep.get(key)) sweep.insert_or_assign(key, *v);
  }
  std::vector<std::vector<std::string>> zips;
  if (const toml::node* z = sweep.get("zip")) {
    const toml::array* a = z->as_array();
    if (!a) throw UserError(path + ": sweep.zip: expected a list of lists of keys");
    for (const auto& g : *a) {
      const toml::array* ga = g.as_array();
      if (!ga || ga->size() < 2) throw UserError(path + ": sweep.zip: each group is a list of two or more keys");
      std::vector<std::string> keys;
      for (const auto& k : *ga) {
        if (!k.is_string()) throw UserError(path + ": sweep.zip: keys are strings");
        keys.push_back(k.as_string()->get());
      }
      zips.push_back(keys);
    }
  }
  s.seeds = {1};
  if (const toml::node* n = sweep.get("seeds")) {
    const toml::array* a = n->as_array();
    if (!a || a->empty()) throw UserError(path + ": sweep.seeds: expected a non-empty list of integers");
    s.seeds.clear();
    for (const auto& e : *a) {
      if (!e.is_integer()) throw UserError(path + ": sweep.seeds: expected integers");
      s.seeds.push_back(e.as_integer()->get());
    }
  }
  std::set<std::string> zipped;
  for (const auto& g : zips) {
    Axis ax;
    ax.keys = g;
    size_t len = 0;
    std::vector<const toml::array*> lists;
    for (const auto& k : g) {
      const toml::node* n = sweep.get(k);
      if (!n || !n->is_array()) throw UserError(path + ": sweep.zip: '" + k + "' must be a list in [sweep]");
      if (!zipped.insert(k).second) throw UserError(path + ": sweep.zip: '" + k + "' is in two zip groups");
      lists.push_back(n->as_array());
      if (len && lists.back()->size() != len)
        throw UserError(path + ": sweep.zip: the lists of " + g[0] + " and " + k + " differ in length (" + std::to_string(len) +
                        " vs " + std::to_string(lists.back()->size()) + ")");
      len = lists.back()->size();
    }
    for (size_t i = 0; i < len; ++i) {
      std::vector<std::string> tuple;
      for (const auto* l : lists) tuple.push_back(text_of(*l->get(i)));
      ax.values.push_back(tuple);
    }
    s.axes.push_back(ax);
  }
  for (const auto& [k, v] : sweep) {
    const std::string key(k.str());
    if (key == "seeds" || key == "zip" || zipped.count(key)) continue;
    const toml::array* a = v.as_array();
    if (!a || a->empty()) throw UserError(path + ": sweep." + key + ": expected a non-empty list of values");
    Axis ax;
    ax.keys = {key};
    for (const auto& e : *a) ax.values.push_back({text_of(e)});
    s.axes.push_back(ax);
  }

  if (const toml::node* fs = root.get("figure")) {
    const toml::array* a = fs->as_array();
    if (!a) throw UserError(path + ": figure: use [[figure]] tables");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* t = a->get(i)->as_table();
      const std::string where = path + ": figure[" + std::to_string(i) + "]";
      if (!t) throw UserError(where + ": expected a table");
      FigureSpec f;
      for (const auto& [k, v] : *t) {
        const std::string key(k.str());
        if (key == "x" || key == "y" || key == "series" || key == "title") {
          if (!v.is_string()) throw UserError(where + "." + key + ": expected a string");
          (key == "x" ? f.x : key == "y" ? f.y : key == "series" ? f.series : f.title) = v.as_string()->get();
        } else if (key == "where") {
          f.where = read_point(&v, where + ".where");
        } else if (key == "logx" || key == "logy") {
          if (!v.is_boolean()) throw UserError(where + "." + key + ": expected true or false");
          (key == "logx" ? f.logx : f.logy) = v.as_boolean()->get();
        } else if (key == "guide") {
          const toml::table* g = v.as_table();
          if (!g) throw UserError(where + ".guide: expected a table, e.g. { slope = -0.5, label = \"m^-1/2, theory\" }");
          for (const auto& [gk, gv] : *g) {
            const std::string gkey(gk.str());
            if (gkey == "slope") {
              const auto d = gv.value<double>();
              if (!d || !std::isfinite(*d)) throw UserError(where + ".guide.slope: expected a finite number");
              f.guide_slope = *d;
              f.guide = true;
            } else if (gkey == "label") {
              if (!gv.is_string()) throw UserError(where + ".guide.label: expected a string");
              f.guide_label = gv.as_string()->get();
            } else {
              throw UserError(where + ".guide." + gkey + ": unknown key (allowed: slope, label)");
            }
          }
          if (!f.guide) throw UserError(where + ".guide: needs a slope");
          if (f.guide_label.empty()) f.guide_label = "slope " + fmt::format("{}", f.guide_slope);
        } else {
          throw UserError(where + "." + key + ": unknown key (allowed: x, y, series, where, logx, logy, title, guide)");
        }
      }
      if (f.x.empty() || f.y.empty()) throw UserError(where + ": needs x and y");
      if (f.title.empty()) f.title = f.y + " against " + f.x;
      s.figures.push_back(f);
    }
  }
  if (const toml::node* cs = root.get("claim")) {
    const toml::array* a = cs->as_array();
    if (!a) throw UserError(path + ": claim: use [[claim]] tables");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* t = a->get(i)->as_table();
      const std::string where = path + ": claim[" + std::to_string(i) + "]";
      if (!t) throw UserError(where + ": expected a table");
      ClaimSpec c;
      for (const auto& [k, v] : *t) {
        const std::string key(k.str());
        static const std::set<std::string> allowed = {"kind", "x",    "y",      "series", "where",  "expect",           "a",
                                                      "b",    "after", "text", "across", "level", "require_converged", "requires",
                                                      "finding"};
        if (!allowed.count(key))
          throw UserError(where + "." + key + ": unknown key (allowed: kind, x, y, series, where, expect, a, b, after, text, across, level, " +
                          "require_converged, requires, finding)");
      }
      auto str = [&](const char* key, bool required) {
        const toml::node* n = t->get(key);
        if (!n) {
          if (required) throw UserError(where + "." + key + ": missing");
          return std::string();
        }
        if (!n->is_string()) throw UserError(where + "." + key + ": expected a string");
        return n->as_string()->get();
      };
      c.kind = str("kind", true);
      c.x = str("x", c.kind != "compare" && c.kind != "ratio" && c.kind != "level");
      c.y = str("y", true);
      c.text = str("text", false);
      c.finding = str("finding", false);
      if (const toml::node* rc = t->get("require_converged")) {
        if (!rc->is_boolean()) throw UserError(where + ".require_converged: expected true or false");
        c.require_converged = rc->as_boolean()->get();
      }
      if (const toml::node* rq = t->get("requires")) c.gates = read_gates(*rq, where + ".requires");
      c.where = read_point(t->get("where"), where + ".where");
      if (const toml::node* se = t->get("series")) {
        if (se->is_string()) c.series = se->as_string()->get();
        else for (const auto& [k, v] : read_point(se, where + ".series")) c.where[k] = v;  // the older spelling of where
      }
      const toml::node* e = t->get("expect");
      if (!e) throw UserError(where + ".expect: missing");
      if (c.kind == "slope" || c.kind == "optimum" || c.kind == "level" || c.kind == "crossing" || c.kind == "ratio") {
        const toml::array* ea = e->as_array();
        if (!ea || ea->size() != 2) throw UserError(where + ".expect: " + c.kind + " needs [lo, hi]");
        c.lo = number(*ea->get(0), where + ".expect");
        c.hi = number(*ea->get(1), where + ".expect");
        if (c.lo > c.hi) throw UserError(where + ".expect: lo > hi");
        if (c.kind == "crossing") {
          const toml::node* ac = t->get("across");
          if (!ac || !ac->is_string()) throw UserError(where + ".across: crossing needs across = \"<axis>\" (the axis searched for the level)");
          c.across = ac->as_string()->get();
          const toml::node* lv = t->get("level");
          if (!lv) throw UserError(where + ".level: crossing needs level = <y value>");
          c.level = number(*lv, where + ".level");
          if (!(c.level > 0)) throw UserError(where + ".level: must be > 0 (the crossing is found on log axes)");
          // a = {...}, b = {...}: the difference of the two selections' slopes, slope(a) - slope(b)
          c.a = read_point(t->get("a"), where + ".a");
          c.b = read_point(t->get("b"), where + ".b");
          if (c.a.empty() != c.b.empty()) throw UserError(where + ": crossing compares two selections with both a = {...} and b = {...}");
        }
      } else if (c.kind == "flat" || c.kind == "compare" || c.kind == "plateau") {
        c.value = number(*e, where + ".expect");
        if (c.kind == "plateau") {
          const toml::node* af = t->get("after");
          if (!af) throw UserError(where + ".after: plateau needs after = <x>");
          c.after = number(*af, where + ".after");
        }

      } else if (c.kind == "monotone") {
        static const std::set<std::string> directions = {"decreasing", "increasing", "nonincreasing", "nondecreasing"};
        if (!e->is_string() || !directions.count(e->as_string()->get()))
          throw UserError(where + ".expect: monotone needs \"decreasing\", \"increasing\", \"nonincreasing\" or \"nondecreasing\"");
        c.direction = e->as_string()->get();
      } else {
        throw UserError(where + ".kind: '" + c.kind + "' is not allowed (allowed: slope, flat, monotone, compare, ratio, plateau, optimum, level, crossing)");
      }
      if (c.kind == "compare" || c.kind == "ratio") {
        c.a = read_point(t->get("a"), where + ".a");
        c.b = read_point(t->get("b"), where + ".b");
        if (c.a.empty() || c.b.empty()) throw UserError(where + ": " + c.kind + " needs a = {...} and b = {...}");
      }
      s.claims.push_back(c);
    }
  }
  // A selector naming a value the sweep does not run would leave its figure empty or its claim
  // n/a after the whole sweep; say so before anything runs. A value that the base [sweep] runs
  // but this scale does not is for another scale: the figure or claim is marked, not an error.
  // Stored specs (check_base = false) are read as they were run, and only marked.
  auto in_base_sweep = [&](const std::string& k, const std::string& v) {
    const toml::array* a = unscaled.get(k) ? unscaled.get(k)->as_array() : nullptr;
    if (a)
      for (const auto& e : *a)
        if (text_of(e) == v) return true;
    return false;
  };
  auto check = [&](const Point& sel, const std::string& where, std::string& not_at_scale) {
    for (const auto& [k, v] : sel)
      for (const auto& ax : s.axes)
        for (size_t j = 0; j < ax.keys.size(); ++j) {
          if (ax.keys[j] != k) continue;
          std::string values;
          bool found = false;
          for (const auto& tuple : ax.values) {
            found = found || tuple[j] == v;
            values += (values.empty() ? "" : ", ") + tuple[j];
          }
          if (found) continue;
          if (!scale.empty() && in_base_sweep(k, v)) {
            if (not_at_scale.empty()) not_at_scale = k + " = " + v + " is not run at scale " + scale;
          } else if (check_base) {
            throw UserError(where + ": " + k + " = " + v + " is not a value of the sweep" +
                            (scale.empty() ? "" : " at scale " + scale) + " (its values: " + values + ")");
          }
        }
  };
  for (size_t i = 0; i < s.figures.size(); ++i)
    check(s.figures[i].where, path + ": figure[" + std::to_string(i) + "].where", s.figures[i].not_at_scale);
  for (size_t i = 0; i < s.claims.size(); ++i) {
    const std::string where = path + ": claim[" + std::to_string(i) + "]";
    check(s.claims[i].where, where + ".where", s.claims[i].not_at_scale);
    check(s.claims[i].a, where + ".a", s.claims[i].not_at_scale);
    check(s.claims[i].b, where + ".b", s.claims[i].not_at_scale);
  }
  return s;
}

std::vector<RunSpec> expand(const ExperimentSpec& spec) {
  std::vector<Point> points = {Point{}};
  for (const auto& ax : spec.axes) {
    std::vector<Point> next;
    for (const auto& p : points)
      for (const auto& tuple : ax.values) {
        Point q = p;
        for (size_t k = 0; k < ax.keys.size(); ++k) q[ax.keys[k]] = tuple[k];
        next.push_back(q);
      }
    points = next;
  }
  std::vector<RunSpec> runs;
  for (const auto& p : points)
    for (int64_t seed : spec.seeds) {
      RunSpec r;
      r.point = p;
      r.seed = seed;
      std::string key;
      for (const auto& [k, v] : p) {
        key += (key.empty() ? "" : ",") + k + "=" + v;
        r.overrides.push_back(k + "=" + v);
      }
      r.overrides.push_back("seed=" + std::to_string(seed));
      r.id = spec.name + "/" + (key.empty() ? "base" : key) + "/seed=" + std::to_string(seed);
      runs.push_back(r);
    }
  return runs;
}

}  // namespace attnlab

#pragma once
// The TOML side of `Keys` (io/config_keys.h): Reader reads one table of a config, checking
// every value and recording the keys it consumed (so unknown keys are errors naming where they
// came from); Writer writes a kind's keys into the resolved config. Internal to io/config.cpp.
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "core/error.h"
#include "io/config_keys.h"

namespace attnlab::config_detail {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "a list";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

struct Source {
  std::string file;
  std::set<std::string> overridden;  // keys set on the command line
};

// Reads the keys of one table, recording which it consumed, so that unknown keys are errors.
class Reader final : public Keys {
 public:
  Reader(const toml::table* t, std::string section, const Source& src) : t_(t), sec_(std::move(section)), src_(src) {}
  using Keys::integer;

  bool reading() const override { return true; }
  std::string full(const std::string& key) const { return sec_.empty() ? key : sec_ + "." + key; }
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const override {
    const std::string k = full(key);
    const std::string where = src_.overridden.count(k) ? "command line" : src_.file;
    throw UserError(where + ": " + k + ": " + msg);
  }
  const toml::node* node(const std::string& key) {
    keys_.push_back(key);
    return t_ ? t_->get(key) : nullptr;
  }
  bool has(const std::string& key) const override { return t_ && t_->get(key); }

  void integer(const std::string& key, int64_t& out, int64_t lo, int64_t hi) override {
    const toml::node* n = node(key);
    if (!n) return;
    if (!n->is_integer()) fail(key, std::string("expected an integer, got ") + type_name(*n));
    const int64_t v = n->as_integer()->get();
    if (v < lo || v > hi)
      fail(key, "must be " + (hi == INT64_MAX ? ">= " + std::to_string(lo) : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]") +
                    " (got " + std::to_string(v) + ")");
    out = v;
  }
  void number(const std::string& key, double& out, double lo, bool lo_open = false) override {
    const toml::node* n = node(key);
    if (!n) return;
    if (!n->is_number()) fail(key, std::string("expected a number, got ") + type_name(*n));
    const double v = n->is_integer() ? double(n->as_integer()->get()) : n->as_floating_point()->get();
    if (!(lo_open ? v > lo : v >= lo) || !std::isfinite(v)) {
      std::ostringstream m;
      m << "must be a finite number " << (lo_open ? "> " : ">= ") << lo << " (got " << v << ")";
      fail(key, m.str());
    }
    out = v;
  }
  void boolean(const std::string& key, bool& out) override {
    const toml::node* n = node(key);
    if (!n) return;
    if (!n->is_boolean()) fail(key, std::string("expected true or false, got ") + type_name(*n));
    out = n->as_boolean()->get();
  }
  void choice(const std::string& key, std::string& out, const std::vector<std::string>& allowed) override {
    const toml::node* n = node(key);
    if (!n) return;
    if (!n->is_string()) fail(key, std::string("expected a string (one of: ") + join(allowed) + "), got " + type_name(*n));
    const std::string v = n->as_string()->get();
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      fail(key, "'" + v + "' is not allowed (allowed: " + join(allowed) + ")");
    out = v;
  }
  void alias(const std::string& key, const std::string&, int& v, int64_t lo, int64_t hi) override { integer(key, v, lo, hi); }
  void numbers(const std::string& key, std::vector<double>& out, double lo, bool lo_open) override {
    const toml::node* n = node(key);
    if (!n) return;
    std::vector<double> v;
    auto take = [&](const toml::node& e) {
      if (!e.is_number()) fail(key, std::string("expected a number or a list of numbers, found ") + type_name(e));
      const double x = e.is_integer() ? double(e.as_integer()->get()) : e.as_floating_point()->get();
      if (!(lo_open ? x > lo : x >= lo) || !std::isfinite(x)) {
        std::ostringstream m;
        m << "every value must be a finite number " << (lo_open ? "> " : ">= ") << lo << " (got " << x << ")";
        fail(key, m.str());
      }
      v.push_back(x);
    };
    if (const toml::array* a = n->as_array()) {
      for (const auto& e : *a) take(e);
      if (v.empty()) fail(key, "the list is empty");
    } else {
      take(*n);
    }
    out = v;
  }
  void text(const std::string& key, std::string& out) override {
    const toml::node* n = node(key);
    if (!n) return;
    if (!n->is_string()) fail(key, std::string("expected a string, got ") + type_name(*n));
    out = n->as_string()->get();
  }
  // An integer or a list of integers (per-layer keys); each >= lo.
  bool ints(const std::string& key, std::vector<int>& out, int lo, bool allow_scalar = true) override {
    const toml::node* n = node(key);
    if (!n) return false;
    const std::string what = allow_scalar ? "an integer or a list of integers" : "a list of integers";
    std::vector<int> v;
    if (n->is_integer() && allow_scalar) {
      v.push_back(int(n->as_integer()->get()));
    } else if (n->is_array()) {
      for (const auto& e : *n->as_array()) {
        if (!e.is_integer()) fail(key, "expected " + what + ", found " + type_name(e) + " in the list");
        v.push_back(int(e.as_integer()->get()));
      }
      if (v.empty()) fail(key, "the list is empty");
    } else {
      fail(key, "expected " + what + ", got " + type_name(*n));
    }
    for (int x : v)
      if (x < lo) fail(key, "every entry must be >= " + std::to_string(lo) + " (got " + std::to_string(x) + ")");
    out = v;
    return true;
  }
  bool int_lists(const std::string& key, std::vector<std::vector<int>>& out, int lo) override {
    const toml::node* n = node(key);
    if (!n) return false;
    const std::string what = "an integer, or a list with one entry per layer (an integer, or a list of one per head)";
    auto check = [&](const toml::node& e, size_t layer, int head) {
      if (!e.is_integer()) fail(key, "expected " + what + ", found " + type_name(e) + " at layer " + std::to_string(layer));
      const int64_t x = e.as_integer()->get();
      if (x < lo)
        fail(key, "layer " + std::to_string(layer) + (head >= 0 ? " head " + std::to_string(head) : "") + ": must be >= " +
                      std::to_string(lo) + " (got " + std::to_string(x) + ")");
      return int(std::min<int64_t>(x, INT32_MAX));
    };
    std::vector<std::vector<int>> v;
    if (n->is_integer()) {
      v.push_back({check(*n, 0, -1)});
    } else if (const toml::array* a = n->as_array()) {
      for (const auto& e : *a) {
        const size_t layer = v.size();
        v.emplace_back();
        if (const toml::array* heads = e.as_array()) {
          for (const auto& x : *heads) v.back().push_back(check(x, layer, int(v.back().size())));
          if (v.back().empty()) fail(key, "layer " + std::to_string(layer) + ": the list of heads is empty");
        } else {
          v.back().push_back(check(e, layer, -1));
        }
      }
      if (v.empty()) fail(key, "the list is empty");
    } else {
      fail(key, "expected " + what + ", got " + type_name(*n));
    }
    out = v;
    return true;
  }
  // Every key of the table must have been read. For a [task] or [model] table, `kind` is
  // the chosen kind and `owners` tells which kinds have a key; with `legacy`, keys of other
  // kinds are ignored (a resolved config of an older attnlab, which wrote every kind's keys).
  void finish(const std::string& kind = "", const std::map<std::string, std::vector<std::string>>& owners = {},
              bool legacy = false) const {
    if (!t_) return;
    for (const auto& [k, v] : *t_) {
      const std::string key(k.str());
      if (std::find(keys_.begin(), keys_.end(), key) != keys_.end()) continue;
      auto o = owners.find(key);
      if (o == owners.end())
        fail(key, "unknown key (allowed in " + (sec_.empty() ? std::string("the top level") : "[" + sec_ + "]") + ": " +
                      join(keys_) + ")");
      if (legacy) continue;
      fail(key, "not a key of " + sec_ + ".kind = \"" + kind + "\" but of " + join(o->second) + " (the keys of " + kind +
                    ": " + join(keys_) + ")");
    }
  }

 private:
  const toml::table* t_;
  std::string sec_;
  const Source& src_;
  std::vector<std::string> keys_;
};

// Writes the keys a kind declares into a table (the resolved config).
class Writer final : public Keys {
 public:
  explicit Writer(toml::table& t) : t_(t) {}
  using Keys::integer;
  bool reading() const override { return false; }
  bool has(const std::string&) const override { return false; }
  void integer(const std::string& key, int64_t& v, int64_t, int64_t) override { add(key, v); }
  void number(const std::string& key, double& v, double, bool) override { add(key, v); }
  void boolean(const std::string& key, bool& v) override { add(key, v); }
  void choice(const std::string& key, std::string& v, const std::vector<std::string>&) override { add(key, v); }
  bool ints(const std::string& key, std::vector<int>& v, int, bool) override {
    toml::array a;
    for (int x : v) a.push_back(int64_t(x));
    add(key, std::move(a));
    return true;
  }
  bool int_lists(const std::string& key, std::vector<std::vector<int>>& v, int) override {
    toml::array a;
    for (const auto& layer : v) {
      const bool uniform = std::all_of(layer.begin(), layer.end(), [&](int x) { return x == layer.front(); });
      if (uniform && !layer.empty()) {
        a.push_back(int64_t(layer.front()));
      } else {
        toml::array heads;
        for (int x : layer) heads.push_back(int64_t(x));
        a.push_back(std::move(heads));
      }
    }
    add(key, std::move(a));
    return true;
  }
  void alias(const std::string&, const std::string&, int&, int64_t, int64_t) override {}
  void numbers(const std::string& key, std::vector<double>& v, double, bool) override {
    toml::array a;
    for (double x : v) a.push_back(x);
    add(key, std::move(a));
  }
  void text(const std::string& key, std::string& v) override { add(key, v); }
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const override { throw std::logic_error(key + ": " + msg); }
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  template <class V>
  void add(const std::string& key, V&& v) {
    t_.insert_or_assign(key, std::forward<V>(v));
    keys_.push_back(key);
  }
  toml::table& t_;
  std::vector<std::string> keys_;
};

}  // namespace attnlab::config_detail

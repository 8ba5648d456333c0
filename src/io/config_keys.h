#pragma once
// The config keys of one task family or model kind, declared once, next to its definition.
// A declaration is a function that calls one method of `Keys` per key; the same function
// reads the keys from a config (io/config.cpp's reader: replaces each value the config
// gives, checks it, and knows every key of the kind for "unknown key" errors), writes the
// resolved config (only the chosen kinds' keys), and lists a kind's keys. Adding a task or
// model kind is one declaration and one line in its registry (tasks/task.cpp,
// models/model.cpp).
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <string>
#include <vector>

#include "core/run_config.h"

namespace attnlab {

class Keys {
 public:
  virtual ~Keys() = default;
  // True while reading a config (values may change; cross-key checks and defaults that
  // depend on other keys run only then).
  virtual bool reading() const = 0;
  // The config gives this key (reading only; false otherwise).
  virtual bool has(const std::string& key) const = 0;
  virtual void integer(const std::string& key, int64_t& v, int64_t lo, int64_t hi) = 0;
  void integer(const std::string& key, int& v, int64_t lo, int64_t hi = INT32_MAX) {
    int64_t x = v;
    integer(key, x, lo, hi);
    v = int(x);
  }
  void integer(const std::string& key, int64_t& v, int64_t lo) { integer(key, v, lo, INT64_MAX); }
  virtual void number(const std::string& key, double& v, double lo, bool lo_open = false) = 0;
  virtual void boolean(const std::string& key, bool& v) = 0;
  virtual void choice(const std::string& key, std::string& v, const std::vector<std::string>& allowed) = 0;
  // An integer or a list of integers (allow_scalar), each >= lo; a list when written.
  // Reading: false if the config does not give the key.
  virtual bool ints(const std::string& key, std::vector<int>& v, int lo, bool allow_scalar = true) = 0;
  // Per-layer, per-head integers: an integer (every head of every layer), or a list with one
  // entry per layer, each an integer (every head of that layer) or a list of integers (one per
  // head); each >= lo. Reading: one inner list per entry given (false if the key is absent);
  // written with a uniform layer as an integer.
  virtual bool int_lists(const std::string& key, std::vector<std::vector<int>>& v, int lo) = 0;
  // A number or a list of numbers, each > lo (lo_open) or >= lo; a list when written.
  virtual void numbers(const std::string& key, std::vector<double>& v, double lo, bool lo_open) = 0;
  // A string (a file name, ...): any text.
  virtual void text(const std::string& key, std::string& v) = 0;
  // An alias read into another key's value, never written (e.g. task.d for task.d_in).
  virtual void alias(const std::string& key, const std::string& of, int& v, int64_t lo, int64_t hi) = 0;
  // Bad input at this key: a UserError naming the source, the key and the message.
  [[noreturn]] virtual void fail(const std::string& key, const std::string& msg) const = 0;
};

// An enum kept as one of its names.
template <class E>
void enum_choice(Keys& k, const std::string& key, E& v, std::initializer_list<std::pair<const char*, E>> names) {
  std::string name = names.begin()->first;
  std::vector<std::string> allowed;
  for (const auto& [n, e] : names) {
    allowed.push_back(n);
    if (e == v) name = n;
  }
  k.choice(key, name, allowed);
  for (const auto& [n, e] : names)
    if (name == n) v = e;
}

// One kind of task or model: its name, and the declaration of its own keys.
template <class Config>
struct KindKeys {
  std::string name;
  void (*declare)(Keys& keys, Config& cfg);
};

}  // namespace attnlab

// attnlab._attnlab: the Python binding (pybind11). Thin: every function calls the library the
// command line calls; attnlab/__init__.py turns the results into NumPy arrays, dicts and
// pandas DataFrames. Training and sweeps release the GIL; Ctrl-C stops them between steps.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "analysis/compress_summary.h"
#include "analysis/planner.h"
#include "core/blas_check.h"
#include "core/error.h"
#include "io/config.h"
#include "report/plan_validate.h"
#include "report/report.h"
#include "sweep/runner.h"
#include "sweep/store.h"
#include "train/predict.h"
#include "train/trainer.h"

namespace py = pybind11;
using namespace attnlab;

namespace {

// Ctrl-C while the GIL is released: Python's C-level handler has only set a flag. The
// training loop asks Python about it (GIL held for the call) at most every 50 ms and stops by
// throwing this; the run keeps its last checkpoint (a `train --resume` continues it).
struct Interrupted {};

class SignalCheck {
 public:
  void operator()() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(50)) return;
    last_ = now;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw Interrupted{};
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Progress to Python: `cb` (None: nothing) is called, with the GIL held, with a dict, at most
// every 0.25 s and for the last event. An exception it raises (KeyboardInterrupt included)
// stops the work as Ctrl-C does: it is restored as Python's error and Interrupted thrown.
class PyProgress {
 public:
  explicit PyProgress(py::object cb) : cb_(std::move(cb)) {}
  template <class Fill>
  void operator()(bool last, Fill fill) {
    if (cb_.is_none()) return;
    const auto now = std::chrono::steady_clock::now();
    if (!last && now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    py::gil_scoped_acquire gil;
    py::dict d;
    fill(d);
    try {
      cb_(d);
    } catch (py::error_already_set& e) {
      e.restore();
      throw Interrupted{};
    }
  }
  // py::object must be released with the GIL held.
  ~PyProgress() {
    py::gil_scoped_acquire gil;
    cb_ = py::none();
  }

 private:
  py::object cb_;
  std::chrono::steady_clock::time_point last_{};
};

void fill_sweep(py::dict& d, const SweepProgress& p) {
  d["done"] = p.done;
  d["total"] = p.total;
  d["running"] = p.running;
  d["diverged"] = p.diverged;
  d["failed"] = p.failed;
  d["elapsed_s"] = p.elapsed_s;
  d["eta_s"] = p.eta_s;
  d["best"] = p.best;
}

// train(path, text, overrides, out, scale) -> the run directory. `text` (TOML, from a dict)
// is used when `path` is empty.
std::string train(const std::string& path, const std::string& text, const std::vector<std::string>& overrides,
                  const std::string& out, const std::string& scale, py::object progress) {
  const RunConfig cfg = path.empty() ? parse_run_config(text, "config (dict)", overrides, scale)
                                     : load_run_config(path, overrides, scale);
  TrainOutput o;
  o.dir = !out.empty() ? out : "runs/" + std::filesystem::path(path).stem().string();
  o.resolved_config = resolved_toml(cfg);
  auto check = std::make_shared<SignalCheck>();
  auto prog = std::make_shared<PyProgress>(std::move(progress));
  o.on_progress = [check, prog](const Progress& p) {
    (*check)();
    (*prog)(p.step >= p.steps, [&](py::dict& d) {
      d["step"] = p.step;
      d["steps"] = p.steps;
      d["train_loss"] = p.train_loss;
      d["val_loss"] = p.val_loss;
      d["elapsed_s"] = p.elapsed_s;
      d["eta_s"] = p.step > 0 ? p.elapsed_s * double(p.steps - p.step) / double(p.step) : 0.0;
    });
  };
  try {
    py::gil_scoped_release nogil;
    const auto s = train_run(cfg, o);
    // as `attnlab train` does: paper 1's compression curve when the config asks for it
    if (wants_compression(cfg.train) && s["status"] == "completed") add_compression_curve(cfg, o.dir);
  } catch (const Interrupted&) {
    throw py::error_already_set();  // KeyboardInterrupt, raised by PyErr_CheckSignals
  }
  return o.dir;
}

py::dict sweep(const std::string& spec, const std::string& scale, int jobs, const std::string& out, const std::string& exe,
               py::object progress) {
  SweepOptions o;
  o.spec_path = spec;
  o.scale = scale;
  o.jobs = jobs;
  o.out = out;
  o.self_exe = exe;  // the runs are `attnlab train` processes (not this Python)
  auto check = std::make_shared<SignalCheck>();
  // Ctrl-C within 50 ms while runs are live: the runner stops them (they keep their
  // checkpoints) and releases them in the store, so the same call resumes them.
  o.check = [check]() { (*check)(); };
  SweepResult r;
  try {
    py::gil_scoped_release nogil;
    auto prog = std::make_shared<PyProgress>(std::move(progress));
    r = run_sweep(o, [check, prog](const SweepProgress& p) {
      (*check)();
      (*prog)(p.done == p.total, [&](py::dict& d) { fill_sweep(d, p); });
    });
  } catch (const Interrupted&) {
    throw py::error_already_set();
  }
  py::dict d;
  d["total"] = r.total;
  d["completed"] = r.completed;
  d["diverged"] = r.diverged;
  d["failed"] = r.failed;
  d["skipped"] = r.skipped;
  d["wall_s"] = r.wall_s;
  return d;
}

PlanRequest plan_request(int64_t budget, int layers, int seq_len, int memories, const std::string& profile, int d_max, int key_dim) {
  if (budget < 1) throw UserError("budget: must be >= 1 (got " + std::to_string(budget) + ")");
  PlanRequest r;
  r.budget = budget;
  r.layers = layers;
  r.seq_len = seq_len;
  r.memories = memories;
  r.profile = profile;
  r.d_max = d_max;
  r.key_dim = key_dim;
  return r;
}

// plan(...) -> the plan as `attnlab plan --json` writes it (JSON text).
std::string plan(int64_t budget, int layers, int seq_len, int memories, const std::string& profile, int d_max, int key_dim) {
  return plan_json(plan_allocation(plan_request(budget, layers, seq_len, memories, profile, d_max, key_dim))).dump();
}

// validate_plan(...) -> {"plan": the plan, "validate": the protocol's result} (JSON text).
std::string validate(int64_t budget, int layers, int seq_len, int memories, const std::string& profile, int d_max, int key_dim,
                     const std::string& config, const std::string& out, const std::vector<int64_t>& seeds,
                     const std::vector<int>& grid_heads, int baseline_dim, double tolerance, int jobs, const std::string& exe,
                     py::object progress) {
  const Plan p = plan_allocation(plan_request(budget, layers, seq_len, memories, profile, d_max, key_dim));
  ValidateOptions o;
  o.config = config;
  o.out = out;
  o.seeds = seeds;
  o.grid_heads = grid_heads;
  o.baseline_dim = baseline_dim;
  o.d_max = d_max;
  o.tolerance = tolerance;
  o.jobs = jobs;
  o.self_exe = exe;
  auto check = std::make_shared<SignalCheck>();
  o.check = [check]() { (*check)(); };
  nlohmann::ordered_json j{{"plan", plan_json(p)}};
  try {
    py::gil_scoped_release nogil;
    auto prog = std::make_shared<PyProgress>(std::move(progress));
    j["validate"] = validate_plan(p, o, [check, prog](const SweepProgress& sp) {
      (*check)();
      (*prog)(sp.done == sp.total, [&](py::dict& d) { fill_sweep(d, sp); });
    });
  } catch (const Interrupted&) {
    throw py::error_already_set();
  }
  return j.dump();
}

// The runs of a sweep store: one dict per run (its point as TOML value texts).
py::list store_runs(const std::string& dir) {
  const std::string db = (std::filesystem::path(dir) / "runs.db").string();
  if (!std::filesystem::exists(db)) throw UserError(db + ": no such result store");
  Store s(db, true);
  py::list out;
  for (const auto& r : s.runs()) {
    py::dict d;
    d["id"] = r.id;
    d["experiment"] = r.experiment;
    py::dict point;
    for (const auto& [k, v] : r.point) point[py::str(k)] = v;
    d["point"] = point;
    d["seed"] = r.seed;
    d["status"] = r.status;
    d["summary"] = r.summary;
    d["error"] = r.error;
    d["wall_s"] = r.wall_s;
    out.append(d);
  }
  return out;
}

std::string claims(const std::vector<std::string>& dirs) { return claims_json(sweep_claims(dirs)).dump(); }

// A checkpoint's model: forward on NumPy arrays, parameters as NumPy views of its arena.
class PyModel {
 public:
  PyModel(const std::string& path, const std::vector<std::string>& overrides, int batch) : p_(path, overrides, batch) {}
  std::string config() const { return resolved_toml(p_.config()); }
  bool tokens() const { return p_.tokens(); }

  py::array_t<float> forward(const py::array& x) {
    std::vector<int64_t> shape(x.shape(), x.shape() + x.ndim());
    std::vector<float> y;
    std::vector<int64_t> out_shape;
    const std::string where = "forward(x)";
    if (p_.tokens()) {
      if (x.dtype().kind() != 'i' && x.dtype().kind() != 'u')
        throw UserError(where + ": the model reads tokens: expected [N, T] of integers, got dtype " + std::string(py::str(x.dtype())));
      const auto t = py::array_t<int, py::array::c_style | py::array::forcecast>::ensure(x);
      py::gil_scoped_release nogil;
      y = p_.run(nullptr, t.data(), shape, where, &out_shape);
    } else {
      const auto f = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x);
      if (!f) throw UserError(where + ": expected an array of numbers");
      py::gil_scoped_release nogil;
      y = p_.run(f.data(), nullptr, shape, where, &out_shape);
    }
    py::array_t<float> out(out_shape);
    std::copy(y.begin(), y.end(), out.mutable_data());
    return out;
  }

  // name -> a float32 NumPy array viewing the parameter in the arena (kept alive by `self`).
  py::dict params(py::object self) {
    py::dict d;
    Arena<float>& a = p_.arena();
    for (const auto& info : a.params()) {
      std::vector<py::ssize_t> shape(info.shape.begin(), info.shape.end());
      if (shape.empty()) shape.push_back(py::ssize_t(info.size));
      d[py::str(info.name)] = py::array_t<float>(shape, a.data().data() + info.offset, self);
    }
    return d;
  }

 private:
  Predictor p_;
};

}  // namespace

PYBIND11_MODULE(_attnlab, m) {
  m.doc() = "attnlab's C++ library (see the attnlab package for the documented API)";
  // Bad input is a ValueError with the command line's one-line message.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UserError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("train", &train, py::arg("path"), py::arg("text"), py::arg("overrides"), py::arg("out"), py::arg("scale"),
        py::arg("progress") = py::none());
  m.def("sweep", &sweep, py::arg("spec"), py::arg("scale"), py::arg("jobs"), py::arg("out"), py::arg("exe"),
        py::arg("progress") = py::none());
  m.def("plan", &plan, py::arg("budget"), py::arg("layers"), py::arg("seq_len"), py::arg("memories"), py::arg("profile"),
        py::arg("d_max"), py::arg("key_dim"));
  m.def("validate_plan", &validate, py::arg("budget"), py::arg("layers"), py::arg("seq_len"), py::arg("memories"),
        py::arg("profile"), py::arg("d_max"), py::arg("key_dim"), py::arg("config"), py::arg("out"), py::arg("seeds"),
        py::arg("grid_heads"), py::arg("baseline_dim"), py::arg("tolerance"), py::arg("jobs"), py::arg("exe"),
        py::arg("progress") = py::none());
  m.def("store_runs", &store_runs, py::arg("dir"));
  m.def("claims", &claims, py::arg("dirs"));
  m.def("blas_core", &blas_core_name, "The OpenBLAS kernel in use (e.g. SkylakeX, Haswell)");
  m.def("binary", []() { return std::string(ATTNLAB_BINARY_PATH); }, "The attnlab command built with this module");
  py::class_<PyModel>(m, "Model")
      .def(py::init<const std::string&, const std::vector<std::string>&, int>(), py::arg("path"), py::arg("overrides"),
           py::arg("batch"))
      .def("forward", &PyModel::forward, py::arg("x"))
      .def("params", [](py::object self) { return self.cast<PyModel&>().params(self); })
      .def_property_readonly("config_text", &PyModel::config)
      .def_property_readonly("tokens", &PyModel::tokens);
}

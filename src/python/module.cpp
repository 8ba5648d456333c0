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
#include "core/blas_check.h"
#include "core/error.h"
#include "io/config.h"
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

// train(path, text, overrides, out, scale) -> the run directory. `text` (TOML, from a dict)
// is used when `path` is empty.
std::string train(const std::string& path, const std::string& text, const std::vector<std::string>& overrides,
                  const std::string& out, const std::string& scale) {
  const RunConfig cfg = path.empty() ? parse_run_config(text, "config (dict)", overrides, scale)
                                     : load_run_config(path, overrides, scale);
  TrainOutput o;
  o.dir = !out.empty() ? out : "runs/" + std::filesystem::path(path).stem().string();
  o.resolved_config = resolved_toml(cfg);
  auto check = std::make_shared<SignalCheck>();
  o.on_progress = [check](const Progress&) { (*check)(); };
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

py::dict sweep(const std::string& spec, const std::string& scale, int jobs, const std::string& out, const std::string& exe) {
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
    r = run_sweep(o, [check](const SweepProgress&) { (*check)(); });
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
  m.def("train", &train, py::arg("path"), py::arg("text"), py::arg("overrides"), py::arg("out"), py::arg("scale"));
  m.def("sweep", &sweep, py::arg("spec"), py::arg("scale"), py::arg("jobs"), py::arg("out"), py::arg("exe"));
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

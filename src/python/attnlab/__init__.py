"""attnlab from Python: train, sweep and read results as NumPy arrays and pandas DataFrames.

The work is done by attnlab's C++ library (the module _attnlab, the same code as the
``attnlab`` command); this file only turns its files and results into Python objects.

    import attnlab
    run = attnlab.train("experiments/sparse_memory.toml", {"train.steps": 300}, out="runs/a")
    run.metrics["val_loss"]          # NumPy array, one value per evaluation
    df = attnlab.load_sweep("sweeps/p3_e1_width")   # one row per run
    m = attnlab.Model.load("runs/a/model.safetensors"); y = m.forward(x)
    attnlab.plan(budget=384, layers=6, seq_len=128)  # heads and head dimensions per layer, with reasons
    v = attnlab.validate_plan("experiments/plan/heldout_sparse2.toml", budget=128, layers=2, seq_len=64, memories=2)
    v.attrs["validation"]["regret"]                 # the plan against a grid of uniform allocations

Long work (train, sweep, validate_plan) shows its progress: a text bar in a terminal, a line
updated in place in a notebook (progress=False: none; a callable: it gets each event's dict).

Bad input raises ValueError with the command line's one-line message.
"""
import json
import math
import os
import re
import sys
import tempfile
import tomllib


def _blas_coretype():
    """As the attnlab command does: OpenBLAS's SkylakeX kernels on a CPU with AVX-512 (Debian's
    OpenBLAS would pick slower AVX2 ones), unless ATTNLAB_BLAS_CORETYPE names one (or is
    "keep"). Only takes effect if no OpenBLAS is loaded in this process yet (import attnlab
    before numpy for that); attnlab.blas_core() tells which kernel is in use."""
    want = os.environ.get("ATTNLAB_BLAS_CORETYPE")
    if want == "keep":
        return
    try:
        with open("/proc/self/maps") as f:
            if "openblas" in f.read():
                return
        if want is None:
            with open("/proc/cpuinfo") as f:
                want = "SkylakeX" if re.search(r"^flags\s*:.*\bavx512f\b", f.read(), re.M) else None
    except OSError:
        return
    if want:
        os.environ["OPENBLAS_CORETYPE"] = want


_blas_coretype()

import numpy as np  # noqa: E402

from . import _attnlab  # noqa: E402

__all__ = ["train", "sweep", "load_sweep", "claims", "plan", "validate_plan", "ProgressBar", "Run", "Model", "blas_core"]


def blas_core():
    """The OpenBLAS kernel in use in this process (e.g. "SkylakeX")."""
    return _attnlab.blas_core()


# ---- progress ----

def _clock(s):
    if not math.isfinite(s):
        return "?"
    s = int(max(0, s) + 0.5)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _in_notebook():
    try:
        from IPython import get_ipython
        ip = get_ipython()
        return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"
    except ImportError:
        return False


class _Line:
    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


class ProgressBar:
    """The progress display of train, sweep and validate_plan: called with each progress
    event (a dict from the library: {"step", "steps", ...} for a run, {"done", "total",
    "running", ...} for a sweep). In a terminal it rewrites one line on stderr; in a notebook
    it updates one output line in place; elsewhere (a log) it writes a line at every tenth."""

    def __init__(self, label, width=24, stream=None):
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.notebook = stream is None and _in_notebook()
        self.tty = not self.notebook and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.handle, self.tenth, self.closed = None, -1, False

    def text(self, p):
        if "steps" in p:
            done, total, unit = p["step"], p["steps"], "steps"
            tail = f"loss {p['train_loss']:.4g}" + (f", val {p['val_loss']:.4g}" if p.get("val_loss") else "")
        else:
            done, total, unit = p["done"], p["total"], "runs"
            tail = f"{p['running']} running" + (f", {p['failed']} failed" if p.get("failed") else "") + \
                   (f", {p['diverged']} diverged" if p.get("diverged") else "")
        frac = done / total if total else 1.0
        fill = int(round(frac * self.width))
        return (f"{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {done}/{total} {unit}, {tail}, "
                f"{_clock(p['elapsed_s'])} elapsed, ETA {_clock(p['eta_s'])}"), frac

    def __call__(self, p):
        line, frac = self.text(p)
        if self.notebook:
            from IPython.display import display
            if self.handle is None:
                self.handle = display(_Line(line), display_id=True)
            else:
                self.handle.update(_Line(line))
        elif self.tty:
            self.stream.write("\r\033[K" + line)
            if frac >= 1.0:
                self.stream.write("\n")
            self.stream.flush()
        elif int(frac * 10) > self.tenth:
            self.tenth = int(frac * 10)
            self.stream.write(line + "\n")
            self.stream.flush()


def _progress(progress, label):
    """progress=True: a ProgressBar; False/None: nothing; a callable: itself."""
    if progress is True:
        return ProgressBar(label)
    if progress is False or progress is None:
        return None
    if not callable(progress):
        raise ValueError(f"progress: expected True, False or a callable, got {type(progress).__name__}")
    return progress


# ---- dicts to TOML (the library reads configs as TOML) ----

def _toml_value(v, where):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_toml_value(x, where) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k, where)} = {_toml_value(x, where)}" for k, x in v.items()) + "}"
    raise ValueError(f"{where}: cannot be written as TOML (a value of type {type(v).__name__})")


def _toml_key(k, where):
    if not isinstance(k, str):
        raise ValueError(f"{where}: keys must be strings (got {k!r})")
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _to_toml(d, where="config (dict)"):
    """A nested dict (the structure of a config file) as TOML text."""
    lines, tables = [], []

    def walk(table, prefix):
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict)]
        subs = [(k, v) for k, v in table.items() if isinstance(v, dict)]
        if prefix:
            tables.append(f"[{prefix}]")
        for k, v in scalars:
            (tables if prefix else lines).append(f"{_toml_key(k, where)} = {_toml_value(v, where + ': ' + k)}")
        for k, v in subs:
            walk(v, f"{prefix}.{_toml_key(k, where)}" if prefix else _toml_key(k, where))

    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a dict or a path, got {type(d).__name__}")
    walk(d, "")
    return "\n".join(lines + tables) + "\n"


def _overrides(overrides):
    if overrides is None:
        return []
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides: expected a dict of dotted keys, got {type(overrides).__name__}")
    return [f"{k}={_toml_value(v, 'overrides: ' + str(k))}" for k, v in overrides.items()]


# ---- runs ----

def _read_metrics(path):
    """metrics.jsonl as a dict of NumPy arrays, one per field (NaN where a line lacks it);
    nested fields (the per-head probes) are left out."""
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    keys = []
    for r in rows:
        keys += [k for k, v in r.items() if k not in keys and not isinstance(v, (list, dict))]
    out = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        vals = [np.nan if v is None else v for v in vals]
        out[k] = np.asarray(vals, dtype=np.int64 if k == "step" else np.float64)
    return out


class Run:
    """A run's directory: .dir, .summary (dict), .metrics (dict of NumPy arrays, one per
    metrics.jsonl field), .config (the resolved config as a dict)."""

    def __init__(self, dir):
        self.dir = str(dir)
        with open(os.path.join(self.dir, "summary.json")) as f:
            self.summary = json.load(f)
        self.metrics = _read_metrics(os.path.join(self.dir, "metrics.jsonl"))
        with open(os.path.join(self.dir, "config.toml"), "rb") as f:
            self.config = tomllib.load(f)

    def __repr__(self):
        v = self.summary.get("final_val_loss")
        return f"Run({self.dir!r}, status={self.summary.get('status')!r}, final_val_loss={v})"


def train(config, overrides=None, out=None, scale="", progress=True):
    """Trains one model, as `attnlab train`. `config`: a path to a TOML config (or experiment
    spec, with `scale`), or a dict with the same structure; `overrides`: a dict of dotted keys,
    e.g. {"model.heads": [8, 4], "train.lr": 1e-3}. `out`: the run directory (default:
    runs/<config name> for a path, a new temporary directory for a dict). Returns a Run.
    Ctrl-C stops the run between steps (KeyboardInterrupt); it keeps its last checkpoint, so
    `attnlab train DIR/config.toml --resume DIR` continues it. `progress`: True (a text bar:
    steps, loss, elapsed, ETA), False, or a callable given each event's dict ({"step",
    "steps", "train_loss", "val_loss", "elapsed_s", "eta_s"})."""
    ov = _overrides(overrides)
    cb = _progress(progress, "train")
    if isinstance(config, (str, os.PathLike)):
        path, text = os.fspath(config), ""
    else:
        path, text = "", _to_toml(config)
        if out is None:
            out = tempfile.mkdtemp(prefix="attnlab_run_")
    d = _attnlab.train(path, text, ov, "" if out is None else os.fspath(out), scale or "", cb)
    return Run(d)


def _binary():
    exe = os.environ.get("ATTNLAB_BINARY") or _attnlab.binary()
    if not os.path.exists(exe):
        from shutil import which
        exe = which("attnlab") or exe
    return exe


def sweep(spec, scale="quick", jobs=None, out=None, progress=True):
    """Runs every point of an experiment spec, as `attnlab sweep` (resumable: the same call
    continues an interrupted sweep). Returns load_sweep(out). `out` defaults to
    sweeps/<spec name>; `jobs` to one run per core. `progress`: True (a text bar: runs done,
    running, elapsed, ETA), False, or a callable given each event's dict ({"done", "total",
    "running", "diverged", "failed", "elapsed_s", "eta_s", "best"})."""
    spec = os.fspath(spec)
    if out is None:
        out = os.path.join("sweeps", os.path.splitext(os.path.basename(spec))[0])
    _attnlab.sweep(spec, scale or "", int(jobs or 0), os.fspath(out), _binary(), _progress(progress, "sweep"))
    return load_sweep(out)


def _point_value(text):
    try:
        return tomllib.loads("v = " + text)["v"]
    except tomllib.TOMLDecodeError:
        return text


def load_sweep(dir):
    """A sweep's store as a pandas DataFrame: one row per run, with its axes (one column per
    swept key), seed, status, error, wall_s and every field of its summary."""
    import pandas as pd
    rows = []
    for r in _attnlab.store_runs(os.fspath(dir)):
        row = {"id": r["id"]}
        for k, v in r["point"].items():
            row[k] = _point_value(v)
        row["seed"] = r["seed"]
        row["status"] = r["status"]
        row["error"] = r["error"] or None
        row["wall_s"] = r["wall_s"]
        if r["summary"]:
            for k, v in json.loads(r["summary"]).items():
                if not isinstance(v, (list, dict)) and k not in row:
                    row[k] = np.nan if v is None else v
        rows.append(row)
    return pd.DataFrame(rows)


def claims(dir):
    """The claims of a sweep (or of a directory of sweeps), evaluated as in the report, as a
    pandas DataFrame: one row per claim (result, experiment, claim, kind, expected, measured,
    ci_low, ci_high, verdict: holds, refuted, undecided or n/a, seeds_to_decide, finding,
    note, ...)."""
    import pandas as pd
    dirs = [os.fspath(d) for d in dir] if isinstance(dir, (list, tuple)) else [os.fspath(dir)]
    rows = json.loads(_attnlab.claims(dirs))
    for r in rows:
        r.pop("points", None)
        for k in ("ci_low", "ci_high", "seeds_to_decide"):  # an infinite value is the string "inf" or "-inf" in JSON
            if isinstance(r.get(k), str):
                r[k] = float(r[k])
    return pd.DataFrame(rows)


def plan(budget, layers, seq_len, memories=4, profile="uniform", max_head_dim=64, key_dim=0):
    """Heads and head dimensions per layer for an attention budget D = sum_l H_l d_l, as
    `attnlab plan --json` writes them: {"budget", "spent", "profile", "seq_len", "memories",
    "layers": [{"heads", "head_dim", "reason"}]}; each reason cites the measurement behind it."""
    return json.loads(_attnlab.plan(int(budget), int(layers), int(seq_len), int(memories), str(profile), int(max_head_dim),
                                    int(key_dim)))


def validate_plan(config, budget, layers, seq_len, memories=4, profile="uniform", max_head_dim=64, key_dim=0,
                  seeds=range(1, 9), grid_heads=None, baseline_head_dim=64, tolerance=0.01, jobs=None, out=None,
                  progress=True):
    """`attnlab plan --validate CONFIG`: trains the plan, the conventional allocation of the
    budget it spends and a grid of uniform allocations of the whole budget over `seeds` (at
    least 8), as a resumable sweep in `out` (default runs/plan_validate). Returns a pandas
    DataFrame, one row per arm (role: plan, baseline, grid; heads, head_dim, spent,
    params_attention, train_flops, runs, mean of the metric, rel_to_plan); df.attrs["plan"] is
    the plan (as plan() gives it), df.attrs["validation"] the whole result ("improvement" over
    the baseline and "regret" against the grid's best, each {"measured", "ci_low", "ci_high",
    "verdict"}; "useful"; "protocol")."""
    import pandas as pd
    out = os.fspath(out) if out is not None else os.path.join("runs", "plan_validate")
    r = json.loads(_attnlab.validate_plan(
        int(budget), int(layers), int(seq_len), int(memories), str(profile), int(max_head_dim), int(key_dim),
        os.fspath(config), out, [int(s) for s in seeds], [int(h) for h in (grid_heads or [])], int(baseline_head_dim),
        float(tolerance), int(jobs or 0), _binary(), _progress(progress, "validate_plan")))
    v = r["validate"]
    rows = []
    for a in v["arms"]:
        mean = np.nan if a["mean"] is None else a["mean"]
        rows.append({"arm": " = ".join(a["names"]),
                     "role": "plan" if "plan" in a["names"] else "baseline" if "baseline" in a["names"] else "grid",
                     "grid_best": a["names"] == v.get("grid_best"), "heads": a["heads"], "head_dim": a["head_dim"],
                     "spent": a["spent"], "params_attention": a["params_attention"], "train_flops": a["train_flops"],
                     "runs": a["runs"], v["metric"]: mean, "rel_to_plan": mean / v["plan"] - 1 if v["plan"] else np.nan})
    df = pd.DataFrame(rows)
    df.attrs["plan"] = r["plan"]
    df.attrs["validation"] = v
    return df


class Model:
    """A trained model from a checkpoint (DIR/model.safetensors or a training checkpoint):
    .forward(x) on a NumPy array ([N, T, d_in] floats, or [N, T] integer tokens) returns
    NumPy ([N, T, out], or [N, out] for one output per sequence); .params is a dict of
    float32 NumPy arrays viewing the parameters (writing to them changes the model);
    .config the resolved config as a dict."""

    def __init__(self, core):
        self._core = core
        self.config = tomllib.loads(core.config_text)
        self.params = core.params()

    @classmethod
    def load(cls, path, overrides=None, batch=64):
        return cls(_attnlab.Model(os.fspath(path), _overrides(overrides), int(batch)))

    def forward(self, x):
        return self._core.forward(np.asarray(x))

    def __repr__(self):
        m = self.config.get("model", {})
        return f"Model(kind={m.get('kind')!r}, params={sum(p.size for p in self.params.values())})"

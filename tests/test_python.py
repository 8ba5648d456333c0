"""The Python module (build/python/attnlab) against the command line and NumPy.

    PYTHONPATH=build/python /usr/bin/python3 tests/test_python.py ATTNLAB_BINARY SOURCE_DIR WORK_DIR

Checks: train from a dict equals `attnlab train` on the same TOML (identical metrics);
Model.load(...).forward reproduces the run's validation loss computed in NumPy; parameters
are views; load_sweep has one row per run and claims one per claim; bad input raises
ValueError with the command line's message; Ctrl-C stops a run, or a sweep, that then
resumes; a data file rewritten in one session is read anew.
"""
import os
import sys

# Both sides use the inherited OpenBLAS kernel (the command line's own choice is checked at
# start-up and may fall back; the module cannot re-execute Python): identical kernels, so
# identical numbers. Set before attnlab (and NumPy) load OpenBLAS.
os.environ["ATTNLAB_BLAS_CORETYPE"] = "keep"

BINARY, SRC, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]

import attnlab  # noqa: E402  (before numpy: see above)
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402
import unittest  # noqa: E402

import numpy as np  # noqa: E402

os.environ["ATTNLAB_BINARY"] = BINARY
TIMING = {"wall_s", "train_s", "tokens_per_s", "ms_per_step"}


def cli(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True)


def metrics_lines(d):
    out = []
    with open(os.path.join(d, "metrics.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            j.pop("wall_s", None)
            out.append(j)
    return out


def summary(d):
    with open(os.path.join(d, "summary.json")) as f:
        return {k: v for k, v in json.load(f).items() if k not in TIMING}


class TrainFromPython(unittest.TestCase):
    def setUp(self):
        self.d = os.path.join(WORK, self.id().split(".")[-1])
        shutil.rmtree(self.d, ignore_errors=True)
        os.makedirs(self.d)

    def test_train_from_a_dict_equals_the_command_line(self):
        toml_path = os.path.join(SRC, "experiments", "sparse_memory.toml")
        with open(toml_path, "rb") as f:
            cfg = tomllib.load(f)
        ov = {"train.steps": 200, "train.eval_every": 50, "train.threads": 1, "task.n_train": 512}
        run = attnlab.train(cfg, ov, out=os.path.join(self.d, "py"))
        r = cli("train", toml_path, "train.steps=200", "train.eval_every=50", "train.threads=1", "task.n_train=512",
                "--out", os.path.join(self.d, "cli"))
        self.assertEqual(r.returncode, 0, r.stderr)
        want = metrics_lines(os.path.join(self.d, "cli"))
        self.assertEqual(len(want), 4)
        self.assertEqual(metrics_lines(run.dir), want)  # identical, not close
        self.assertEqual(summary(run.dir), summary(os.path.join(self.d, "cli")))
        with open(os.path.join(self.d, "cli", "config.toml"), "rb") as f:
            self.assertEqual(run.config, tomllib.load(f))
        # the Run object: metrics as arrays, one per field
        self.assertEqual(run.metrics["step"].tolist(), [50, 100, 150, 200])
        np.testing.assert_array_equal(run.metrics["val_loss"], [m["val_loss"] for m in want])
        self.assertEqual(run.summary["status"], "completed")
        self.assertEqual(run.config["train"]["steps"], 200)

    def test_model_forward_gives_the_reported_validation_loss(self):
        # the user's own arrays (task npy): y_t = x_{t-2} . w, per position
        rng = np.random.default_rng(0)
        w = rng.standard_normal(3).astype(np.float32)

        def data(n):
            x = rng.standard_normal((n, 16, 3)).astype(np.float32)
            y = np.zeros((n, 16, 1), np.float32)
            y[:, 2:, 0] = x[:, :-2] @ w
            return x, y
        (x, y), (vx, vy) = data(256), data(48)
        for name, a in {"x": x, "y": y, "vx": vx, "vy": vy}.items():
            np.save(os.path.join(self.d, name + ".npy"), a)
        cfg = {"seed": 3,
               "task": {"kind": "npy", "inputs": os.path.join(self.d, "x.npy"), "targets": os.path.join(self.d, "y.npy"),
                        "val_inputs": os.path.join(self.d, "vx.npy"), "val_targets": os.path.join(self.d, "vy.npy")},
               "model": {"kind": "transformer", "d_model": 16, "layers": 1, "heads": 2, "head_dim": 8, "ffn": 32,
                         "rpe": "t5", "pos": "none"},
               "train": {"steps": 150, "batch": 32, "lr": 3e-3, "eval_every": 50, "threads": 1}}
        run = attnlab.train(cfg, out=os.path.join(self.d, "run"))
        m = attnlab.Model.load(os.path.join(run.dir, "model.safetensors"))
        yhat = m.forward(vx)
        self.assertEqual(yhat.shape, (48, 16, 1))
        mse = float(np.mean((yhat.astype(np.float64) - vy) ** 2))
        self.assertAlmostEqual(mse / run.summary["final_val_loss"], 1.0, delta=1e-5)
        print(f"\n  forward on the validation arrays: MSE {mse:.9g} (NumPy) against final_val_loss "
              f"{run.summary['final_val_loss']:.9g} (the run), ratio - 1 = {mse / run.summary['final_val_loss'] - 1:.1e}")
        self.assertEqual(m.config["model"]["d_model"], 16)
        # parameters are views of the model: writing one changes its outputs
        p = m.params["embed.weight"]
        self.assertEqual(p.dtype, np.float32)
        saved = p.copy()
        p *= 0
        self.assertFalse(np.allclose(m.forward(vx[:4]), yhat[:4]))
        p[...] = saved
        np.testing.assert_allclose(m.forward(vx[:4]), yhat[:4], rtol=1e-5, atol=1e-6)  # another batch: other GEMM blocking
        # another length than the trained one (no learned positions): runs
        self.assertEqual(m.forward(vx[:, :9]).shape, (48, 9, 1))
        with self.assertRaises(ValueError) as e:
            m.forward(vx[:, :, :2])
        self.assertEqual(str(e.exception), "forward(x): the model reads [N, T, 3] real inputs, the array has rank 3 with d_in 2")

    def test_token_model_forward_gives_the_reported_cross_entropy(self):
        # integer tokens in and out (task npy): the next token is the one two back, plus one
        rng = np.random.default_rng(1)

        def data(n):
            x = rng.integers(0, 8, size=(n, 12)).astype(np.int64)
            y = np.zeros_like(x)
            y[:, 2:] = (x[:, :-2] + 1) % 8
            return x, y
        (x, y), (vx, vy) = data(256), data(40)
        for name, a in {"x": x, "y": y, "vx": vx, "vy": vy}.items():
            np.save(os.path.join(self.d, name + ".npy"), a)
        cfg = {"task": {"kind": "npy", "inputs": os.path.join(self.d, "x.npy"), "targets": os.path.join(self.d, "y.npy"),
                        "val_inputs": os.path.join(self.d, "vx.npy"), "val_targets": os.path.join(self.d, "vy.npy")},
               "model": {"kind": "transformer", "d_model": 16, "layers": 1, "heads": 2, "head_dim": 8, "ffn": 32, "rpe": "t5"},
               "train": {"steps": 100, "batch": 32, "lr": 3e-3, "eval_every": 50, "threads": 1, "loss": "ce"}}
        run = attnlab.train(cfg, out=os.path.join(self.d, "run"))
        m = attnlab.Model.load(os.path.join(run.dir, "model.safetensors"))
        self.assertTrue(m.config["model"]["vocab"] >= 8)
        logits = m.forward(vx).astype(np.float64)
        self.assertEqual(logits.shape, (40, 12, m.config["model"]["vocab"]))
        z = logits - logits.max(axis=2, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
        ce = float(-np.take_along_axis(logp, vy[:, :, None], axis=2).mean())
        self.assertAlmostEqual(ce / run.summary["final_val_loss"], 1.0, delta=1e-5)
        print(f"\n  token model: cross-entropy {ce:.9g} (NumPy) against final_val_loss {run.summary['final_val_loss']:.9g}")
        with self.assertRaises(ValueError) as e:
            m.forward(vx.astype(np.float32))
        self.assertEqual(str(e.exception), "forward(x): the model reads tokens: expected [N, T] of integers, got dtype float32")
        with self.assertRaises(ValueError) as e:
            m.forward(vx + 100)
        self.assertIn("is outside the model's vocabulary", str(e.exception))

    def test_a_rewritten_data_file_is_read_anew_in_the_same_session(self):
        # issue 23: files were cached by path for the life of the process, so the second
        # train (targets scaled 100x, same shape) trained on the old targets
        rng = np.random.default_rng(2)
        x = rng.standard_normal((64, 8, 2)).astype(np.float32)
        y = rng.standard_normal((64, 1)).astype(np.float32)
        cfg = {"task": {"kind": "npy", "inputs": os.path.join(self.d, "x.npy"), "targets": os.path.join(self.d, "y.npy")},
               "model": {"kind": "transformer", "d_model": 8, "layers": 1, "heads": 1, "head_dim": 8, "ffn": 8},
               "train": {"steps": 2, "batch": 8, "eval_every": 1, "threads": 1}}
        np.save(os.path.join(self.d, "x.npy"), x)
        np.save(os.path.join(self.d, "y.npy"), y)
        first = attnlab.train(cfg, out=os.path.join(self.d, "a")).summary["val_target_var"]
        time.sleep(0.05)  # (file times advance in ticks of a few ms)
        np.save(os.path.join(self.d, "y.npy"), 100 * y)
        second = attnlab.train(cfg, out=os.path.join(self.d, "b")).summary["val_target_var"]
        self.assertAlmostEqual(second / first, 1e4, delta=1e-2)
        self.assertAlmostEqual(first, float(y[-13:].astype(np.float64).var()), delta=1e-5 * first)  # the last 20% (13 rows) validate

    def test_ctrl_c_stops_a_sweep_whose_runs_then_resume(self):
        # issue 23: Ctrl-C was seen only when a run started or ended, the terminal's SIGINT
        # failed the live runs, and a second call skipped runs still owned by this interpreter
        spec = os.path.join(self.d, "ctrl_c.toml")
        with open(os.path.join(SRC, "tests", "data", "tiny_sweep.toml")) as f:
            base = f.read()
        text = base[:base.index("[sweep]")].replace('name = "tiny_sweep"', 'name = "ctrl_c"')
        text = text.replace("steps = 600", "steps = 10000").replace("eval_every = 100", "eval_every = 50")
        with open(spec, "w") as f:
            f.write(text + "[sweep]\nseeds = [1, 2, 3, 4]\n")
        out = os.path.join(self.d, "sweep")
        code = ("import attnlab, json, sys, time\n"
                "try:\n"
                f"    attnlab.sweep({spec!r}, scale=None, jobs=2, out={out!r})\n"
                "    print('finished', flush=True)\n"
                "except KeyboardInterrupt:\n"
                "    print('interrupted %.6f' % time.monotonic(), flush=True)\n"
                f"print(json.dumps(sorted(attnlab.load_sweep({out!r})['status'].tolist())), flush=True)\n"
                f"df = attnlab.sweep({spec!r}, scale=None, jobs=2, out={out!r})\n"
                "print(json.dumps(sorted(df['status'].tolist())), flush=True)\n")
        # its own session, so that SIGINT to its process group is what a terminal's Ctrl-C sends
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True,
                             env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(attnlab.__file__))))
        runs = os.path.join(out, "runs")
        for _ in range(1200):
            if os.path.isdir(runs) and any(os.path.exists(os.path.join(runs, r, "checkpoint.safetensors"))
                                           for r in os.listdir(runs)):
                break
            time.sleep(0.05)
        sent = time.monotonic()
        os.killpg(p.pid, signal.SIGINT)
        first = p.stdout.readline().split()
        self.assertEqual(first[0], "interrupted", p.stderr.read() if first[0] != "interrupted" else "")
        delay = float(first[1]) - sent
        after = json.loads(p.stdout.readline())
        final = json.loads(p.stdout.readline())
        p.wait(timeout=300)
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(p.returncode, 0, err)
        self.assertLess(delay, 1.0)
        self.assertNotIn("failed", after)  # the stopped runs are not failures...
        self.assertIn("running", after)    # ...but runs to resume
        self.assertEqual(final, ["completed"] * 4)
        resumed = 0
        for r in os.listdir(runs):
            with open(os.path.join(runs, r, "log.txt")) as f:
                resumed += "resuming " in f.read()
        self.assertGreaterEqual(resumed, 1)
        print(f"\n  Ctrl-C: KeyboardInterrupt {delay:.3f} s after SIGINT; statuses then {after}; "
              f"{resumed} run(s) resumed from their checkpoints")

    def test_load_sweep_and_claims(self):
        spec = os.path.join(SRC, "tests", "data", "tiny_sweep.toml")
        out = os.path.join(self.d, "sweep")
        events = []
        df = attnlab.sweep(spec, scale="quick", jobs=2, out=out, progress=events.append)
        listed = cli("sweep", spec, "--scale", "quick", "--list").stdout.split()
        # progress: runs done never fall, and the last event has them all done
        self.assertTrue(events)
        self.assertEqual([e["done"] for e in events], sorted(e["done"] for e in events))
        self.assertEqual((events[-1]["done"], events[-1]["total"]), (len(listed), len(listed)))
        self.assertEqual(len(df), len(listed))  # one row per run
        self.assertEqual(sorted(df["id"]), sorted(listed))
        self.assertTrue((df["status"] == "completed").all())
        for col in ["model.heads", "model.head_dim", "model.rpe", "seed", "min_val_loss", "final_val_loss", "params_total"]:
            self.assertIn(col, df.columns)
        self.assertEqual(sorted(df["model.heads"].unique().tolist()), [1, 2, 4])
        self.assertEqual(sorted(df["model.rpe"].unique().tolist()), ["none", "t5"])
        # each row's summary fields are the run's summary.json
        again = attnlab.load_sweep(out)
        self.assertEqual(len(again), len(df))
        c = attnlab.claims(out)
        self.assertEqual(len(c), 1)
        r = cli("report", out, "-o", os.path.join(self.d, "report"))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.d, "report", "claims.json")) as f:
            want = json.load(f)[0]
        self.assertEqual(c.loc[0, "verdict"], want["verdict"])
        self.assertEqual(c.loc[0, "measured"], want["measured"])

    def test_bad_input_is_a_value_error_with_the_command_lines_message(self):
        toml_path = os.path.join(SRC, "experiments", "sparse_memory.toml")
        r = cli("train", toml_path, "train.hedas=1", "--out", os.path.join(self.d, "x"))
        self.assertEqual(r.returncode, 2)
        line = r.stderr.strip().splitlines()[-1]
        self.assertTrue(line.startswith("attnlab: error: "), line)
        with self.assertRaises(ValueError) as e:
            attnlab.train(toml_path, {"train.hedas": 1}, out=os.path.join(self.d, "x"))
        self.assertEqual(str(e.exception), line[len("attnlab: error: "):])
        with self.assertRaises(ValueError) as e:
            attnlab.train({"task": {"kind": "sparse_memory"}, "train": {"hedas": 1}}, out=os.path.join(self.d, "y"))
        self.assertTrue(str(e.exception).startswith("config (dict): train.hedas: unknown key (allowed in [train]: steps, batch,"),
                        str(e.exception))
        self.assertFalse(os.path.exists(os.path.join(self.d, "x")))
        with self.assertRaises(ValueError) as e:
            attnlab.Model.load(os.path.join(self.d, "nope.safetensors"))
        self.assertIn("nope.safetensors", str(e.exception))
        with self.assertRaises(ValueError) as e:
            attnlab.load_sweep(os.path.join(self.d, "nowhere"))
        self.assertEqual(str(e.exception), os.path.join(self.d, "nowhere", "runs.db") + ": no such result store")

    def test_ctrl_c_stops_a_run_that_then_resumes(self):
        out = os.path.join(self.d, "run")
        code = ("import attnlab, sys\n"
                f"attnlab.train({os.path.join(SRC, 'experiments', 'sparse_memory.toml')!r}, "
                "{'train.steps': 100000, 'train.eval_every': 20, 'train.threads': 1}, out=%r)\n" % out)
        p = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(attnlab.__file__))))
        ckpt = os.path.join(out, "checkpoint.safetensors")
        for _ in range(600):
            if os.path.exists(ckpt):
                break
            time.sleep(0.05)
        self.assertTrue(os.path.exists(ckpt), "no checkpoint written")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("KeyboardInterrupt", err)
        self.assertTrue(os.path.exists(ckpt))
        self.assertFalse(os.path.exists(os.path.join(out, "summary.json")))
        # the command line continues it from the checkpoint (stopped once it says so)
        q = subprocess.Popen([BINARY, "train", os.path.join(out, "config.toml"), "--resume", out],
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        first = q.stderr.readline()
        q.kill()
        q.wait()
        q.stderr.close()
        self.assertTrue(first.startswith(f"resuming {out} from step "), first)


class PlanFromPython(unittest.TestCase):
    """A notebook's session: plan, validate the plan, read the comparison as a DataFrame, with
    the progress shown (the text bar, captured here) and reported to a callback."""

    def setUp(self):
        self.d = os.path.join(WORK, self.id().split(".")[-1])
        shutil.rmtree(self.d, ignore_errors=True)
        os.makedirs(self.d)
        self.config = os.path.join(self.d, "c.toml")
        with open(self.config, "w") as f:
            f.write('seed = 1\n[task]\nkind = "ngram_noise"\nseq_len = 16\nn_gram = 2\nd_in = 2\nn_train = 0\nn_val = 32\n'
                    '[model]\nd_model = 16\nffn = 16\n[train]\nsteps = 5\nbatch = 8\neval_every = 5\nthreads = 1\n')

    def test_plan_is_the_command_lines_json(self):
        for T in (32, 128):
            p = attnlab.plan(384, 6, T, memories=4)
            r = cli("plan", "--budget", "384", "--layers", "6", "--seq-len", str(T), "--json", os.path.join(self.d, "p.json"))
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(self.d, "p.json")) as f:
                self.assertEqual(p, json.load(f))
        # the sequence length moves the head dimension (d*(32) = 8, d*(128) = 16)
        self.assertEqual([l["head_dim"] for l in attnlab.plan(384, 6, 32)["layers"]], [8] * 6)
        self.assertEqual([l["head_dim"] for l in attnlab.plan(384, 6, 128)["layers"]], [16] * 6)
        self.assertIn("p1_e1", attnlab.plan(384, 6, 32)["layers"][0]["reason"])
        with self.assertRaises(ValueError) as e:
            attnlab.plan(384, 6, 32, profile="back")
        self.assertEqual(str(e.exception), "--profile: 'back' is not allowed (front, uniform)")

    def test_validate_plan_as_a_dataframe_with_progress(self):
        import io
        out = os.path.join(self.d, "v")
        events, shown = [], io.StringIO()
        bar = attnlab.ProgressBar("validate_plan", stream=shown)

        def both(e):
            events.append(e)
            bar(e)
        df = attnlab.validate_plan(self.config, budget=48, layers=2, seq_len=16, memories=2, out=out, jobs=2, progress=both)
        v = df.attrs["validation"]
        self.assertEqual(df["role"].tolist(), ["plan", "baseline", "grid", "grid", "grid"])
        self.assertEqual(df.loc[0, "heads"], "[2, 2]")
        self.assertEqual(df.loc[1, "head_dim"], "[8, 8]")
        self.assertEqual(int(df["grid_best"].sum()), 1)
        self.assertTrue((df["runs"] == 8).all())
        # the arms' means are the store's runs' own (load_sweep of the same directory)
        runs = attnlab.load_sweep(out)
        self.assertEqual(len(runs), 40)
        for _, row in df.iterrows():
            sel = runs[runs["model.heads"].astype(str).str.replace(" ", "") == row["heads"].replace(" ", "")]
            sel = sel[sel["model.head_dim"].astype(str).str.replace(" ", "") == row["head_dim"].replace(" ", "")]
            self.assertEqual(len(sel), 8)
            self.assertAlmostEqual(row["final_val_loss"], sel["final_val_loss"].mean(), places=12)
        best = df[df["grid_best"]]["final_val_loss"].iloc[0]
        self.assertAlmostEqual(v["regret"]["measured"], df.loc[0, "final_val_loss"] / best - 1, places=12)
        self.assertEqual(v["useful"], v["regret"]["ci_high"] <= 0.01)
        # progress: one event at least, runs done never fall, the last has all 40 done; the bar shows it
        self.assertEqual([e["done"] for e in events], sorted(e["done"] for e in events))
        self.assertEqual((events[-1]["done"], events[-1]["total"]), (40, 40))
        self.assertIn("validate_plan [########################] 40/40 runs", shown.getvalue())
        print("\n" + df[["arm", "heads", "head_dim", "spent", "final_val_loss", "rel_to_plan"]].to_string())
        print(f"  regret {v['regret']}; {len(events)} progress events; bar: {shown.getvalue().splitlines()[-1]}")
        with self.assertRaises(ValueError) as e:
            attnlab.validate_plan(self.config, 48, 2, 16, memories=2, seeds=[1, 2, 3], out=out, progress=False)
        self.assertTrue(str(e.exception).startswith("--seeds: the validation protocol needs at least 8 distinct seeds (got 3)"))

    def test_progress_bar_in_a_notebook_updates_one_output_line(self):
        # A stand-in for IPython in a Jupyter kernel (IPython is not installed here): the bar
        # displays one line, then updates that same display in place.
        import types
        shown = []

        class ZMQInteractiveShell:
            pass

        class Handle:
            def update(self, obj):
                shown.append(("update", repr(obj)))

        def display(obj, display_id=False):
            shown.append(("display", repr(obj)))
            return Handle()
        ipython = types.ModuleType("IPython")
        ipython.get_ipython = lambda: ZMQInteractiveShell()
        ipython.display = types.ModuleType("IPython.display")
        ipython.display.display = display
        saved = {k: sys.modules.get(k) for k in ("IPython", "IPython.display")}
        sys.modules["IPython"], sys.modules["IPython.display"] = ipython, ipython.display
        try:
            bar = attnlab.ProgressBar("train")
            for step in (1, 20, 40):
                bar({"step": step, "steps": 40, "train_loss": 0.5, "val_loss": 0.0, "elapsed_s": step / 10, "eta_s": 1.0})
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
        self.assertEqual([kind for kind, _ in shown], ["display", "update", "update"])
        self.assertEqual(shown[-1][1], "train [########################] 40/40 steps, loss 0.5, 4s elapsed, ETA 1s")

    def test_train_reports_progress(self):
        events = []
        run = attnlab.train(self.config, {"train.steps": 40}, out=os.path.join(self.d, "t"), progress=events.append)
        self.assertEqual(run.summary["status"], "completed")
        steps = [e["step"] for e in events]
        self.assertEqual(steps, sorted(steps))
        self.assertEqual((events[-1]["step"], events[-1]["steps"]), (40, 40))
        self.assertTrue(all(e["elapsed_s"] >= 0 for e in events))


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    unittest.main(verbosity=2)

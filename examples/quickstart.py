"""attnlab from Python in a minute: two runs that differ in one key, their validation curves
in a PNG, and the table of a small sweep.

    bash scripts/build.sh      # builds build/python/attnlab too
    PYTHONPATH=build/python /usr/bin/python3 examples/quickstart.py [OUT_DIR]
"""
import os
import sys

import attnlab  # before numpy: attnlab picks the fastest OpenBLAS kernel while it still can

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
out = sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart"
os.makedirs(out, exist_ok=True)

# 1. The example config, with and without relative positions (T5 buckets): one key differs.
config = os.path.join(root, "experiments", "sparse_memory.toml")
common = {"train.steps": 600, "train.eval_every": 25, "train.warmup": 50}
runs = {rpe: attnlab.train(config, {**common, "model.rpe": rpe}, out=os.path.join(out, "rpe_" + rpe))
        for rpe in ["none", "t5"]}
for rpe, run in runs.items():
    print(f"model.rpe = {rpe:4s}: final val_loss {run.summary['final_val_loss']:.4f} "
          f"({100 * run.summary['final_val_rel']:.1f}% of the target variance), {run.summary['wall_s']:.1f} s")

# 2. Their validation curves, from metrics.jsonl as NumPy arrays.
fig, ax = plt.subplots(figsize=(6, 4))
for rpe, run in runs.items():
    ax.plot(run.metrics["step"], run.metrics["val_loss"], label=f"model.rpe = {rpe}")
ax.set_xlabel("step")
ax.set_ylabel("validation MSE")
ax.set_yscale("log")
ax.set_title("sparse_memory: lags 1, 8, 32")
ax.legend()
fig.tight_layout()
png = os.path.join(out, "val_curves.png")
fig.savefig(png, dpi=120)
print("wrote", png)

# 3. A small sweep as a pandas DataFrame (one row per run), and its claims.
df = attnlab.sweep(os.path.join(here, "small_sweep.toml"), scale="quick", out=os.path.join(out, "small_sweep"))
cols = ["model.heads", "model.head_dim", "model.rpe", "seed", "status", "min_val_loss", "params_total"]
print(df[cols].sort_values(["model.rpe", "model.heads"]).to_string(index=False))
print(attnlab.claims(os.path.join(out, "small_sweep"))[["claim", "measured", "verdict"]].to_string(index=False))

#!/usr/bin/python3
"""Paper-3 training-step speed, attnlab beside PyTorch, in one run on this machine.

  tools/p3_speed.py [--bench build/attnlab_bench] [--threads 2] [--reps 3]

attnlab: the Google Benchmark cases of bench/bench_p3.cpp (one full-batch MSE step: forward +
backward through forward_backward_mse, the path `attnlab train` takes), median of --reps.
PyTorch: tools/torch_p3.py speed (the authors' formulation: all heads in batched matmuls, the
IndRNN a Python loop over t; zero grads, forward, MSE, backward, SGD update), each shape run
--reps times as separate processes, the median of their medians; also the literal einsum
form the authors wrote (--impl einsum). Prints a Markdown table.
"""
import argparse, json, os, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
# name, attnlab benchmark, torch_p3.py arguments
CASES = [
    ("E1 shallow attention (n 4000, d 8, T 16, m 256)", "BM_P3_ShallowE1",
     ["shallow", "--n", "4000", "--d", "8", "--T", "16", "--m", "256"]),
    ("E4 shallow attention (n 4000, d 17, T 97, m 64)", "BM_P3_ShallowE4_L96",
     ["shallow", "--n", "4000", "--d", "17", "--T", "97", "--m", "64"]),
    ("E4 shallow attention, shared time channels", "BM_P3_ShallowE4_L96_Shared",
     ["shallow", "--n", "4000", "--d", "17", "--T", "97", "--m", "64"]),
    ("E4 IndRNN (n 4000, d 17, L 96, m 64)", "BM_P3_IndRnnE4_L96",
     ["indrnn", "--n", "4000", "--d", "17", "--L", "96", "--m", "64"]),
    ("E4 IndRNN, shared time channels", "BM_P3_IndRnnE4_L96_Shared",
     ["indrnn", "--n", "4000", "--d", "17", "--L", "96", "--m", "64"]),
]


def attnlab_ms(bench, threads, reps):
    out = subprocess.run([bench, "--benchmark_filter=P3", f"--benchmark_repetitions={reps}",
                          "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True).stdout
    ms = {}
    for b in json.loads(out)["benchmarks"]:
        name = b["name"]
        if b.get("aggregate_name") == "median" and f"/{threads}/" in name:
            ms[name.split("/")[0]] = b["real_time"]  # Unit(kMillisecond)
    return ms


def torch_ms(args, threads, reps, impl):
    runs = []
    for _ in range(reps):
        cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_p3.py"), "speed"] + args + ["--threads", str(threads)]
        if args[0] == "shallow":
            cmd += ["--impl", impl]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out)["ms_per_step"])
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(HERE, "..", "build", "attnlab_bench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    if not os.access(a.bench, os.X_OK):
        print(f"error: {a.bench}: not an executable (build first: scripts/setup.sh, cmake --build build)", file=sys.stderr)
        return 2
    ours = attnlab_ms(a.bench, a.threads, a.reps)
    print(f"| step ({a.threads} threads) | attnlab | PyTorch, batched matmuls | ratio | PyTorch, einsum as the authors | ratio |")
    print("|---|---|---|---|---|---|")
    for name, bm, args in CASES:
        t = torch_ms(args, a.threads, a.reps, "mm")
        e = torch_ms(args, a.threads, a.reps, "einsum") if args[0] == "shallow" else None
        o = ours[bm]
        print(f"| {name} | {o:.1f} ms | {t:.1f} ms | {t / o:.1f}x | " +
              (f"{e:.1f} ms | {e / o:.1f}x |" if e else "(a loop over t) | |"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

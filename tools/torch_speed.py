#!/usr/bin/python3
"""Training speed of attnlab's model in PyTorch, for comparison with `attnlab train`.

  torch_speed.py RUN_DIR [--steps 50] [--threads 2]

Reads RUN_DIR/model.safetensors (the weights and the resolved config of an attnlab run),
builds the same model with tools/torch_reference.py's independent implementation (the
weights are loaded, so the initialization is the same), and times AdamW training steps on
random data of the run's batch and sequence length. Prints one JSON object: tokens_per_s,
ms_per_step. glibc is told not to mmap or trim (MALLOC_MMAP_MAX_=0,
MALLOC_TRIM_THRESHOLD_=68719476736), which makes PyTorch 2-5x faster on this machine: a
fair comparison; the script re-executes itself once to set them.
"""
import argparse, json, os, sys, time, tomllib

if os.environ.get("MALLOC_MMAP_MAX_") != "0":
    os.environ["MALLOC_MMAP_MAX_"] = "0"
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "68719476736"
    os.execv(sys.executable, [sys.executable] + sys.argv)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch_reference as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        params, meta, _ = ref.read_safetensors(os.path.join(a.run_dir, "model.safetensors"))
        doc = tomllib.loads(meta["config"])
        c = ref.resolve_config(meta["config"])
    except (ref.BadInput, KeyError) as e:
        print(f"torch_speed: error: {a.run_dir}: {e}", file=sys.stderr)
        sys.exit(2)
    B, T = doc["train"]["batch"], doc["task"]["seq_len"]
    P = {n: torch.tensor(v, requires_grad=True) for n, v in params.items()}
    opt = torch.optim.AdamW(P.values(), lr=doc["train"]["lr"], weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    if c["vocab"] > 0:
        x = torch.randint(0, c["vocab"], (B, T), generator=g)
        y = torch.randint(0, c["vocab"], (B, T), generator=g)
        kind = "ce"
    else:
        x = torch.randn(B, T, c["d_in"], generator=g)
        y = torch.randn(B, T, c["d_out"], generator=g)
        kind = "mse"
    mask = torch.ones(B, T)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = ref.loss_fn(kind, ref.forward(c, P, x), y, mask)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"tokens_per_s": B * T / dt, "ms_per_step": 1000 * dt, "threads": a.threads,
                      "batch": B, "seq_len": T, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

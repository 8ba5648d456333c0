#!/usr/bin/python3
"""Straightforward PyTorch implementations of the paper-3 models, for parity and speed.

  torch_p3.py speed shallow  [--n 4000 --d 8 --T 16 --m 256]   one full-batch GD step (ms)
  torch_p3.py speed indrnn   [--n 4000 --L 96 --m 64]          one full-batch GD step (ms)
  torch_p3.py check DIR [--rtol 1e-5]   parity with attnlab's dump (double precision)

The models follow docs/model.md ("Paper-3 models"): f(X) = (1/sqrt m) sum_i c_i sigma(U_i^T X softmax(X^T W_i x_T))
and the IndRNN / Elman RNN h_t = sigma(W_in x_t + u * h_{t-1} | W_hh h_{t-1}), f = (1/sqrt m) c^T h_T.
glibc is told not to mmap or trim (the script re-executes itself once), as for every PyTorch
timing in attnlab.
"""
import argparse, json, math, os, sys, time

if os.environ.get("MALLOC_MMAP_MAX_") != "0":
    os.environ["MALLOC_MMAP_MAX_"] = "0"
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "68719476736"
    os.execv(sys.executable, [sys.executable] + sys.argv)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402


def sigma(z, kind):
    return torch.tanh(z) if kind == "tanh" else torch.erf(z / math.sqrt(2.0))


def shallow(P, X, act="tanh", scale=1.0):
    """X [n, T, d]; W [m, d, d], U [m, d], c [m] -> f [n]."""
    W, U, c = P["W"], P["U"], P["c"]
    xT = X[:, -1, :]                                   # [n, d]
    q = torch.einsum("ikj,nj->nik", W, xT)             # q_i = W_i x_T     [n, m, d]
    s = scale * torch.einsum("ntk,nik->nit", X, q)     # x_t . q_i         [n, m, T]
    p = torch.softmax(s, dim=-1)
    a = torch.einsum("nit,ntk->nik", p, X)             # a_i = X p_i       [n, m, d]
    h = sigma((a * U.unsqueeze(0)).sum(-1), act)       # [n, m]
    return (h * c).sum(-1) / math.sqrt(W.shape[0])


def rnn(P, X, act="tanh", ind=True):
    """X [n, T, d]; W_in [m, d], u [m] (IndRNN) or W_hh [m, m]; c [m] -> f [n]."""
    W, c = P["W_in"], P["c"]
    n, T, _ = X.shape
    h = torch.zeros(n, W.shape[0], dtype=X.dtype)
    xw = X @ W.T                                       # [n, T, m]
    for t in range(T):
        rec = h * P["u"] if ind else h @ P["W_hh"].T
        h = sigma(xw[:, t] + rec, act)
    return (h * c).sum(-1) / math.sqrt(W.shape[0])


def lstm(P, X):
    """Gates i, f, g, o stacked in W_in [4m, d], W_hh [4m, m], b [4m]; f = (1/sqrt m) c^T h_T."""
    W, R, b, c = P["W_in"], P["W_hh"], P["b"], P["c"]
    m = c.shape[0]
    n, T, _ = X.shape
    h = torch.zeros(n, m, dtype=X.dtype)
    cell = torch.zeros(n, m, dtype=X.dtype)
    for t in range(T):
        g = X[:, t] @ W.T + h @ R.T + b
        i, fg, gg, o = torch.sigmoid(g[:, :m]), torch.sigmoid(g[:, m:2 * m]), torch.tanh(g[:, 2 * m:3 * m]), torch.sigmoid(g[:, 3 * m:])
        cell = fg * cell + i * gg
        h = o * torch.tanh(cell)
    return (h * c).sum(-1) / math.sqrt(m)


def speed(a):
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    if a.model == "shallow":
        X = torch.randn(a.n, a.T, a.d, generator=g) * 0.3
        P = {"W": torch.randn(a.m, a.d, a.d, generator=g), "U": torch.randn(a.m, a.d, generator=g),
             "c": torch.sign(torch.randn(a.m, generator=g))}
        fwd = lambda: shallow(P, X)
    else:
        X = torch.randn(a.n, a.L + 1, 1, generator=g)
        P = {"W_in": torch.randn(a.m, 1, generator=g), "u": torch.randn(a.m, generator=g),
             "c": torch.sign(torch.randn(a.m, generator=g))}
        fwd = lambda: rnn(P, X)
    y = torch.randn(a.n, generator=g)
    for v in P.values():
        v.requires_grad_(True)

    def step():
        for v in P.values():
            v.grad = None
        loss = 0.5 * ((fwd() - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for v in P.values():
                v -= 0.01 * v.grad
    for _ in range(2):
        step()
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"model": a.model, "ms_per_step": 1000 * float(np.median(times)), "threads": a.threads,
                      "torch": torch.__version__}))


def check(d, rtol):
    """Parity with attnlab's parity_dump --double output in DIR; returns the exit status."""
    import tomllib
    import torch_reference as ref
    try:
        params, meta, _ = ref.read_safetensors(os.path.join(d, "model.safetensors"))
        batch, _, _ = ref.read_safetensors(os.path.join(d, "batch.safetensors"))
        exp, _, _ = ref.read_safetensors(os.path.join(d, "expected.safetensors"))
        cfg = tomllib.loads(meta["config"])
    except (ref.BadInput, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    mc, loss_kind = cfg["model"], cfg["train"]["loss"]
    P = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in params.items()}
    X = torch.tensor(batch["x"], dtype=torch.float64)
    y = torch.tensor(batch["y"], dtype=torch.float64).reshape(-1)
    mask = torch.tensor(batch["mask"], dtype=torch.float64).reshape(-1)
    kind, act = mc["kind"], mc.get("activation", "tanh")  # the LSTM has no activation key
    if kind == "shallow_attention":
        f = shallow(P, X, act, mc["score_scale"] if mc["score_scale"] > 0 else 1.0)
    elif kind in ("indrnn", "rnn"):
        f = rnn(P, X, act, ind=(kind == "indrnn"))
    elif kind == "lstm":
        f = lstm(P, X)
    else:
        print(f"error: unknown model.kind {kind!r}", file=sys.stderr)
        return 2
    loss = (mask * (f - y) ** 2).sum() / mask.sum()
    if loss_kind == "half_mse":
        loss = 0.5 * loss
    loss.backward()
    fails = 0

    def compare(name, ours, theirs):
        nonlocal fails
        ours, theirs = np.asarray(ours, dtype=np.float64).ravel(), np.asarray(theirs, dtype=np.float64).ravel()
        err = np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-300)
        ok = err <= rtol
        fails += not ok
        print(f"{name:24s} rel_err {err:.3e}  {'ok' if ok else 'FAIL'}")

    compare("out", exp["out"], f.detach().numpy())
    compare("loss", exp["loss"], [loss.item()])
    for n, v in P.items():
        compare("grad." + n, exp["grad." + n], v.grad.numpy())
    print(f"parity: {len(P) + 2 - fails} passed, {fails} failed")
    return 0 if fails == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("model", choices=["shallow", "indrnn"])
    for k, v in {"n": 4000, "d": 8, "T": 16, "m": 256, "L": 96, "threads": 2, "reps": 5}.items():
        sp.add_argument("--" + k, type=int, default=v)
    cp = sub.add_parser("check")
    cp.add_argument("dir")
    cp.add_argument("--rtol", type=float, default=1e-5)
    a = ap.parse_args()
    if a.cmd == "check":
        sys.exit(check(a.dir, a.rtol))
    if a.cmd == "speed":
        if a.model == "indrnn" and a.m == 256:
            a.m = 64
        speed(a)


if __name__ == "__main__":
    main()

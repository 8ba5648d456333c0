#!/usr/bin/python3
"""PyTorch implementations of the paper-3 models in the authors' formulation, for parity and speed.

  torch_p3.py speed shallow [--n 4000 --d 8 --T 16 --m 256]   one full-batch GD step (ms); E1
  torch_p3.py speed shallow --n 4000 --d 17 --T 97 --m 64      the E4 Transformer (L 96)
  torch_p3.py speed indrnn  [--n 4000 --L 96 --d 17 --m 64]    the E4 IndRNN (T = L + 1)
  torch_p3.py check DIR [--rtol 1e-5]   parity with attnlab's dump (double precision)
  torch_p3.py selftest                  the fast forms against explicit loops (tiny sizes)

The models are those of the paper's public code (docs/model.md, "Paper-3 models";
../shared/papers/p3_authors_setup.md), written independently:
  shallow: z_it = x_t^T W_i x_T (no 1/sqrt d), alpha_i = softmax_t(z_i), a_i = sum_t alpha_it x_t,
           f = (1/sqrt m) sum_i c_i sigma(U_i^T a_i), all heads at once (batched matmuls);
  IndRNN:  h_t = sigma(W_in x_t + u * h_{t-1}), h_0 = 0, f = (1/sqrt m) c^T h_T, a Python loop
           over t with standard autograd (the Elman RNN: W_hh h_{t-1} in place of u * h_{t-1}).
A speed step is what the authors' training loop does per step: zero the gradients, forward,
plain MSE mean((f - y)^2), backward, full-batch SGD update. Parameters follow the authors'
symmetric initialization (W, U or W_in ~ N(0, 1), c = +-1, IndRNN u = +-1.5, paired halves
with c negated); tokens are E1's (N(0, I) with norms clipped to 1) or E4's ([x, 8 sin, 8 cos]
over an AR(L) series, z-scored targets), chosen by d (--tokens).

Process set-up, the same as attnlab's own (src/core/blas_env.h): glibc is told not to mmap or
trim (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_ large), and on a CPU with AVX-512 OpenBLAS
(PyTorch's GEMM here) gets its AVX-512 kernels (OPENBLAS_CORETYPE=SkylakeX;
ATTNLAB_BLAS_CORETYPE=NAME forces a kernel, =keep keeps the inherited one). The script
re-executes itself once to set them. Times vary between processes: on 2 threads OpenBLAS's
small GEMMs (the IndRNN's 97 input projections, 4000 x 17 x 64) run at one of two speeds per
process, depending on its address layout (IndRNN E4 step ~60 or ~77 ms here); take the median of
several runs. torch.set_flush_denormal changes nothing here (no denormals arise at these shapes).
"""
import argparse, json, math, os, sys, time


def _blas_coretype():
    forced = os.environ.get("ATTNLAB_BLAS_CORETYPE")
    if forced:
        return None if forced == "keep" else forced
    try:
        with open("/proc/cpuinfo") as f:
            return "SkylakeX" if " avx512f" in f.read() else None
    except OSError:
        return None


if os.environ.get("ATTNLAB_P3_REEXEC") != "1":
    os.environ["ATTNLAB_P3_REEXEC"] = "1"
    os.environ["MALLOC_MMAP_MAX_"] = "0"
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "68719476736"
    _core = _blas_coretype()
    if _core:
        os.environ["OPENBLAS_CORETYPE"] = _core
    os.execv(sys.executable, [sys.executable] + sys.argv)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402


def sigma(z, kind):
    return torch.tanh(z) if kind == "tanh" else torch.erf(z / math.sqrt(2.0))


# ---------------------------------------------------------------------------------------------
# Models. X is [n, T, d] (token t of example b is X[b, t]); the query is the last token x_T.

def shallow(P, X, act="tanh", scale=1.0):
    """W [m, d, d], U [m, d], c [m] -> f [n]; every head at once, as batched matmuls."""
    W, U, c = P["W"], P["U"], P["c"]
    m, d = U.shape
    n = X.shape[0]
    q = (X[:, -1, :] @ W.reshape(m * d, d).T).view(n, m, d)   # q_i = W_i x_T         [n, m, d]
    z = scale * torch.bmm(q, X.transpose(1, 2))                 # z_it = x_t . q_i      [n, m, T]
    a = torch.bmm(torch.softmax(z, dim=-1), X)                  # a_i = sum_t alpha_it x_t [n, m, d]
    h = sigma((a * U).sum(-1), act)                             # h_i = sigma(U_i . a_i) [n, m]
    return h @ c / math.sqrt(m)


def shallow_einsum(P, X, act="tanh", scale=1.0):
    """The same model written with einsum, one contraction per line (the authors' style)."""
    W, U, c = P["W"], P["U"], P["c"]
    q = torch.einsum("ikj,nj->nik", W, X[:, -1, :])
    z = scale * torch.einsum("ntk,nik->nit", X, q)
    a = torch.einsum("nit,ntk->nik", torch.softmax(z, dim=-1), X)
    h = sigma(torch.einsum("ik,nik->ni", U, a), act)
    return torch.einsum("i,ni->n", c, h) / math.sqrt(U.shape[0])


def shallow_loop(P, X, act="tanh", scale=1.0):
    """Reference: one head at a time, straight from the formula (selftest only)."""
    W, U, c = P["W"], P["U"], P["c"]
    xT = X[:, -1, :]
    f = torch.zeros(X.shape[0], dtype=X.dtype)
    for i in range(W.shape[0]):
        z = scale * (X * (xT @ W[i].T).unsqueeze(1)).sum(-1)   # x_t^T W_i x_T  [n, T]
        a = (torch.softmax(z, dim=1).unsqueeze(-1) * X).sum(1)  # [n, d]
        f = f + c[i] * sigma(a @ U[i], act)
    return f / math.sqrt(W.shape[0])


def rnn(P, X, act="tanh", ind=True):
    """W_in [m, d], u [m] (IndRNN) or W_hh [m, m]; c [m] -> f [n]. A loop over t.

    The input projection is taken per step from X[:, t] (a leaf without gradient). Projecting
    every step at once and indexing the result (xw = X @ W_in^T; xw[:, t]) is the trap this
    avoids: the backward of each index op materializes a zero [n, T, m] tensor and adds it to
    the others, O(T^2 n m) memory traffic: 1650 ms against 60-77 ms per E4 step here."""
    W, c = P["W_in"], P["c"]
    n, T, _ = X.shape
    h = torch.zeros(n, W.shape[0], dtype=X.dtype)
    for t in range(T):
        rec = P["u"] * h if ind else h @ P["W_hh"].T
        h = sigma(X[:, t] @ W.T + rec, act)
    return h @ c / math.sqrt(W.shape[0])


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


# ---------------------------------------------------------------------------------------------
# Data and initialization as in the authors' experiments (timing does not depend on them much,
# but saturation and tiny values can, so they follow the paper's set-up).

def unit_tokens(n, T, d, g):
    """E1-E3: N(0, I) tokens, each rescaled to norm 1 if longer -> X [n, T, d], y [n]."""
    X = torch.randn(n, T, d, generator=g)
    X = X / X.norm(dim=-1, keepdim=True).clamp(min=1.0)
    return X, 0.05 * torch.randn(n, generator=g)


def ar_tokens(n, T, d, g, L=None, burn=800):
    """E4: x_t = 0.9 x_{t-L} + eps (var 0.1); windows of T values; token = [x, sin, cos] with
    (d - 1) / 2 angles 2 pi t / (32 * 2^k); targets (the next value) z-scored."""
    L = T - 1 if L is None else L
    k = (d - 1) // 2
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    N = burn + n + T + L
    x = np.empty(N)
    x[:L] = rng.standard_normal(L)
    eps = math.sqrt(0.1) * rng.standard_normal(N)
    for s in range(L, N, L):                       # L values at a time: each block needs the last
        e = min(s + L, N)
        x[s:e] = 0.9 * x[s - L:e - L] + eps[s:e]
    s0 = burn + np.arange(n)
    win = x[s0[:, None] + np.arange(T)[None, :]]   # [n, T]
    y = x[s0 + T]
    ang = 2 * np.pi * np.arange(T)[:, None] / (32.0 * 2.0 ** np.arange(k))[None, :]   # [T, k]
    pos = np.concatenate([np.sin(ang), np.cos(ang)], axis=1)                          # [T, 2k]
    X = np.concatenate([win[:, :, None], np.broadcast_to(pos, (n, T, 2 * k))], axis=2)
    return torch.tensor(X, dtype=torch.float32), torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)


def init_params(model, m, d, g):
    """The authors' symmetric initialization: heads i and i + m/2 share W/U (or W_in, u) and
    have opposite c, so f = 0 at the start."""
    h = m // 2
    sign = lambda k: torch.randint(0, 2, (k,), generator=g).float() * 2 - 1
    pair = lambda v: torch.cat([v, v])
    c = sign(h)
    c = torch.cat([c, -c])
    if model == "shallow":
        return {"W": pair(torch.randn(h, d, d, generator=g)), "U": pair(torch.randn(h, d, generator=g)), "c": c}
    return {"W_in": pair(torch.randn(h, d, generator=g)), "u": pair(1.5 * sign(h)), "c": c}


# ---------------------------------------------------------------------------------------------

def speed(a):
    torch.set_num_threads(a.threads)
    if a.flush_denormal:
        torch.set_flush_denormal(True)
    g = torch.Generator().manual_seed(a.seed)
    tokens = a.tokens
    if tokens == "auto":
        tokens = "ar" if a.d % 2 == 1 else "unit"
    X, y = {"unit": lambda: unit_tokens(a.n, a.T, a.d, g),
            "ar": lambda: ar_tokens(a.n, a.T, a.d, g, a.L if a.model == "indrnn" else None),
            "randn": lambda: (0.3 * torch.randn(a.n, a.T, a.d, generator=g), torch.randn(a.n, generator=g))}[tokens]()
    X = X.contiguous()
    P = init_params(a.model, a.m, a.d, g)
    if a.model == "shallow":
        fwd = {"mm": shallow, "einsum": shallow_einsum}[a.impl]
        forward = lambda: fwd(P, X)
    else:
        forward = lambda: rnn(P, X)
    for v in P.values():
        v.requires_grad_(True)

    def step():
        for v in P.values():
            v.grad = None
        loss = ((forward() - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for v in P.values():
                v -= a.lr * v.grad
        return loss

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = [round(1000 * t, 2) for t in times]
    print(json.dumps({"model": a.model, "ms_per_step": float(np.median(ms)), "ms": ms, "threads": a.threads,
                      "n": a.n, "T": a.T, "d": a.d, "m": a.m, "impl": a.impl if a.model == "shallow" else "loop",
                      "tokens": tokens, "flush_denormal": a.flush_denormal,
                      "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "torch": torch.__version__}))


def selftest():
    """The timed forms against explicit references, in double precision at tiny sizes."""
    torch.manual_seed(0)
    fails = 0

    def report(name, err, tol=1e-10):
        nonlocal fails
        ok = err <= tol if isinstance(err, float) else err
        fails += not ok
        print(f"{name:52s} {f'max rel err {err:.2e}' if isinstance(err, float) else '':20s} {'ok' if ok else 'FAIL'}")

    rel = lambda a, b: float((a - b).abs().max() / b.abs().max().clamp(min=1e-300))
    g = torch.Generator().manual_seed(1)
    for (n, T, d, m, tok) in [(5, 4, 3, 6, "unit"), (7, 9, 5, 4, "ar")]:
        X, _ = unit_tokens(n, T, d, g) if tok == "unit" else ar_tokens(n, T, d, g, burn=10)
        X = X.double()
        P = {k: v.double().requires_grad_(True) for k, v in init_params("shallow", m, d, g).items()}
        with torch.no_grad():
            P["c"] += 0.1 * torch.randn(m, dtype=torch.float64)   # break the f = 0 symmetry
        for act in ("tanh", "erf"):
            ref = shallow_loop(P, X, act)
            gl = torch.autograd.grad(ref.square().sum(), list(P.values()))
            for name, fn in (("mm", shallow), ("einsum", shallow_einsum)):
                out = fn(P, X, act)
                report(f"shallow {name} vs per-head loop, {act}, n{n} T{T} d{d} m{m}", rel(out, ref.detach()))
                gr = torch.autograd.grad(out.square().sum(), list(P.values()))
                report("  its gradients (W, U, c) vs the loop's", max(rel(a, b) for a, b in zip(gr, gl)))
        Ps = tuple(P.values())
        report("shallow mm: autograd vs finite differences (gradcheck)",
               torch.autograd.gradcheck(lambda W, U, c: shallow({"W": W, "U": U, "c": c}, X), Ps))
    for (n, L, d, m) in [(6, 5, 3, 4), (4, 12, 1, 6)]:
        X, _ = ar_tokens(n, L + 1, d, g, L, burn=10)
        X = X.double()
        P = {k: v.double().requires_grad_(True) for k, v in init_params("indrnn", m, d, g).items()}
        with torch.no_grad():
            P["c"] += 0.1 * torch.randn(m, dtype=torch.float64)
        Xn, W, u, c = X.numpy(), P["W_in"].detach().numpy(), P["u"].detach().numpy(), P["c"].detach().numpy()
        h = np.zeros((n, m))
        for t in range(L + 1):
            h = np.tanh(Xn[:, t] @ W.T + u * h)
        ref = torch.tensor(h @ c / math.sqrt(m))
        report(f"indrnn vs numpy recurrence, n{n} T{L + 1} d{d} m{m}", rel(rnn(P, X).detach(), ref))
        report("indrnn: autograd vs finite differences (gradcheck)",
               torch.autograd.gradcheck(lambda W, u, c: rnn({"W_in": W, "u": u, "c": c}, X), tuple(P.values())))
    # The E4 tokens: the AR recurrence and the layout.
    X, y = ar_tokens(50, 9, 17, g, 8, burn=20)
    report("ar tokens: d 17, [x, sin, cos] layout, z-scored y",
           X.shape == (50, 9, 17) and abs(float(X[0, 3, 1]) - math.sin(2 * math.pi * 3 / 32)) < 1e-6
           and abs(float(X[0, 3, 9]) - math.cos(2 * math.pi * 3 / 32)) < 1e-6
           and abs(float(X[1, 2, 0]) - float(X[0, 3, 0])) == 0.0   # window s + 1 is window s shifted
           and abs(float(y.mean())) < 1e-5 and abs(float(y.std()) - 1) < 0.05)
    print(f"selftest: {'all passed' if fails == 0 else f'{fails} failed'}")
    return 0 if fails == 0 else 1


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
    sp = sub.add_parser("speed", help="time full-batch GD steps; prints JSON with ms_per_step (median)")
    sp.add_argument("model", choices=["shallow", "indrnn"])
    sp.add_argument("--n", type=int, default=4000, help="examples (full batch)")
    sp.add_argument("--d", type=int, default=None, help="token dimension (default: shallow 8, indrnn 17)")
    sp.add_argument("--T", type=int, default=None, help="tokens (default: shallow 16, indrnn L + 1)")
    sp.add_argument("--L", type=int, default=96, help="indrnn: AR lag, T = L + 1")
    sp.add_argument("--m", type=int, default=None, help="width (default: shallow 256, indrnn 64)")
    sp.add_argument("--threads", type=int, default=2)
    sp.add_argument("--reps", type=int, default=5, help="timed steps (median reported)")
    sp.add_argument("--warmup", type=int, default=2)
    sp.add_argument("--lr", type=float, default=0.05)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--impl", choices=["mm", "einsum"], default="mm",
                    help="shallow: batched matmuls (default, the faster) or one einsum per contraction")
    sp.add_argument("--tokens", choices=["auto", "unit", "ar", "randn"], default="auto",
                    help="auto: ar (E4 layout) for odd d, unit (E1) otherwise; randn: 0.3 N(0, 1)")
    sp.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True)")
    cp = sub.add_parser("check")
    cp.add_argument("dir")
    cp.add_argument("--rtol", type=float, default=1e-5)
    sub.add_parser("selftest")
    a = ap.parse_args()
    if a.cmd == "check":
        sys.exit(check(a.dir, a.rtol))
    if a.cmd == "selftest":
        sys.exit(selftest())
    if a.model == "shallow":
        a.d, a.T, a.m = a.d or 8, a.T or 16, a.m or 256
    else:
        if a.T is not None:
            a.L = a.T - 1
        a.d, a.T, a.m = a.d or 17, a.L + 1, a.m or 64
    if min(a.n, a.d, a.T, a.m, a.threads, a.reps) < 1 or a.m % 2 or a.warmup < 0:
        print("error: n, d, T, m, threads and reps must be >= 1, m even, warmup >= 0", file=sys.stderr)
        sys.exit(2)
    speed(a)


if __name__ == "__main__":
    main()

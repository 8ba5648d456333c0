#!/usr/bin/python3
"""Independent PyTorch reference of attnlab's Transformer (contract: docs/model.md).

  torch_reference.py check DIR [--rtol 1e-4] [--dtype float32|float64]
      Reads DIR/{model,batch,expected}.safetensors, recomputes `out`, `loss` and
      every `grad.{name}` with autograd and compares them norm-wise:
      err = ||a - b||_2 / max(||b||_2, 1e-12), b = torch (for attn.k.bias, whose true
      gradient is 0, the floor is ||grad attn.k.weight||). Exit 0 all pass, 1 some
      fail, 2 bad input (missing file/tensor, unknown parameter, wrong shape).
  torch_reference.py selftest [--count N] [--seed S]
      No C++ involved: random small configs are written by this script, then checked
      (must pass), and checked again with a corrupted gradient (must fail).
"""
import argparse, contextlib, io, itertools, json, math, os, struct, sys, tempfile, tomllib
import numpy as np
import torch

torch.set_num_threads(2)
EPS = 1e-5
NP_OF = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}
CODE_OF = {np.dtype(v): k for k, v in NP_OF.items()}

class BadInput(Exception):
    """Malformed or inconsistent input: `check` exits with status 2."""

# ----------------------------------------------------------------- safetensors I/O
def read_safetensors(path):
    """-> (dict name -> np.ndarray in file order, metadata dict, dict name -> offsets)."""
    if not os.path.isfile(path):
        raise BadInput(f"missing file {path}")
    raw = open(path, "rb").read()
    if len(raw) < 8:
        raise BadInput(f"{path}: too short")
    (hlen,) = struct.unpack("<Q", raw[:8])
    try:
        header = json.loads(raw[8:8 + hlen])
    except ValueError as e:
        raise BadInput(f"{path}: bad JSON header ({e})")
    meta = header.pop("__metadata__", None) or {}
    data, tensors, offsets = raw[8 + hlen:], {}, {}
    for name, info in header.items():
        try:
            dt = np.dtype(NP_OF[info["dtype"]]).newbyteorder("<")
            shape, (a, b) = [int(s) for s in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BadInput(f"{path}: {name}: bad header entry {info!r} (dtypes: {', '.join(NP_OF)})")
        count = math.prod(shape)
        if b - a != count * dt.itemsize or a < 0 or b > len(data):
            raise BadInput(f"{path}: {name}: data_offsets {a},{b} do not fit shape {shape}")
        tensors[name] = np.frombuffer(data, dt, count, a).reshape(shape).astype(dt.newbyteorder("="))
        offsets[name] = (a, b)
    return tensors, meta, offsets

def write_safetensors(path, tensors, metadata=None):
    """Writes tensors (dict of np arrays) contiguously, in dict order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        blob = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": CODE_OF[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # pad the header to 8-byte alignment
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

# ----------------------------------------------------------------- configuration
# Keys a resolved config may omit; every other key used below is required.
DEFAULTS = {"rpe_learnable": True, "rpe_buckets": 32, "rpe_max_distance": 128,
            "score_scale": 0.0, "ffn_activation": "gelu", "vocab": 0, "logit_cap": 0.0}
REQUIRED = ("d_model", "layers", "heads", "head_dim", "value_dim", "ffn", "rpe", "pos", "dot_product", "norm")
CHOICES = {"rpe": ("none", "lin", "log", "t5"), "pos": ("none", "sinusoidal", "learned"),
           "norm": ("none", "layer", "rms"), "ffn_activation": ("gelu", "relu", "tanh")}

def resolve_config(toml_text):
    """TOML text -> flat dict of [model] keys (per-layer keys as lists) + 'loss' (or None)."""
    try:
        doc = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"config is not valid TOML: {e}")
    m = dict(DEFAULTS, **doc.get("model", {}))
    need = REQUIRED + (("d_in", "d_out") if m["vocab"] == 0 else ()) + (("max_len",) if m.get("pos") == "learned" else ())
    for key in need:
        if key not in m:
            raise BadInput(f"config: missing model.{key}")
    L = m["layers"]
    for key in ("heads", "head_dim", "value_dim", "ffn"):
        v = m[key] if isinstance(m[key], list) else [m[key]] * L  # scalar: same for all
        if len(v) != L:
            raise BadInput(f"config: model.{key} has {len(v)} entries, layers = {L}")
        m[key] = v if key in ("head_dim", "value_dim") else [int(x) for x in v]
    for key in ("head_dim", "value_dim"):  # per layer: one size for every head, or a list of one per head
        per = []
        for l, v in enumerate(m[key]):
            v = [int(x) for x in v] if isinstance(v, list) else [int(v)] * m["heads"][l]
            if len(v) != m["heads"][l]:
                raise BadInput(f"config: model.{key} layer {l} has {len(v)} heads, heads = {m['heads'][l]}")
            per.append(v)
        m[key] = per
    for key, allowed in CHOICES.items():
        if m[key] not in allowed:
            raise BadInput(f"config: model.{key} = {m[key]!r}, expected one of {allowed}")
    if m["rpe"] == "t5" and not (m["rpe_buckets"] >= 2 and m["rpe_max_distance"] > m["rpe_buckets"] // 2):
        raise BadInput("config: t5 needs rpe_buckets >= 2 and rpe_max_distance > rpe_buckets/2")
    m["score_scale"] = float(m["score_scale"])
    m["logit_cap"] = float(m["logit_cap"])
    m["n_out"] = m["vocab"] if m["vocab"] > 0 else m["d_out"]  # width of the head
    m["loss"] = doc.get("train", {}).get("loss")
    return m

def param_specs(c):
    """Ordered {name: shape} of every parameter, following the table of docs/model.md."""
    D, s = c["d_model"], {}
    def norm(prefix):
        if c["norm"] != "none":
            s[prefix + ".weight"] = [D]
            if c["norm"] == "layer":
                s[prefix + ".bias"] = [D]
    if c["vocab"] > 0:
        s["embed.weight"] = [c["vocab"], D]
    else:
        s["embed.weight"], s["embed.bias"] = [D, c["d_in"]], [D]
    if c["pos"] == "learned":
        s["pos.weight"] = [c["max_len"], D]
    for l in range(c["layers"]):
        p, H, F = f"layers.{l}.", c["heads"][l], c["ffn"][l]
        qd, vd = sum(c["head_dim"][l]), sum(c["value_dim"][l])  # heads may differ in size
        norm(p + "norm1")
        if c["dot_product"]:
            s[p + "attn.q.weight"], s[p + "attn.q.bias"] = [qd, D], [qd]
            s[p + "attn.k.weight"], s[p + "attn.k.bias"] = [qd, D], [qd]
        s[p + "attn.v.weight"], s[p + "attn.v.bias"] = [vd, D], [vd]
        s[p + "attn.o.weight"], s[p + "attn.o.bias"] = [D, vd], [D]
        if c["rpe"] == "t5":
            s[p + "attn.rpe"] = [H, c["rpe_buckets"]]
        elif c["rpe"] == "log" or (c["rpe"] == "lin" and c["rpe_learnable"]):
            s[p + "attn.rpe"] = [H]
        if F > 0:
            norm(p + "norm2")
            s[p + "ffn.fc1.weight"], s[p + "ffn.fc1.bias"] = [F, D], [F]
            s[p + "ffn.fc2.weight"], s[p + "ffn.fc2.bias"] = [D, F], [D]
    norm("norm_f")
    s["head.weight"], s["head.bias"] = [c["n_out"], D], [c["n_out"]]
    return s

# ----------------------------------------------------------------- the model
def linear(x, P, name):
    return x @ P[name + ".weight"].T + P[name + ".bias"]

def norm(x, P, name, kind):
    if kind == "none":
        return x
    if kind == "layer":  # (x - mean) / sqrt(var + eps) * w + b, biased variance
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + EPS) * P[name + ".weight"] + P[name + ".bias"]
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + EPS) * P[name + ".weight"]  # rms

def activation(x, kind):
    if kind == "gelu":  # exact GELU
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return torch.relu(x) if kind == "relu" else torch.tanh(x)

def alibi_slopes(H):
    return [2.0 ** (-8.0 * (h + 1) / H) for h in range(H)]

def t5_bucket(n, nb, max_distance):
    """T5's unidirectional bucket of distance n >= 0 (computed in double precision)."""
    half = nb // 2
    if n < half:
        return n
    return min(nb - 1, half + math.floor(math.log(n / half) / math.log(max_distance / half) * (nb - half)))

def sinusoidal(T, D):
    """P[t, 2i] = sin(t / 10000^(2i/D)), P[t, 2i+1] = cos(same)."""
    P, i2 = torch.zeros(T, D, dtype=torch.float64), torch.arange(0, D, 2, dtype=torch.float64)
    ang = torch.arange(T, dtype=torch.float64)[:, None] / 10000.0 ** (i2 / D)  # [T, ceil(D/2)]
    P[:, 0::2] = torch.sin(ang)
    P[:, 1::2] = torch.cos(ang)[:, : D // 2]
    return P

def rel_bias(c, P, l, T, dtype):
    """bias_h(n) for n = t - s' as an [H, T, T] tensor (entries with s' > t are masked later)."""
    H, kind = c["heads"][l], c["rpe"]
    n = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).clamp(min=0)  # [T, T]
    if kind == "none":
        return torch.zeros(H, T, T, dtype=dtype)
    if kind == "t5":
        table = P[f"layers.{l}.attn.rpe"]  # [H, buckets]
        buckets = torch.tensor([[t5_bucket(int(v), c["rpe_buckets"], c["rpe_max_distance"]) for v in row]
                                for row in n.tolist()], dtype=torch.long)
        return table[:, buckets]
    if kind == "lin" and not c["rpe_learnable"]:
        p = torch.tensor(alibi_slopes(H), dtype=dtype)
    else:
        p = P[f"layers.{l}.attn.rpe"]
    dist = n.to(dtype) if kind == "lin" else torch.log1p(n.to(dtype))
    return -p[:, None, None] * dist

def attention(c, P, l, a):
    """Head by head: head h owns its own slices of the q, k, v rows (sizes d_k,h and d_v,h)."""
    B, T, _ = a.shape
    H, dks, dvs, pre = c["heads"][l], c["head_dim"][l], c["value_dim"][l], f"layers.{l}.attn."
    v = linear(a, P, pre + "v").split(dvs, dim=-1)  # H tensors [B, T, d_v,h]
    bias = rel_bias(c, P, l, T, a.dtype)  # [H, T, T]
    if c["dot_product"]:
        q = linear(a, P, pre + "q").split(dks, dim=-1)
        k = linear(a, P, pre + "k").split(dks, dim=-1)
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # s' <= t
    outs = []
    for h in range(H):
        s = bias[h].unsqueeze(0).expand(B, T, T)
        if c["dot_product"]:
            scale = c["score_scale"] if c["score_scale"] > 0 else 1.0 / math.sqrt(dks[h])
            s = s + scale * (q[h] @ k[h].transpose(-1, -2))
        if c["logit_cap"] > 0:  # bounded logits: c tanh(s / c)
            s = c["logit_cap"] * torch.tanh(s / c["logit_cap"])
        s = s.masked_fill(~causal, float("-inf"))
        outs.append(torch.softmax(s, dim=-1) @ v[h])
    return linear(torch.cat(outs, dim=-1), P, pre + "o")

def forward(c, P, inp):
    """inp: float [B, T, d_in] or long token ids [B, T] -> yhat [B, T, n_out]."""
    e = P["embed.weight"][inp] if c["vocab"] > 0 else linear(inp, P, "embed")
    T, dtype = e.shape[1], e.dtype
    if c["pos"] == "learned":
        e = e + P["pos.weight"][:T]
    elif c["pos"] == "sinusoidal":
        e = e + sinusoidal(T, c["d_model"]).to(dtype)
    h = e  # h0
    for l in range(c["layers"]):  # pre-norm blocks
        h = h + attention(c, P, l, norm(h, P, f"layers.{l}.norm1", c["norm"]))
        if c["ffn"][l] > 0:
            b = norm(h, P, f"layers.{l}.norm2", c["norm"])
            f = f"layers.{l}.ffn."
            h = h + linear(activation(linear(b, P, f + "fc1"), c["ffn_activation"]), P, f + "fc2")
    return linear(norm(h, P, "norm_f", c["norm"]), P, "head")

def loss_fn(kind, yhat, target, mask):
    """mse: masked sum of squares / (#masked-in * n_out); ce: masked mean of -log p[target]."""
    if kind == "mse":
        per_pos = ((yhat - target) ** 2).sum(-1)
        return (per_pos * mask).sum() / (mask.sum() * yhat.shape[-1])
    nll = -torch.log_softmax(yhat, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return (nll * mask).sum() / mask.sum()

def load_batch(c, batch, dtype):
    """-> (inputs, targets, mask, loss kind) as torch tensors, validated against the config."""
    def need(name):
        if name not in batch:
            raise BadInput(f"batch: missing tensor {name!r}")
        return batch[name]
    if c["vocab"] > 0:
        inp = torch.from_numpy(need("tokens").astype(np.int64))
        if inp.ndim != 2 or inp.numel() and (inp.min() < 0 or inp.max() >= c["vocab"]):
            raise BadInput("batch: tokens must be [B, T] ids in [0, vocab)")
    else:
        inp = torch.from_numpy(need("x")).to(dtype)
        if inp.ndim != 3 or inp.shape[2] != c["d_in"]:
            raise BadInput(f"batch: x has shape {list(inp.shape)}, expected [B, T, {c['d_in']}]")
    B, T = inp.shape[:2]
    kind = c["loss"] or ("ce" if "targets" in batch else "mse")  # infer if [train] is absent
    if kind == "mse":
        y = torch.from_numpy(need("y")).to(dtype)
        if list(y.shape) != [B, T, c["n_out"]]:
            raise BadInput(f"batch: y has shape {list(y.shape)}, expected {[B, T, c['n_out']]}")
    elif kind == "ce":
        y = torch.from_numpy(need("targets").astype(np.int64))
        if list(y.shape) != [B, T] or y.numel() and (y.min() < 0 or y.max() >= c["n_out"]):
            raise BadInput(f"batch: targets must be [B, T] ids in [0, {c['n_out']})")
    else:
        raise BadInput(f"config: unknown train.loss {kind!r}")
    mask = torch.from_numpy(need("mask")).to(dtype)
    if list(mask.shape) != [B, T]:
        raise BadInput(f"batch: mask has shape {list(mask.shape)}, expected {[B, T]}")
    if mask.sum() <= 0:
        raise BadInput("batch: mask selects no position (the loss would be 0/0)")
    if c["pos"] == "learned" and T > c["max_len"]:
        raise BadInput(f"batch: T = {T} > max_len = {c['max_len']}")
    return inp, y, mask, kind

def run_model(c, params_np, batch, dtype):
    """Forward + backward. -> (yhat, loss, {name: grad}) as float64 numpy arrays."""
    P = {n: torch.tensor(a, dtype=dtype, requires_grad=True) for n, a in params_np.items()}
    inp, y, mask, kind = load_batch(c, batch, dtype)
    yhat = forward(c, P, inp)
    loss = loss_fn(kind, yhat, y, mask)
    loss.backward()
    grads = {n: p.grad.double().numpy() if p.grad is not None else np.zeros(p.shape) for n, p in P.items()}
    return yhat.detach().double().numpy(), loss.detach().double().reshape(1).numpy(), grads

# ----------------------------------------------------------------- check
def check(d, rtol=1e-4, dtype="float32"):
    """Returns the exit status: 0 all pass, 1 some fail, 2 bad input."""
    try:
        params, meta, offsets = read_safetensors(os.path.join(d, "model.safetensors"))
        batch, _, _ = read_safetensors(os.path.join(d, "batch.safetensors"))
        expected, _, _ = read_safetensors(os.path.join(d, "expected.safetensors"))
        if "config" not in meta:
            raise BadInput("model.safetensors: __metadata__ has no 'config'")
        c = resolve_config(meta["config"])
        specs = param_specs(c)
        for n, a in params.items():
            if n not in specs:
                raise BadInput(f"model: parameter {n!r} is not in the expected set for this config")
            if list(a.shape) != specs[n]:
                raise BadInput(f"model: {n} has shape {list(a.shape)}, expected {specs[n]}")
        for n in (n for n in specs if n not in params):
            raise BadInput(f"model: parameter {n!r} required by the config is missing")
        for n in expected:
            if n.startswith("grad.") and n[5:] not in specs:
                raise BadInput(f"expected: {n!r} names no parameter of this config")
        for n in ("out", "loss"):
            if n not in expected:
                raise BadInput(f"expected: missing tensor {n!r}")
        yhat, loss, grads = run_model(c, params, batch, getattr(torch, dtype))
    except BadInput as e:
        print(f"error: {e}")
        return 2
    # Layout notes (contract: one contiguous arena in table order); informative only.
    by_off = sorted(offsets, key=lambda n: offsets[n][0])
    if any(offsets[a][1] != offsets[b][0] for a, b in zip(by_off, by_off[1:])):
        print("note: model.safetensors parameters are not one contiguous block")
    if by_off != list(specs):
        print("note: model.safetensors parameter order differs from docs/model.md's table")

    passed = failed = 0
    def compare(name, ours, floor=0.0, why=""):
        nonlocal passed, failed
        theirs = expected[name].astype(np.float64)
        if theirs.shape != ours.shape:
            print(f"{name:<40} FAIL shape {list(theirs.shape)} != torch {list(ours.shape)}")
            failed += 1
            return
        err = np.linalg.norm(theirs - ours) / max(np.linalg.norm(ours), floor, 1e-12)
        ok = bool(err <= rtol)  # NaN fails
        passed, failed = passed + ok, failed + (not ok)
        print(f"{name:<40} {str(list(ours.shape)):<16} rel_err {err:.3e}  {'ok' if ok else 'FAIL'}{why}")
    compare("out", yhat)
    compare("loss", loss)
    for n in specs:
        if n.endswith("attn.k.bias") and "grad." + n in expected:
            # Exactly zero in exact arithmetic (softmax ignores the per-row constant <q_t, bk>),
            # so only rounding noise is left: measure it against ||grad k.weight||.
            compare("grad." + n, grads[n], np.linalg.norm(grads[n[:-4] + "weight"]), " (vs ||grad k.weight||)")
        elif "grad." + n in expected:
            compare("grad." + n, grads[n])
        else:
            print(f"{'grad.' + n:<40} FAIL parameter is in model.safetensors but has no gradient in expected")
            failed += 1
    print(f"parity: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1

# ----------------------------------------------------------------- selftest
def to_toml(doc):
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return json.dumps(v) if isinstance(v, str) else repr(v)
    return "".join(f"[{sec}]\n" + "".join(f"{k} = {val(v)}\n" for k, v in kv.items()) for sec, kv in doc.items())

def random_case(rng, rpe, dot, norm_kind, pos, tokens):
    """A small random config + parameters + batch. Per-layer sizes differ, some ffn are 0."""
    L = int(rng.integers(1, 4))
    m = {"d_model": int(rng.choice([6, 8, 9])), "layers": L,
         "heads": [int(rng.integers(1, 4)) for _ in range(L)],
         "head_dim": [int(rng.integers(1, 5)) for _ in range(L)],
         "value_dim": [int(rng.integers(1, 5)) for _ in range(L)],
         "logit_cap": float(rng.choice([0.0, 0.0, 0.8, 3.0])),
         "ffn": [int(rng.choice([0, 5, 12])) for _ in range(L)],
         "rpe": rpe, "rpe_learnable": bool(rng.integers(2)), "rpe_buckets": int(rng.choice([4, 8])),
         "rpe_max_distance": int(rng.choice([6, 16])), "pos": pos, "max_len": 12, "dot_product": dot,
         "norm": norm_kind, "score_scale": float(rng.choice([0.0, 0.7])),
         "ffn_activation": str(rng.choice(["gelu", "relu", "tanh"])),
         "d_in": 3, "d_out": int(rng.integers(2, 4)), "vocab": 7 if tokens else 0}
    for key in ("head_dim", "value_dim"):  # some layers get heads of different sizes
        m[key] = [[int(x) for x in rng.integers(1, 5, m["heads"][l])] if rng.random() < 0.4 else d
                  for l, d in enumerate(m[key])]
    if m["logit_cap"] == 0.0:
        del m["logit_cap"]  # attnlab writes no cap as no key
    loss = str(rng.choice(["mse", "ce"]))
    cfg = {"model": m, "train": {"loss": loss}}
    c = resolve_config(to_toml(cfg))
    params = {}
    for n, shape in param_specs(c).items():
        # ~unit-variance activations: keeps softmaxes unsaturated (else gradients are ~0)
        a = rng.normal(0.0, 1.0 / math.sqrt(shape[-1]) if len(shape) == 2 else 0.2, shape)
        if n.endswith("norm1.weight") or n.endswith("norm2.weight") or n == "norm_f.weight":
            a = 1.0 + 0.2 * a
        elif n.endswith("attn.rpe") and rpe != "t5":  # positive slopes, around ALiBi / 1
            base = alibi_slopes(shape[0]) if rpe == "lin" else np.ones(shape)
            a = np.asarray(base) * np.exp(0.3 * a)
        params[n] = a.astype(np.float32)
    B, T = 2, int(rng.integers(4, 10))
    batch = {"tokens": rng.integers(0, 7, (B, T)).astype(np.int32)} if tokens else \
            {"x": rng.normal(0, 1, (B, T, 3)).astype(np.float32)}
    if loss == "mse":
        batch["y"] = rng.normal(0, 1, (B, T, c["n_out"])).astype(np.float32)
    else:
        batch["targets"] = rng.integers(0, c["n_out"], (B, T)).astype(np.int32)
    mask = (rng.random((B, T)) < 0.7).astype(np.float32)
    mask[0] = 1.0  # a fully counted row: no gradient vanishes for want of data
    batch["mask"] = mask
    return cfg, c, params, batch

def write_case(d, cfg, c, params, batch, dtype=torch.float64):
    """Writes the three parity files; the expected values come from torch itself."""
    write_safetensors(os.path.join(d, "model.safetensors"), params,
                      {"format": "attnlab", "config": to_toml(cfg)})
    write_safetensors(os.path.join(d, "batch.safetensors"), batch)
    yhat, loss, grads = run_model(c, params, batch, dtype)
    exp = {"out": yhat.astype(np.float32), "loss": loss.astype(np.float32)}
    exp.update({"grad." + n: g.astype(np.float32) for n, g in grads.items()})
    write_safetensors(os.path.join(d, "expected.safetensors"), exp)
    return exp

def quiet_check(d, **kw):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        status = check(d, **kw)
    return status, out.getvalue()

def selftest(count, seed):
    combos = list(itertools.product(CHOICES["rpe"], (True, False), CHOICES["norm"], CHOICES["pos"], (False, True)))
    rng = np.random.default_rng(seed)
    rng.shuffle(combos)
    if count:
        combos = combos[:count]
    for i, combo in enumerate(combos):
        cfg, c, params, batch = random_case(rng, *combo)
        with tempfile.TemporaryDirectory() as d:
            exp = write_case(d, cfg, c, params, batch)  # float64 truth, stored as F32
            # float64 vs the F32-stored truth: ~1e-7. float32 rounding alone can reach ~1e-4
            # in deep unnormalised nets, hence the looser tolerance there.
            for dt, rtol in (("float64", 1e-4), ("float32", 1e-3)):
                status, log = quiet_check(d, dtype=dt, rtol=rtol)
                assert status == 0, f"case {combo}: check --dtype {dt} failed\n{to_toml(cfg)}{log}"
            # corrupt one gradient by 1% (not k.bias: its gradient is ~0, see check())
            name = "grad." + str(rng.choice([n for n in params if not n.endswith("k.bias")]))
            exp[name] = exp[name] * 1.01
            write_safetensors(os.path.join(d, "expected.safetensors"), exp)
            status, log = quiet_check(d, dtype="float64")
            assert status == 1 and "FAIL" in log, f"case {combo}: corrupted {name} not detected\n{log}"
            del exp[name]  # a missing gradient is a failure, an unknown parameter bad input
            write_safetensors(os.path.join(d, "expected.safetensors"), exp)
            assert quiet_check(d)[0] == 1, "missing gradient not detected"
            params["layers.99.attn.v.weight"] = params["head.weight"]
            write_safetensors(os.path.join(d, "model.safetensors"), params, {"config": to_toml(cfg)})
            assert quiet_check(d)[0] == 2, "unknown parameter not detected"
        print(f"selftest {i + 1}/{len(combos)} ok: rpe={combo[0]} dot={combo[1]} norm={combo[2]} "
              f"pos={combo[3]} tokens={combo[4]} layers={c['layers']} heads={c['heads']} "
              f"head_dim={c['head_dim']} ffn={c['ffn']} loss={cfg['train']['loss']}")
    print(f"selftest: {len(combos)} configs passed")
    return 0

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ck = sub.add_parser("check", help="compare DIR/expected.safetensors with torch")
    ck.add_argument("dir")
    ck.add_argument("--rtol", type=float, default=1e-4)
    ck.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    st = sub.add_parser("selftest", help="round-trip test without C++")
    st.add_argument("--count", type=int, default=0, help="number of configs (0 = all 144 combinations)")
    st.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.cmd == "check":
        return check(a.dir, a.rtol, a.dtype)
    return selftest(a.count, a.seed)

if __name__ == "__main__":
    sys.exit(main())

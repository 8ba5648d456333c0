#!/usr/bin/python3
"""The best error E5's model class can reach at all, per heads H: a reference for the
trained values of experiments/p2_e5_kernel.toml.

  p2_e5_best_fit.py [--seq-len 128] [--heads 1 2 4 8 16] [--restarts 12]

E5's target is y_t = A sum_{s<=t} rho(s) x_{t-s} / sum_{s<=t} rho(s) with x white N(0, 1)
and rho(s) = (1 + s)^-1 (poly) or e^{-0.1 s} (exp). Its model (one layer, no FFN, no dot
product, no norm, no absolute positions) is linear in x: yhat_t = a x_t + sum_h c_h
sum_{s<=t} w_h(t, s) x_{t-s} + const, w_h(t, .) = softmax over s <= t of -p_h phi(s) with
phi(s) = s (lin) or log(1 + s) (log). With white x the relative MSE is exactly
sum_t ||R_t - K_t||^2 / sum_t ||R_t||^2 (R, K the target's and the model's lag kernels),
which this script minimizes over (p_h, c_h, a) by Adam then L-BFGS from several starts (the
ALiBi slopes, and random ones of either sign), in double precision.
Prints one line per (decay, rpe): the minimal relative error for each H.
"""
import argparse, math

import torch

torch.set_default_dtype(torch.float64)


def target(decay, T):
    s = torch.arange(T, dtype=torch.float64)
    r = torch.exp(-0.1 * s) if decay == "exp" else (1 + s) ** -1.0
    R = r[None, :] * (s[None, :] <= s[:, None])  # [t, lag]
    return R / R.sum(1, keepdim=True)


def best(decay, rpe, H, T, restarts):
    R = target(decay, T)
    s = torch.arange(T, dtype=torch.float64)
    visible = s[None, :] <= s[:, None]
    phi = s if rpe == "lin" else torch.log1p(s)
    lag0 = torch.zeros(T, T)
    lag0[:, 0] = 1.0  # the residual stream carries x_t: lag 0 at every t
    g = torch.Generator().manual_seed(0)
    out = float("inf")
    for r in range(restarts):
        if r == 0:
            p0 = torch.tensor([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)])
        else:
            p0 = torch.exp(torch.randn(H, generator=g) * 2 - 1) * torch.sign(torch.randn(H, generator=g))
        p = p0.clone().requires_grad_(True)
        c = torch.full((H,), 1.0 / H, requires_grad=True)
        a = torch.zeros((), requires_grad=True)

        def loss():
            logits = (-p[:, None, None] * phi[None, None, :]).masked_fill(~visible[None], -float("inf"))
            K = (c[:, None, None] * torch.softmax(logits, -1)).sum(0) + a * lag0
            return ((R - K) ** 2).sum() / (R ** 2).sum()

        opt = torch.optim.Adam([p, c, a], lr=0.05)
        for _ in range(1500):
            opt.zero_grad()
            l = loss()
            l.backward()
            opt.step()
        opt = torch.optim.LBFGS([p, c, a], max_iter=500, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            l = loss()
            l.backward()
            return l

        opt.step(closure)
        v = loss().item()
        if math.isfinite(v):
            out = min(out, v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--heads", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--restarts", type=int, default=12)
    args = ap.parse_args()
    for decay, rpe in [("poly", "lin"), ("poly", "log"), ("exp", "log"), ("exp", "lin")]:
        vals = [best(decay, rpe, H, args.seq_len, args.restarts) for H in args.heads]
        print(f"{decay} {rpe} " + " ".join(f"H={H}:{v:.4g}" for H, v in zip(args.heads, vals)), flush=True)


if __name__ == "__main__":
    main()

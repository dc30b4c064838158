"""Benchmark: NLL with the first-order WKB correction for a batch of 2-D points.

Baseline (like the paper's code): a per-point loop of scipy ``solve_ivp`` (RK45): the outer
ODE for ``(x, int div f_PF, dx, int div delta f_PF)`` calls, at every right-hand-side
evaluation, 2d + 1 = 5 inner ``solve_ivp`` PF-ODE solves for the central differences
(step 0.01) of ``log q_t^0``; the network and its derivatives are jitted JAX functions.

Ours, at the same tolerance, one compiled call through diffrax (Dopri5 = RK45's tableau) for
the whole batch (``wkb_log_likelihood_batch``): (a) the same nested finite-difference
algorithm (``method="fd"``), all points vmapped together and as a compiled loop
(``lax.map``, batch_size 1: no lane divergence), (b) the default adjoint sweep
(``method="adjoint"``, two solves per point), vmapped.

    python benchmarks/diffusion_likelihood.py [--batch 64] [--scipy-points 3] [--tol 1e-3]

The scipy loop is timed on ``--scipy-points`` points and scaled to the batch (per-point cost
is independent of the batch for a loop). Ratios are printed last.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

import bayesqcd
from bayesqcd.diffusion import Simple, make_data, train_score, wkb_log_likelihood_batch
from bayesqcd.nn.score_nets import MLPScore


def scipy_wkb(model, sde, x0, tol, fd_step=0.01):
    """The paper's nested algorithm with scipy: returns (log q0, c1) for one point."""

    @jax.jit
    def inner_rhs(t, x):
        fn = lambda z: sde.f(t) * z - 0.5 * sde.g2(t) * model(z, t)
        return jnp.concatenate([fn(x), jnp.trace(jax.jacfwd(fn)(x))[None]])

    @jax.jit
    def outer_parts(t, x, dx):
        fn = lambda z: sde.f(t) * z - 0.5 * sde.g2(t) * model(z, t)
        div = lambda z: jnp.trace(jax.jacfwd(fn)(z))
        fx, jdx = jax.jvp(fn, (x,), (dx,))
        d, dd = jax.jvp(div, (x,), (dx,))
        div_s = jnp.trace(jax.jacfwd(lambda z: model(z, t))(x))
        return fx, d, jdx, dd, model(x, t), div_s, sde.g2(t)

    log_prior = lambda z: -0.5 * float(z @ z) - np.log(2 * np.pi)

    def log_q(y, t):
        if t >= sde.T:
            return log_prior(y)
        sol = solve_ivp(lambda s, u: np.asarray(inner_rhs(s, u[:2])), (t, sde.T),
                        np.concatenate([y, [0.0]]), rtol=tol, atol=tol)
        u = sol.y[:, -1]
        return log_prior(u[:2]) + u[2]

    e = fd_step * np.eye(2)

    def outer(t, y):
        x, dx = y[0:2], y[3:5]
        fx, d, jdx, dd, s, div_s, g2 = (np.asarray(a) for a in outer_parts(t, x, dx))
        l0 = log_q(x, t)
        lp = np.array([log_q(x + e[i], t) for i in range(2)])
        lm = np.array([log_q(x - e[i], t) for i in range(2)])
        grad = (lp - lm) / (2 * fd_step)
        lap = np.sum(lp - 2 * l0 + lm) / fd_step**2
        return np.concatenate([fx, [d], jdx - 0.5 * g2 * (s - grad),
                               [dd - 0.5 * g2 * (div_s - lap)]])

    sol = solve_ivp(outer, (sde.t_min, sde.T), np.concatenate([x0, [0.0], [0.0, 0.0], [0.0]]),
                    rtol=tol, atol=tol)
    y = sol.y[:, -1]
    xT, dxT = y[0:2], y[3:5]
    return log_prior(xT) + y[2], float(dxT @ (-xT)) + y[5]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--scipy-points", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--train-steps", type=int, default=2000)
    args = ap.parse_args()
    bayesqcd.enable_x64()  # entry point: float64 on both sides, before any array is created

    sde = Simple()
    data = make_data("swiss-roll", jax.random.key(0), 3000)
    model = train_score(MLPScore(key=jax.random.key(1)), sde, data, jax.random.key(2),
                        n_steps=args.train_steps, progress=False).model
    pts = make_data("swiss-roll", jax.random.key(3), args.batch)
    print(f"score model: paper's MLP trained {args.train_steps} steps on swiss roll (SIMPLE); "
          f"batch {args.batch} points, rtol = atol = {args.tol:g}, float64, "
          f"{jax.device_count()} {jax.default_backend()} device(s)")

    timings = {}
    results = {}
    variants = {"fd, vmap": ("fd", None), "fd, lax.map": ("fd", 1), "adjoint, vmap": ("adjoint", None)}
    for name, (method, bs) in variants.items():
        fn = eqx.filter_jit(lambda p, method=method, bs=bs: wkb_log_likelihood_batch(
            model, sde, p, batch_size=bs, method=method, rtol=args.tol, atol=args.tol))
        t0 = time.perf_counter()
        jax.block_until_ready(fn(pts))
        t_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(pts))
        timings[name] = time.perf_counter() - t0
        results[name] = np.asarray(out)
        print(f"diffrax batched, {name:14s}: {timings[name]:8.3f} s for {args.batch} points "
              f"(first call incl. compile {t_compile:.1f} s)")

    n = args.scipy_points
    t0 = time.perf_counter()
    sc = [scipy_wkb(model, sde, np.asarray(pts[i]), args.tol) for i in range(1)]  # warm the jits
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    sc = np.array([scipy_wkb(model, sde, np.asarray(pts[i]), args.tol) for i in range(n)])
    per_point = (time.perf_counter() - t0) / n
    t_scipy = per_point * args.batch
    print(f"scipy solve_ivp loop (paper-like)   : {per_point:8.3f} s per point -> {t_scipy:.1f} s "
          f"for {args.batch} points (first point incl. jit warm-up {t_warm:.1f} s)")

    for name in variants:
        lq, c1 = results[name][0][:n], results[name][1][:n]
        print(f"agreement with scipy on {n} points, {name}: max |d log q0| = "
              f"{np.max(np.abs(lq - sc[:, 0])):.2e}, max |d c1| = {np.max(np.abs(c1 - sc[:, 1])):.2e}"
              f" (scipy c1 {np.round(sc[:, 1], 3).tolist()}, ours {np.round(c1, 3).tolist()})")
    best_fd = min(timings["fd, vmap"], timings["fd, lax.map"])
    print(f"ratio scipy loop / diffrax, same nested FD algorithm (best batching): "
          f"{t_scipy / best_fd:.1f}x")
    print(f"ratio scipy loop / diffrax, default adjoint method, vmapped:        "
          f"{t_scipy / timings['adjoint, vmap']:.1f}x")


if __name__ == "__main__":
    main()

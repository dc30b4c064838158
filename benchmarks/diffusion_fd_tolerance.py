"""How the paper's finite-difference WKB coefficient depends on its inner and outer tolerances.

The paper's code (as issue 25 describes it) takes grad and Laplacian of log q_t^0 by central
differences (step 0.01) of inner PF-ODE solves at tolerance 1e-5, and its Table 1 columns vary
the outer tolerance (1e-3, 1e-5). For one trained network (the study's checkpoint, trained here
if absent) and ``--n-points`` held-out points, this compares per point the nested-FD coefficient
at (inner, outer) = (1e-5, 1e-3), (1e-5, 1e-5) and (1e-3, 1e-3) with the adjoint sweep at 1e-7
(no inner solve, no FD error; the reference):

    python benchmarks/diffusion_fd_tolerance.py --data 25gauss --sde simple --seed 0 \\
        --steps 20000 --checkpoint results/table1-paper.ckpt/25gauss-simple/score-seed0.eqx

Prints, per setting, the median and maximum of |c1 - c1_ref| over the points and the change of
the mean coefficient. FD with inner tolerance tau errs by about tau / 0.01^2 in the Laplacian.
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import numpy as np

from bayesqcd.precision import x64_scope
from bayesqcd.studies import diffusion_path_integral as dpi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="25gauss")
    ap.add_argument("--sde", default="simple")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--checkpoint", default=None, help="the study's checkpoint of this training")
    ap.add_argument("--n-points", type=int, default=32)
    args = ap.parse_args()
    cfg = dpi.Config(data=args.data, sde=args.sde, n_steps=args.steps, seeds=(args.seed,),
                     checkpoint=args.checkpoint, n_eval=args.n_points)
    with x64_scope(True):
        sde = cfg.schedule()
        run = dpi.train_one(cfg, args.seed)
        model = jax.tree_util.tree_map(lambda a: a.astype(np.float64) if eqx.is_inexact_array(a) else a,
                                       run["result"].model)
        pts = run["points"]

        def coef(method: str, tol: float, inner: float | None = None) -> np.ndarray:
            return dpi.nll_and_coefficient(model, sde, pts, tol, progress=False, method=method,
                                                  inner_tol=inner, chunk=args.n_points)[1]

        ref = coef("adjoint", 1e-7)
        print(f"{args.data}/{args.sde}, seed {args.seed}, {run['result'].steps} steps, "
              f"{args.n_points} points, window {sde.window}; reference: adjoint sweep at tol 1e-7, "
              f"mean c1 {np.nanmean(ref):.3f}")
        settings = [("adjoint", 1e-3, None), ("adjoint", 1e-5, None), ("fd", 1e-3, 1e-5),
                    ("fd", 1e-5, 1e-5), ("fd", 1e-3, 1e-3)]
        for method, outer, inner in settings:
            c = coef(method, outer, inner)
            d = np.abs(c - ref)
            label = f"{method:7s} outer {outer:g}" + ("" if inner is None else f", inner {inner:g}")
            print(f"{label:32s}: |c1 - ref| median {np.nanmedian(d):.2e}, max {np.nanmax(d):.2e}; "
                  f"mean c1 {np.nanmean(c):.3f} (ref {np.nanmean(ref):.3f})", flush=True)


if __name__ == "__main__":
    main()

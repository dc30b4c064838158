"""Time to a posterior for one spectral mock: GP-prior NUTS vs score-based sampling vs MEM (and BR).

All four run on the same problem (one Breit-Wigner peak, relative noise eps, 25 momenta,
``n_omega`` grid points) in float64 on the same machine, one after the other; each is timed
twice and the second (compiled) run is reported next to the first. The score-based sampler's
one-off prior training is timed separately. Ratios are printed last.

    python benchmarks/spectral.py [--eps 1e-3] [--n-omega 500] [--samples 300]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mock", default="bw1")
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--n-omega", type=int, default=500)
    ap.add_argument("--samples", type=int, default=300, help="posterior draws of every method")
    ap.add_argument("--prior-steps", type=int, default=10000)
    ap.add_argument("--prior-checkpoint", default=None)
    args = ap.parse_args()

    import jax

    import bayesqcd

    bayesqcd.enable_x64()
    from bayesqcd.studies.spectral import Config, evaluate, make_problem, run_method, train_prior

    cfg = Config(mock=args.mock, eps=args.eps, n_omega=args.n_omega, num_warmup=args.samples,
                 num_samples=args.samples // 2, num_chains=2, score_samples=args.samples,
                 mem_samples=50, prior_steps=args.prior_steps, prior_checkpoint=args.prior_checkpoint)
    mock = make_problem(cfg)
    print(f"mock {args.mock}, eps {args.eps:g}, {args.n_omega} omega points, {jax.devices()[0].platform}")
    t0 = time.perf_counter()
    prior, info = train_prior(mock.omega, cfg, key=jax.random.key(1), progress=False)
    train_s = time.perf_counter() - t0
    print(f"diffusion prior training ({info['steps']} steps, resumed ones not re-timed): {train_s:.1f} s")
    times = {}
    for method in ("mem", "br", "score", "nuts"):
        runs = []
        for rep in range(2):
            t = time.perf_counter()
            idata = run_method(method, mock, cfg, key=jax.random.key(rep), prior=prior, progress=False)
            runs.append(time.perf_counter() - t)
        m = evaluate(idata, mock)
        times[method] = runs[1]
        print(f"{method:6s}: first {runs[0]:7.2f} s, second {runs[1]:7.2f} s; draws {m['n_draws']}, "
              f"MSE {m['mse']:.2e}, coverage {m['coverage']:.2f}")
    print("ratios (second runs):")
    print(f"  NUTS / MEM   = {times['nuts'] / times['mem']:.2f}")
    print(f"  BR / MEM     = {times['br'] / times['mem']:.2f}")
    print(f"  score / MEM  = {times['score'] / times['mem']:.2f}")
    print(f"  NUTS / score = {times['nuts'] / times['score']:.2f}")
    print(f"  (score + training) / NUTS = {(times['score'] + train_s) / times['nuts']:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: independent samples per second of HMC, a normalizing flow and a diffusion model
for 2-D phi^4 theory (default: L = 8, m^2 = -4, lambda = 8), on this machine's CPU cores.

Independent samples = N / (2 tau_int(|M|)) of the final chain (HMC chains, or the
independence-Metropolis chain of the flow / diffusion proposals). Two rates per method:
sampling only (a trained model is reused), and including the one-off costs (training; for
the diffusion model also its HMC training data). HMC, measured in the same run, is the
baseline: ratios = rate / HMC rate, printed last.

    python benchmarks/lattice.py [--flow-steps 1000] [--score-steps 500] [--diffusion-proposals 64]

Budgets are small by default (a few minutes in all); the example
``examples/phi4_generative.py`` runs the longer training.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from bayesqcd.studies import lattice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--L", type=int, default=8)
    ap.add_argument("--m2", type=float, default=-4.0)
    ap.add_argument("--lam", type=float, default=8.0)
    ap.add_argument("--hmc-samples", type=int, default=2000)
    ap.add_argument("--flow-steps", type=int, default=1000)
    ap.add_argument("--flow-proposals", type=int, default=20000)
    ap.add_argument("--score-steps", type=int, default=500)
    ap.add_argument("--diffusion-proposals", type=int, default=64)
    args = ap.parse_args()

    base = lattice.Config(L=args.L, m2=args.m2, lam=args.lam, hmc_samples=args.hmc_samples,
                          flow_steps=args.flow_steps, score_steps=args.score_steps)
    runs = {
        "hmc": dataclasses.replace(base, method="hmc"),
        "flow": dataclasses.replace(base, method="flow", n_proposals=args.flow_proposals),
        "diffusion": dataclasses.replace(base, method="diffusion", n_proposals=args.diffusion_proposals,
                                         proposal_batch=min(64, args.diffusion_proposals)),
    }
    print(f"L={args.L}, m2={args.m2}, lambda={args.lam}; {os.cpu_count()} CPU cores")
    rates = {}
    for name, cfg in runs.items():
        s = lattice.run(cfg, progress=False)
        n_ind = s["observables"]["n_independent"]
        one_off = s["train_time_s"] + s.get("hmc_data_time_s", 0.0)
        rates[name] = (n_ind / s["wall_time_s"], n_ind / (s["wall_time_s"] + one_off))
        print(f"{name:10s} N={s['n_configs']:7d} tau_int={s['tau_int_absM']['value']:7.2f} "
              f"ESS/N={s['ess_per_n']:.4f} acc={s['acceptance']:.3f} "
              f"sampling {s['wall_time_s']:8.1f} s, one-off {one_off:8.1f} s -> "
              f"{rates[name][0]:10.3g} indep/s ({rates[name][1]:10.3g} incl. one-off)", flush=True)
    print("\nratios to HMC (independent samples per second; sampling only | incl. one-off costs):")
    for name, (r, r_all) in rates.items():
        print(f"  {name:10s} {r / rates['hmc'][0]:10.3g} | {r_all / rates['hmc'][1]:10.3g}")


if __name__ == "__main__":
    main()

"""Neutron-star EoS posterior: a mock-data recovery test, then the real observations.

    python examples/ns_eos_inference.py [--out results/ns_example] [--samples 1000]

1. Mock: six NICER-like (M, R) sources and one radio mass drawn from SLy; the c_s^2 posterior
   must contain the true R_1.4 and M_TOV.
2. Real: the shipped NICER, radio and GW170817 constraints (bayesqcd/data/observations.csv).

Each writes a results folder (posterior.nc, summary.json, summary.csv, figures) and prints the
posterior R_1.4, M_TOV and Lambda_1.4 with 68% intervals.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={min(4, os.cpu_count() or 1)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/ns_example")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=500)
    args = p.parse_args()

    import bayesqcd
    from bayesqcd.data import load_observations
    from bayesqcd.inference import diagnostics
    from bayesqcd.studies.neutron_star import infer, mock_observations
    from bayesqcd.studies.neutron_star import report as ns_report

    bayesqcd.enable_x64()  # neutron-star structure needs float64

    runs = {"mock_SLy": mock_observations("SLy", 6, seed=1), "real": (load_observations(), None)}
    for name, (obs, truth) in runs.items():
        idata = infer(obs, warmup=args.warmup, samples=args.samples)
        diag = diagnostics(idata, ns_report.parameter_names(idata))
        out = ns_report.write_results(f"{args.out}/{name}", idata, observations=obs, diagnostics=diag,
                                      truth=truth, settings={"example": name})
        print(f"\n{name}: {out}  (max R-hat {diag['max_rhat']:.3f}, min ESS {diag['min_ess_bulk']:.0f})")
        for q, h in ns_report.headline(idata, {k: v for k, v in (truth or {}).items() if k != "curves"}).items():
            t = f"  truth {h['truth']:.3f} (in 90%: {h['truth_in_ci90']})" if "truth" in h else ""
            print(f"  {q:11s} {h['median']:8.3f}  68% [{h['ci68'][0]:.3f}, {h['ci68'][1]:.3f}]{t}")


if __name__ == "__main__":
    main()

"""The full comparison on the shipped observations: Bayesian posterior (NUTS) against the
two amortized methods, neural regression with observational data augmentation and neural
posterior estimation (NPE).

    python examples/ns_regression_compare.py --out results/comparison           # ~20 min on 2 cores
    python examples/ns_regression_compare.py --out /tmp/cmp --quick             # ~5 min, rough

Runs the studies behind the commands a user would run (or reuses their folders when they
exist):

    bayesqcd ns-eos --out OUT/posterior                       # studies.neutron_star.run
    bayesqcd ns-regression --out OUT/regression               # studies.ns_regression.run
    bayesqcd ns-regression --method npe --out OUT/npe
    bayesqcd compare OUT/posterior OUT/regression --out OUT/compare
    bayesqcd compare OUT/posterior OUT/npe --out OUT/compare_npe

and prints the agreement of the 68% bands, the headline numbers and the calibration of the
two amortized methods on held-out simulations.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={min(4, os.cpu_count() or 1)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/comparison", help="folder for the three results")
    p.add_argument("--quick", action="store_true", help="short chains and a small training set")
    p.add_argument("--redo", action="store_true", help="rerun steps whose folders exist")
    args = p.parse_args(argv)
    out = Path(args.out)
    post, reg, npe = out / "posterior", out / "regression", out / "npe"
    from bayesqcd.data import load_observations
    from bayesqcd.report import ResultsDir
    from bayesqcd.studies import neutron_star, ns_regression
    from bayesqcd.studies.neutron_star.compare import write_comparison

    nuts = neutron_star.Config(chains=2, warmup=100, samples=100) if args.quick else neutron_star.Config()
    regression = (ns_regression.Config(n_train=1000, steps=1000, members=3, input_draws=30) if args.quick
                  else ns_regression.Config())
    npe_config = (ns_regression.Config(method="npe", n_train=1000, npe_steps=1000) if args.quick
                  else ns_regression.Config(method="npe"))
    for folder, study, config in ((post, neutron_star, nuts), (reg, ns_regression, regression),
                                  (npe, ns_regression, npe_config)):
        if folder.exists() and not args.redo:
            print(f"reusing {folder}")
            continue
        study.run(config, folder, progress=False)
    for amortized, cmp in ((reg, out / "compare"), (npe, out / "compare_npe")):
        summary = write_comparison(ResultsDir(cmp, overwrite=True), post, amortized, observations=load_observations())
        agreement = summary["agreement"]["variables"]
        print(f"\n{amortized.name} against the posterior ({cmp / 'comparison.png'}): 68% band overlap "
              + ", ".join(f"{v} {agreement[v]['overlap']:.2f}" for v in ("R_of_M", "p_of_eps", "cs2_of_n")))
        for name, h in summary["headline"].items():
            print(f"  {name}: R_1.4 {h['R_1.4']['median']:.2f} {[round(v, 2) for v in h['R_1.4']['ci68']]} km, "
                  f"M_TOV {h['M_TOV']['median']:.2f} M_sun")
        cal = json.loads((amortized / "summary.json").read_text())["calibration"]
        print(f"  coverage of 68% / 95% intervals over {cal['n_sims']} held-out EoS: "
              + ", ".join(f"{k} {cal['coverage_at']['0.68'][k]:.2f}/{cal['coverage_at']['0.95'][k]:.2f}"
                          for k in cal["coverage_at"]["0.68"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

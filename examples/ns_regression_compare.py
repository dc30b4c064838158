"""The full comparison on the shipped observations: Bayesian posterior (NUTS) against the
amortized neural regression with observational data augmentation.

    python examples/ns_regression_compare.py --out results/comparison           # ~15 min on 2 cores
    python examples/ns_regression_compare.py --out /tmp/cmp --quick             # ~4 min, rough

Runs the three studies behind the commands a user would run (or reuses their folders when
they exist):

    bayesqcd ns-eos --out OUT/posterior                       # studies.neutron_star.run
    bayesqcd ns-regression --out OUT/regression               # studies.ns_regression.run
    bayesqcd compare OUT/posterior OUT/regression --out OUT/compare

and prints the agreement of the 68% bands and the first-order histogram.
"""

from __future__ import annotations

import argparse
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
    post, reg, cmp = out / "posterior", out / "regression", out / "compare"
    from bayesqcd.data import load_observations
    from bayesqcd.studies import neutron_star, ns_regression
    from bayesqcd.studies.neutron_star.compare import write_comparison

    nuts = neutron_star.Config(chains=2, warmup=100, samples=100) if args.quick else neutron_star.Config()
    regression = (ns_regression.Config(n_train=1000, steps=1000, members=3, input_draws=30) if args.quick
                  else ns_regression.Config())
    for folder, study, config in ((post, neutron_star, nuts), (reg, ns_regression, regression)):
        if folder.exists() and not args.redo:
            print(f"reusing {folder}")
            continue
        study.run(config, folder, progress=False)
    summary = write_comparison(cmp, post, reg, observations=load_observations())
    print(f"\nfigures: {cmp / 'comparison.png'}, {cmp / 'first_order.png'}")
    for name, h in summary["headline"].items():
        print(f"  {name}: R_1.4 {h['R_1.4']['median']:.2f} {[round(v, 2) for v in h['R_1.4']['ci68']]} km, "
              f"M_TOV {h['M_TOV']['median']:.2f} M_sun")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

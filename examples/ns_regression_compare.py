"""The full comparison on the shipped observations: Bayesian posterior (NUTS) against the
amortized neural regression with observational data augmentation.

    python examples/ns_regression_compare.py --out results/comparison           # ~15 min on 2 cores
    python examples/ns_regression_compare.py --out /tmp/cmp --quick             # ~4 min, rough

Runs the three commands a user would run (or reuses their folders when they exist):

    bayesqcd ns-eos --out OUT/posterior
    bayesqcd ns-regression --out OUT/regression
    bayesqcd compare OUT/posterior OUT/regression --out OUT/compare

and prints the agreement of the 68% bands and the first-order histogram.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bayesqcd.cli import main as bayesqcd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/comparison", help="folder for the three results")
    p.add_argument("--quick", action="store_true", help="short chains and a small training set")
    p.add_argument("--redo", action="store_true", help="rerun steps whose folders exist")
    args = p.parse_args(argv)
    out = Path(args.out)
    post, reg, cmp = out / "posterior", out / "regression", out / "compare"
    quick_nuts = ["--chains", "2", "--warmup", "100", "--samples", "100"] if args.quick else []
    quick_reg = ["--n-train", "1000", "--steps", "1000", "--members", "3", "--input-draws", "30"] if args.quick else []
    steps = [(post, ["ns-eos", "--out", str(post), "--no-progress", *quick_nuts]),
             (reg, ["ns-regression", "--out", str(reg), "--no-progress", *quick_reg])]
    for folder, cmd in steps:
        if folder.exists() and not args.redo:
            print(f"reusing {folder}")
            continue
        if bayesqcd(cmd) != 0:
            return 1
    if bayesqcd(["compare", str(post), str(reg), "--out", str(cmp)]) != 0:
        return 1
    summary = json.loads((cmp / "summary.json").read_text())
    print(f"\nfigures: {cmp / 'comparison.png'}, {cmp / 'first_order.png'}")
    for name, h in summary["headline"].items():
        print(f"  {name}: R_1.4 {h['R_1.4']['median']:.2f} {[round(v, 2) for v in h['R_1.4']['ci68']]} km, "
              f"M_TOV {h['M_TOV']['median']:.2f} M_sun")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``bayesqcd compare``: two neutron-star EoS results side by side.

    bayesqcd compare results/ results/regression --out results/compare

The work is :func:`bayesqcd.studies.neutron_star.compare.write_comparison`.
"""

from __future__ import annotations

import argparse

from bayesqcd.cli.common import add_out, require_at_least, results_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    c = subparsers.add_parser(
        "compare",
        help="compare two EoS results (e.g. NUTS posterior vs neural regression)",
        description="Overlay the p(eps), c_s^2(n) and M-R bands of two results folders (from ns-eos or "
        "ns-regression), measure the overlap of their 68%% bands, and count per density segment how often "
        "c_s^2 falls below a threshold (likely first-order regions).",
    )
    c.add_argument("first", help="results folder (e.g. the NUTS posterior)")
    c.add_argument("second", help="results folder (e.g. the regression)")
    c.add_argument("--segments", type=int, default=5, help="density segments of the histogram (default 5)")
    c.add_argument("--threshold", type=float, default=0.1, help="c_s^2 threshold (default 0.1)")
    add_out(c)
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``bayesqcd compare``."""
    require_at_least(args, 1, "segments")
    from bayesqcd.data import load_observations
    from bayesqcd.precision import enable_x64
    from bayesqcd.studies.neutron_star.compare import write_comparison

    enable_x64()
    out = results_dir(args, inputs=(args.first, args.second))
    summary = write_comparison(out, args.first, args.second, n_segments=args.segments,
                               threshold=args.threshold, observations=load_observations())
    print(f"comparison -> {args.out}")
    for name in ("p_of_eps", "cs2_of_n", "R_of_M"):
        print(f"  68% band overlap {name:9s} {summary['agreement'][name]['mean_overlap']:.3f}")
    for label, h in summary["first_order"].items():
        print(f"  c_s^2 < {h['threshold']} per segment ({label}): " + " ".join(f"{f:.2f}" for f in h["fractions"]))
    return 0

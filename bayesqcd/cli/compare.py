"""``bayesqcd compare``: two results side by side (any model; neutron-star EoS results in detail).

    bayesqcd compare results/ results/regression --out results/compare
    bayesqcd compare run_nuts/ run_npe/ --vars omega,zeta --out results/compare_oscillator

Two EoS results (both with ``p_of_eps``, ``cs2_of_n``, ``R_of_M``, ``R_1.4``, ``M_TOV``,
``Lambda_1.4``) get :func:`bayesqcd.studies.neutron_star.compare.write_comparison` (with the
first-order histogram); any other pair, or ``--vars``, gets :func:`bayesqcd.report.write_compare`.
"""

from __future__ import annotations

import argparse

from bayesqcd.cli.common import add_out, parse_list, require_at_least, results_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    c = subparsers.add_parser(
        "compare",
        help="compare two results (e.g. NUTS posterior vs neural regression), of any model",
        description="Compare the posteriors of two results folders (each with posterior.nc or one *.nc file) "
        "variable by variable: median difference in sd, overlap of the central intervals, width ratio, and "
        "for curves the fraction of points where each median lies in the other's band. For two neutron-star "
        "EoS results (from ns-eos or ns-regression) also overlay the p(eps), c_s^2(n) and M-R bands and count "
        "per density segment how often c_s^2 falls below a threshold (likely first-order regions).",
    )
    c.add_argument("first", help="results folder or .nc file (e.g. the NUTS posterior; the reference)")
    c.add_argument("second", help="results folder or .nc file (e.g. the regression)")
    c.add_argument("--vars", default=None, metavar="A,B",
                   help="posterior variables to compare (default: the EoS variables for two EoS results, "
                        "else every variable both share)")
    c.add_argument("--level", type=float, default=0.68, help="central credible level (default 0.68)")
    c.add_argument("--segments", type=int, default=5, help="EoS: density segments of the histogram (default 5)")
    c.add_argument("--threshold", type=float, default=0.1, help="EoS: c_s^2 threshold (default 0.1)")
    add_out(c)
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``bayesqcd compare``."""
    require_at_least(args, 1, "segments")
    if not 0.0 < args.level < 1.0:
        raise ValueError(f"--level = {args.level} is outside the valid range (0, 1)")
    var_names = parse_list(args.vars, "vars", str) if args.vars is not None else None
    from bayesqcd.report import load_result, write_compare
    from bayesqcd.studies.neutron_star.compare import has_eos_variables, write_comparison

    out = results_dir(args, inputs=(args.first, args.second))
    first, second = load_result(args.first), load_result(args.second)
    if var_names is None and has_eos_variables(first) and has_eos_variables(second):
        from bayesqcd.data import load_observations
        from bayesqcd.precision import enable_x64

        enable_x64()
        summary = write_comparison(out, args.first, args.second, n_segments=args.segments, threshold=args.threshold,
                                   level=args.level, observations=load_observations())
        print(f"comparison -> {args.out}")
        for name in ("p_of_eps", "cs2_of_n", "R_of_M"):
            print(f"  {args.level:.0%} band overlap {name:9s} "
                  f"{summary['agreement']['variables'][name]['overlap']:.3f}")
        for label, h in summary["first_order"].items():
            print(f"  c_s^2 < {h['threshold']} per segment ({label}): "
                  + " ".join(f"{f:.2f}" for f in h["fractions"]))
        return 0
    comparison = write_compare(out, first, second, var_names=var_names, level=args.level,
                               inputs={"first": args.first, "second": args.second})
    print(comparison)
    print(f"comparison -> {args.out}")
    return 0

"""``bayesqcd tov``: mass, radius and tidal deformability of an equation of state (:mod:`bayesqcd.tov`)."""

from __future__ import annotations

import argparse
import sys

NAMES = ("SLy", "APR4", "MPA1", "H4", "WFF1")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tov`` subcommand."""
    p = subparsers.add_parser(
        "tov",
        help="mass-radius-Lambda curve, M_TOV, R_1.4 and Lambda_1.4 of an EoS",
        description="Solve the TOV and tidal equations along the stable branch of an EoS and print "
        "M_TOV [M_sun], the radius at M_TOV [km], R_1.4 [km] and Lambda_1.4.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--eos", metavar="NAME", help=f"named piecewise polytrope: {', '.join(NAMES)}")
    src.add_argument("--eos-file", metavar="FILE", help="table with columns n [fm^-3], eps, p [MeV fm^-3]")
    src.add_argument("--polytrope", nargs=4, type=float, metavar=("LOGP1", "G1", "G2", "G3"),
                     help="Read et al. piecewise polytrope: log10 p1 [dyn cm^-2] and three adiabatic indices")
    src.add_argument("--cs2", nargs="+", type=float, metavar="C",
                     help="c_s^2 in equal density segments from 1.1 n_0 to 8 n_0 (0 = first-order transition)")
    p.add_argument("--points", type=int, default=100, help="stars along the sequence (default 100)")
    p.add_argument("--tight", action="store_true", help="tight tolerances (rtol 1e-10), slower")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--plot", metavar="FILE.png", help="draw the mass-radius curve into this file")
    p.set_defaults(func=run)


def build_eos(args: argparse.Namespace):
    """The EoSTable the arguments ask for, and a description of it."""
    from bayesqcd import eos

    if args.eos is not None:
        return eos.named(args.eos), f"piecewise polytrope {args.eos} (Read et al. 2009)"
    if args.eos_file is not None:
        return eos.from_file(args.eos_file), f"table {args.eos_file}"
    if args.polytrope is not None:
        return eos.piecewise_polytrope(*args.polytrope), "piecewise polytrope " + " ".join(map(str, args.polytrope))
    return eos.sound_speed(args.cs2), "c_s^2 segments " + " ".join(map(str, args.cs2))


def run(args: argparse.Namespace) -> int:
    """Solve the sequence and print (or write) the results."""
    if args.points < 8:
        raise ValueError(f"--points = {args.points} is outside the valid range [8, inf)")
    import numpy as np

    from bayesqcd import tov, units
    from bayesqcd.precision import enable_x64
    from bayesqcd.report import to_json

    enable_x64()
    table, label = build_eos(args)
    curve = tov.mass_radius_curve(table, args.points, config=tov.TIGHT if args.tight else tov.DEFAULT)
    out = tov.summarize(curve)
    warnings = []
    if not bool(curve.max_reached):
        warnings.append("the mass still grows at the top of the table: M_max is a lower bound")
    acausal = np.asarray(table.t_nodes)[~np.asarray(table.causal)]
    if bool(curve.max_reached) and not bool(curve.valid) and acausal.size:
        p_acausal = float(table(acausal.min())[1]) / units.MEV_FM3_TO_KM2
        warnings.append(f"c_s^2 > 1 above p = {p_acausal:.4g} MeV fm^-3, below the centre of the "
                        "maximum-mass star: the heaviest stars are acausal")
    if args.json:
        print(to_json({"eos": label, **out, "valid": bool(curve.valid), "warnings": warnings}))
    else:
        print(f"EoS: {label}")
        print(f"M_max      = {out['M_max']:.4f} M_sun")
        print(f"R(M_max)   = {out['R_at_M_max']:.3f} km")
        print(f"R_1.4      = {out['R_1.4']:.3f} km")
        print(f"Lambda_1.4 = {out['Lambda_1.4']:.1f}")
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
    if args.plot:
        from bayesqcd.report import plot_mass_radius

        plot_mass_radius({label: (out["R"], out["M"])}, args.plot)
    return 0

"""Mass-radius curves of the Read et al. (2009) piecewise polytropes, next to the published maxima.

    python examples/tov_named_eos.py --out results/tov

Prints M_max, R(M_max), R_1.4 and Lambda_1.4 for SLy, APR4, MPA1, H4 and WFF1 with the
published M_max of the tabulated EoS (Read et al. 2009, Table III), and draws the curves.
"""

import argparse
from pathlib import Path

import jax

import bayesqcd
from bayesqcd import eos, tov
from bayesqcd.report import atomic_results_dir, plot_mass_radius, write_json
from bayesqcd.tov import summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/tov", help="results folder")
    args = parser.parse_args()
    bayesqcd.enable_x64()  # neutron-star structure needs float64
    curve_of = jax.jit(lambda table: tov.mass_radius_curve(table, 100))
    rows, curves = {}, {}
    print(f"{'EoS':6s} {'M_max':>7s} {'published':>9s} {'R(M_max)':>9s} {'R_1.4':>7s} {'Lambda_1.4':>10s}")
    for name in eos.NAMED:
        s = summarize(curve_of(eos.named(name)))
        pub = eos.PUBLISHED_M_MAX.get(name)
        print(f"{name:6s} {s['M_max']:7.4f} {pub if pub else float('nan'):9.3f} {s['R_at_M_max']:9.3f} "
              f"{s['R_1.4']:7.3f} {s['Lambda_1.4']:10.1f}")
        rows[name] = {k: s[k] for k in ("M_max", "R_at_M_max", "R_1.4", "Lambda_1.4")} | {"published_M_max": pub}
        curves[name] = (s["R"], s["M"])
    with atomic_results_dir(args.out) as tmp:
        write_json(tmp / "summary.json", rows)
        plot_mass_radius(curves, tmp / "mass_radius.png")
    print(f"wrote {Path(args.out) / 'summary.json'} and mass_radius.png")


if __name__ == "__main__":
    main()

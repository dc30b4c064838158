"""``bayesqcd ns-regression``: amortized inference of the EoS (:mod:`bayesqcd.studies.ns_regression`).

    bayesqcd ns-regression --out results/regression              # regression: train (or resume), apply
    bayesqcd ns-regression --method npe --out results/npe        # neural posterior estimation
"""

from __future__ import annotations

import argparse

from bayesqcd.cli.common import (add_common, add_distributed, require_at_least, results_dir, settings_of,
                                 start_distributed)
from bayesqcd.cli.ns_eos import add_data_arguments, data_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ns-regression`` subcommand."""
    p = subparsers.add_parser(
        "ns-regression",
        help="amortized EoS inference: neural regression (vs polynomial) or neural posterior estimation",
        description="Simulate EoS from the c_s^2 prior with their stars and noisy observations. With --method "
        "regression (default): train an MLP ensemble and a polynomial regression with and without observational "
        "data augmentation, report their validation errors, and apply the augmented ensemble to the observations' "
        "mass-radius sources. With --method npe: train a conditional normalizing flow (neural posterior "
        "estimation, observations re-drawn in every minibatch) and sample its posterior for the observations. "
        "Either way: coverage and SBC ranks per c_s^2 segment on held-out simulations (calibration.png), and a "
        "results folder that `bayesqcd compare` takes beside an ns-eos one. Training resumes from the "
        "checkpoints in --checkpoint-dir.",
    )
    add_data_arguments(p)
    add_common(p)
    add_distributed(p)
    p.add_argument("--method", choices=("regression", "npe"), default="regression",
                   help="regression (MLP ensemble and polynomial) or npe (neural posterior estimation); "
                        "default regression")
    p.add_argument("--segments", type=int, default=5, help="c_s^2 segments (default 5)")
    p.add_argument("--n-train", type=int, default=4000, help="training EoS (default 4000)")
    p.add_argument("--n-val", type=int, default=2000, help="validation EoS (default 2000)")
    p.add_argument("--held-out", type=int, default=300, help="EoS for calibration only (default 300)")
    p.add_argument("--copies", type=int, default=20,
                   help="regression: noisy copies per EoS with augmentation (default 20)")
    p.add_argument("--members", type=int, default=5, help="networks in the ensemble (default 5)")
    p.add_argument("--width", type=int, default=64, help="hidden units per layer (default 64)")
    p.add_argument("--depth", type=int, default=3, help="hidden layers (default 3)")
    p.add_argument("--steps", type=int, default=4000, help="training steps (default 4000)")
    p.add_argument("--input-draws", type=int, default=100,
                   help="regression: re-observations of the data per ensemble member (default 100)")
    p.add_argument("--npe-steps", type=int, default=8000,
                   help="npe: training steps, early stopping on the validation set (default 8000)")
    p.add_argument("--npe-knots", type=int, default=8,
                   help="npe: inner knots of the flow's splines; 0: affine coupling layers, several times "
                        "faster to compile (default 8)")
    p.add_argument("--draws", type=int, default=1000, help="npe: posterior draws for the data (default 1000)")
    p.add_argument("--calibration-draws", type=int, default=200,
                   help="draws per held-out simulation for the calibration (default 200)")
    p.add_argument("--checkpoint-dir", default=None, help="network checkpoints (default: OUT.ckpt)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``bayesqcd ns-regression``."""
    require_at_least(args, 1, "segments", "n_train", "n_val", "held_out", "copies", "members", "width", "depth",
                     "steps", "input_draws", "npe_steps", "draws")
    require_at_least(args, 0, "npe_knots")
    require_at_least(args, 2, "calibration_draws")
    main = start_distributed(args)
    out = results_dir(args) if main else None  # only process 0 checks and writes --out (and checkpoints)
    import numpy as np

    from bayesqcd.studies import ns_regression

    config = ns_regression.Config(
        data=data_spec(args), method=args.method, seed=args.seed, segments=args.segments, n_train=args.n_train,
        n_val=args.n_val, held_out=args.held_out, copies=args.copies, members=args.members, width=args.width,
        depth=args.depth, steps=args.steps, input_draws=args.input_draws, npe_steps=args.npe_steps,
        npe_knots=args.npe_knots, draws=args.draws, calibration_draws=args.calibration_draws,
        checkpoint_dir=args.checkpoint_dir if main else None)
    result = ns_regression.run(config, out, progress=not args.no_progress, settings=settings_of(args))
    if not main:
        return 0
    label = "neural regression" if args.method == "regression" else "neural posterior estimation"
    print(f"{label} ({result['total_wall_time_s']:.0f} s) -> {args.out}")
    if args.method == "regression":
        study = result["study"]
        gen = study.generation
        print(f"  EoS kept {gen.n_kept} of {gen.n_drawn} ({gen.eos_per_second:.0f} EoS/s, compilation included)")
        print("  validation:   RMS c_s^2   RMS dR [km]   invalid")
        for name, v in study.validation.items():
            print(f"    {name:11s} {v['rms']:9.4f}   {v['rms_R_km']:9.3f}   {v['invalid_fraction']:7.3f}")
    cal = result["calibration"]
    print(f"  coverage of the 68% / 95% intervals over {cal.n_sims} held-out EoS, per c_s^2 segment:")
    for name, c in cal.coverage.items():
        print(f"    {name}: {np.interp(0.68, cal.levels, c):.2f} / {np.interp(0.95, cal.levels, c):.2f}   "
              f"SBC rank p = {cal.rank_pvalue(name):.3f}")
    for name, h in result["headline"].items():
        lo, hi = h["ci68"]
        print(f"  {name:11s} {h['median']:9.3f}  68%: [{lo:.3f}, {hi:.3f}] {h['unit']}")
    return 0

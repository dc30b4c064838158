"""``bayesqcd ns-regression`` and ``bayesqcd compare``.

    bayesqcd ns-regression --out results/regression        # train (or resume), apply to the real data
    bayesqcd compare results/ results/regression --out results/compare
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ns-regression`` and ``compare`` subcommands."""
    from bayesqcd.ns_cli import add_data_arguments

    p = subparsers.add_parser(
        "ns-regression",
        help="neural regression of the EoS with observational data augmentation (vs polynomial regression)",
        description="Generate EoS from the c_s^2 prior, train an MLP ensemble and a polynomial regression "
        "with and without observational data augmentation, report their validation errors, and apply the "
        "augmented ensemble to the observations' mass-radius sources. Network training resumes from the "
        "checkpoints in --checkpoint-dir.",
    )
    add_data_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--segments", type=int, default=5, help="c_s^2 segments (default 5)")
    p.add_argument("--n-train", type=int, default=4000, help="training EoS (default 4000)")
    p.add_argument("--n-val", type=int, default=2000, help="validation EoS (default 2000)")
    p.add_argument("--copies", type=int, default=20, help="noisy copies per EoS with augmentation (default 20)")
    p.add_argument("--members", type=int, default=5, help="networks in the ensemble (default 5)")
    p.add_argument("--width", type=int, default=64, help="hidden units per layer (default 64)")
    p.add_argument("--depth", type=int, default=3, help="hidden layers (default 3)")
    p.add_argument("--steps", type=int, default=4000, help="training steps (default 4000)")
    p.add_argument("--input-draws", type=int, default=100,
                   help="re-observations of the data per ensemble member (default 100)")
    p.add_argument("--checkpoint-dir", default=None, help="network checkpoints (default: OUT.ckpt)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="results folder (replaced atomically when the run succeeds)")
    p.set_defaults(func=run_regression)

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
    c.add_argument("--out", required=True, help="results folder")
    c.set_defaults(func=run_compare)


def run_regression(args: argparse.Namespace) -> int:
    """Entry point of ``bayesqcd ns-regression``."""
    for name in ("segments", "n_train", "n_val", "copies", "members", "width", "depth", "steps", "input_draws"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} = {getattr(args, name)} must be >= 1")
    import jax

    from bayesqcd import ns_report
    from bayesqcd.inference.regression import MLPRegressor
    from bayesqcd.ns_cli import load_data
    from bayesqcd.ns_compare import first_order_fractions
    from bayesqcd.ns_regression import (
        RegressionSettings,
        apply_regressor,
        plot_training,
        plot_validation,
        study_summary,
        train_regressors,
    )
    from bayesqcd.ns_training import ObservationModel, observed_inputs

    obs, truth = load_data(args)
    if not obs.mr:
        raise ValueError("the data have no mass-radius sources; the regression needs at least one")
    settings = RegressionSettings(
        n_train=args.n_train, n_val=args.n_val, n_segments=args.segments, n_copies=args.copies,
        obs_model=ObservationModel(n_stars=len(obs.mr)),
        network=MLPRegressor(width=args.width, depth=args.depth, n_members=args.members, n_steps=args.steps),
        n_input_draws=args.input_draws, seed=args.seed,
    )
    x_obs = observed_inputs(obs, settings.obs_model.n_stars)
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else Path(str(Path(args.out)) + ".ckpt")
    start = time.perf_counter()
    study = train_regressors(settings, checkpoint_dir=ckpt, progress=not args.no_progress)
    key = jax.random.key(args.seed + 1)
    idata = apply_regressor(study.fitted["nn_aug"], x_obs, key, settings.n_input_draws,
                            attrs={"regressor": "nn_aug"})
    poly = apply_regressor(study.fitted["poly_aug"], x_obs, key, settings.n_input_draws,
                           attrs={"regressor": "poly_aug"})
    wall = time.perf_counter() - start
    extra = {
        "regression": study_summary(study),
        "polynomial_on_data": ns_report.headline(poly),
        "first_order": first_order_fractions(idata, args.segments),
        "inference_time_s": idata.posterior.attrs["inference_time_s"],
        "checkpoint_dir": str(ckpt),
    }
    cli = {k: v for k, v in vars(args).items() if k != "func"}
    cli["total_wall_time_s"] = wall
    ns_report.write_results(
        args.out, idata, observations=obs, settings=cli, truth=truth, extra=extra,
        write_extra=lambda tmp: (plot_training(study, tmp / "training.png"),
                                 plot_validation(study, tmp / "validation.png")),
    )
    print(f"neural regression ({wall:.0f} s) -> {args.out}")
    print(f"  training EoS kept {study.generation['train'].n_kept} of {study.generation['train'].n_drawn} "
          f"({study.generation['train'].eos_per_second:.0f} EoS/s)")
    print("  validation:   RMS c_s^2   RMS dR [km]   invalid")
    for name, v in study.validation.items():
        print(f"    {name:11s} {v['rms']:9.4f}   {v['rms_R_km']:9.3f}   {v['invalid_fraction']:7.3f}")
    for name, h in ns_report.headline(idata, truth).items():
        lo, hi = h["ci68"]
        print(f"  {name:11s} {h['median']:9.3f}  68%: [{lo:.3f}, {hi:.3f}] {h['unit']}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Entry point of ``bayesqcd compare``."""
    if args.segments < 1:
        raise ValueError(f"--segments = {args.segments} must be >= 1")
    from bayesqcd.data import load_observations
    from bayesqcd.ns_compare import write_comparison

    summary = write_comparison(args.out, args.first, args.second, n_segments=args.segments,
                               threshold=args.threshold, observations=load_observations())
    print(f"comparison -> {args.out}")
    for name in ("p_of_eps", "cs2_of_n", "R_of_M"):
        print(f"  68% band overlap {name:9s} {summary['agreement'][name]['mean_overlap']:.3f}")
    for label, h in summary["first_order"].items():
        print(f"  c_s^2 < {h['threshold']} per segment ({label}): " + " ".join(f"{f:.2f}" for f in h["fractions"]))
    return 0

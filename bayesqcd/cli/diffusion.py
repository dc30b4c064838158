"""``bayesqcd diffusion``: one case of the path-integral reproduction (Table 1, W2 vs h).

Thin layer over :mod:`bayesqcd.studies.diffusion_path_integral`: the flags become a
:class:`~bayesqcd.studies.diffusion_path_integral.Config` (``--h-max``/``--n-h`` its ``h_grid``),
and :func:`~bayesqcd.studies.diffusion_path_integral.run` does the work (float64 likelihood).
``--seeds 0,1,2`` runs independent trainings; ``--outer-tols``/``--inner-tol`` set the two
tolerances separately (the inner one for the nested ``--wkb-method fd``/``autodiff``).
"""

from __future__ import annotations

import argparse

from bayesqcd.cli.common import add_common, parse_list, results_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diffusion`` subcommand."""
    p = subparsers.add_parser(
        "diffusion",
        help="train a 2-D score model; NLL at h=0, WKB coefficient, W2 against h",
        description="Reproduce one case of Hirono, Tanaka, Fukushima (ICML 2024): train the "
        "paper's MLP by score matching, then write DIR/summary.json (NLL at h=0, first-order "
        "coefficient at tol 1e-3 and 1e-5 with mean, sem, median, trimmed mean and, with --seeds, sd "
        "over trainings; the time window; W2 against h, finite-h KDE check) and figures.")
    p.add_argument("--data", required=True, choices=["swiss-roll", "25gauss"])
    p.add_argument("--sde", required=True, choices=["simple", "cosine"])
    add_common(p)
    p.add_argument("--steps", type=int, default=20000,
                   help="training steps (batch 512); the paper's 16000 epochs are ~96000")
    p.add_argument("--n-eval", type=int, default=256, help="held-out points for the NLL")
    p.add_argument("--n-samples", type=int, default=3000, help="samples per h for W2 and KDE")
    p.add_argument("--h-max", type=float, default=0.2, help="largest h of the W2 scan")
    p.add_argument("--n-h", type=int, default=6, help="number of h values in [0, h-max]")
    p.add_argument("--outer-tols", "--tols", dest="tols", default="1e-3,1e-5",
                   help="comma-separated outer solver tolerances of NLL and WKB coefficient, the "
                   "columns of the paper's Table 1 (default 1e-3,1e-5)")
    p.add_argument("--wkb-method", default="adjoint", choices=["adjoint", "fd", "autodiff"],
                   help="WKB term: adjoint sweep (default; no inner solve), or the paper's nested "
                   "central differences (fd) / forward-mode autodiff through inner PF-ODE solves")
    p.add_argument("--inner-tol", type=float, default=None,
                   help="tolerance of the inner solves of --wkb-method fd/autodiff (paper: 1e-5; "
                   "default: the outer one)")
    p.add_argument("--fd-step", type=float, default=0.01, help="FD step of --wkb-method fd (paper: 0.01)")
    p.add_argument("--t-min", type=float, default=None,
                   help="start of the time window of training, sampling, NLL and WKB "
                   "(default: the schedule's, 0.01 as in the paper)")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds of independent trainings, e.g. 0,1,2 (default: --seed); "
                   "summary.json then gives the sd over trainings next to the per-point sem")
    p.add_argument("--sampler-steps", type=int, default=500, help="Heun steps of the sampler")
    p.add_argument("--checkpoint", default=None,
                   help="training checkpoint file (resumable; default OUT.ckpt/score.eqx, so a rerun "
                   "reuses the trained network; one of other settings is refused; with several "
                   "seeds NAME-seedS.SUFFIX)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the study's config from the flags, run the case, print the headline."""
    tols = tuple(parse_list(args.tols, "outer-tols", float))
    if min(tols) <= 0:
        raise ValueError(f"--outer-tols must be > 0, got {args.tols!r}")
    if args.n_h < 2:
        raise ValueError(f"--n-h must be >= 2, got {args.n_h}")
    if not args.h_max > 0:
        raise ValueError(f"--h-max must be > 0, got {args.h_max}")
    seeds = (args.seed,) if args.seeds is None else tuple(parse_list(args.seeds, "seeds", int))
    import numpy as np

    from bayesqcd.studies import diffusion_path_integral as dpi

    cfg = dpi.Config(data=args.data, sde=args.sde, n_steps=args.steps, n_eval=args.n_eval,
                     n_samples=args.n_samples, sampler_steps=args.sampler_steps, seeds=seeds,
                     h_grid=tuple(float(h) for h in np.linspace(0.0, args.h_max, args.n_h)),
                     checkpoint=args.checkpoint, tols=tols, wkb_method=args.wkb_method,
                     inner_tol=args.inner_tol, fd_step=args.fd_step, t_min=args.t_min)
    out = results_dir(args, inputs=(args.checkpoint,) if args.checkpoint else ())
    summary = dpi.run(cfg, out, progress=not args.no_progress)
    w = summary["window"]
    print(f"window [{w['t_min']:g}, {w['T']:g}], {len(seeds)} training(s)")
    for name, st in [("NLL(h=0)", summary["nll_h0"]),
                     *((f"dNLL/dh {k}", v) for k, v in summary["first_order"].items())]:
        sd = st["sd_over_trainings"]
        print(f"{name}: mean {st['mean']:.3f} +- {st['sem']:.3f} (per-point sem)"
              + ("" if sd is None else f" +- {sd['mean']:.3f} (sd over trainings)")
              + f", median {st['median']:.3f}, trimmed mean {st['trimmed_mean']:.3f}")
    fp = summary["failed_points"]
    for seed in seeds:
        for k, f in fp[f"seed={seed}"].items():
            if f["count"]:
                reasons = ", ".join(f"{p['index']} ({p['reason']})" for p in f["points"])
                print(f"warning: seed {seed}, {k}: {f['count']} of {args.n_eval} evaluation points "
                      f"failed ({reasons}); left out (summary.json: failed_points)")
    print(f"wrote {args.out}/summary.json")
    return 0

"""``bayesqcd diffusion``: one case of the path-integral reproduction (Table 1, W2 vs h).

Thin layer over :mod:`bayesqcd.studies.diffusion_path_integral`: the flags become a
:class:`~bayesqcd.studies.diffusion_path_integral.Config` (``--h-max``/``--n-h`` its ``h_grid``),
and :func:`~bayesqcd.studies.diffusion_path_integral.run` does the work (float64 likelihood).
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
        "coefficient at tol 1e-3 and 1e-5, W2 against h, finite-h KDE check) and figures.")
    p.add_argument("--data", required=True, choices=["swiss-roll", "25gauss"])
    p.add_argument("--sde", required=True, choices=["simple", "cosine"])
    add_common(p)
    p.add_argument("--steps", type=int, default=20000,
                   help="training steps (batch 512); the paper's 16000 epochs are ~96000")
    p.add_argument("--n-eval", type=int, default=256, help="held-out points for the NLL")
    p.add_argument("--n-samples", type=int, default=3000, help="samples per h for W2 and KDE")
    p.add_argument("--h-max", type=float, default=0.2, help="largest h of the W2 scan")
    p.add_argument("--n-h", type=int, default=6, help="number of h values in [0, h-max]")
    p.add_argument("--tols", default="1e-3,1e-5",
                   help="comma-separated solver tolerances of the WKB coefficient (paper: 1e-3,1e-5)")
    p.add_argument("--sampler-steps", type=int, default=500, help="Heun steps of the sampler")
    p.add_argument("--checkpoint", default=None,
                   help="training checkpoint file (resumable; default OUT.ckpt/score.eqx, so a rerun "
                   "reuses the trained network; one of other settings is refused)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the study's config from the flags, run the case, print the headline."""
    tols = tuple(parse_list(args.tols, "tols", float))
    if min(tols) <= 0:
        raise ValueError(f"--tols must be > 0, got {args.tols!r}")
    if args.n_h < 2:
        raise ValueError(f"--n-h must be >= 2, got {args.n_h}")
    if not args.h_max > 0:
        raise ValueError(f"--h-max must be > 0, got {args.h_max}")
    import numpy as np

    from bayesqcd.studies import diffusion_path_integral as dpi

    cfg = dpi.Config(data=args.data, sde=args.sde, n_steps=args.steps, n_eval=args.n_eval,
                     n_samples=args.n_samples, sampler_steps=args.sampler_steps, seed=args.seed,
                     h_grid=tuple(float(h) for h in np.linspace(0.0, args.h_max, args.n_h)),
                     checkpoint=args.checkpoint, tols=tols)
    out = results_dir(args, inputs=(args.checkpoint,) if args.checkpoint else ())
    summary = dpi.run(cfg, out, progress=not args.no_progress)
    n, c = summary["nll_h0"], summary["first_order_coefficient"]
    print(f"NLL(h=0) = {n['value']:.3f} +- {n['error']:.3f}; coefficient: "
          + ", ".join(f"{k}: {v['value']:.3f} +- {v['error']:.3f}" for k, v in c.items()))
    for k in c:
        f = summary["failed_points"][k]
        if f["count"]:
            print(f"warning: {f['count']} of {args.n_eval} evaluation points failed at {k} "
                  f"(indices {', '.join(map(str, f['indices']))}); the numbers above are over the "
                  f"other {args.n_eval - f['count']} (summary.json: failed_points)")
    print(f"wrote {args.out}/summary.json")
    return 0

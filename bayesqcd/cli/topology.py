"""``bayesqcd topology --out DIR``: unsupervised learning of winding numbers from line drawings.

Trains the conv + dense autoencoder on drawings of open arcs and closed curves winding 1..W
times, clusters its codes (:func:`bayesqcd.studies.topology.run`), and writes (atomically)::

    DIR/summary.json        matched accuracy, NMI, probe accuracy: codes vs pixels / PCA / statistics
                            (held-out test set; the pixel and PCA baselines also before the
                            normalisation), and the codes' scores on the validation set
    DIR/history.json        training and validation loss
    DIR/latent.png          codes of the held-out set (2 principal components), coloured by class
    DIR/codes_test.npz      those codes and the true classes (to redraw or re-cluster)
    DIR/reconstructions.png held-out drawings and their reconstructions
"""

from __future__ import annotations

import argparse

from bayesqcd.cli.common import add_common, require_at_least, results_dir


def register(subparsers) -> None:
    """Add the ``topology`` subcommand."""
    p = subparsers.add_parser(
        "topology", help="autoencoder + clustering of line drawings by winding number (arXiv:1908.00281)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p)
    p.add_argument("--n-train", type=int, default=2000, help="training drawings (default 2000)")
    p.add_argument("--n-test", type=int, default=1000, help="held-out drawings (default 1000)")
    p.add_argument("--n-val", type=int, default=500,
                   help="validation drawings, for the reconstruction loss (default 500)")
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps (default 1000)")
    p.add_argument("--batch-size", type=int, default=64, help="minibatch size (default 64)")
    p.add_argument("--latent", type=int, default=8, help="latent dimension (default 8)")
    p.add_argument("--max-winding", type=int, default=3, help="largest winding number W (default 3)")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="learning-rate schedule: cosine decay to lr/20, or constant (default cosine)")
    p.add_argument("--frame", choices=("centre", "affine", "centroid", "box", "axes", "none"),
                   default="centre",
                   help="label-free normalisation of every drawing: its ink centroid to the centre, "
                        "size and aspect left to the autoencoder (centre); its ink's second moments "
                        "made isotropic (undoes stretch and shear), then ink centroid to the centre "
                        "and farthest ink at extent/2 (affine); the last two alone (centroid); these "
                        "commute with turns; the ink's bounding box (box), or the bounding box in "
                        "the ink's principal-axis frame (axes); none: the drawings as generated "
                        "(default centre)")
    p.add_argument("--extent", type=float, default=22.0,
                   help="size of every drawing after the normalisation [px]: diameter of its disc "
                        "(affine, centroid) or longer bounding-box side; 0: only centre it (box frame); "
                        "not used by centre and none (default 22, for 32-px images)")
    p.add_argument("--stroke-sigma", type=float, default=0.8,
                   help="stroke-width normalisation: Gaussian blur [px] then division by the "
                        "maximum; 0: none (default 0.8)")
    p.add_argument("--rotations", type=int, default=16,
                   help="turns the autoencoder's code is averaged over (a rotation-invariant code "
                        "and a pose angle); 0: a plain autoencoder (default 16)")
    p.add_argument("--invariance", type=float, default=1.0,
                   help="weight of the training penalty on changes of the code under random zooms "
                        "and stretches of the drawing (size and aspect go to the pose numbers "
                        "instead); 0: none (default 1)")
    p.add_argument("--pose-dims", type=int, default=3,
                   help="pose numbers beside the code, read by the decoder only (default 3)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file to save to and resume from (default: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the study's :class:`~bayesqcd.studies.topology.Config`, run it, print the table."""
    from bayesqcd.studies.topology import Config, drawing_config
    from bayesqcd.studies.topology import run as run_study

    for flag in ("extent", "stroke_sigma"):  # 0 means "none" on the command line
        if getattr(args, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} = {getattr(args, flag)} is outside the "
                             "valid range [0, inf) pixels (0: none)")
    require_at_least(args, 1, "max_winding")
    out = results_dir(args, inputs=(args.checkpoint,) if args.checkpoint else ())
    config = Config(seed=args.seed, drawing=drawing_config(args.size, args.max_winding),
                    n_train=args.n_train, n_test=args.n_test, n_val=args.n_val, frame=args.frame,
                    extent=args.extent if args.extent > 0 else None,
                    stroke_sigma=args.stroke_sigma if args.stroke_sigma > 0 else None,
                    latent=args.latent, rotations=args.rotations, pose_dims=args.pose_dims,
                    invariance=args.invariance, steps=args.steps, batch_size=args.batch_size,
                    lr=args.lr, schedule=args.schedule, checkpoint=args.checkpoint)
    summary = run_study(config, out, progress=not args.no_progress)
    s = summary["scores"]
    print(f"{'features':18s} {'k-means acc':>11s} {'NMI':>6s} {'GMM acc':>8s} {'NMI':>6s} {'probe':>6s}")
    for name, v in s.items():
        print(f"{name:18s} {v['kmeans_accuracy']:11.3f} {v['kmeans_nmi']:6.3f} {v['gmm_accuracy']:8.3f} "
              f"{v['gmm_nmi']:6.3f} {v['probe_accuracy']:6.3f}")
    v = summary["validation_scores_codes"]
    print(f"codes on the validation set: k-means {v['kmeans_accuracy']:.3f}, GMM {v['gmm_accuracy']:.3f}")
    single = ", ".join(f"{k} {v:.3f}" for k, v in summary["single_statistic_probe_accuracy"].items())
    print(f"probe on one statistic alone: {single} (chance {summary['chance_accuracy']:.3f})")
    print(f"wrote {args.out}/summary.json")
    return 0

"""``bayesqcd topology --out DIR``: unsupervised learning of winding numbers from line drawings.

Trains the conv + dense autoencoder on drawings of open arcs and closed curves winding 1..W
times, clusters its codes, and writes (atomically)::

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


def register(subparsers) -> None:
    """Add the ``topology`` subcommand."""
    p = subparsers.add_parser(
        "topology", help="autoencoder + clustering of line drawings by winding number (arXiv:1908.00281)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="results folder (replaced atomically)")
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
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file to save to and resume from (default: none)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the experiment and write the results folder; returns the exit code."""
    import time

    import jax
    import numpy as np

    from bayesqcd.report import atomic_results_dir, versions, write_json
    from bayesqcd.topology import DrawingConfig
    from bayesqcd.topology_eval import plot_latent, plot_reconstructions, run_experiment

    if args.extent < 0:
        raise ValueError(f"--extent must be >= 0 pixels, got {args.extent}")
    if args.stroke_sigma < 0:
        raise ValueError(f"--stroke-sigma must be >= 0 pixels, got {args.stroke_sigma}")
    if args.invariance < 0:
        raise ValueError(f"--invariance must be >= 0, got {args.invariance}")
    if args.max_winding < 1:
        raise ValueError(f"--max-winding must be >= 1, got {args.max_winding}")
    cfg = DrawingConfig(size=args.size, max_winding=args.max_winding,
                        n_points=max(256, 80 * args.max_winding + 16))
    start = time.time()
    out = run_experiment(jax.random.PRNGKey(args.seed), cfg=cfg, n_train=args.n_train,
                         n_test=args.n_test, n_val=args.n_val, latent=args.latent, steps=args.steps,
                         extent=args.extent if args.extent > 0 else None, frame=args.frame,
                         stroke_sigma=args.stroke_sigma if args.stroke_sigma > 0 else None,
                         rotations=args.rotations, pose_dims=args.pose_dims,
                         invariance=args.invariance,
                         batch_size=args.batch_size, lr=args.lr, schedule=args.schedule,
                         checkpoint=args.checkpoint,
                         progress=not args.no_progress)
    summary = out["summary"]
    summary["seed"] = args.seed
    summary["wall_time_s"] = time.time() - start
    summary["versions"] = versions()
    with atomic_results_dir(args.out) as tmp:
        write_json(tmp / "summary.json", summary)
        write_json(tmp / "history.json", out["history"])
        c = summary["scores"]["codes"]
        np.savez(tmp / "codes_test.npz", codes=np.asarray(out["codes_test"]),
                 labels=np.asarray(out["labels_test"]))
        plot_latent(out["codes_test"], out["labels_test"], tmp / "latent.png",
                    title=f"held-out codes\nmatched accuracy: GMM {c['gmm_accuracy']:.2f}, "
                          f"k-means {c['kmeans_accuracy']:.2f}")
        plot_reconstructions(out["model"], out["images_test"], out["labels_test"],
                             tmp / "reconstructions.png")
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

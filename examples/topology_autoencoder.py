"""Unsupervised learning of winding numbers (Fukushima, Funai, Iida, arXiv:1908.00281).

Draws open arcs and closed curves winding 1, 2, 3 times around a point (32 x 32 anti-aliased
images with random size, width, deformation, stretch, shear, rotation and position), centres each
without labels (ink centroid to the centre; then a blur divided by its maximum to even out the
stroke width; size, stretch, shear, rotation and deformation stay as drawn), trains a conv + dense
autoencoder on them without labels -- its code averaged over 16 turns of the image (rotation
invariant) and kept from following random zooms and stretches of the drawing by an invariance
penalty, which leaves size and aspect to three pose numbers that only the decoder reads --,
clusters the codes of a held-out set with k-means and a Gaussian mixture (scikit-learn; as many
clusters as classes) and scores the clusters against the winding numbers -- next to the same
clustering of the same centred pixels, of their PCA with as many components as the code (and with
two), of the pixels and their PCA before the centring, of five simple pixel statistics (ink,
inked area, radius of gyration, extent, peak) and of the radial ink profile.

    python examples/topology_autoencoder.py --out results/topology [--steps 1000] [--seed 0]

runs :func:`bayesqcd.studies.topology.run` (what ``bayesqcd topology`` runs; about 7.5 min on two
CPU cores). ``--frame affine|centroid|box|axes|none``, ``--invariance 0 --pose-dims 0``,
``--stroke-sigma 0`` and ``--rotations 0`` give the ablations of the README;
``--figure docs/topology_latent.png`` also copies the latent-space figure there, and
``--reconstructions`` the reconstructions figure.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from bayesqcd.studies.topology import Config, run
from bayesqcd.topology import FRAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/topology", help="results folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps")
    parser.add_argument("--frame", choices=FRAMES, default="centre", help="label-free normalisation")
    parser.add_argument("--invariance", type=float, default=1.0, help="zoom/stretch penalty weight")
    parser.add_argument("--pose-dims", type=int, default=3, help="pose numbers beside the code")
    parser.add_argument("--stroke-sigma", type=float, default=0.8, help="stroke blur [px]; 0: none")
    parser.add_argument("--rotations", type=int, default=16, help="turns of the code; 0: plain")
    parser.add_argument("--figure", default=None, help="also copy latent.png here")
    parser.add_argument("--reconstructions", default=None, help="also copy reconstructions.png here")
    args = parser.parse_args(argv)

    config = Config(seed=args.seed, steps=args.steps, frame=args.frame, invariance=args.invariance,
                    pose_dims=args.pose_dims, rotations=args.rotations,
                    stroke_sigma=args.stroke_sigma if args.stroke_sigma > 0 else None)
    summary = run(config, args.out)

    print(f"chance {summary['chance_accuracy']:.3f}; held-out matched accuracy (GMM / k-means), probe:")
    for name, s in summary["scores"].items():
        print(f"  {name:18s} {s['gmm_accuracy']:.3f} / {s['kmeans_accuracy']:.3f}   "
              f"{s['probe_accuracy']:.3f}")
    v = summary["validation_scores_codes"]
    print(f"codes on the validation set: GMM {v['gmm_accuracy']:.3f}, k-means {v['kmeans_accuracy']:.3f}"
          f"   ({summary['wall_time_s']:.0f} s)")
    if args.figure:
        shutil.copyfile(f"{args.out}/latent.png", args.figure)
    if args.reconstructions:
        shutil.copyfile(f"{args.out}/reconstructions.png", args.reconstructions)
    return 0


if __name__ == "__main__":
    sys.exit(main())

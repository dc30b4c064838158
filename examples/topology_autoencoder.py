"""Unsupervised learning of winding numbers (Fukushima, Funai, Iida, arXiv:1908.00281).

Draws open arcs and closed curves winding 1, 2, 3 times around a point (32 x 32 anti-aliased
images with random size, width, deformation, stretch, shear, rotation and position), centres each
without labels (ink centroid to the centre; then a blur divided by its maximum to even out the
stroke width; size, stretch, shear, rotation and deformation stay as drawn), trains a conv + dense
autoencoder on them without labels -- its code averaged over 16 turns of the image (rotation
invariant) and kept from following random zooms and stretches of the drawing by an invariance
penalty, which leaves size and aspect to three pose numbers that only the decoder reads --,
clusters the codes of a held-out set with k-means and a Gaussian mixture (as many clusters as
classes) and scores the clusters against the winding numbers -- next to the same clustering of the
same centred pixels, of their PCA with as many components as the code (and with two), of the
pixels and their PCA before the centring, of five simple pixel statistics (ink, inked area,
radius of gyration, extent, peak) and of the radial ink profile.

    python examples/topology_autoencoder.py --out results/topology [--steps 1000] [--seed 0]

is ``bayesqcd topology`` with the same options (``--frame affine|centroid|box|axes|none``,
``--invariance 0 --pose-dims 0``, ``--stroke-sigma 0`` and ``--rotations 0`` give the ablations of
the README); ``--figure docs/topology_latent.png`` also copies the latent-space figure there, and
``--reconstructions`` the reconstructions figure.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from bayesqcd.cli import main as bayesqcd_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/topology")
    parser.add_argument("--figure", default=None, help="also copy latent.png here")
    parser.add_argument("--reconstructions", default=None, help="also copy reconstructions.png here")
    args, rest = parser.parse_known_args(argv)
    rc = bayesqcd_main(["topology", "--out", args.out, *rest])
    if rc == 0 and args.figure:
        shutil.copyfile(f"{args.out}/latent.png", args.figure)
    if rc == 0 and args.reconstructions:
        shutil.copyfile(f"{args.out}/reconstructions.png", args.reconstructions)
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""Unsupervised learning of winding numbers (Fukushima, Funai, Iida, arXiv:1908.00281).

Draws open arcs and closed curves winding 1, 2, 3 times around a point (32 x 32 anti-aliased
images with random size, width, deformation, rotation and position; each centred and rescaled
to a fixed extent, a label-free normalisation), trains a conv + dense autoencoder on them
without labels, clusters the codes of a held-out set with k-means and a
Gaussian mixture (as many clusters as classes) and scores the clusters against the winding
numbers -- next to the same clustering of raw pixels, of PCA with as many components as the code,
and of five simple pixel statistics (ink, inked area, radius of gyration, extent, peak).

    python examples/topology_autoencoder.py --out results/topology [--steps 1000] [--seed 0]

is ``bayesqcd topology`` with the same options; ``--figure docs/topology_latent.png`` also copies
the latent-space figure there.
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
    args, rest = parser.parse_known_args(argv)
    rc = bayesqcd_main(["topology", "--out", args.out, *rest])
    if rc == 0 and args.figure:
        shutil.copyfile(f"{args.out}/latent.png", args.figure)
    return rc


if __name__ == "__main__":
    sys.exit(main())

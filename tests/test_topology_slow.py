"""The paper's claim, measured (slow: the default `bayesqcd topology` run, ~8 min on 2 cores, run
with `pytest -m slow`).

Fukushima, Funai, Iida (arXiv:1908.00281): codes of an autoencoder trained without labels keep
more than 90% of the topological information. Default settings (float64 here, float32 in the
command; drawings normalised by an area-preserving linear map that makes the ink's second moments
isotropic, ink centroid and farthest ink, then stroke width; the autoencoder's code averaged over
16 turns; 2000 training drawings, 1000 Adam steps, 8-dim code, whitened codes, 10 restarts chosen
by likelihood). Held-out GMM matched accuracy with `bayesqcd topology` (float32, see the README
for the table): codes 0.980, 0.991, 0.991 on seeds 0, 1, 2; pixels 0.75-0.77 (best of GMM /
k-means), before the normalisation 0.44-0.48 and their PCA (8) 0.38-0.42; PCA of the same
normalised pixels with the same 8 dimensions 0.986, 0.997, 0.988, and with 2 dimensions
0.97-0.985. The codes keep the topology, far above the pixels as drawn, but not above PCA of the
normalised pixels, which this normalisation makes just as good; that part of the issue is
recorded as an expected failure (strict: it turns into an error the day it passes, so that the
README gets updated).
"""

import jax
import pytest

from bayesqcd.topology_eval import run_experiment


@pytest.fixture(scope="module")
def summary():
    return run_experiment(jax.random.PRNGKey(0), progress=False)["summary"]


@pytest.mark.slow
def test_codes_keep_at_least_90_percent_of_the_topology(summary):
    """The autoencoder learns (loss down by > 3x), the clusters of its codes match the winding
    number at >= 90%, better (> +0.15) than the same clustering of the normalised pixels and far
    better (> +0.3) than that of the pixels and of their PCA before the normalisation, and total
    ink alone says little about the class."""
    s = summary["scores"]
    assert summary["final_val_loss"] < summary["initial_val_loss"] / 3
    assert s["codes"]["gmm_accuracy"] >= 0.9
    best = {name: max(s[name]["gmm_accuracy"], s[name]["kmeans_accuracy"]) for name in s}
    assert s["codes"]["gmm_accuracy"] > best["pixels"] + 0.15
    for base in ("raw_pixels", "raw_pca"):
        assert s["codes"]["gmm_accuracy"] > best[base] + 0.3
    assert s["codes"]["probe_accuracy"] > 0.95
    assert summary["single_statistic_probe_accuracy"]["ink"] < summary["chance_accuracy"] + 0.15


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="PCA of the same normalised pixels clusters as well: GMM "
                                       "0.986-0.997 vs codes 0.980-0.991 (see docstring)")
def test_codes_are_clearly_above_pca(summary):
    s = summary["scores"]
    assert s["codes"]["gmm_accuracy"] > max(s["pca"]["gmm_accuracy"], s["pca"]["kmeans_accuracy"]) + 0.05

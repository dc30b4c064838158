"""The paper's claim, measured (slow: the default `bayesqcd topology` run, ~4-7 min on 2 shared
cores, run with `pytest -m slow`).

Fukushima, Funai, Iida (arXiv:1908.00281): codes of an autoencoder trained without labels keep
more than 90% of the topological information. Default settings (float32, 2000 training drawings
rescaled to a 22-px extent, 1000 Adam steps with cosine decay 2e-3 -> 1e-4, 8-dim code, whitened
codes, 10 restarts chosen by likelihood), held-out GMM matched accuracy on the codes: 0.818,
0.839, 0.865 for seeds 0, 1, 2 (validation 0.898 for seed 2); baselines, best of GMM / k-means:
raw pixels 0.515, 0.505, 0.521; 8-component PCA 0.569, 0.587, 0.448; five pixel statistics
0.691, 0.696, 0.670. Clearly above the baselines on every seed, but short of 0.9, so the 90%
claim itself is recorded as an expected failure (strict: it turns into an error the day it
passes, so that the README gets updated).
"""

import jax
import pytest

from bayesqcd.topology_eval import run_experiment


@pytest.fixture(scope="module")
def summary():
    return run_experiment(jax.random.PRNGKey(0), progress=False)["summary"]


@pytest.mark.slow
def test_codes_carry_topology_clearly_above_the_baselines(summary):
    """What held in every default run: the autoencoder learns (loss down by > 3x), the clusters
    of its codes match the winding number far better (> +0.1) than the same clustering of raw
    pixels or of PCA, and total ink alone says little about the class."""
    s = summary["scores"]
    assert summary["final_val_loss"] < summary["initial_val_loss"] / 3
    assert s["codes"]["gmm_accuracy"] > 0.75
    for base in ("pixels", "pca"):
        assert s["codes"]["gmm_accuracy"] > max(s[base]["gmm_accuracy"], s[base]["kmeans_accuracy"]) + 0.1
    assert s["codes"]["probe_accuracy"] > summary["chance_accuracy"] + 0.4
    assert summary["single_statistic_probe_accuracy"]["ink"] < summary["chance_accuracy"] + 0.15


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="measured GMM matched accuracy 0.818 (seed 0), 0.839 (seed 1),"
                                       " 0.865 (seed 2) < 0.9 (see docstring)")
def test_codes_keep_at_least_90_percent_of_the_topology(summary):
    s = summary["scores"]
    codes = s["codes"]
    assert codes["gmm_accuracy"] >= 0.9
    for base in ("pixels", "pca", "pixel_statistics"):
        assert codes["gmm_accuracy"] > max(s[base]["gmm_accuracy"], s[base]["kmeans_accuracy"]) + 0.1

"""The paper's claim, measured (slow: the default `bayesqcd topology` run, ~7 min of CPU time on
2 cores, run with `pytest -m slow`).

Fukushima, Funai, Iida (arXiv:1908.00281): codes of an autoencoder trained without labels keep
more than 90% of the topological information. Measured with the default settings (float32,
3000 Adam steps, cosine learning-rate decay 2e-3 -> 1e-4), held-out GMM matched accuracy on the
codes: 0.535 (seed 0), 0.761 (seed 2); k-means 0.534, 0.549; linear probe 0.812, 0.842. With a
constant learning rate (the former default): GMM 0.54, 0.87, 0.73 for seeds 0, 1, 2. 4500 cosine
steps: GMM 0.540, 0.645. Baselines (GMM / k-means): raw pixels 0.50 / 0.54 (seed 0), 0.55 / 0.53
(seed 2); PCA 0.51 / 0.58, 0.50 / 0.53. Short of 0.9, so the claim itself is recorded as an
expected failure (strict: it turns into an error the day it passes, so that the README gets
updated).
"""

import jax
import pytest

from bayesqcd.topology_eval import run_experiment


@pytest.fixture(scope="module")
def summary():
    return run_experiment(jax.random.PRNGKey(0), progress=False)["summary"]


@pytest.mark.slow
def test_codes_carry_topology(summary):
    """What held in every default run: the autoencoder learns (loss down by > 3x) and a linear
    probe on 8 code dimensions recovers the class far above chance."""
    assert summary["final_val_loss"] < summary["initial_val_loss"] / 3
    assert summary["scores"]["codes"]["probe_accuracy"] > summary["chance_accuracy"] + 0.4
    assert summary["single_statistic_probe_accuracy"]["ink"] < summary["chance_accuracy"] + 0.15


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="measured GMM matched accuracy 0.535 (seed 0), 0.761 (seed 2)"
                                       " < 0.9 (see docstring)")
def test_codes_keep_at_least_90_percent_of_the_topology(summary):
    s = summary["scores"]
    codes = s["codes"]
    assert codes["gmm_accuracy"] >= 0.9
    for base in ("pixels", "pca", "pixel_statistics"):
        assert codes["gmm_accuracy"] > max(s[base]["gmm_accuracy"], s[base]["kmeans_accuracy"]) + 0.1

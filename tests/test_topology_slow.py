"""The paper's claim, measured (slow: the default `bayesqcd topology` run, ~7 min of CPU time on
2 cores, run with `pytest -m slow`).

Fukushima, Funai, Iida (arXiv:1908.00281): codes of an autoencoder trained without labels keep
more than 90% of the topological information. Measured here with the default settings (float32,
seeds 0, 1, 2): a Gaussian mixture with as many components as classes on the codes reaches a
held-out matched accuracy of 0.54, 0.87, 0.73, k-means 0.51, 0.59, 0.54, a linear probe 0.79, 0.89,
0.82 -- short of 0.9, so the claim itself is recorded as an expected failure (strict: it turns into an
error the day it passes, so that the README gets updated).
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
@pytest.mark.xfail(strict=True, reason="measured GMM matched accuracy 0.54-0.87 < 0.9 (see docstring)")
def test_codes_keep_at_least_90_percent_of_the_topology(summary):
    s = summary["scores"]
    codes = s["codes"]
    assert codes["gmm_accuracy"] >= 0.9
    for base in ("pixels", "pca", "pixel_statistics"):
        assert codes["gmm_accuracy"] > max(s[base]["gmm_accuracy"], s[base]["kmeans_accuracy"]) + 0.1

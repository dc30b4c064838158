"""Clustering scores on hand-made assignments, k-means / GMM on known blobs, PCA and the probe."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.studies.topology import clustering as cl


def test_permuted_labelling_is_perfect():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 1000)
    perm = np.array([2, 0, 3, 1])
    assert cl.matched_accuracy(perm[y], y) == 1.0
    assert cl.normalized_mutual_information(perm[y], y) == pytest.approx(1.0, abs=1e-12)


def test_independent_assignments_carry_no_information():
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 4, 40000), rng.integers(0, 4, 40000)
    assert cl.normalized_mutual_information(p, y) < 2e-3
    assert cl.matched_accuracy(p, y) == pytest.approx(0.25, abs=0.02)


def test_hand_computed_values():
    # clusters 0->1, 1->0, 2->2 match 5 of 6 points
    assert cl.matched_accuracy([0, 0, 1, 1, 1, 2], [1, 1, 0, 0, 2, 2]) == pytest.approx(5 / 6)
    # four equal classes merged pairwise into two clusters: I = ln 2, H(C) = ln 2, H(Y) = ln 4
    y = np.repeat(np.arange(4), 25)
    assert cl.normalized_mutual_information(y // 2, y) == pytest.approx(1 / math.sqrt(2), rel=1e-12)
    assert cl.matched_accuracy(y // 2, y) == pytest.approx(0.5)


def test_scores_refuse_mismatched_input():
    with pytest.raises(ValueError, match="same length"):
        cl.matched_accuracy([0, 1], [0, 1, 1])


def _blobs(key, n_per=200, d=3):
    centres = jnp.array([[0.0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]])[:, :d]
    x = centres[:, None, :] + jax.random.normal(key, (4, n_per, d))
    return x.reshape(-1, d), np.repeat(np.arange(4), n_per)


def test_kmeans_and_gmm_recover_separated_blobs():
    x, y = _blobs(jax.random.PRNGKey(0))
    mu = cl.kmeans(jax.random.PRNGKey(1), x, 4)
    assert cl.matched_accuracy(cl.kmeans_predict(mu, x), y) > 0.99
    g = cl.gmm(jax.random.PRNGKey(2), x, 4)
    assert cl.matched_accuracy(cl.gmm_predict(g, x), y) > 0.99
    np.testing.assert_allclose(np.asarray(g["weights"]), 0.25, atol=0.02)
    # the fitted covariances are close to the identity of the blobs
    cov = np.einsum("kij,klj->kil", np.asarray(g["chol"]), np.asarray(g["chol"]))
    np.testing.assert_allclose(cov, np.broadcast_to(np.eye(3), cov.shape), atol=0.3)


def test_gmm_likelihood_at_least_that_of_the_true_mixture():
    """EM maximises the likelihood: the fit beats the generating parameters on the same data,
    by about (number of parameters) / (2 N) per point, not by much more."""
    x, _ = _blobs(jax.random.PRNGKey(3), n_per=300)
    centres = jnp.array([[0.0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]])
    logp = jax.scipy.stats.multivariate_normal.logpdf(x[:, None, :], centres[None], jnp.eye(3))
    true_ll = float(jnp.mean(jax.scipy.special.logsumexp(logp + jnp.log(0.25), axis=1)))
    for cov in ("full", "diag"):
        g = cl.gmm(jax.random.PRNGKey(2), x, 4, covariance=cov, reg=1e-6)
        assert true_ll <= float(g["loglik"]) < true_ll + 0.05


def test_pca_finds_the_dominant_direction():
    key = jax.random.PRNGKey(7)
    u = jnp.array([3.0, 4.0]) / 5
    x = jax.random.normal(key, (2000, 1)) * 5 * u + 0.1 * jax.random.normal(jax.random.PRNGKey(8), (2000, 2))
    mean, comps = cl.pca(x, 1)
    assert abs(float(comps[0] @ u)) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="n_components"):
        cl.pca(x, 3)


def test_linear_probe():
    x, y = _blobs(jax.random.PRNGKey(9))
    assert cl.logistic_probe(x[::2], y[::2], x[1::2], y[1::2], 4) > 0.97
    rng = np.random.default_rng(3)
    y_rand = rng.integers(0, 4, len(y))
    acc = cl.logistic_probe(x[::2], y_rand[::2], x[1::2], y_rand[1::2], 4)
    assert acc < 0.35

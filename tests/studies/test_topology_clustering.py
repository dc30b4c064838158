"""The topology study's scoring (scikit-learn estimators, our matched accuracy and protocol):
hand-made assignments, known permutations, well-separated Gaussian blobs, seeds from keys."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.studies.topology import (evaluate_features, logistic_probe, matched_accuracy,
                                       random_state, whiten)

METRICS = ("kmeans_accuracy", "kmeans_nmi", "gmm_accuracy", "gmm_nmi", "probe_accuracy")


def test_permuted_labelling_is_perfect():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 1000)
    perm = np.array([2, 0, 3, 1])
    assert matched_accuracy(perm[y], y) == 1.0
    # cluster names need not be 0..K-1
    assert matched_accuracy(10 * perm[y] + 7, y) == 1.0


def test_hand_computed_values():
    # clusters 0->1, 1->0, 2->2 match 5 of 6 points
    assert matched_accuracy([0, 0, 1, 1, 1, 2], [1, 1, 0, 0, 2, 2]) == pytest.approx(5 / 6)
    # four equal classes merged pairwise into two clusters: only two clusters can be matched
    y = np.repeat(np.arange(4), 25)
    assert matched_accuracy(y // 2, y) == pytest.approx(0.5)
    # more clusters than classes: the extra cluster's points count as wrong
    assert matched_accuracy([0, 1, 2, 2], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_independent_assignments_match_at_chance():
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 4, 40000), rng.integers(0, 4, 40000)
    assert matched_accuracy(p, y) == pytest.approx(0.25, abs=0.02)


def test_matched_accuracy_refuses_bad_input():
    with pytest.raises(ValueError, match="same length"):
        matched_accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="empty"):
        matched_accuracy([], [])


def test_random_state_is_a_deterministic_function_of_the_key():
    k = jax.random.PRNGKey(5)
    s = random_state(k)
    assert isinstance(s, int) and 0 <= s < 2**32
    assert random_state(jax.random.PRNGKey(5)) == s
    assert len({random_state(jax.random.PRNGKey(i)) for i in range(20)}) == 20


def _blobs(key, n_per=200, d=3, spread=6.0):
    """Four unit-variance Gaussian blobs at 0 and ``spread`` along the first three axes."""
    centres = np.zeros((4, d))
    centres[1, 0] = centres[2, 1] = centres[3, 2] = spread
    x = jnp.asarray(centres)[:, None, :] + jax.random.normal(key, (4, n_per, d))
    return x.reshape(-1, d), np.repeat(np.arange(4), n_per)


def test_evaluate_features_recovers_separated_blobs():
    """Low-dimensional features (whitened, full-covariance mixture): both clusterings recover the
    blobs of held-out points, the NMI is ~1, the probe separates them; the same key gives the same
    numbers."""
    x, y = _blobs(jax.random.PRNGKey(0))
    xt, yt = _blobs(jax.random.PRNGKey(1))
    s = evaluate_features(jax.random.PRNGKey(2), x, y, xt, yt, 4)
    assert set(s) == set(METRICS)
    for name in ("kmeans_accuracy", "gmm_accuracy", "probe_accuracy"):
        assert s[name] > 0.99, (name, s)
    assert s["kmeans_nmi"] > 0.95 and s["gmm_nmi"] > 0.95
    assert evaluate_features(jax.random.PRNGKey(2), x, y, xt, yt, 4) == s


def test_evaluate_features_on_wide_features_uses_the_diagonal_mixture():
    """100 dimensions (> 64: standardised, diagonal covariances, as for pixels): four blobs whose
    centres differ by about one noise sigma in every dimension are found."""
    centres = jax.random.normal(jax.random.PRNGKey(3), (4, 1, 100))
    k_tr, k_te = jax.random.split(jax.random.PRNGKey(4))
    x, xt = (centres + jax.random.normal(k, (4, 200, 100)) for k in (k_tr, k_te))
    y = np.repeat(np.arange(4), 200)
    s = evaluate_features(jax.random.PRNGKey(5), x.reshape(-1, 100), y, xt.reshape(-1, 100), y, 4)
    assert s["gmm_accuracy"] > 0.97 and s["kmeans_accuracy"] > 0.97, s
    assert s["probe_accuracy"] > 0.97


def test_evaluate_features_without_structure_scores_near_chance():
    """One Gaussian cloud with random labels: every score is near chance (NMI near 0)."""
    rng = np.random.default_rng(6)
    x, xt = rng.normal(size=(800, 4)), rng.normal(size=(800, 4))
    y, yt = rng.integers(0, 4, 800), rng.integers(0, 4, 800)
    s = evaluate_features(jax.random.PRNGKey(7), x, y, xt, yt, 4)
    for name in ("kmeans_accuracy", "gmm_accuracy", "probe_accuracy"):
        assert s[name] < 0.34, (name, s)
    assert s["kmeans_nmi"] < 0.02 and s["gmm_nmi"] < 0.02


def test_evaluate_features_nmi_is_the_geometric_one():
    """Four blobs, two of them merged into one cluster at a time by asking for 3 clusters of two
    far pairs: I(C; Y) = H(C), so NMI = sqrt(H(C) / H(Y)) with the geometric mean."""
    centres = np.array([[0.0, 0], [0.3, 0], [40, 0], [0, 40]])
    rng = np.random.default_rng(8)
    y = np.repeat(np.arange(4), 300)
    x = centres[y] + 0.05 * rng.normal(size=(1200, 2))
    s = evaluate_features(jax.random.PRNGKey(9), x, y, x, y, 3, n_init=3)
    # classes 0 and 1 (0.3 apart) merge: C has weights (1/2, 1/4, 1/4), Y is uniform on 4
    h_c, h_y = -(0.5 * math.log(0.5) + 0.5 * math.log(0.25)), math.log(4)
    assert s["kmeans_nmi"] == pytest.approx(math.sqrt(h_c / h_y), abs=1e-6)
    assert s["kmeans_accuracy"] == pytest.approx(0.75)


def test_evaluate_features_refuses_bad_input():
    x, y = _blobs(jax.random.PRNGKey(0), n_per=2)
    with pytest.raises(ValueError, match="n_classes"):
        evaluate_features(jax.random.PRNGKey(0), x, y, x, y, 9)
    with pytest.raises(ValueError, match="n_init"):
        evaluate_features(jax.random.PRNGKey(0), x, y, x, y, 4, n_init=0)


def test_linear_probe():
    x, y = _blobs(jax.random.PRNGKey(9))
    assert logistic_probe(x[::2], y[::2], x[1::2], y[1::2]) > 0.97
    rng = np.random.default_rng(3)
    y_rand = rng.integers(0, 4, len(y))
    assert logistic_probe(x[::2], y_rand[::2], x[1::2], y_rand[1::2]) < 0.35
    with pytest.raises(ValueError, match="l2"):
        logistic_probe(x, y, x, y, l2=0.0)


def test_whiten_decorrelates_the_training_features():
    key = jax.random.PRNGKey(3)
    x = jax.random.normal(key, (500, 3)) @ jnp.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.1]])
    a, b = whiten(x, x[:10] + 1.0)
    np.testing.assert_allclose(np.cov(a.T), np.eye(3), atol=1e-10)  # unit variance (ddof 1)
    np.testing.assert_allclose(a.mean(0), 0.0, atol=1e-10)
    assert b.shape == (10, 3)
    # an affine map: the same rows, shifted, map to the same points shifted by a constant
    np.testing.assert_allclose(b - a[:10], np.broadcast_to((b - a[:10])[0], (10, 3)), atol=1e-10)

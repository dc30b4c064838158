"""How much of the class a representation keeps: clustering and a linear probe, scored on held-out data.

The estimators are scikit-learn's: ``KMeans`` (k-means++ seeds, best of ``n_init`` by inertia),
``GaussianMixture`` (EM from k-means, best of ``n_init`` by likelihood, covariances regularised by
``1e-3 I``), ``PCA`` and ``StandardScaler`` (whitening, projections), ``LogisticRegression`` (the
probe) and ``normalized_mutual_info_score``. Ours is only what scikit-learn lacks:

* :func:`matched_accuracy`: the fraction of points whose cluster maps to their class under the
  one-to-one map clusters -> classes that maximises it (Hungarian algorithm,
  ``scipy.optimize.linear_sum_assignment``): 1 for any relabelling of the true classes;
* :func:`random_state`: scikit-learn's ``random_state`` integer drawn from a JAX key, so that the
  one seed of a run fixes every restart;
* :func:`evaluate_features` and :func:`score_representations`: the protocol of the study.

NMI is ``I(C; Y) / sqrt(H(C) H(Y))`` (``average_method="geometric"``, as in earlier versions of
this study; scikit-learn's default is the arithmetic mean of the entropies).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bayesqcd.topology import pixel_statistics, radial_profile

STATISTICS = ("ink", "inked_area", "radius_of_gyration", "extent", "peak")
"""Names of the columns of :func:`bayesqcd.topology.pixel_statistics`."""

FULL_COVARIANCE_MAX_DIM = 64
"""Features of at most this dimension are whitened and get full-covariance mixtures; wider ones
(pixels) are standardised and get diagonal ones."""


def random_state(key: PRNGKeyArray) -> int:
    """A scikit-learn ``random_state`` in ``[0, 2**32)`` drawn from ``key`` (32 random bits, the
    same integer for the same key whatever JAX's default precision)."""
    return int(jax.random.bits(key, (), jnp.uint32))


def _np(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], -1)


def matched_accuracy(pred, true) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes (Hungarian).

    Args:
        pred: cluster of each point, any hashable labels, shape ``(N,)``.
        true: class of each point, shape ``(N,)``.
    """
    pred, true = np.asarray(pred).ravel(), np.asarray(true).ravel()
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same length, got {pred.shape} and {true.shape}")
    if pred.size == 0:
        raise ValueError("pred and true are empty")
    table = contingency_matrix(true, pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def whiten(train: Float[Array, "N D"], *others: Array) -> tuple[np.ndarray, ...]:
    """Rotate onto the principal axes of ``train`` and scale each axis to unit variance (all
    ``D`` components kept, so nothing is lost: ``PCA(whiten=True)``), applied to ``train`` and to
    ``others``. A Gaussian mixture's likelihood is unchanged by this affine map, but its k-means
    start is not: on whitened features, k-means seeds fall near higher-likelihood optima of EM
    (measured on the codes)."""
    pca = PCA(whiten=True, svd_solver="full").fit(_np(train))
    return tuple(pca.transform(_np(a)) for a in (train, *others))


def logistic_probe(x_train: Float[Array, "N D"], y_train, x_test: Float[Array, "M D"], y_test,
                   l2: float = 1e-3, max_iter: int = 1000) -> float:
    """Held-out accuracy of multinomial logistic regression (a linear probe) on standardised
    features, minimising the mean cross-entropy plus ``l2 |W|^2 / 2`` (scikit-learn's
    ``C = 1 / (l2 N)``)."""
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0, got {l2}")
    x_train = _np(x_train)
    probe = make_pipeline(StandardScaler(),
                          LogisticRegression(C=1.0 / (l2 * len(x_train)), max_iter=max_iter))
    return float(probe.fit(x_train, np.asarray(y_train)).score(_np(x_test), np.asarray(y_test)))


def evaluate_features(key: PRNGKeyArray, f_train: Array, y_train, f_test: Array, y_test,
                      n_classes: int, n_init: int = 10) -> dict[str, float]:
    """k-means / GMM matched accuracy and NMI on held-out data, and the linear-probe accuracy.

    Both clusterings (``n_classes`` clusters) are fitted on the training features only (no
    labels) and assign the held-out ones. Features of dimension <= 64 are whitened
    (:func:`whiten`) and get a full-covariance mixture; wider ones (raw pixels) are standardised
    and get a diagonal one. ``n_init`` restarts each, the best chosen by inertia / likelihood
    (never by accuracy); their seeds come from ``key``.
    """
    if n_classes < 1 or n_init < 1:
        raise ValueError(f"n_classes and n_init must be >= 1, got {n_classes}, {n_init}")
    f_train, f_test = _np(f_train), _np(f_test)
    if not n_classes <= len(f_train):
        raise ValueError(f"n_classes must be <= {len(f_train)} (training points), got {n_classes}")
    k_km, k_gmm = jax.random.split(key)
    low = f_train.shape[1] <= FULL_COVARIANCE_MAX_DIM
    if low:
        a, b = whiten(f_train, f_test)
    else:
        scaler = StandardScaler().fit(f_train)
        a, b = scaler.transform(f_train), scaler.transform(f_test)
    p_km = KMeans(n_classes, n_init=n_init, random_state=random_state(k_km)).fit(a).predict(b)
    gmm = GaussianMixture(n_classes, covariance_type="full" if low else "diag", reg_covar=1e-3,
                          max_iter=200, n_init=n_init, random_state=random_state(k_gmm))
    p_gmm = gmm.fit(a).predict(b)
    y_test = np.asarray(y_test)
    return {
        "kmeans_accuracy": matched_accuracy(p_km, y_test),
        "kmeans_nmi": float(normalized_mutual_info_score(y_test, p_km, average_method="geometric")),
        "gmm_accuracy": matched_accuracy(p_gmm, y_test),
        "gmm_nmi": float(normalized_mutual_info_score(y_test, p_gmm, average_method="geometric")),
        "probe_accuracy": logistic_probe(f_train, y_train, f_test, y_test),
    }


def _flat_and_pca(a_tr: Array, a_te: Array, k: int) -> tuple[np.ndarray, ...]:
    f_tr, f_te = _np(a_tr), _np(a_te)
    pca = PCA(k, svd_solver="full").fit(f_tr)
    return f_tr, f_te, pca.transform(f_tr), pca.transform(f_te)


def score_representations(key: PRNGKeyArray, z_tr: Array, z_te: Array, x_tr: Array, x_te: Array,
                          y_tr, y_te, n_classes: int, raw_tr: Array | None = None,
                          raw_te: Array | None = None) -> dict[str, dict[str, float]]:
    """:func:`evaluate_features` for the codes, the pixels ``x`` the autoencoder sees, PCA of
    them with as many components as the code has dimensions (``"pca"``) and with two
    (``"pca_2"``), and the simple pixel statistics of the drawings as generated (``raw``, default
    ``x``: size is a statistic, not a nuisance). When ``raw`` is given, its pixels and their PCA
    with the code's dimension are scored too (``"raw_pixels"``, ``"raw_pca"``: the baselines
    without the normalisation). Last, the :func:`radial_profile` of ``x`` (``"radial_profile"``).
    Each representation gets its own key, ``fold_in(key, i)`` in this order."""
    d = z_tr.shape[1]
    p_tr, p_te, proj_tr, proj_te = _flat_and_pca(x_tr, x_te, max(d, 2))
    features = {
        "codes": (z_tr, z_te),
        "pixels": (p_tr, p_te),
        "pca": (proj_tr[:, :d], proj_te[:, :d]),
        "pca_2": (proj_tr[:, :2], proj_te[:, :2]),
    }
    unnormalised = raw_tr is not None and raw_te is not None
    if not unnormalised:
        raw_tr, raw_te = x_tr, x_te
    features["pixel_statistics"] = (pixel_statistics(raw_tr), pixel_statistics(raw_te))
    if unnormalised:
        r_tr, r_te, rproj_tr, rproj_te = _flat_and_pca(raw_tr, raw_te, d)
        features["raw_pixels"] = (r_tr, r_te)
        features["raw_pca"] = (rproj_tr, rproj_te)
    features["radial_profile"] = (radial_profile(x_tr), radial_profile(x_te))
    return {name: evaluate_features(jax.random.fold_in(key, i), f_tr, y_tr, f_te, y_te, n_classes)
            for i, (name, (f_tr, f_te)) in enumerate(features.items())}


def single_statistic_probes(raw_tr: Array, y_tr, raw_te: Array, y_te) -> dict[str, float]:
    """Held-out accuracy of the linear probe on each of the :data:`STATISTICS` alone."""
    s_tr, s_te = np.asarray(pixel_statistics(raw_tr)), np.asarray(pixel_statistics(raw_te))
    return {name: logistic_probe(s_tr[:, j:j + 1], y_tr, s_te[:, j:j + 1], y_te)
            for j, name in enumerate(STATISTICS)}

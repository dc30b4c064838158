"""Clustering and the scores that compare a clustering with true classes (pure JAX + scipy).

* :func:`kmeans`: Lloyd's algorithm from k-means++ seeds, best of ``n_init`` restarts (lowest
  inertia ``sum_i |x_i - mu_{c(i)}|^2``).
* :func:`gmm`: a Gaussian mixture with full (or diagonal) covariances fitted by
  expectation-maximisation, started from k-means; covariances are regularised by ``reg * I``
  (data units squared).
* :func:`matched_accuracy`: the fraction of points whose cluster maps to their class under the
  one-to-one map clusters -> classes that maximises it (Hungarian algorithm,
  ``scipy.optimize.linear_sum_assignment``): 1 for any relabelling of the true classes.
* :func:`normalized_mutual_information`: ``NMI = I(C; Y) / sqrt(H(C) H(Y))`` (natural logs cancel),
  1 for a relabelling, ~0 for independent assignments.
* :func:`pca`: principal components of the rows of a matrix.
* :func:`logistic_probe`: multinomial logistic regression (softmax of a linear map, L2 penalty
  ``l2 |W|^2 / 2``) fitted by L-BFGS on standardised features -- the "linear probe".
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray
from scipy.optimize import linear_sum_assignment


def _sq_dist(x: Float[Array, "N D"], mu: Float[Array, "K D"]) -> Float[Array, "N K"]:
    return jnp.sum(x**2, 1)[:, None] - 2 * x @ mu.T + jnp.sum(mu**2, 1)[None, :]


def _kmeanspp(key: PRNGKeyArray, x: Float[Array, "N D"], k: int) -> Float[Array, "K D"]:
    n = x.shape[0]
    k0, key = jax.random.split(key)
    mu = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[jax.random.randint(k0, (), 0, n)])

    def body(i, carry):
        mu, key = carry
        key, sub = jax.random.split(key)
        d = jnp.min(jnp.where(jnp.arange(k)[None, :] < i, _sq_dist(x, mu), jnp.inf), axis=1)
        j = jax.random.categorical(sub, jnp.log(jnp.maximum(d, 1e-30)))
        return mu.at[i].set(x[j]), key

    mu, _ = jax.lax.fori_loop(1, k, body, (mu, key))
    return mu


def _lloyd(x, mu, n_iter):
    def body(_, mu):
        c = jnp.argmin(_sq_dist(x, mu), axis=1)
        one_hot = jax.nn.one_hot(c, mu.shape[0], dtype=x.dtype)
        counts = one_hot.sum(0)
        new = (one_hot.T @ x) / jnp.maximum(counts, 1)[:, None]
        return jnp.where(counts[:, None] > 0, new, mu)

    mu = jax.lax.fori_loop(0, n_iter, body, mu)
    inertia = jnp.sum(jnp.min(_sq_dist(x, mu), axis=1))
    return mu, inertia


def kmeans(key: PRNGKeyArray, x: Float[Array, "N D"], k: int, n_init: int = 10,
           n_iter: int = 100) -> Float[Array, "K D"]:
    """Cluster centres of ``x`` (best of ``n_init`` k-means++ / Lloyd runs); see the module doc."""
    if k < 1 or k > x.shape[0]:
        raise ValueError(f"k must be in [1, {x.shape[0]}] (number of points), got {k}")
    if n_init < 1 or n_iter < 1:
        raise ValueError(f"n_init and n_iter must be >= 1, got {n_init}, {n_iter}")
    return _kmeans(jax.random.split(key, n_init), jnp.asarray(x), k, n_iter)


@partial(jax.jit, static_argnums=(2, 3))
def _kmeans(keys, x, k, n_iter):
    mus, inertias = jax.vmap(lambda kk: _lloyd(x, _kmeanspp(kk, x, k), n_iter))(keys)
    return mus[jnp.argmin(inertias)]


def kmeans_predict(mu: Float[Array, "K D"], x: Float[Array, "N D"]) -> Int[Array, " N"]:
    """Index of the nearest centre of each row of ``x``."""
    return jnp.argmin(_sq_dist(jnp.asarray(x), mu), axis=1)


def _gauss_logpdf(x, mean, chol):
    """log N(x; mean, L L^T) for every component: (N, K)."""
    d = x.shape[1]

    def one(m, c):
        z = jax.scipy.linalg.solve_triangular(c, (x - m).T, lower=True)
        return -0.5 * jnp.sum(z**2, 0) - jnp.sum(jnp.log(jnp.diag(c))) - 0.5 * d * jnp.log(2 * jnp.pi)

    return jax.vmap(one)(mean, chol).T


def _diag_logpdf(x, mean, var):
    """log N(x; mean, diag(var)) for every component: (N, K)."""
    d = x.shape[1]
    z2 = jnp.sum((x[:, None, :] - mean[None]) ** 2 / var[None], axis=-1)
    return -0.5 * z2 - 0.5 * jnp.sum(jnp.log(var), -1)[None] - 0.5 * d * jnp.log(2 * jnp.pi)


def gmm(key: PRNGKeyArray, x: Float[Array, "N D"], k: int, n_iter: int = 200, reg: float = 1e-3,
        n_init: int = 5, covariance: str = "full") -> dict[str, Array]:
    """Fit a ``k``-component Gaussian mixture by EM (started from k-means), best of ``n_init``.

    ``covariance`` is ``"full"`` (``D x D`` per component, for low-dimensional features) or
    ``"diag"`` (per-coordinate variances, for pixels). Returns ``{"weights": (K,),
    "means": (K, D), "chol": (K, D, D)`` or ``"var": (K, D)``, ``"loglik"``: mean log-likelihood}.
    """
    if reg <= 0:
        raise ValueError(f"reg must be > 0, got {reg}")
    if covariance not in ("full", "diag"):
        raise ValueError(f"covariance must be 'full' or 'diag', got {covariance!r}")
    x = jnp.asarray(x)
    best = None
    for sub in jax.random.split(key, n_init):
        params, ll = _gmm_em(sub, x, k, n_iter, reg, covariance == "full")
        if best is None or float(ll) > float(best[1]):
            best = (params, ll)
    (w, means, shape), ll = best
    return {"weights": w, "means": means, ("chol" if covariance == "full" else "var"): shape,
            "loglik": ll}


@partial(jax.jit, static_argnums=(2, 3, 5))
def _gmm_em(key, x, k, n_iter, reg, full):
    n, d = x.shape
    eye = jnp.eye(d, dtype=x.dtype)

    def m_step(resp):
        nk = resp.sum(0) + 1e-10
        means = (resp.T @ x) / nk[:, None]
        if full:
            diff = x[None] - means[:, None]
            cov = jnp.einsum("nk,kni,knj->kij", resp, diff, diff) / nk[:, None, None] + reg * eye
            return nk / n, means, jnp.linalg.cholesky(cov)
        var = (resp.T @ x**2) / nk[:, None] - means**2
        return nk / n, means, jnp.maximum(var, 0.0) + reg

    def e_step(w, means, shape):
        logp = (_gauss_logpdf(x, means, shape) if full else _diag_logpdf(x, means, shape)) + jnp.log(w)
        ll = jax.scipy.special.logsumexp(logp, axis=1)
        return jnp.exp(logp - ll[:, None]), jnp.mean(ll)

    mu = _kmeans(key[None], x, k, 100)
    params = m_step(jax.nn.one_hot(kmeans_predict(mu, x), k, dtype=x.dtype))
    params = jax.lax.fori_loop(0, n_iter, lambda _, p: m_step(e_step(*p)[0]), params)
    return params, e_step(*params)[1]


def gmm_predict(params: dict[str, Array], x: Float[Array, "N D"]) -> Int[Array, " N"]:
    """Most probable component of each row of ``x``."""
    x = jnp.asarray(x)
    if "chol" in params:
        logp = _gauss_logpdf(x, params["means"], params["chol"])
    else:
        logp = _diag_logpdf(x, params["means"], params["var"])
    return jnp.argmax(logp + jnp.log(params["weights"]), axis=1)


def _contingency(pred, true) -> np.ndarray:
    pred, true = np.asarray(pred).ravel(), np.asarray(true).ravel()
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same length, got {pred.shape} and {true.shape}")
    if pred.min() < 0 or true.min() < 0:
        raise ValueError("cluster and class indices must be >= 0")
    table = np.zeros((pred.max() + 1, true.max() + 1))
    np.add.at(table, (pred, true), 1)
    return table


def matched_accuracy(pred, true) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes (Hungarian)."""
    table = _contingency(pred, true)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / table.sum())


def normalized_mutual_information(pred, true) -> float:
    """``I(C; Y) / sqrt(H(C) H(Y))``; defined as 1 when both entropies vanish, 0 when one does."""
    p = _contingency(pred, true)
    p = p / p.sum()
    pc, py = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float(np.sum(p[nz] * np.log(p[nz] / np.outer(pc, py)[nz])))
    hc = float(-np.sum(pc[pc > 0] * np.log(pc[pc > 0])))
    hy = float(-np.sum(py[py > 0] * np.log(py[py > 0])))
    if hc == 0 and hy == 0:
        return 1.0
    if hc == 0 or hy == 0:
        return 0.0
    return mi / np.sqrt(hc * hy)


def pca(x: Float[Array, "N D"], n_components: int) -> tuple[Array, Array]:
    """``(mean, components)``: the mean row and the top ``n_components`` principal axes ``(C, D)``;
    project with ``(x - mean) @ components.T``."""
    x = jnp.asarray(x)
    if not 1 <= n_components <= min(x.shape):
        raise ValueError(f"n_components must be in [1, {min(x.shape)}], got {n_components}")
    mean = x.mean(0)
    _, _, vt = jnp.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:n_components]


def standardize(train: Float[Array, "N D"], *others: Array) -> tuple[Array, ...]:
    """Scale columns to zero mean and unit variance using the statistics of ``train``."""
    train = jnp.asarray(train)
    m, s = train.mean(0), train.std(0) + 1e-8
    return tuple((jnp.asarray(a) - m) / s for a in (train, *others))


def logistic_probe(x_train: Float[Array, "N D"], y_train: Int[Array, " N"], x_test: Float[Array, "M D"],
                   y_test: Int[Array, " M"], n_classes: int, l2: float = 1e-3,
                   n_steps: int = 300) -> float:
    """Held-out accuracy of multinomial logistic regression (a linear probe) on standardised features."""
    xtr, xte = standardize(x_train, x_test)
    w, b = _fit_probe(xtr, jnp.asarray(y_train), n_classes, l2, n_steps)
    pred = jnp.argmax(xte @ w + b, axis=1)
    return float(jnp.mean(pred == jnp.asarray(y_test)))


@partial(jax.jit, static_argnums=(2, 4))
def _fit_probe(xtr, ytr, n_classes, l2, n_steps):
    params = (jnp.zeros((xtr.shape[1], n_classes), xtr.dtype), jnp.zeros((n_classes,), xtr.dtype))

    def loss(p):
        w, b = p
        logp = jax.nn.log_softmax(xtr @ w + b)
        return -jnp.mean(jnp.take_along_axis(logp, ytr[:, None], 1)) + 0.5 * l2 * jnp.sum(w**2)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry, _):
        p, s = carry
        v, g = value_and_grad(p, state=s)
        u, s = opt.update(g, s, p, value=v, grad=g, value_fn=loss)
        return (optax.apply_updates(p, u), s), v

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=n_steps)
    return params

"""Error metrics of a reconstruction against the truth (see :mod:`bayesqcd.spectral`)."""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import ArrayLike

from bayesqcd.intervals import credible_band
from bayesqcd.spectral.mocks import MockData


# ------------------------------------------------------------------------- metrics
def _as_np(a: ArrayLike) -> np.ndarray:
    return np.asarray(a, dtype=float)


def mse(rho_hat: ArrayLike, rho_true: ArrayLike) -> float:
    """Mean squared error on the grid, ``mean_i (rho_hat_i - rho_i)^2``."""
    rho_hat, rho_true = _as_np(rho_hat), _as_np(rho_true)
    if rho_hat.shape != rho_true.shape:
        raise ValueError(f"shapes differ: {rho_hat.shape} vs {rho_true.shape}")
    return float(np.mean((rho_hat - rho_true) ** 2))


def kl_divergence(rho_true: ArrayLike, rho_hat: ArrayLike, weights: ArrayLike | None = None) -> float:
    """``KL(truth || reconstruction) = sum_i p_i log(p_i / q_i)`` with ``p, q`` the normalised
    ``rho w`` (``inf`` if the reconstruction vanishes where the truth does not)."""
    p, q = _as_np(rho_true), _as_np(rho_hat)
    if p.shape != q.shape:
        raise ValueError(f"shapes differ: {p.shape} vs {q.shape}")
    w = np.ones_like(p) if weights is None else _as_np(weights)
    if np.any(p < 0) or np.any(q < 0):
        raise ValueError("KL needs non-negative spectral functions")
    p, q = p * w / np.sum(p * w), q * w / np.sum(q * w)
    mask = p > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))))


def coverage(samples: ArrayLike, rho_true: ArrayLike, level: float = 0.95, floor: float = 0.0) -> float:
    """Fraction of grid points where the truth lies in the pointwise equal-tailed ``level`` band
    ``[lo, hi]`` of ``samples`` ``(n, n_omega)`` (:func:`bayesqcd.intervals.credible_band`),
    widened by ``floor`` (same unit as ``rho``): ``lo - floor <= rho <= hi + floor``.

    With ``floor = 0`` a Gaussian tail of ``1e-100`` under a band ``[1e-8, 1e-3]`` counts as
    missed; a small floor (:data:`COVERAGE_FLOOR` times the truth's maximum in :func:`metrics`)
    counts such points, where truth and band are both negligible, as covered."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not floor >= 0:
        raise ValueError(f"floor must be >= 0, got {floor}")
    lo, hi = credible_band(_as_np(samples), levels=(level,))[level]
    t = _as_np(rho_true)
    if t.shape != lo.shape:
        raise ValueError(f"samples (n, {lo.shape}) and truth {t.shape} do not match")
    return float(np.mean((t >= lo - floor) & (t <= hi + floor)))


COVERAGE_FLOOR = 1e-4
"""``coverage_floor`` of :func:`metrics` widens the band by this fraction of ``max(rho_true)``."""


def metrics(samples: ArrayLike, mock: MockData, level: float = 0.95) -> dict[str, float]:
    """MSE and KL of the posterior mean, coverage of the ``level`` band (``coverage``: strict;
    ``coverage_floor``: band widened by :data:`COVERAGE_FLOOR` ``max(rho)``, see :func:`coverage`),
    against ``mock.rho``, and the truth-free :func:`fit_metrics`. For measured data (no truth,
    ``mock.rho is None``) only :func:`fit_metrics`."""
    s = _as_np(samples).reshape(-1, mock.omega.shape[0])
    out = fit_metrics(s, mock)
    if mock.rho is None:
        return out
    mean = s.mean(axis=0)
    floor = COVERAGE_FLOOR * float(np.max(_as_np(mock.rho)))
    return {"mse": mse(mean, mock.rho), "kl": kl_divergence(mock.rho, mean, mock.weights),
            "coverage": coverage(s, mock.rho, level), "coverage_floor": coverage(s, mock.rho, level, floor),
            **out}


def fit_metrics(samples: ArrayLike, mock: MockData) -> dict[str, float]:
    """What needs no truth: ``chi2_per_point`` of the posterior mean against the data,
    ``chi2_per_point_draws`` (the mean over draws of each draw's chi^2/point: the posterior
    predictive fit, ``~ 1 + (effective parameters) / n_data`` for a fitting model),
    ``peak_omega`` (the grid point of the mean's maximum) and ``min_rho``."""
    s = _as_np(samples).reshape(-1, mock.omega.shape[0])
    mean = s.mean(axis=0)
    Li = np.linalg.inv(np.linalg.cholesky(_as_np(mock.cov)))
    r = (_as_np(mock.data)[None, :] - s @ _as_np(mock.A).T) @ Li.T
    return {"min_rho": float(s.min()), "chi2_per_point": chi2_per_point(mean, mock),
            "chi2_per_point_draws": float(np.mean(np.sum(r**2, axis=1)) / r.shape[1]),
            "peak_omega": float(_as_np(mock.omega)[int(np.argmax(mean))])}


def chi2_per_point(rho: ArrayLike, mock: MockData) -> float:
    """``(D - A rho)^T C^{-1} (D - A rho) / n_data`` of one reconstruction."""
    r = _as_np(mock.data) - _as_np(mock.A) @ _as_np(rho)
    return float(r @ np.linalg.solve(_as_np(mock.cov), r) / r.shape[0])


def log10_eps_label(eps: float) -> str:
    """``1e-3`` style label of a noise level."""
    return f"1e{round(math.log10(eps))}" if eps > 0 else str(eps)

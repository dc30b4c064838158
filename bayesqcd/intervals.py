"""Credible intervals and pointwise bands of posterior draws (plain numpy; no plotting).

Used by the spectral metrics (core) and by :mod:`bayesqcd.report` (which re-exports them and
builds :func:`bayesqcd.report.compare` on them).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def credible_interval(x: Any, level: float) -> tuple[float, float]:
    """Central (equal-tailed) ``level`` credible interval of the finite values of ``x``."""
    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def credible_band(draws: Any, levels: tuple[float, ...] = (0.68, 0.95), min_finite: float = 0.5) -> dict[str, Any]:
    """Median and central credible bands of ``draws`` shaped ``(..., G)`` along a grid of G points.

    Draws are flattened over all leading axes (chains, draws). Grid points where fewer than
    ``min_finite`` of the draws are finite (e.g. masses above most M_TOV) get NaN.
    Returns ``{"median": (G,), level: (lo (G,), hi (G,)) for each level}``.
    """
    x = np.asarray(draws, dtype=float)
    x = x.reshape(-1, x.shape[-1])
    enough = np.isfinite(x).mean(axis=0) >= min_finite
    out: dict[str, Any] = {}
    with warnings.catch_warnings():  # all-NaN columns are masked below
        warnings.simplefilter("ignore", RuntimeWarning)
        out["median"] = np.where(enough, np.nanmedian(x, axis=0), np.nan)
        for level in levels:
            lo, hi = np.nanquantile(x, [(1 - level) / 2, (1 + level) / 2], axis=0)
            out[level] = (np.where(enough, lo, np.nan), np.where(enough, hi, np.nan))
    return out


def interval_overlap(a: tuple[Any, Any], b: tuple[Any, Any]) -> np.ndarray:
    """|A n B| / |A u B| of intervals A = [a_lo, a_hi], B = [b_lo, b_hi], elementwise, in [0, 1].

    1 for identical intervals (also two identical points), 0 for disjoint ones.
    """
    inter = np.clip(np.minimum(a[1], b[1]) - np.maximum(a[0], b[0]), 0.0, None)
    union = np.maximum(a[1], b[1]) - np.minimum(a[0], b[0])
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)

"""Wasserstein-2 distance between two equal-size point sets by exact assignment."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def wasserstein2(x: np.ndarray, y: np.ndarray) -> float:
    """``W_2`` between the empirical measures of ``x`` and ``y`` (both ``(n, d)``):
    ``sqrt(min_perm (1/n) sum_i |x_i - y_perm(i)|^2)``, solved exactly by the Hungarian
    algorithm (``O(n^3)``; fine for a few thousand points)."""
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    if x.shape != y.shape or x.shape[0] == 0:
        raise ValueError(f"x and y must be non-empty with equal shapes, got {x.shape}, {y.shape}")
    cost = np.sum(x**2, 1)[:, None] + np.sum(y**2, 1)[None, :] - 2.0 * x @ y.T
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(max(cost[rows, cols].mean(), 0.0)))

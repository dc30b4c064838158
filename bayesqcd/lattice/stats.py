"""Monte-Carlo error analysis: integrated autocorrelation time, binning, jackknife, bootstrap.

These act on finished Markov chains (post-processing), so they are NumPy, not traced JAX.
Chains are arrays of shape ``(chains, draws, ...)``; a single series ``(draws,)`` is one chain.

* :func:`autocorrelation` / :func:`tau_int`: normalised autocorrelation ``rho(t)`` and
  ``tau_int = 1/2 + sum_{t=1}^{W} rho(t)`` with Sokal's automatic window (smallest ``W`` with
  ``W >= c tau_int(W)``), error ``tau_int sqrt(2 (2W + 1) / N)`` (Madras-Sokal). The variance of
  a mean of ``N`` draws is ``2 tau_int var / N``: ``N / (2 tau_int)`` independent samples.
* :func:`bin_means`: means over consecutive bins within each chain (bins much longer than
  ``tau_int`` are independent).
* :func:`jackknife`, :func:`bootstrap`: errors of any function of means, on binned data.
"""

from __future__ import annotations

from collections.abc import Callable

import math

import numpy as np


def _as_chains(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None]
    if x.ndim < 2 or x.shape[1] < 2:
        raise ValueError(f"chains must have shape (chains, draws, ...) with >= 2 draws, got {x.shape}")
    return x


def autocorrelation(x) -> np.ndarray:
    """Normalised autocorrelation ``rho(t)`` of a scalar series, ``t = 0 .. draws-1``.

    ``x``: ``(draws,)`` or ``(chains, draws)``; the autocovariance is averaged over chains
    around the mean of all chains (FFT, zero-padded, so not circular).
    """
    x = _as_chains(x)
    if x.ndim != 2:
        raise ValueError(f"autocorrelation needs a scalar series (chains, draws), got {x.shape}")
    n = x.shape[1]
    d = x - x.mean()
    f = np.fft.rfft(d, n=2 * n, axis=1)
    acov = np.fft.irfft(f * np.conj(f), axis=1)[:, :n].mean(axis=0) / (n - np.arange(n))
    if acov[0] <= 0:
        return np.concatenate([[1.0], np.zeros(n - 1)])
    return acov / acov[0]


def tau_int(x, c: float = 5.0) -> tuple[float, float]:
    """``(tau_int, error)`` of a scalar series (units: draws); ``tau_int = 1/2`` when uncorrelated.

    Args:
        x: ``(draws,)`` or ``(chains, draws)``.
        c: Sokal's window constant (``4 .. 10``; 5 by default).
    """
    if not c > 0:
        raise ValueError(f"c must be > 0, got {c}")
    x = _as_chains(x)
    rho = autocorrelation(x)
    n_tot = x.size
    tau = 0.5
    W = 1
    for W in range(1, len(rho)):
        tau = 0.5 + float(np.sum(rho[1:W + 1]))
        if W >= c * tau:
            break
    tau = max(tau, 0.5)
    return tau, tau * float(np.sqrt(2.0 * (2 * W + 1) / n_tot))


def bin_size_for(tau: float) -> int:
    """Bin size [draws] for nearly independent bins: ``ceil(4 tau_int)``, at least 1."""
    return max(1, math.ceil(4 * tau))


def bin_means(x, bin_size: int) -> np.ndarray:
    """Means over consecutive bins of ``bin_size`` draws within each chain: ``(n_bins, ...)``.

    Draws left over at the end of a chain are dropped.
    """
    x = _as_chains(x)
    if bin_size < 1:
        raise ValueError(f"bin_size must be >= 1, got {bin_size}")
    n_b = x.shape[1] // bin_size
    if n_b < 1:
        raise ValueError(f"bin_size {bin_size} is longer than the chains ({x.shape[1]} draws)")
    y = x[:, : n_b * bin_size].reshape(x.shape[0], n_b, bin_size, *x.shape[2:]).mean(axis=2)
    return y.reshape(x.shape[0] * n_b, *x.shape[2:])


def jackknife(fn: Callable[..., np.ndarray], *bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Delete-one jackknife of ``fn(mean_1, mean_2, ...)`` over ``n`` independent bins.

    Args:
        fn: function of the means of each array (over axis 0) returning a scalar or array.
        bins: arrays of shape ``(n, ...)``, e.g. from :func:`bin_means`.

    Returns:
        ``(fn(full means), jackknife standard error)``.
    """
    bins = [np.asarray(b, dtype=float) for b in bins]
    n = bins[0].shape[0]
    if n < 2 or any(b.shape[0] != n for b in bins):
        raise ValueError(f"need >= 2 bins, the same number for every array; got {[b.shape for b in bins]}")
    sums = [b.sum(axis=0) for b in bins]
    full = np.asarray(fn(*[s / n for s in sums]))
    reps = np.stack([np.asarray(fn(*[(s - b[i]) / (n - 1) for s, b in zip(sums, bins)]))
                     for i in range(n)])
    err = np.sqrt((n - 1) / n * np.sum((reps - reps.mean(axis=0)) ** 2, axis=0))
    return full, err


def bootstrap(fn: Callable[..., np.ndarray], *bins: np.ndarray, n_boot: int = 500,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap of ``fn(mean_1, mean_2, ...)``: ``n_boot`` resamplings of the bins with
    replacement (the same indices for every array). Returns ``(fn(full means), std of replicas)``.
    """
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")
    bins = [np.asarray(b, dtype=float) for b in bins]
    n = bins[0].shape[0]
    if n < 2 or any(b.shape[0] != n for b in bins):
        raise ValueError(f"need >= 2 bins, the same number for every array; got {[b.shape for b in bins]}")
    rng = np.random.default_rng(seed)
    full = np.asarray(fn(*[b.mean(axis=0) for b in bins]))
    idx = rng.integers(0, n, size=(n_boot, n))
    reps = np.stack([np.asarray(fn(*[b[i].mean(axis=0) for b in bins])) for i in idx])
    return full, reps.std(axis=0, ddof=1)

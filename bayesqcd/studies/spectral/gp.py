"""Empirical Bayes for the GP prior of :func:`bayesqcd.models.spectral.gp_model`.

The generic parts (Gauss-Newton MAP, Laplace evidence, the scan over an amplitude) are
:func:`bayesqcd.inference.optimize.least_squares_solver` and
:func:`~bayesqcd.inference.optimize.evidence_scan`; this module supplies the GP's
parametrisation, prior scales, start and continuation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesqcd.inference.optimize import evidence_scan, least_squares_solver

GP_MU_SCALE = 3.0
"""Prior standard deviation of ``mu`` in :func:`bayesqcd.models.spectral.gp_model`."""


@dataclass
class GPEvidence:
    """The GP amplitude of maximal evidence and the MAP at it (:func:`gp_empirical_bayes`).

    Attributes:
        amplitude: the chosen GP amplitude ``a`` (units of ``log rho``).
        theta: the MAP of ``(mu, z)`` at ``amplitude``, ``(1 + n_modes,)``.
        amplitudes, log_evidence: the scanned grid and ``log p(a | D)`` (up to a constant).
        chi2_per_point: ``chi^2 / n_data`` of the MAP.
        converged: whether every least-squares solve met its tolerance.
    """

    amplitude: float
    theta: np.ndarray
    amplitudes: np.ndarray
    log_evidence: np.ndarray
    chi2_per_point: float
    converged: bool


def gp_rho(omega: Any, basis: Any) -> Callable[[jax.Array, float], jax.Array]:
    """``(theta, a) -> rho = w exp(mu + a basis z)`` with ``theta = (mu, z)``: the spectral
    function of :func:`bayesqcd.models.spectral.gp_model` at a fixed amplitude ``a``.

    Arguments:
        omega: the grid ``(n_omega,)``.
        basis: ``U sqrt(lambda)`` of :func:`bayesqcd.models.spectral.gp_basis`, ``(n_omega, n_modes)``.
    """
    omega, basis = jnp.asarray(omega, dtype=float), jnp.asarray(basis, dtype=float)
    return lambda theta, a: omega * jnp.exp(theta[0] + a * (basis @ theta[1:]))


def gp_prior_scale(n_modes: int) -> np.ndarray:
    """Prior standard deviations of ``theta = (mu, z)`` in :func:`~bayesqcd.models.spectral.gp_model`."""
    return np.concatenate([[GP_MU_SCALE], np.ones(int(n_modes))])


def gp_empirical_bayes(A: Any, cov: Any, omega: Any, basis: Any, data: Any, *,
                       amplitudes: Any = None) -> GPEvidence:
    """Empirical Bayes for :func:`bayesqcd.models.spectral.gp_model`: the amplitude ``a`` of
    maximal evidence (as MEM chooses its ``alpha``) and the MAP of ``(mu, z)`` at it.

    The evidence is the Gauss-Newton Laplace approximation of
    :func:`~bayesqcd.inference.optimize.least_squares_solver` plus the ``HalfNormal(2)``
    hyperprior, ``log p(a | D) = log p(D | a) - a^2 / 8`` (+ const). ``amplitudes`` (default
    ``geomspace(0.1, 30, 16)``) are scanned upwards (:func:`~bayesqcd.inference.optimize.evidence_scan`),
    each solve starting from the previous MAP with ``a z`` held fixed (continuation: from the
    flat start the solver fails at large ``a``); the scan stops once the evidence has fallen 10
    below its maximum. The first start is ``z = 0`` and ``mu`` of the least-squares constant.

    Arguments:
        A, cov, data: forward matrix ``(n_data, n_omega)``, noise covariance, correlator ``(n_data,)``.
        omega, basis: the grid ``(n_omega,)`` and the GP basis ``(n_omega, n_modes)``.
        amplitudes: the grid of ``a`` (positive).
    """
    A, w, B, D = (np.asarray(v, float) for v in (A, omega, basis, data))
    amps = np.geomspace(0.1, 30.0, 16) if amplitudes is None else np.asarray(amplitudes, float)
    if amps.ndim != 1 or amps.size < 1 or np.any(amps <= 0):
        raise ValueError(f"amplitudes must be a 1-D grid of positive numbers, got {amps}")
    if B.ndim != 2 or B.shape[0] != A.shape[1] or w.shape != (A.shape[1],) or D.shape != (A.shape[0],):
        raise ValueError(f"shapes do not match A {A.shape}: omega {w.shape}, basis {B.shape}, data {D.shape}")
    solve = least_squares_solver(gp_rho(w, B), gp_prior_scale(B.shape[1]), A, cov, D)
    g = A @ w
    theta = np.concatenate([[np.log(max(g @ D, 1e-300) / (g @ g))], np.zeros(B.shape[1])])
    scan = evidence_scan(solve, theta, amps, log_hyperprior=lambda a: -a**2 / 8.0,
                         continuation=lambda th, prev, a: np.concatenate([th[:1], th[1:] * prev / a]))
    return GPEvidence(scan.amplitude, scan.map.theta, scan.amplitudes, scan.log_evidence,
                      scan.map.chi2_per_point, scan.converged)

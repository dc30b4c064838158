"""A learned prior for spectral functions: a family of peaks and a low-dimensional representation.

The diffusion prior does not act on ``rho`` on the fine grid but on a standardised log
spectral function at ``k`` coarse points ``nu_j`` (uniform on ``[omega_1, omega_max]``):

    x_j = (log(rho(nu_j) + floor) - mean_j) / std_j,      rho(omega) = exp(P (mean + std x)),

where ``P`` interpolates linearly from the coarse points to the fine grid. Every ``x`` maps to
a strictly positive ``rho``, so positivity holds by construction; the map is smooth, so the
forward operator ``x -> A rho(x)`` is differentiable. ``mean`` and ``std`` are set from the
training family (:func:`fit_representation`).

:func:`sample_family` draws the training family: one or two peaks, each a Breit-Wigner
(``A ~ U(0.5, 1.5)``, ``M ~ U(1, 8)``, ``Gamma ~ U(0.2, 1)``) or a Gaussian (``A ~ U(0.5, 1.5)``,
``M ~ U(1, 8)``, width ``~ U(0.3, 1)``), half and half.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from bayesqcd.spectral.mocks import breit_wigner, gaussian_peak

FLOOR = 1e-6
"""Added to ``rho`` before the logarithm of the training family (Gaussian tails vanish)."""


def interpolation_matrix(fine: ArrayLike, coarse: ArrayLike) -> np.ndarray:
    """``P`` with ``P @ f(coarse) = `` linear interpolation of ``f`` at ``fine`` (constant outside)."""
    fine, coarse = np.asarray(fine, float), np.asarray(coarse, float)
    if coarse.ndim != 1 or coarse.shape[0] < 2 or np.any(np.diff(coarse) <= 0):
        raise ValueError(f"coarse must be an increasing grid of >= 2 points, got {coarse.shape}")
    eye = np.eye(coarse.shape[0])
    return np.stack([np.interp(fine, coarse, eye[j]) for j in range(coarse.shape[0])], axis=1)


class LogRhoRepresentation(eqx.Module):
    """``x (k,) <-> rho (n,)``: standardised log ``rho`` at coarse points (see module doc)."""

    omega: Float[Array, " n"]
    coarse: Float[Array, " k"]
    P: Float[Array, "n k"]
    mean: Float[Array, " k"]
    std: Float[Array, " k"]

    @property
    def dim(self) -> int:
        return self.coarse.shape[0]

    def to_rho(self, x: Float[Array, " k"]) -> Float[Array, " n"]:
        """``rho = exp(P (mean + std x))`` on the fine grid (> 0)."""
        return jnp.exp(self.P @ (self.mean + self.std * x))

    def encode(self, rho: Float[Array, "... n"]) -> Float[Array, "... k"]:
        """Standardised ``log(rho + floor)`` at the coarse points (interpolated from the fine grid)."""
        rho = jnp.asarray(rho)
        logr = jnp.log(rho + FLOOR)
        at = jax.vmap(lambda r: jnp.interp(self.coarse, self.omega, r))(logr.reshape(-1, rho.shape[-1]))
        return ((at - self.mean) / self.std).reshape(*rho.shape[:-1], self.dim)


def coarse_grid(omega: ArrayLike, k: int) -> np.ndarray:
    """``k`` uniform points from the first to the last point of ``omega``."""
    omega = np.asarray(omega, float)
    if int(k) < 2:
        raise ValueError(f"k (coarse points) must be >= 2, got {k}")
    return np.linspace(omega[0], omega[-1], int(k))


def fit_representation(omega: ArrayLike, family: ArrayLike, k: int = 64) -> LogRhoRepresentation:
    """The representation whose ``mean``/``std`` standardise ``family`` ``(N, n)`` at ``k`` points."""
    omega = np.asarray(omega, float)
    family = np.asarray(family, float)
    if family.ndim != 2 or family.shape[1] != omega.shape[0]:
        raise ValueError(f"family must be (N, {omega.shape[0]}), got {family.shape}")
    if family.shape[0] < 2:
        raise ValueError(f"family needs >= 2 members, got {family.shape[0]}")
    nu = coarse_grid(omega, k)
    at = np.stack([np.interp(nu, omega, r) for r in np.log(family + FLOOR)])
    mean, std = at.mean(0), np.maximum(at.std(0), 1e-3)
    return LogRhoRepresentation(jnp.asarray(omega), jnp.asarray(nu), jnp.asarray(interpolation_matrix(omega, nu)),
                                jnp.asarray(mean), jnp.asarray(std))


def sample_family(key: PRNGKeyArray, n: int, omega: ArrayLike, *, m_range: tuple[float, float] = (1.0, 8.0),
                  max_peaks: int = 2) -> Float[Array, "n nw"]:
    """``n`` random spectral functions on ``omega`` with 1..``max_peaks`` peaks (module doc)."""
    if int(n) < 1 or int(max_peaks) < 1:
        raise ValueError(f"need n >= 1 and max_peaks >= 1, got {n}, {max_peaks}")
    if not 0 < m_range[0] < m_range[1]:
        raise ValueError(f"m_range must satisfy 0 < lo < hi, got {m_range}")
    omega = jnp.asarray(omega, float)
    kn, ka, km, kw, kt = jax.random.split(key, 5)
    shape = (int(n), int(max_peaks))
    n_peaks = jax.random.randint(kn, (int(n),), 1, int(max_peaks) + 1)
    amp = jax.random.uniform(ka, shape, minval=0.5, maxval=1.5)
    M = jax.random.uniform(km, shape, minval=m_range[0], maxval=m_range[1])
    width = jax.random.uniform(kw, shape, minval=0.2, maxval=1.0)
    is_bw = jax.random.bernoulli(kt, 0.5, shape)
    on = jnp.arange(int(max_peaks))[None, :] < n_peaks[:, None]

    def peak(a, m, w, bw):
        return jnp.where(bw, breit_wigner(omega, a, m, w), gaussian_peak(omega, a, m, w + 0.1))

    peaks = jax.vmap(jax.vmap(peak))(amp, M, width, is_bw)  # (n, P, nw)
    return jnp.sum(jnp.where(on[..., None], peaks, 0.0), axis=1)

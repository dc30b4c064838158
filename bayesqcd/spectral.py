"""Spectral functions from Euclidean correlators: kernels, mock data and error metrics.

A spectral function ``rho(omega) >= 0`` determines a correlator through a kernel,
``D(x) = int_0^inf d omega K(x, omega) rho(omega)``. On a uniform grid
``omega_i = i omega_max / n`` (``i = 1..n``, so the grid is ``(0, omega_max]``) with weights
``dw = omega_max / n`` the integral becomes the matrix ``A = K W``: ``D = A rho``.

Kernels (units: ``omega``, ``p`` and ``1/tau`` in the same energy unit, e.g. GeV, or lattice
units ``a = 1``; ``rho`` and ``D`` in whatever unit the user chooses, the map is linear):

* :func:`kallen_lehmann_kernel`: momentum space, ``K(p, w) = w / [pi (w^2 + p^2)]``.
* :func:`euclidean_kernel`: Euclidean time at zero temperature on a periodic lattice of
  ``N_t`` sites, ``K(tau, w) = exp(-w tau) + exp(-w (N_t - tau))`` (``tau`` in lattice units).
* :func:`thermal_kernel`: finite temperature ``T``,
  ``K(tau, w) = cosh(w (tau - 1/(2T))) / sinh(w / (2T))`` for ``0 <= tau < 1/T``.

Mock spectral functions: :func:`breit_wigner`
``rho = 4 A Gamma w / [(M^2 + Gamma^2 - w^2)^2 + 4 Gamma^2 w^2]`` and :func:`gaussian_peak`;
:func:`mock_spectrum` builds the named mocks (Wang, Shi, Zhou, arXiv:2111.14760: one peak
``A=1, M=2, Gamma=0.5``; two peaks at ``M = 2, 5``). :func:`mock_correlator` adds noise with a
chosen model and covariance. Metrics: :func:`mse`, :func:`kl_divergence`, :func:`coverage`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


# ----------------------------------------------------------------------------- grid, kernels
def omega_grid(n: int = 500, omega_max: float = 20.0) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
    """Uniform grid ``omega_i = i omega_max / n`` on ``(0, omega_max]`` and its weights ``dw``."""
    if int(n) < 2:
        raise ValueError(f"n (omega points) must be >= 2, got {n}")
    if not omega_max > 0:
        raise ValueError(f"omega_max must be > 0, got {omega_max}")
    dw = omega_max / n
    omega = dw * jnp.arange(1, int(n) + 1, dtype=float)
    return omega, jnp.full((int(n),), dw)


def _concrete(x: Array) -> np.ndarray | None:
    """``x`` as numpy when its value is known (not traced), else ``None`` (checks are skipped)."""
    return None if isinstance(x, jax.core.Tracer) else np.asarray(x)


def _check_omega(omega: ArrayLike) -> Array:
    omega = jnp.asarray(omega, dtype=float)
    if omega.ndim != 1 or omega.shape[0] < 2:
        raise ValueError(f"omega must be a 1-D grid of >= 2 points, got shape {omega.shape}")
    o = _concrete(omega)
    if o is not None and np.any(o <= 0):
        raise ValueError(f"omega must be > 0 everywhere, got min {o.min()}")
    return omega


def kallen_lehmann_kernel(p: ArrayLike, omega: ArrayLike) -> Float[Array, "np nw"]:
    """``K(p, w) = w / [pi (w^2 + p^2)]`` (Kallen-Lehmann), shape ``(len(p), len(omega))``."""
    p = jnp.atleast_1d(jnp.asarray(p, dtype=float))
    omega = _check_omega(omega)
    return omega[None, :] / (jnp.pi * (omega[None, :] ** 2 + p[:, None] ** 2))


def euclidean_kernel(tau: ArrayLike, omega: ArrayLike, n_t: int) -> Float[Array, "nt nw"]:
    """``K(tau, w) = exp(-w tau) + exp(-w (N_t - tau))`` for ``0 <= tau <= N_t`` (lattice units)."""
    tau = jnp.atleast_1d(jnp.asarray(tau, dtype=float))
    omega = _check_omega(omega)
    if int(n_t) < 1:
        raise ValueError(f"n_t must be >= 1, got {n_t}")
    t = _concrete(tau)
    if t is not None and np.any((t < 0) | (t > n_t)):
        raise ValueError(f"tau must lie in [0, n_t={n_t}], got range [{t.min()}, {t.max()}]")
    return jnp.exp(-omega[None] * tau[:, None]) + jnp.exp(-omega[None] * (n_t - tau[:, None]))


def thermal_kernel(tau: ArrayLike, omega: ArrayLike, temperature: float) -> Float[Array, "nt nw"]:
    """``K(tau, w) = cosh(w (tau - 1/2T)) / sinh(w / 2T)`` for ``0 <= tau < 1/T``.

    Written as ``[exp(-w tau) + exp(-w (1/T - tau))] / (1 - exp(-w/T))`` (no overflow).
    """
    tau = jnp.atleast_1d(jnp.asarray(tau, dtype=float))
    omega = _check_omega(omega)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    beta = 1.0 / temperature
    tc = _concrete(tau)
    if tc is not None and np.any((tc < 0) | (tc >= beta)):
        raise ValueError(f"tau must lie in [0, 1/T={beta}), got range [{tc.min()}, {tc.max()}]")
    w, t = omega[None], tau[:, None]
    return (jnp.exp(-w * t) + jnp.exp(-w * (beta - t))) / (-jnp.expm1(-w * beta))


def forward_matrix(kernel: Float[Array, "nd nw"], weights: Float[Array, " nw"]) -> Float[Array, "nd nw"]:
    """The quadrature ``A = K diag(weights)``: ``D = A @ rho`` approximates ``int K rho``."""
    kernel, weights = jnp.asarray(kernel), jnp.asarray(weights)
    if kernel.ndim != 2 or weights.shape != kernel.shape[1:]:
        raise ValueError(f"kernel (n_data, n_omega) and weights (n_omega,) do not match: "
                         f"{kernel.shape} vs {weights.shape}")
    return kernel * weights[None, :]


# ------------------------------------------------------------------------- mock spectra
def breit_wigner(omega: ArrayLike, A: float = 1.0, M: float = 2.0, Gamma: float = 0.5) -> Float[Array, " n"]:
    """``rho = 4 A Gamma w / [(M^2 + Gamma^2 - w^2)^2 + 4 Gamma^2 w^2]`` (``rho ~ w`` at small w)."""
    w = jnp.asarray(omega, dtype=float)
    return 4 * A * Gamma * w / ((M**2 + Gamma**2 - w**2) ** 2 + 4 * Gamma**2 * w**2)


def gaussian_peak(omega: ArrayLike, A: float = 1.0, M: float = 2.0, width: float = 0.5) -> Float[Array, " n"]:
    """``rho = A exp(-(w - M)^2 / (2 width^2))``."""
    w = jnp.asarray(omega, dtype=float)
    return A * jnp.exp(-0.5 * ((w - M) / width) ** 2)


MOCKS = ("bw1", "bw2", "gauss1", "gauss2")
"""Named mocks: one or two Breit-Wigner peaks (A=1, Gamma=0.5, M=2 and M=2, 5), one or two
Gaussians (A=1, width 0.5, M=2 and M=2, 5)."""


def mock_spectrum(name: str, omega: ArrayLike) -> Float[Array, " n"]:
    """The named mock spectral function (see :data:`MOCKS`) on ``omega``."""
    if name == "bw1":
        return breit_wigner(omega, 1.0, 2.0, 0.5)
    if name == "bw2":
        return breit_wigner(omega, 1.0, 2.0, 0.5) + breit_wigner(omega, 1.0, 5.0, 0.5)
    if name == "gauss1":
        return gaussian_peak(omega, 1.0, 2.0, 0.5)
    if name == "gauss2":
        return gaussian_peak(omega, 1.0, 2.0, 0.5) + gaussian_peak(omega, 1.0, 5.0, 0.5)
    raise ValueError(f"mock must be one of {MOCKS}, got {name!r}")


# ------------------------------------------------------------------------- mock correlators
class MockData(eqx.Module):
    """A mock inverse problem: grid, truth, forward matrix and noisy data.

    Attributes:
        omega, weights: the grid ``(n_omega,)`` and its quadrature weights.
        x: the data abscissae (momenta ``p`` or times ``tau``), ``(n_data,)``.
        A: forward matrix ``(n_data, n_omega)``; ``D = A rho``.
        rho: the true spectral function on the grid.
        clean: the noiseless correlator ``A rho``.
        data: the noisy correlator.
        cov: the noise covariance ``(n_data, n_data)`` (known to the inference).
    """

    omega: Float[Array, " nw"]
    weights: Float[Array, " nw"]
    x: Float[Array, " nd"]
    A: Float[Array, "nd nw"]
    rho: Float[Array, " nw"]
    clean: Float[Array, " nd"]
    data: Float[Array, " nd"]
    cov: Float[Array, "nd nd"]

    @property
    def sigma(self) -> Float[Array, " nd"]:
        """Noise standard deviations."""
        return jnp.sqrt(jnp.diag(self.cov))


def noise_covariance(clean: ArrayLike, eps: float, *, model: str = "relative",
                     correlation: float = 0.0) -> Float[Array, "nd nd"]:
    """Noise covariance ``C_ij = s_i s_j c^|i-j|``.

    ``model="relative"`` (Wang-Shi-Zhou: ``D (1 + eps n)``): ``s_i = eps |D_i|``;
    ``model="absolute"``: ``s_i = eps``. ``correlation`` ``c`` in ``[0, 1)`` correlates
    neighbouring data points (0: independent).
    """
    clean = jnp.asarray(clean, dtype=float)
    if not eps > 0:
        raise ValueError(f"noise eps must be > 0, got {eps}")
    if not 0 <= correlation < 1:
        raise ValueError(f"correlation must be in [0, 1), got {correlation}")
    if model == "relative":
        s = eps * jnp.abs(clean)
        sc = _concrete(s)
        if sc is not None and np.any(sc <= 0):
            raise ValueError("relative noise needs a correlator without zeros")
    elif model == "absolute":
        s = jnp.full(clean.shape, float(eps))
    else:
        raise ValueError(f"noise model must be 'relative' or 'absolute', got {model!r}")
    i = jnp.arange(clean.shape[0])
    corr = jnp.asarray(correlation, dtype=float) ** jnp.abs(i[:, None] - i[None, :])
    return s[:, None] * s[None, :] * corr


def mock_correlator(key: PRNGKeyArray, A: ArrayLike, rho: ArrayLike, cov: ArrayLike) -> Float[Array, " nd"]:
    """``A rho + n`` with ``n ~ N(0, cov)``."""
    A, rho, cov = jnp.asarray(A), jnp.asarray(rho), jnp.asarray(cov)
    if A.ndim != 2 or rho.shape != A.shape[1:]:
        raise ValueError(f"A (n_data, n_omega) and rho (n_omega,) do not match: {A.shape} vs {rho.shape}")
    if cov.shape != (A.shape[0], A.shape[0]):
        raise ValueError(f"cov must be ({A.shape[0]}, {A.shape[0]}), got {cov.shape}")
    L = jnp.linalg.cholesky(cov)
    return A @ rho + L @ jax.random.normal(key, (A.shape[0],), dtype=A.dtype)


def make_mock(key: PRNGKeyArray, mock: str = "bw1", *, eps: float = 1e-3, n_omega: int = 500,
              omega_max: float = 20.0, kernel: str = "kallen-lehmann", n_data: int = 25,
              p_max: float = 19.2, n_t: int = 32, temperature: float = 0.1,
              noise: str = "relative", correlation: float = 0.0) -> MockData:
    """A complete mock problem (defaults: Wang-Shi-Zhou, 25 momenta in ``[0, 19.2]``).

    ``kernel``: ``"kallen-lehmann"`` (``x = p``, ``n_data`` momenta on ``[0, p_max]``),
    ``"euclidean"`` (``x = tau = 0..n_t-1``, ``n_data`` ignored) or ``"thermal"``
    (``n_data`` times on ``[0, 1/T)``).
    """
    omega, weights = omega_grid(n_omega, omega_max)
    if int(n_data) < 2:
        raise ValueError(f"n_data must be >= 2, got {n_data}")
    if kernel == "kallen-lehmann":
        x = jnp.linspace(0.0, p_max, int(n_data))
        K = kallen_lehmann_kernel(x, omega)
    elif kernel == "euclidean":
        x = jnp.arange(int(n_t), dtype=float)
        K = euclidean_kernel(x, omega, n_t)
    elif kernel == "thermal":
        x = jnp.arange(int(n_data), dtype=float) / (int(n_data) * temperature)
        K = thermal_kernel(x, omega, temperature)
    else:
        raise ValueError(f"kernel must be 'kallen-lehmann', 'euclidean' or 'thermal', got {kernel!r}")
    A = forward_matrix(K, weights)
    rho = mock_spectrum(mock, omega)
    clean = A @ rho
    cov = noise_covariance(clean, eps, model=noise, correlation=correlation)
    return MockData(omega, weights, x, A, rho, clean, mock_correlator(key, A, rho, cov), cov)


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


def coverage(samples: ArrayLike, rho_true: ArrayLike, level: float = 0.95) -> float:
    """Fraction of grid points where the truth lies in the pointwise equal-tailed ``level`` band
    of ``samples`` ``(n, n_omega)`` (:func:`bayesqcd.report.credible_band`)."""
    from bayesqcd.report import credible_band

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    lo, hi = credible_band(_as_np(samples), levels=(level,))[level]
    t = _as_np(rho_true)
    if t.shape != lo.shape:
        raise ValueError(f"samples (n, {lo.shape}) and truth {t.shape} do not match")
    return float(np.mean((t >= lo) & (t <= hi)))


def metrics(samples: ArrayLike, mock: MockData, level: float = 0.95) -> dict[str, float]:
    """MSE and KL of the posterior mean, coverage of the ``level`` band, against ``mock.rho``."""
    s = _as_np(samples).reshape(-1, mock.rho.shape[0])
    mean = s.mean(axis=0)
    return {"mse": mse(mean, mock.rho), "kl": kl_divergence(mock.rho, mean, mock.weights),
            "coverage": coverage(s, mock.rho, level), "min_rho": float(s.min()),
            "chi2_per_point": chi2_per_point(mean, mock)}


def chi2_per_point(rho: ArrayLike, mock: MockData) -> float:
    """``(D - A rho)^T C^{-1} (D - A rho) / n_data`` of one reconstruction."""
    r = _as_np(mock.data) - _as_np(mock.A) @ _as_np(rho)
    return float(r @ np.linalg.solve(_as_np(mock.cov), r) / r.shape[0])


def log10_eps_label(eps: float) -> str:
    """``1e-3`` style label of a noise level."""
    return f"1e{round(math.log10(eps))}" if eps > 0 else str(eps)

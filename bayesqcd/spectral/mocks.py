"""Mock spectral functions and noisy correlators (see :mod:`bayesqcd.spectral`)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from bayesqcd.spectral.kernels import _concrete, forward_matrix, kernel_matrix, omega_grid


# ------------------------------------------------------------------------- mock spectra
def breit_wigner(omega: ArrayLike, A: float = 1.0, M: float = 2.0, Gamma: float = 0.5) -> Float[Array, " n"]:
    """``rho = 4 A Gamma w / [(M^2 + Gamma^2 - w^2)^2 + 4 Gamma^2 w^2]`` (``rho ~ w`` at small w)."""
    w = jnp.asarray(omega, dtype=float)
    return 4 * A * Gamma * w / ((M**2 + Gamma**2 - w**2) ** 2 + 4 * Gamma**2 * w**2)


def gaussian_peak(omega: ArrayLike, A: float = 1.0, M: float = 2.0, width: float = 0.5) -> Float[Array, " n"]:
    """``rho = A exp(-(w - M)^2 / (2 width^2))``."""
    w = jnp.asarray(omega, dtype=float)
    return A * jnp.exp(-0.5 * ((w - M) / width) ** 2)


def transport_peak(omega: ArrayLike, A: float = 1.0, Gamma: float = 0.3) -> Float[Array, " n"]:
    """Drude (transport) peak ``rho = A w Gamma / (w^2 + Gamma^2)``: ``rho / w -> A / Gamma`` as
    ``w -> 0`` (a transport coefficient), maximum ``A / 2`` at ``w = Gamma``, tail ``A Gamma / w``."""
    w = jnp.asarray(omega, dtype=float)
    return A * w * Gamma / (w**2 + Gamma**2)


def threshold_continuum(omega: ArrayLike, c: float = 0.005, omega_th: float = 4.0,
                        delta: float = 0.3) -> Float[Array, " n"]:
    """Perturbative continuum above a threshold, ``rho = c w^2 theta(w - omega_th)``, the step
    smoothed to ``1 / (1 + exp(-(w - omega_th) / delta))``."""
    w = jnp.asarray(omega, dtype=float)
    return c * w**2 * jax.nn.sigmoid((w - omega_th) / delta)


_MOCK_SPECTRA = {
    "bw1": lambda w: breit_wigner(w, 1.0, 2.0, 0.5),
    "bw2": lambda w: breit_wigner(w, 1.0, 2.0, 0.5) + breit_wigner(w, 1.0, 5.0, 0.5),
    "gauss1": lambda w: gaussian_peak(w, 1.0, 2.0, 0.5),
    "gauss2": lambda w: gaussian_peak(w, 1.0, 2.0, 0.5) + gaussian_peak(w, 1.0, 5.0, 0.5),
    "threshold": lambda w: breit_wigner(w, 1.0, 2.0, 0.3) + threshold_continuum(w, 0.005, 4.0, 0.3),
    "transport": lambda w: transport_peak(w, 1.0, 0.3) + breit_wigner(w, 1.0, 3.0, 0.5),
    "thermal": lambda w: transport_peak(w, 0.5, 0.3) + breit_wigner(w, 1.0, 2.0, 0.5),
}

MOCKS = tuple(_MOCK_SPECTRA)
"""Named mocks (energies in the unit of the grid, e.g. GeV):

* ``bw1``, ``bw2``: one or two Breit-Wigner peaks (A = 1, Gamma = 0.5; M = 2 and M = 2, 5),
* ``gauss1``, ``gauss2``: one or two Gaussians (A = 1, width 0.5; M = 2 and M = 2, 5),
* ``threshold``: a resonance (Breit-Wigner A = 1, M = 2, Gamma = 0.3) plus the perturbative
  continuum ``0.005 w^2`` above ``omega_th = 4`` (smoothed over 0.3),
* ``transport``: a narrow Drude peak at low omega (A = 1, Gamma = 0.3) plus a resonance
  (Breit-Wigner A = 1, M = 3, Gamma = 0.5),
* ``thermal``: a transport peak (A = 0.5, Gamma = 0.3) plus a resonance (A = 1, M = 2,
  Gamma = 0.5), seen through the finite-temperature kernel (its default, :data:`MOCK_KERNEL`).
"""

MOCK_KERNEL: dict[str, str] = {"thermal": "thermal"}
"""The kernel :func:`make_mock` uses for a mock by default (others: ``"kallen-lehmann"``)."""


def mock_spectrum(name: str, omega: ArrayLike) -> Float[Array, " n"]:
    """The named mock spectral function (see :data:`MOCKS`) on ``omega``."""
    if name not in _MOCK_SPECTRA:
        raise ValueError(f"mock must be one of {MOCKS}, got {name!r}")
    return _MOCK_SPECTRA[name](omega)


# ------------------------------------------------------------------------- mock correlators
class MockData(eqx.Module):
    """An inverse problem: grid, forward matrix, data and (for a mock) the truth.

    A measured correlator (:func:`bayesqcd.spectral.data_problem`) is the same problem without
    a truth: ``rho`` and ``clean`` are ``None``.

    Attributes:
        omega, weights: the grid ``(n_omega,)`` and its quadrature weights.
        x: the data abscissae (momenta ``p`` or times ``tau``), ``(n_data,)``.
        A: forward matrix ``(n_data, n_omega)``; ``D = A rho``.
        rho: the true spectral function on the grid (``None``: measured data).
        clean: the noiseless correlator ``A rho`` (``None``: measured data).
        data: the noisy correlator.
        cov: the noise covariance ``(n_data, n_data)`` (known to the inference).
    """

    omega: Float[Array, " nw"]
    weights: Float[Array, " nw"]
    x: Float[Array, " nd"]
    A: Float[Array, "nd nw"]
    rho: Float[Array, " nw"] | None
    clean: Float[Array, " nd"] | None
    data: Float[Array, " nd"]
    cov: Float[Array, "nd nd"]

    @property
    def sigma(self) -> Float[Array, " nd"]:
        """Noise standard deviations."""
        return jnp.sqrt(jnp.diag(self.cov))

    @property
    def has_truth(self) -> bool:
        """Whether the true ``rho`` is known (a mock), so that MSE, KL and coverage exist."""
        return self.rho is not None


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
              omega_max: float = 20.0, kernel: str | None = None, n_data: int = 25,
              p_max: float = 19.2, n_t: int = 32, temperature: float = 0.25,
              noise: str = "relative", correlation: float = 0.0, omega_min: float = 0.0) -> MockData:
    """A complete mock problem (defaults: Wang-Shi-Zhou, 25 momenta in ``[0, 19.2]``).

    ``kernel``: ``"kallen-lehmann"`` (``x = p``, ``n_data`` momenta on ``[0, p_max]``),
    ``"euclidean"`` (``x = tau = 0..n_t-1``, ``n_data`` ignored) or ``"thermal"``
    (``n_data`` times on ``[0, 1/(2T)]``, the kernel being symmetric about ``1/(2T)``);
    ``None``: the mock's own (:data:`MOCK_KERNEL`, else Kallen-Lehmann). The grid is
    :func:`~bayesqcd.spectral.omega_grid` ``(n_omega, omega_max, omega_min)``.
    """
    if mock not in _MOCK_SPECTRA:
        raise ValueError(f"mock must be one of {MOCKS}, got {mock!r}")
    kernel = MOCK_KERNEL.get(mock, "kallen-lehmann") if kernel is None else kernel
    omega, weights = omega_grid(n_omega, omega_max, omega_min)
    if int(n_data) < 2:
        raise ValueError(f"n_data must be >= 2, got {n_data}")
    if kernel == "kallen-lehmann":
        x = jnp.linspace(0.0, p_max, int(n_data))
    elif kernel == "euclidean":
        x = jnp.arange(int(n_t), dtype=float)
    elif kernel == "thermal":
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        x = jnp.linspace(0.0, 0.5 / temperature, int(n_data))
    else:
        raise ValueError(f"kernel must be 'kallen-lehmann', 'euclidean' or 'thermal', got {kernel!r}")
    K = kernel_matrix(kernel, x, omega, n_t=n_t, temperature=temperature)
    A = forward_matrix(K, weights)
    rho = mock_spectrum(mock, omega)
    clean = A @ rho
    cov = noise_covariance(clean, eps, model=noise, correlation=correlation)
    return MockData(omega, weights, x, A, rho, clean, mock_correlator(key, A, rho, cov), cov)



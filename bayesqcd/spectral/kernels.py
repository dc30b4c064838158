"""Integration grid and kernels of the spectral representation (see :mod:`bayesqcd.spectral`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float



# ----------------------------------------------------------------------------- grid, kernels
def omega_grid(n: int = 500, omega_max: float = 20.0,
               omega_min: float = 0.0) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
    """Uniform grid ``omega_i = omega_min + i dw`` (``i = 1..n``, ``dw = (omega_max - omega_min) / n``)
    on ``(omega_min, omega_max]`` and its weights ``dw`` (default: ``(0, omega_max]``)."""
    if int(n) != n or int(n) < 2:
        raise ValueError(f"n (omega points) = {n} is outside the valid range: integers >= 2")
    if not (np.isfinite(omega_min) and omega_min >= 0):
        raise ValueError(f"omega_min = {omega_min} is outside the valid range [0, inf)")
    if not (np.isfinite(omega_max) and omega_max > omega_min):
        raise ValueError(f"omega_max = {omega_max} is outside the valid range (omega_min = {omega_min}, inf)")
    dw = (omega_max - omega_min) / n
    omega = omega_min + dw * jnp.arange(1, int(n) + 1, dtype=float)
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


KERNELS: tuple[str, ...] = ("kallen-lehmann", "euclidean", "thermal")
"""The kernels of :func:`kernel_matrix` (and ``bayesqcd spectral --kernel``)."""


def kernel_valid_range(kernel: str, *, n_t: int | None = None,
                       temperature: float | None = None) -> tuple[float, float, bool, str]:
    """The valid abscissae of ``kernel``: ``(low, high, high_included, name)``, ``name`` being
    what the abscissa is (``"p"`` or ``"tau"``). Kallen-Lehmann: ``p in [0, inf)``; Euclidean:
    ``tau in [0, n_t]``; thermal: ``tau in [0, 1/T)``."""
    if kernel == "kallen-lehmann":
        return 0.0, float("inf"), False, "p"
    if kernel == "euclidean":
        if n_t is None or int(n_t) != n_t or int(n_t) < 1:
            raise ValueError(f"the euclidean kernel needs n_t (time extent, an integer >= 1), got {n_t}")
        return 0.0, float(n_t), True, "tau"
    if kernel == "thermal":
        if temperature is None or not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"the thermal kernel needs temperature in (0, inf), got {temperature}")
        return 0.0, 1.0 / float(temperature), False, "tau"
    raise ValueError(f"kernel = {kernel!r} is not valid; choose from {', '.join(KERNELS)}")


def kernel_matrix(kernel: str, x: ArrayLike, omega: ArrayLike, *, n_t: int | None = None,
                  temperature: float | None = None) -> Float[Array, "nd nw"]:
    """``K(x_i, omega_j)`` of the named kernel (:data:`KERNELS`), shape ``(len(x), len(omega))``.

    ``"kallen-lehmann"``: ``x = p`` (:func:`kallen_lehmann_kernel`); ``"euclidean"``:
    ``x = tau`` on a lattice of ``n_t`` sites (:func:`euclidean_kernel`); ``"thermal"``:
    ``x = tau`` at temperature ``temperature`` (:func:`thermal_kernel`). The mocks
    (:func:`bayesqcd.spectral.make_mock`) and measured correlators
    (:func:`bayesqcd.spectral.data_problem`) both build their kernel here.
    """
    kernel_valid_range(kernel, n_t=n_t, temperature=temperature)  # names the missing setting
    if kernel == "kallen-lehmann":
        return kallen_lehmann_kernel(x, omega)
    if kernel == "euclidean":
        return euclidean_kernel(x, omega, int(n_t))
    return thermal_kernel(x, omega, float(temperature))

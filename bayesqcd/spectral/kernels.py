"""Integration grid and kernels of the spectral representation (see :mod:`bayesqcd.spectral`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float



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



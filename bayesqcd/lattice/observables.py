"""Observables of the lattice field and their Monte-Carlo estimates with errors.

Per configuration (JAX, any leading batch axes, fields ``(..., L, L)``, ``V = L^2``):

* magnetization ``M = (1/V) sum_x phi(x)`` (:func:`magnetization`);
* two-point function ``C(x) = (1/V) sum_y phi(y) phi(y + x)`` (:func:`two_point`, by FFT).

Ensemble quantities (:func:`summarize`, NumPy post-processing with binned jackknife errors):

* ``<|M|>``, ``<M^2>``; susceptibility ``chi = V (<M^2> - <|M|>^2)``;
* Binder cumulant ``U_4 = 1 - <M^4> / (3 <M^2>^2)``;
* connected two-point function ``G_c(x) = <C(x)> - <M>^2``; its zero-momentum projection
  ``G(t) = sum_{x_1} G_c(x_1, t)`` and the effective pole mass
  ``m_eff(t) = arccosh[(G(t-1) + G(t+1)) / (2 G(t))]`` (Albergo et al., arXiv:2101.08176);
* the Schwinger-Dyson (Ward) identity ``<(1/V) sum_x phi dS/dphi> = 1`` (:func:`ward_identity`);
* ``tau_int`` of ``|M|``; the bin size is ``ceil(4 max tau_int)`` over ``M, |M|, M^2, M^4``
  unless given.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from bayesqcd.lattice import stats


def magnetization(phi: Float[Array, "*b L L"]) -> Float[Array, "*b"]:
    """Average field per site ``M = (1/V) sum_x phi(x)``."""
    return jnp.mean(phi, axis=(-2, -1))


def two_point(phi: Float[Array, "*b L L"]) -> Float[Array, "*b L L"]:
    """``C(x) = (1/V) sum_y phi(y) phi(y + x)`` of each configuration (periodic)."""
    V = phi.shape[-1] * phi.shape[-2]
    f = jnp.fft.fft2(phi)
    return jnp.real(jnp.fft.ifft2(f * jnp.conj(f))) / V


def ward_identity(grad_S, phi: Float[Array, "*b L L"]) -> Float[Array, "*b"]:
    """``(1/V) sum_x phi(x) dS/dphi(x)`` per configuration; its expectation is exactly 1
    (integration by parts of ``d/dphi(x) [phi(x) exp(-S)]``), for any action and any
    sampler: a check of the samples that needs no reference run.

    ``grad_S``: ``phi -> dS/dphi`` for one ``(L, L)`` field (e.g. ``jax.grad(action)``).
    """
    g = jax.vmap(grad_S)(phi.reshape(-1, *phi.shape[-2:])).reshape(phi.shape)
    return jnp.mean(phi * g, axis=(-2, -1))


def effective_mass(G: np.ndarray) -> np.ndarray:
    """``m_eff(t) = arccosh[(G(t-1) + G(t+1)) / (2 G(t))]`` for ``t = 1 .. L-2`` (NaN where the
    argument is below 1)."""
    G = np.asarray(G)
    arg = (G[:-2] + G[2:]) / (2.0 * G[1:-1])
    with np.errstate(invalid="ignore"):
        return np.where(arg >= 1.0, np.arccosh(np.maximum(arg, 1.0)), np.nan)


def summarize(phi, bin_size: int | None = None) -> dict:
    """Observables with jackknife errors from configurations ``(chains, draws, L, L)``
    (or ``(draws, L, L)`` for one chain).

    Returns a dict: ``{"abs_M": {"value", "error"}, "M", "M2", "chi", "binder",
    "G_t": {"value": [...], "error": [...]}, "m_eff", "tau_int_absM": {"value", "error"},
    "bin_size", "n_bins", "n_configs", "n_independent"}``.
    """
    phi = np.asarray(phi, dtype=float)
    if phi.ndim == 3:
        phi = phi[None]
    if phi.ndim != 4 or phi.shape[-1] != phi.shape[-2]:
        raise ValueError(f"phi must have shape (chains, draws, L, L), got {phi.shape}")
    L = phi.shape[-1]
    V = L * L
    M = phi.mean(axis=(-2, -1))
    absM = np.abs(M)
    C = np.asarray(two_point(jnp.asarray(phi)))
    Ct = C.sum(axis=-2)  # zero-momentum projection: sum over the first axis, t = second
    tau, dtau = stats.tau_int(absM)
    if bin_size is None:  # bins of >= 4 tau_int of every primary observable (M^2, M^4 may be slower)
        tau_max = max(tau, *(stats.tau_int(x)[0] for x in (M, M**2, M**4)))
        bin_size = stats.bin_size_for(tau_max)
    bin_size = min(bin_size, phi.shape[1] // 2) if phi.shape[1] >= 4 else 1
    b = {k: stats.bin_means(v, bin_size) for k, v in
         {"M": M, "absM": absM, "M2": M**2, "M4": M**4, "Ct": Ct}.items()}

    def jk(fn, *keys):
        v, e = stats.jackknife(fn, *[b[k] for k in keys])
        return {"value": v.tolist(), "error": e.tolist()}

    out = {
        "M": jk(lambda m: m, "M"),
        "abs_M": jk(lambda a: a, "absM"),
        "M2": jk(lambda m2: m2, "M2"),
        "chi": jk(lambda m2, a: V * (m2 - a**2), "M2", "absM"),
        "binder": jk(lambda m2, m4: 1.0 - m4 / (3.0 * m2**2), "M2", "M4"),
        "G_t": jk(lambda ct, m: ct - L * m**2, "Ct", "M"),
        "m_eff": jk(lambda ct, m: effective_mass(ct - L * m**2), "Ct", "M"),
        "tau_int_absM": {"value": tau, "error": dtau},
        "bin_size": int(bin_size),
        "n_bins": int(b["M"].shape[0]),
        "n_configs": int(M.size),
        "n_independent": float(M.size / (2.0 * tau)),
    }
    return out

"""The Euclidean action of 2-D scalar phi^4 theory on a periodic ``L x L`` lattice.

Two common parametrizations (lattice units: the spacing is 1, fields are dimensionless):

* **mass form** (Albergo et al., arXiv:2101.08176)::

      S[phi] = sum_x [ sum_mu (phi(x+mu) - phi(x))^2 + m^2 phi(x)^2 + lambda phi(x)^4 ]

  with no factor 1/2 on the kinetic term. Expanded,
  ``S = sum_x [ -2 sum_mu phi(x) phi(x+mu) + (2 d + m^2) phi^2 + lambda phi^4 ]`` with ``d = 2``.
* **hopping form** (e.g. Wang, Aarts, Zhou, arXiv:2309.17082)::

      S_h[varphi] = sum_x [ -2 kappa sum_mu varphi(x) varphi(x+mu) + (1 - 2 lambda_h) varphi^2
                             + lambda_h varphi^4 ]

The substitution ``phi = sqrt(kappa) varphi`` maps one onto the other exactly (no constant):
``S[sqrt(kappa) varphi] = S_h[varphi]`` when

    m^2 = (1 - 2 lambda_h) / kappa - 4,      lambda = lambda_h / kappa^2,

(:func:`hopping_to_mass`, :func:`mass_to_hopping`). The free theory is ``lambda = 0``, where
``exp(-S)`` is a Gaussian of precision ``2 (-Laplacian + m^2)``.

Fields have shape ``(L, L)``; every function acts on one configuration (``jax.vmap`` for
batches) and works in float32 or float64.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

DIM = 2
"""Space-time dimension of the lattice."""


def _check_field(phi: Array) -> None:
    if phi.ndim != 2 or phi.shape[0] != phi.shape[1]:
        raise ValueError(f"phi must have shape (L, L), got {phi.shape}")


def kinetic(phi: Float[Array, "L L"]) -> Float[Array, ""]:
    """``sum_x sum_mu (phi(x+mu) - phi(x))^2`` with periodic boundaries."""
    return sum(jnp.sum((jnp.roll(phi, -1, axis=mu) - phi) ** 2) for mu in range(DIM))


class Phi4Action(eqx.Module):
    """The mass-form action ``S[phi]`` (see the module docstring).

    Attributes:
        m2: bare mass squared ``m^2`` (any real number; negative values give the double well).
        lam: quartic coupling ``lambda >= 0`` (``0`` is the free theory, which needs ``m2 > 0``).
    """

    m2: float = eqx.field(static=True)
    lam: float = eqx.field(static=True)

    def __check_init__(self) -> None:
        if not math.isfinite(self.m2):
            raise ValueError(f"m2 must be finite, got {self.m2}")
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam must be finite and >= 0, got {self.lam}")
        if self.lam == 0 and self.m2 <= 0:
            raise ValueError(f"the free theory (lam = 0) needs m2 > 0 to be normalisable, got m2={self.m2}")

    def __call__(self, phi: Float[Array, "L L"]) -> Float[Array, ""]:
        """``S[phi]`` (dimensionless)."""
        _check_field(phi)
        phi2 = phi**2
        return kinetic(phi) + jnp.sum(self.m2 * phi2 + self.lam * phi2**2)

    def log_prob(self, phi: Float[Array, "L L"]) -> Float[Array, ""]:
        """Unnormalised log density ``-S[phi]`` of the lattice field."""
        return -self(phi)

    def potential(self, phi: Float[Array, "L L"]) -> Float[Array, ""]:
        """``S[phi]`` (the HMC potential energy)."""
        return self(phi)

    def free_propagator(self, L: int) -> Float[Array, "L L"]:
        """Exact ``<phi(0) phi(x)>`` of the free theory (``lam = 0``) on an ``L x L`` lattice.

        ``S = phi^T (-Laplacian + m^2) phi``, so ``<phi phi^T> = [2 (-Laplacian + m^2)]^{-1}``:
        ``G(x) = (1/V) sum_p exp(i p x) / (2 (phat^2 + m^2))`` with
        ``phat^2 = sum_mu 4 sin^2(p_mu / 2)``, ``p_mu = 2 pi n_mu / L``.
        """
        if self.lam != 0:
            raise ValueError(f"free_propagator needs lam = 0, got lam={self.lam}")
        if L < 2:
            raise ValueError(f"L must be >= 2, got {L}")
        p = 2 * jnp.pi * jnp.arange(L) / L
        phat2 = 4 * jnp.sin(p[:, None] / 2) ** 2 + 4 * jnp.sin(p[None, :] / 2) ** 2
        return jnp.real(jnp.fft.ifft2(1.0 / (2.0 * (phat2 + self.m2))))


def hopping_action(phi: Float[Array, "L L"], kappa: ArrayLike, lam_h: ArrayLike) -> Float[Array, ""]:
    """Hopping-form action ``S_h[varphi]`` (see the module docstring)."""
    _check_field(phi)
    hop = sum(jnp.sum(phi * jnp.roll(phi, -1, axis=mu)) for mu in range(DIM))
    phi2 = phi**2
    return -2.0 * kappa * hop + jnp.sum((1.0 - 2.0 * lam_h) * phi2 + lam_h * phi2**2)


def hopping_to_mass(kappa: float, lam_h: float) -> tuple[float, float]:
    """``(m^2, lambda)`` of the mass form equal to the hopping form at ``(kappa, lambda_h)``.

    The fields are related by ``phi = sqrt(kappa) varphi``.
    """
    if not kappa > 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    if not lam_h >= 0:
        raise ValueError(f"lam_h must be >= 0, got {lam_h}")
    return (1.0 - 2.0 * lam_h) / kappa - 2.0 * DIM, lam_h / kappa**2


def mass_to_hopping(m2: float, lam: float) -> tuple[float, float]:
    """``(kappa, lambda_h)`` equal to the mass form at ``(m^2, lambda)`` (inverse of
    :func:`hopping_to_mass`); the root with ``kappa > 0``, which exists for every ``lambda > 0``.

    From ``(m^2 + 4) kappa = 1 - 2 lambda kappa^2``:
    ``kappa = [-(m^2+4) + sqrt((m^2+4)^2 + 8 lambda)] / (4 lambda)`` (``1/(m^2+4)`` at ``lambda=0``).
    """
    if not lam >= 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    a = m2 + 2.0 * DIM
    if lam == 0:
        if a <= 0:
            raise ValueError(f"at lam = 0 the hopping form needs m2 > -4, got m2={m2}")
        return 1.0 / a, 0.0
    kappa = (-a + math.sqrt(a * a + 8.0 * lam)) / (4.0 * lam)
    return kappa, lam * kappa**2

"""Piecewise polytropes of Read, Lackey, Owen & Friedman, PRD 79, 124032 (2009), with the SLy crust.

In each piece i (rest-mass density rho in g cm^-3, pressures as p / c^2 in g cm^-3)

    p = K_i rho^Gamma_i,
    eps = (1 + a_i) rho + K_i / (Gamma_i - 1) rho^Gamma_i,
    mu / m_b = (eps + p) / rho = 1 + a_i + K_i Gamma_i / (Gamma_i - 1) rho^(Gamma_i - 1),

with a_0 = 0 and the a_i fixed by continuity of eps; h = ln(mu / m_b) and
c_s^2 = Gamma_i p / (eps + p) follow in closed form. The core has three pieces, with
log10 p1 [dyn cm^-2] the pressure at rho1 = 10^14.7 g cm^-3, Gamma1 up to
rho2 = 10^15.0 g cm^-3, then Gamma2, then Gamma3; the four-piece SLy crust fit meets the
core where its last piece crosses the first core piece.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from bayesqcd import units
from bayesqcd.eos.table import EoSTable, from_nodes
from bayesqcd.eos.validation import check_range, is_concrete

# SLy crust fit, Read et al. 2009 Table II (p / c^2 = K rho^Gamma in g cm^-3).
CRUST_K = (6.80110e-9, 1.06186e-6, 5.32697e1, 3.99874e-8)
CRUST_GAMMA = (1.58425, 1.28733, 0.62223, 1.35692)
CRUST_RHO = (2.44034e7, 3.78358e11, 2.62780e12)
RHO1 = 10**14.7
"""First core dividing density [g cm^-3] (Read et al. 2009)."""
RHO2 = 10**15.0
"""Second core dividing density [g cm^-3] (Read et al. 2009)."""

NAMED: dict[str, tuple[float, float, float, float]] = {
    # (log10 p1 [dyn cm^-2], Gamma1, Gamma2, Gamma3): Read et al. 2009, Table III
    "SLy": (34.384, 3.005, 2.988, 2.851),
    "APR4": (34.269, 2.830, 3.445, 3.348),
    "MPA1": (34.495, 3.446, 3.572, 2.887),
    "H4": (34.669, 2.909, 2.246, 2.144),
    "WFF1": (34.031, 2.519, 3.791, 3.660),
}
"""Named piecewise-polytrope fits of Read et al. 2009, Table III."""

PUBLISHED_M_MAX: dict[str, float] = {"SLy": 2.049, "APR4": 2.213, "MPA1": 2.461, "H4": 2.032}
"""Maximum masses [M_sun] of the tabulated EoS, Read et al. 2009, Table III."""

RANGES = {
    "log10_p1": (32.5, 36.0),
    "gamma": (1.0, 8.0),
}
"""Accepted parameter ranges (Gamma must be strictly above 1)."""

RHO_MAX_DEFAULT = 10**15.6
"""Default top of the table [g cm^-3]: above the central density of any stable star."""


def _pieces(log10_p1, g1, g2, g3):
    """K, Gamma, lower dividing density and a of the seven pieces, plus the crust-core junction."""
    p1 = 10.0**log10_p1 / units.C_CGS**2
    k1 = p1 / RHO1**g1
    k2 = k1 * RHO1 ** (g1 - g2)
    k3 = k2 * RHO2 ** (g2 - g3)
    rho0 = (CRUST_K[3] / k1) ** (1.0 / (g1 - CRUST_GAMMA[3]))
    ks = jnp.stack([jnp.asarray(k, dtype=jnp.result_type(float)) for k in CRUST_K] + [k1, k2, k3])
    gs = jnp.stack([jnp.asarray(g, dtype=jnp.result_type(float)) for g in CRUST_GAMMA] + [g1, g2, g3])
    lower = jnp.stack([jnp.zeros(()), *[jnp.asarray(r) for r in CRUST_RHO], rho0, jnp.asarray(RHO1), jnp.asarray(RHO2)])
    a = [jnp.zeros(())]
    for i in range(1, 7):
        r = lower[i]
        eps_prev = (1 + a[i - 1]) * r + ks[i - 1] / (gs[i - 1] - 1) * r ** gs[i - 1]
        a.append(eps_prev / r - 1 - ks[i] / (gs[i] - 1) * r ** (gs[i] - 1))
    return ks, gs, lower, jnp.stack(a), rho0


def polytrope_valid(log10_p1: ArrayLike, g1: ArrayLike, g2: ArrayLike, g3: ArrayLike) -> Bool[Array, ""]:
    """Whether parameters are in range and the crust meets the core between its last division and rho1."""
    lo, hi = RANGES["log10_p1"]
    glo, ghi = RANGES["gamma"]
    gam = jnp.stack([jnp.asarray(g1), jnp.asarray(g2), jnp.asarray(g3)])
    ok = (log10_p1 >= lo) & (log10_p1 <= hi) & jnp.all(gam > glo) & jnp.all(gam <= ghi)
    rho0 = _pieces(log10_p1, g1, g2, g3)[-1]
    return ok & (rho0 > CRUST_RHO[-1]) & (rho0 < RHO1)


def validate_polytrope(log10_p1: float, g1: float, g2: float, g3: float) -> None:
    """Raise ``ValueError`` naming the offending parameter if the set is unphysical."""
    check_range("log10_p1", log10_p1, *RANGES["log10_p1"], unit="(log10 of p1 in dyn cm^-2)")
    for name, g in (("Gamma1", g1), ("Gamma2", g2), ("Gamma3", g3)):
        check_range(name, g, *RANGES["gamma"], low_inclusive=False)
    rho0 = float(_pieces(log10_p1, g1, g2, g3)[-1])
    if not CRUST_RHO[-1] < rho0 < RHO1:
        raise ValueError(
            f"crust-core junction density {rho0:.4g} g cm^-3 (from log10_p1={log10_p1}, Gamma1={g1}) "
            f"must lie between the last crust division {CRUST_RHO[-1]:.4g} and rho1 = {RHO1:.4g} g cm^-3"
        )


def polytrope_nodes(log10_p1, g1, g2, g3, rho: Float[Array, " J"], lower_side: Bool[Array, " J"] | None = None):
    """(n [fm^-3], eps [km^-2], p [km^-2], h, c_s^2) of the piecewise polytrope at densities ``rho`` [g cm^-3].

    At a dividing density the upper piece is used, unless ``lower_side`` is set there.
    """
    ks, gs, lower, a, _ = _pieces(log10_p1, g1, g2, g3)
    i = jnp.searchsorted(lower, rho, side="right") - 1
    if lower_side is not None:
        i = i - lower_side.astype(i.dtype)
    i = jnp.clip(i, 0, 6)
    k, g, ai = ks[i], gs[i], a[i]
    rho_safe = jnp.maximum(rho, 1e-300)
    p = k * rho_safe**g
    eps = (1 + ai) * rho_safe + k / (g - 1) * rho_safe**g
    mu = 1 + ai + k * g / (g - 1) * rho_safe ** (g - 1)
    zero = rho <= 0
    cs2 = jnp.where(zero, 0.0, g * p / (eps + p))
    n = rho / units.M_BARYON_G * units.FM_CM**3
    conv = units.G_CM3_TO_KM2
    return n, jnp.where(zero, 0.0, eps * conv), jnp.where(zero, 0.0, p * conv), jnp.where(zero, 0.0, jnp.log(mu)), cs2


def knotted_grid(grid: Array, knots: Array) -> tuple[Array, Array]:
    """Sorted ``grid`` with every knot inserted twice; returns (values, is_lower_copy)."""
    vals = jnp.concatenate([grid, knots, knots])
    order = jnp.argsort(vals)
    vals = vals[order]
    lower_copy = jnp.concatenate([jnp.diff(vals) == 0, jnp.zeros(1, bool)])
    return vals, lower_copy


def density_grid(rho_max: float, n_crust: int = 600, n_core: int = 2400) -> np.ndarray:
    """Default native density grid [g cm^-3]: 0, then log-spaced, denser in the core."""
    return np.concatenate([[0.0], np.geomspace(1e3, 1e13, n_crust, endpoint=False), np.geomspace(1e13, rho_max, n_core)])


def piecewise_polytrope(
    log10_p1: ArrayLike,
    gamma1: ArrayLike,
    gamma2: ArrayLike,
    gamma3: ArrayLike,
    *,
    rho_max: float = RHO_MAX_DEFAULT,
    n_grid: int | None = None,
) -> EoSTable:
    """The Read et al. (2009) piecewise polytrope with the SLy crust as an :class:`EoSTable`.

    Args:
        log10_p1: log10 of the pressure [dyn cm^-2] at rho1 = 10^14.7 g cm^-3, in [32.5, 36].
        gamma1, gamma2, gamma3: adiabatic indices of the three core pieces, in (1, 8].
        rho_max: top of the table [g cm^-3].
        n_grid: nodes of the table (default :data:`bayesqcd.eos.table.N_GRID`).

    Outside jit, unphysical parameters raise ``ValueError``; under jit they give a table
    with ``valid = False`` and NaN arrays.
    """
    if all(is_concrete(x) for x in (log10_p1, gamma1, gamma2, gamma3)):
        validate_polytrope(float(log10_p1), float(gamma1), float(gamma2), float(gamma3))
    return _table(*(jnp.asarray(x, dtype=float) for x in (log10_p1, gamma1, gamma2, gamma3)),
                  float(rho_max), n_grid)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _table(log10_p1: Array, gamma1: Array, gamma2: Array, gamma3: Array, rho_max: float,
           n_grid: int | None) -> EoSTable:
    """The table of :func:`piecewise_polytrope` (compiled once, also when called outside jit)."""
    dividing = _pieces(log10_p1, gamma1, gamma2, gamma3)[2][1:]
    rho, lower_side = knotted_grid(jnp.asarray(density_grid(rho_max)), dividing)
    n, eps, p, h, cs2 = polytrope_nodes(log10_p1, gamma1, gamma2, gamma3, rho, lower_side)
    valid = polytrope_valid(log10_p1, gamma1, gamma2, gamma3)
    kw = {} if n_grid is None else {"n_grid": n_grid}
    return from_nodes(n, eps, p, h, cs2, valid=valid, n_knots=dividing.shape[0], **kw)


def named(name: str, **kwargs) -> EoSTable:
    """One of the named Read et al. fits: SLy, APR4, MPA1, H4, WFF1 (case-insensitive)."""
    lookup = {k.lower(): k for k in NAMED}
    if name.lower() not in lookup:
        raise ValueError(f"unknown EoS name {name!r}; valid names are {', '.join(NAMED)}")
    return piecewise_polytrope(*NAMED[lookup[name.lower()]], **kwargs)

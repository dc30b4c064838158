"""The one equation-of-state type, :class:`EoSTable`, and its construction from nodes.

Every parametrization (piecewise polytropes, speed-of-sound segments, tables read from
files) ends as an :class:`EoSTable`: the cold, barotropic EoS sampled in the *structure
variable*

    t = h + (eps - eps_s) / EPS_T,

where h = int dp / (eps + p) is the pseudo-enthalpy (h = ln(mu / mu_s), zero at the
surface), eps_s the energy density at the surface and ``EPS_T`` a fixed energy scale.
``t`` grows monotonically into the star even through a first-order transition, where p
and h stay constant while eps jumps: in ``t`` such a jump is a smooth ramp, and the TOV
and tidal equations (see :mod:`bayesqcd.tov`) stay finite with ``c_s^2 = 0``.

Along ``t`` the EoS is described by eps(t), p(t) and lam(t) = dh/dt in [0, 1]:

    dh/dt = lam,   d eps/dt = (1 - lam) EPS_T,   dp/dt = lam (eps + p),
    c_s^2 = dp/d eps = lam (eps + p) / ((1 - lam) EPS_T).

Knots -- the values of t where c_s^2 jumps (the pieces of a polytrope, the segments of a
speed-of-sound EoS, the edges of a first-order transition) -- split the table into
segments. Each segment has its own grid, uniform in ``xi = sqrt(t)`` (dense near the
surface, where the crust lives), and holds the one-sided values at its ends, so the EoS
is represented exactly up to the knots: a lookup is an O(1) index computation followed by
cubic Hermite interpolation with the exact derivatives above, and the TOV integrator
places steps on the knots.

Units: eps, p in km^-2 (geometrized, G = c = 1); n in fm^-3; h, t, lam dimensionless.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from bayesqcd import units
from bayesqcd.precision import require_x64

EPS_T: float = 1500.0 * units.MEV_FM3_TO_KM2
"""Energy scale of the structure variable t [km^-2] (1500 MeV fm^-3)."""

N_GRID: int = 1024
"""Default total number of grid nodes of an :class:`EoSTable` (shared by its segments)."""
CAUSAL_TOL: float = 1e-4
"""How far above 1 the c_s^2 read from a table's nodes may lie and still count as causal.
A table built from c_s^2 = 1 exactly reads up to 1.5e-5 above 1 at its nodes (lam is
interpolated linearly, eps and p by cubic Hermite; 40 sound-speed EoS with segments at 1), and
without the tolerance an EoS with c_s^2 > 1 - 1e-7 in a segment was flagged acausal: its stars
invalid and its likelihood -inf, a cliff that NUTS trajectories running up the stiff side of
the c_s^2 prior fell off (divergences). 1e-4 is c_s = 1.00005 c."""


class EoSTable(eqx.Module):
    """A cold barotropic EoS on segment-wise grids uniform in ``xi = sqrt(t)``.

    Batches of EoS are EoSTables whose arrays carry a leading batch axis; use
    ``jax.vmap`` over them.

    Attributes:
        t_bounds: segment boundaries in t: 0, the knots, t_max (shape S + 1).
        eps: energy density [km^-2] at the nodes (S segments x nodes per segment).
        p: pressure [km^-2] at the nodes.
        lam: dh/dt at the nodes (0 inside a first-order transition, 1 if incompressible).
        h: pseudo-enthalpy at the nodes.
        n: baryon number density [fm^-3] at the nodes.
        valid: whether the parameters that built the table were physical. If not, the
            arrays are NaN, and so is everything computed from them.
    """

    t_bounds: Float[Array, " S1"]
    eps: Float[Array, "S G"]
    p: Float[Array, "S G"]
    lam: Float[Array, "S G"]
    h: Float[Array, "S G"]
    n: Float[Array, "S G"]
    valid: Bool[Array, ""]

    @property
    def knots(self) -> Float[Array, " Kn"]:
        """Interior segment boundaries (values of t where c_s^2 jumps)."""
        return self.t_bounds[1:-1]

    @property
    def t_max(self) -> Float[Array, ""]:
        """Largest structure variable of the table."""
        return self.t_bounds[-1]

    @property
    def t_nodes(self) -> Float[Array, "S G"]:
        """Structure variable at the nodes."""
        xb = safe_sqrt(self.t_bounds)
        frac = jnp.linspace(0.0, 1.0, self.eps.shape[-1])
        return (xb[:-1, None] + frac[None, :] * (xb[1:] - xb[:-1])[:, None]) ** 2

    @property
    def cs2(self) -> Float[Array, "S G"]:
        """Squared speed of sound dp/d eps at the nodes (inf where incompressible)."""
        return self.lam * (self.eps + self.p) / ((1.0 - self.lam) * EPS_T)

    @property
    def causal(self) -> Bool[Array, "S G"]:
        """Whether 0 <= c_s^2 <= 1 at each node (to :data:`CAUSAL_TOL`)."""
        return self.lam * (self.eps + self.p) <= (1.0 + CAUSAL_TOL) * (1.0 - self.lam) * EPS_T

    def segment_of(self, t: Float[Array, "..."]) -> Int[Array, "..."]:
        """Index of the segment holding ``t`` (a knot belongs to the segment above it)."""
        return jnp.sum(t[..., None] >= self.knots, axis=-1)

    def __call__(self, t: Float[Array, "..."], segment: Int[Array, "..."] | None = None):
        """(eps [km^-2], p [km^-2], lam) at structure variable ``t``.

        Cubic Hermite in xi with the exact derivatives; lam linear. ``segment`` selects
        the side of a knot explicitly (the TOV integrator passes it); by default it is
        :meth:`segment_of`. Values of t outside the segment are clamped to it.
        """
        j = self.segment_of(t) if segment is None else segment
        g_last = self.eps.shape[-1] - 1
        x_lo = safe_sqrt(self.t_bounds[j])
        x_hi = safe_sqrt(self.t_bounds[j + 1])
        dxi = (x_hi - x_lo) / g_last
        xi = jnp.clip(safe_sqrt(t), x_lo, x_hi)
        pos = (xi - x_lo) / jnp.where(dxi > 0, dxi, 1.0)
        k = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, g_last - 1)
        th = pos - k
        e0, e1 = self.eps[j, k], self.eps[j, k + 1]
        p0, p1 = self.p[j, k], self.p[j, k + 1]
        l0, l1 = self.lam[j, k], self.lam[j, k + 1]
        x0 = x_lo + k * dxi
        x1 = x0 + dxi
        # derivatives with respect to xi, times the cell width: d/dxi = 2 xi d/dt
        de0, de1 = 2 * x0 * (1 - l0) * EPS_T * dxi, 2 * x1 * (1 - l1) * EPS_T * dxi
        dp0, dp1 = 2 * x0 * l0 * (e0 + p0) * dxi, 2 * x1 * l1 * (e1 + p1) * dxi
        eps = _hermite(th, e0, e1, de0, de1)
        p = _hermite(th, p0, p1, dp0, dp1)
        lam = l0 + th * (l1 - l0)
        return eps, p, lam

    def t_of_p(self, p: Float[Array, "..."]) -> Float[Array, "..."]:
        """The smallest structure variable t at which the pressure reaches ``p`` [km^-2].

        Pressures above the top of the table give NaN.
        """
        p_flat = self.p.reshape(-1)
        t_flat = self.t_nodes.reshape(-1)
        # the tolerance puts a pressure on a plateau (first-order transition) at its low end
        i = jnp.clip(jnp.searchsorted(p_flat, p * (1 - 1e-12), side="left") - 1, 0, p_flat.shape[0] - 2)
        t_lo, t_hi = t_flat[i], t_flat[i + 1]
        p0, p1 = p_flat[i], p_flat[i + 1]
        frac = jnp.clip((p - p0) / jnp.where(p1 > p0, p1 - p0, 1.0), 0.0, 1.0)
        t = t_lo + frac * (t_hi - t_lo)
        seg = jnp.clip(self.segment_of(0.5 * (t_lo + t_hi)), 0, self.eps.shape[0] - 1)
        for _ in range(4):  # Newton on the Hermite form, kept inside the cell
            e_t, p_t, l_t = self(t, seg)
            slope = jnp.maximum(l_t * (e_t + p_t), 1e-300)
            t = jnp.clip(t - (p_t - p) / slope, t_lo, t_hi)
        return jnp.where(p <= p_flat[-1], t, jnp.nan)

    def at_pressure(self, p: Float[Array, "..."]) -> tuple[Array, Array]:
        """(eps [km^-2], c_s^2) on the low-density side at pressure ``p`` [km^-2]."""
        e, _, lam = self(self.t_of_p(p))
        return e, lam * (e + p) / ((1 - lam) * EPS_T)


def safe_sqrt(x: Array) -> Array:
    """sqrt with a finite (zero) gradient at x <= 0, so that t = 0 at the surface is differentiable."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def _hermite(th: Array, y0: Array, y1: Array, d0: Array, d1: Array) -> Array:
    """Cubic Hermite interpolation on [0, 1] with end values y and end slopes d."""
    th2 = th * th
    th3 = th2 * th
    return (
        (2 * th3 - 3 * th2 + 1) * y0
        + (th3 - 2 * th2 + th) * d0
        + (-2 * th3 + 3 * th2) * y1
        + (th3 - th2) * d1
    )


def from_nodes(
    n: Float[Array, " J"],
    eps: Float[Array, " J"],
    p: Float[Array, " J"],
    h: Float[Array, " J"],
    cs2: Float[Array, " J"],
    valid: Bool[Array, ""] | bool = True,
    n_knots: int = 0,
    n_grid: int = N_GRID,
) -> EoSTable:
    """Resample an EoS given on (dense, increasing-density) nodes onto an :class:`EoSTable`.

    A knot (a density where c_s^2 jumps) is given as two consecutive nodes with the same
    density, the first carrying the c_s^2 below the knot and the second the one above.

    Args:
        n: baryon density [fm^-3], non-decreasing (equal only at knots).
        eps: energy density [km^-2], non-decreasing; ``eps[0]`` is the surface value.
        p: pressure [km^-2], non-decreasing; ``p[0]`` is the surface pressure (~0).
        h: pseudo-enthalpy ln(mu / mu_s) (0 at the first node), non-decreasing.
        cs2: squared speed of sound dp/d eps at the nodes (0 in first-order transitions;
            ``inf`` for incompressible matter).
        valid: whether the inputs are physical; if not, the table is NaN-filled.
        n_knots: number of knots (duplicated densities) in the nodes.
        n_grid: total number of nodes of the resulting table.

    Pure JAX: jit, vmap and grad pass through. Needs float64 (:func:`bayesqcd.enable_x64`).
    """
    require_x64("an EoS table (bayesqcd.eos)")
    n_seg = n_knots + 1
    per_seg = max(n_grid // n_seg, 8)
    eps_s = eps[0]
    t = h + (eps - eps_s) / EPS_T
    enthalpy = eps + p
    safe = jnp.where(enthalpy > 0, enthalpy, 1.0)
    # lam = 1 where eps + p = 0 (the vacuum end of a crust: t = h there) or c_s^2 = inf
    lam = jnp.where(jnp.isinf(cs2) | (enthalpy <= 0), 1.0, cs2 * EPS_T / (cs2 * EPS_T + safe))
    de = (1 - lam) * EPS_T
    dp = lam * enthalpy
    dn = jnp.where(enthalpy > 0, n * de / safe, 0.0)

    last = t.shape[0] - 1
    if n_knots:
        # the two copies of a knot: equal densities up to rounding (under jit, XLA may
        # compute the copies along different fused paths, so exact equality is not safe)
        dup = jnp.diff(n) <= 1e-12 * jnp.abs(n[1:])
        lower_copy = jnp.nonzero(dup, size=n_knots, fill_value=last - 1)[0]
        seg_first = jnp.concatenate([jnp.zeros(1, lower_copy.dtype), lower_copy + 1])
        seg_last = jnp.concatenate([lower_copy, jnp.full(1, last, lower_copy.dtype)])
    else:
        seg_first = jnp.zeros(1, jnp.int32)
        seg_last = jnp.full(1, last, jnp.int32)
    t_bounds = jnp.concatenate([jnp.zeros(1), t[seg_first[1:]], t[-1:]])
    xb = safe_sqrt(t_bounds)
    frac = jnp.linspace(0.0, 1.0, per_seg)
    t_grid = (xb[:-1, None] + frac[None, :] * (xb[1:] - xb[:-1])[:, None]) ** 2
    j = jnp.searchsorted(t, t_grid, side="right") - 1
    j = jnp.clip(j, seg_first[:, None], seg_last[:, None] - 1)
    dt = t[j + 1] - t[j]
    th = jnp.clip((t_grid - t[j]) / jnp.where(dt > 0, dt, 1.0), 0.0, 1.0)

    def interp(y: Array, dydt: Array) -> Array:
        return _hermite(th, y[j], y[j + 1], dydt[j] * dt, dydt[j + 1] * dt)

    # t must grow inside segments; across a knot (published fits are continuous only to
    # their quoted digits) the two copies may differ slightly
    rising = jnp.diff(t) >= 0
    if n_knots:
        rising = rising.at[seg_last[:-1]].set(True)
    steps_ok = jnp.all(rising) & jnp.all(jnp.diff(t_bounds) > 0)
    valid = jnp.asarray(valid) & steps_ok
    nan_if = lambda x: jnp.where(valid, x, jnp.nan)  # noqa: E731
    return EoSTable(
        t_bounds=nan_if(t_bounds),
        eps=nan_if(interp(eps, de)),
        p=nan_if(interp(p, dp)),
        lam=nan_if(lam[j] + th * (lam[j + 1] - lam[j])),
        h=nan_if(interp(h, lam)),
        n=nan_if(interp(n, dn)),
        valid=valid,
    )

"""Speed-of-sound parametrization of Fujimoto, Fukushima & Murase (PRD 98, 023019 (2018);
PRD 101, 054016 (2020); JHEP 03 (2021) 273).

A fixed low-density EoS (the SLy piecewise polytrope of Read et al. 2009, crust and
nuclear matter) up to n_match = 1.1 n_0, then c_s^2 constant in each of K density
segments between ``n_bounds`` (default: K = 5 equal segments up to 8 n_0); the last value
continues up to ``n_max`` (default 12 n_0), so that central densities beyond 8 n_0 are
covered. Thermodynamic consistency fixes everything else, segment by segment in closed
form (d ln mu / d ln n = c_s^2, dp = c_s^2 mu dn, d eps = mu dn):

    mu(n) = mu_i (n / n_i)^s,
    p(n) = p_i + s mu_i n_i / (1 + s) [(n / n_i)^(1 + s) - 1],
    eps(n) = mu(n) n - p(n),   h(n) = h_i + s ln(n / n_i).

A segment with c_s^2 = 0 is a first-order transition: p and mu stay constant while eps
grows linearly in n.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from bayesqcd import units
from bayesqcd.eos.polytrope import NAMED, density_grid, knotted_grid, polytrope_nodes, _pieces
from bayesqcd.eos.table import EoSTable, from_nodes
from bayesqcd.eos.validation import check_range, is_concrete

N_MATCH: float = 1.1 * units.N_SAT
"""Density [fm^-3] where the speed-of-sound segments start (1.1 n_0)."""
N_LAST: float = 8.0 * units.N_SAT
"""Default upper end [fm^-3] of the last segment boundary (8 n_0)."""
N_MAX: float = 12.0 * units.N_SAT
"""Default top of the table [fm^-3]: the last c_s^2 continues up to 12 n_0."""
NODES_PER_SEGMENT: int = 160
"""Native nodes per speed-of-sound segment before resampling."""


def default_bounds(n_segments: int = 5) -> np.ndarray:
    """Equal-width segment boundaries [fm^-3] from 1.1 n_0 to 8 n_0."""
    return np.linspace(N_MATCH, N_LAST, n_segments + 1)


def validate_sound_speed(cs2: ArrayLike, n_bounds: ArrayLike) -> None:
    """Raise ``ValueError`` naming the offending value if the parameters are unphysical."""
    cs2 = np.asarray(cs2, dtype=float)
    n_bounds = np.asarray(n_bounds, dtype=float)
    if cs2.ndim != 1 or cs2.size < 1:
        raise ValueError(f"cs2 must be a 1-D array with at least one segment, got shape {cs2.shape}")
    if n_bounds.shape != (cs2.size + 1,):
        raise ValueError(f"n_bounds must have len(cs2) + 1 = {cs2.size + 1} entries, got shape {n_bounds.shape}")
    for i, c in enumerate(cs2):
        check_range(f"cs2[{i}]", float(c), 0.0, 1.0, unit="(squared speed of sound, units of c^2)")
    if abs(n_bounds[0] - N_MATCH) > 1e-12:
        raise ValueError(f"n_bounds[0] = {n_bounds[0]} must equal the matching density {N_MATCH} fm^-3")
    if np.any(np.diff(n_bounds) <= 0):
        i = int(np.argmax(np.diff(n_bounds) <= 0))
        raise ValueError(f"n_bounds must increase: n_bounds[{i + 1}] = {n_bounds[i + 1]} <= n_bounds[{i}] = {n_bounds[i]}")


def _evaluate_now(fn: Callable[[], Any]) -> Any:
    """``fn()`` compiled and run at once, as NumPy arrays, also when called while tracing."""
    return jax.tree.map(np.asarray, jax.jit(fn).lower().compile()())


@functools.lru_cache(maxsize=1)
def _low_density_nodes():
    """SLy nodes (with its knots) up to the matching density, as constants, and the number of knots.

    Computed once per process by two compiled programs (op by op, the same took 4-8 s).
    """
    rho_match = N_MATCH / units.FM_CM**3 * units.M_BARYON_G
    dividing = _evaluate_now(lambda: _pieces(*NAMED["SLy"])[2][1:])
    below = dividing[dividing < rho_match]
    grid = density_grid(rho_match)

    def nodes():
        rho, lower_side = knotted_grid(jnp.asarray(grid[grid < rho_match]), jnp.asarray(below))
        rho = jnp.concatenate([rho, jnp.full(1, rho_match)])
        lower_side = jnp.concatenate([lower_side, jnp.zeros(1, bool)])
        return polytrope_nodes(*NAMED["SLy"], rho, lower_side)

    return tuple(_evaluate_now(nodes)), int(below.shape[0])


def sound_speed(
    cs2: Float[ArrayLike, " K"],
    n_bounds: Float[ArrayLike, " K1"] | None = None,
    *,
    n_max: float = N_MAX,
    n_grid: int | None = None,
) -> EoSTable:
    """The speed-of-sound EoS as an :class:`EoSTable`.

    Args:
        cs2: c_s^2 in each of the K segments, each in [0, 1] (0: first-order transition).
        n_bounds: K + 1 segment boundaries [fm^-3], starting at 1.1 n_0 (default: equal
            segments up to 8 n_0).
        n_max: top of the table [fm^-3]; the last c_s^2 continues up to it.
        n_grid: nodes of the table (default :data:`bayesqcd.eos.table.N_GRID`).

    Outside jit, unphysical parameters raise ``ValueError``; under jit they give a table
    with ``valid = False`` and NaN arrays.
    """
    cs2 = jnp.asarray(cs2)
    n_seg = cs2.shape[0]
    bounds = jnp.asarray(default_bounds(n_seg) if n_bounds is None else n_bounds, dtype=cs2.dtype)
    if is_concrete(cs2) and is_concrete(bounds):
        validate_sound_speed(np.asarray(cs2), np.asarray(bounds))
    return _table(cs2, bounds, jnp.asarray(n_max, dtype=cs2.dtype), n_grid)


@functools.partial(jax.jit, static_argnums=3)
def _table(cs2: Array, bounds: Array, n_max: Array, n_grid: int | None) -> EoSTable:
    """The table of :func:`sound_speed` (compiled once per shape, also when called outside jit)."""
    n_seg = cs2.shape[0]
    low_nodes, n_low_knots = _low_density_nodes()
    n_lo, e_lo, p_lo, h_lo, c_lo = (jnp.asarray(x) for x in low_nodes)
    top = jnp.maximum(n_max, bounds[-1])
    ends = jnp.concatenate([bounds[1:-1], top[None]])
    frac = jnp.linspace(0.0, 1.0, NODES_PER_SEGMENT)
    n_i, e_i, p_i, h_i = n_lo[-1], e_lo[-1], p_lo[-1], h_lo[-1]
    mu_i = (e_i + p_i) / n_i
    cols = {k: [] for k in ("n", "e", "p", "h", "c")}
    for k in range(n_seg):
        s = cs2[k]
        n = n_i + frac * (ends[k] - n_i)
        x = n / n_i
        mu = mu_i * x**s
        p = p_i + s * mu_i * n_i / (1 + s) * (x ** (1 + s) - 1)
        for key, val in zip("nephc", (n, mu * n - p, p, h_i + s * jnp.log(x), jnp.full_like(n, s))):
            cols[key].append(val)
        n_i, p_i, mu_i, h_i = n[-1], p[-1], mu[-1], h_i + s * jnp.log(x[-1])
    arrays = [jnp.concatenate([lo, *cols[key]]) for lo, key in zip((n_lo, e_lo, p_lo, h_lo, c_lo), "nephc")]
    valid = jnp.all((cs2 >= 0) & (cs2 <= 1)) & jnp.all(jnp.diff(bounds) > 0)
    kw = {} if n_grid is None else {"n_grid": n_grid}
    return from_nodes(*arrays, valid=valid, n_knots=n_low_knots + n_seg, **kw)

"""Neutron-star structure: TOV and tidal equations in the structure variable, with diffrax.

Geometrized units, G = c = 1, lengths in km: masses in km (divide by
:data:`bayesqcd.units.MSUN_KM` for solar masses), energy densities and pressures in km^-2.

Formulation
-----------
The equations are integrated from the centre (t = t_c) to the surface (t = 0) in the EoS
structure variable t = h + (eps - eps_s) / EPS_T of :mod:`bayesqcd.eos.table`, with
state u = r^2, w = m / r^3 (finite at the centre, = 4 pi eps_c / 3) and the tidal
y = r H'/H. With A = w + 4 pi p, f = 1 - 2 w u and D = (dr/dh) / r = -f / (u A),

    du/dt = -2 f lam / A,
    dw/dt = (4 pi eps - 3 w) D lam,
    dy/dt = -(y^2 + y F + r^2 Q_0) D lam - 4 pi u (d eps/dt) D / f,

where lam = dh/dt, F = [1 + 4 pi u (p - eps)] / f and
r^2 Q_0 = 4 pi u (5 eps + 9 p) / f - 6 / f - 4 u^2 A^2 / f^2. This is the pseudo-enthalpy
form (dr/dh = -r (r - 2m) / (m + 4 pi r^3 p)) with the (eps + p)/c_s^2 term of the tidal
equation written as d eps/dt: inside a first-order transition lam = 0, r and m stay put
and y jumps by exactly -4 pi r^3 Delta eps / (m + 4 pi r^3 p) (Damour & Nagar 2009;
Postnikov et al. 2010), with no special case. A density jump at the surface
(self-bound or incompressible stars) is added at the end the same way.

The ODE variable sigma runs through the EoS segments (the pieces between knots) from the
centre outwards, one unit per segment, linearly in sqrt(t) inside each: the knots sit at
integer sigma whatever the EoS parameters, the adaptive Tsit5 steps end on them, and the
right-hand side is smooth inside every step (see ``_rhs``, ``_integrate_one``); a step that
would stop just short of a knot is stretched onto it (:class:`KnotSnapController`). The
integration starts at t = t_c (1 - s_start) from the regular central series
(``_initial_state``). Step sizes are not differentiated, so gradients are those of the
discretized smooth problem.

Everything is pure JAX: jit, vmap (over central pressures and over EoS batches) and
grad (with respect to EoS parameters, through the table construction) all work.
"""

from __future__ import annotations

import functools
from typing import Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from bayesqcd import units
from bayesqcd.eos.table import EPS_T, EoSTable, safe_sqrt
from bayesqcd.precision import require_x64

P_C_MIN_DEFAULT: float = 8.0 * units.MEV_FM3_TO_KM2
"""Default lowest central pressure of a mass-radius curve [km^-2] (8 MeV fm^-3)."""

FOUR_PI = 4.0 * jnp.pi

KNOT_REL_MIN: float = 1e-6
"""Knots with t_c (1 - KNOT_REL_MIN) <= t < t_c are treated as lying above the centre."""
REFINE_POINTS: int = 7
"""Stars per zoom level when locating the maximum mass."""
ZOOM_LEVELS: int = 4
"""Zoom levels when locating the maximum mass (each narrows the bracket threefold)."""


KNOT_SNAP: float = 0.25
"""A kept step whose successor would stop short of a knot by less than this fraction of its
length is stretched onto the knot (see :class:`KnotSnapController`)."""


class KnotSnapController(diffrax.AbstractAdaptiveStepSizeController):
    """A step-size controller that never leaves a sliver before a knot at an integer sigma.

    Knots sit at the integers of the ODE variable (see ``_rhs``). With jump times alone,
    diffrax's PID controller can propose a step that ends a few ulps -- or a small fraction
    of the step -- before a knot, whenever a kept step repeats the length of the last
    one (it never shrinks a kept step): the next step is then that sliver, and the
    controller regrows from it by at most tenfold per step, about sixteen extra steps for a
    single star. Under ``vmap`` every star of a curve pays for the slowest, so one such
    star cost a third of a gradient. Here, after a kept step, a proposal that would stop
    less than ``snap`` of its length before the next integer ends on it instead (the error
    control still accepts or rejects it); a retry after a rejection is left alone, so a
    stretched step that fails is shortened, not stretched again.

    Attributes:
        inner: the PID controller proposing the steps (its tolerances are this one's).
        snap: the largest gap, as a fraction of the proposed step, that is closed.
    """

    inner: diffrax.PIDController
    snap: float = eqx.field(static=True, default=KNOT_SNAP)

    @property
    def rtol(self):
        return self.inner.rtol

    @property
    def atol(self):
        return self.inner.atol

    @property
    def norm(self):
        return self.inner.norm

    def wrap(self, direction):
        return type(self)(self.inner.wrap(direction), self.snap)

    def _snapped(self, t0: Array, t1: Array) -> Array:
        knot = jnp.ceil(t1)
        return jnp.where(knot - t1 < self.snap * (t1 - t0), knot, t1)

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        t_next, state = self.inner.init(terms, t0, t1, y0, dt0, args, func, error_order)
        return self._snapped(t0, t_next), state

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state):
        keep, next_t0, next_t1, made_jump, state, result = self.inner.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state
        )
        next_t1 = jnp.where(keep, self._snapped(next_t0, next_t1), next_t1)
        return keep, next_t0, next_t1, made_jump, state, result


class SolverConfig(eqx.Module):
    """How the structure equations are integrated (adaptive steps with a PID controller).

    Attributes:
        rtol, atol: tolerances of the step-size controller (on u [km^2], w [km^-2], y).
        solver: a diffrax solver instance (default Tsit5).
        max_steps: cap on the number of steps of one star (NaN beyond).
        s_start: distance from the centre, as a fraction of t_c, at which the integration
            starts from the regular series.
        adjoint: how diffrax differentiates the solve: ``RecursiveCheckpointAdjoint()``
            (reverse mode, the default) or ``ForwardMode()`` (forward mode: much cheaper
            when the parameters are few, as in EoS inference; use with ``jax.jacfwd`` /
            NumPyro's ``forward_mode_differentiation=True``).
    """

    rtol: float = eqx.field(static=True, default=1e-6)
    atol: float = eqx.field(static=True, default=1e-9)
    solver: diffrax.AbstractSolver = eqx.field(static=True, default_factory=diffrax.Tsit5)
    max_steps: int = eqx.field(static=True, default=1024)
    s_start: float = eqx.field(static=True, default=1e-3)
    adjoint: diffrax.AbstractAdjoint = eqx.field(
        static=True, default_factory=diffrax.RecursiveCheckpointAdjoint
    )


DEFAULT = SolverConfig()
"""Default configuration: Tsit5, rtol 1e-6 (M to ~1e-5, R to ~0.1 m, Lambda to ~1e-4)."""
FAST = SolverConfig(rtol=1e-5, atol=1e-8)
"""Faster configuration for large batches (training sets, inference): rtol 1e-5, about twice
the throughput of :data:`DEFAULT` at a few 1e-5 in M and Lambda."""
INFERENCE = SolverConfig(rtol=1e-3, atol=1e-6, adjoint=diffrax.ForwardMode())
"""Configuration for posterior sampling: rtol 1e-3 (with 32 stars, 256-node tables and
``zoom_levels=0``: M_TOV to 5e-3 M_sun, R_1.4 to 20 m, Lambda_1.4 to 0.5% over eight c_s^2
EoS; over 60 prior draws with c_s^2 uniform in [0, 1], M_TOV to 1.2e-2 M_sun, R_1.4 to 19 m and
Lambda_1.4 to 0.8%, against :data:`DEFAULT` with 100 stars -- well below observational errors)
and forward-mode derivatives, several times cheaper than reverse mode for a handful of EoS parameters
(NumPyro: ``forward_mode_differentiation=True``)."""
TIGHT = SolverConfig(rtol=1e-10, atol=1e-14, max_steps=8192, s_start=1e-4)
"""Tight configuration, for references and convergence checks."""


class Stars(eqx.Module):
    """Macroscopic properties of stars (all arrays share the batch shape of the central pressures).

    Attributes:
        p_c: central pressure [km^-2].
        M: gravitational mass [M_sun].
        R: circumferential radius [km].
        Lambda: dimensionless tidal deformability.
        k2: tidal Love number.
        valid: the EoS is valid and causal up to the centre and the solution is finite.
    """

    p_c: Float[Array, "*b"]
    M: Float[Array, "*b"]
    R: Float[Array, "*b"]
    Lambda: Float[Array, "*b"]
    k2: Float[Array, "*b"]
    valid: Bool[Array, "*b"]


def love_number_k2(compactness: Array, y: Array) -> Array:
    """Tidal Love number k2 from the compactness C = M/R and y = R H'(R)/H(R) (Hinderer 2008)."""
    c, c2 = compactness, compactness**2
    one = 1.0 - 2.0 * c
    num = 1.6 * c**5 * one**2 * (2.0 + 2.0 * c * (y - 1.0) - y)
    den = (
        2.0 * c * (6.0 - 3.0 * y + 3.0 * c * (5.0 * y - 8.0))
        + 4.0 * c**3 * (13.0 - 11.0 * y + c * (3.0 * y - 2.0) + 2.0 * c2 * (1.0 + y))
        + 3.0 * one**2 * (2.0 - y + 2.0 * c * (y - 1.0)) * jnp.log(one)
    )
    return num / den


def _rhs(sigma, state, args):
    """d(u, w, y)/d sigma for one star.

    sigma in [k, k + 1] runs through EoS segment j = S - 1 - k from its top ``x_top[j]`` to
    its bottom ``x_bot[j]``, linearly in xi = sqrt(t): the knots sit at the integers,
    whatever the EoS parameters, and the segment is read off sigma.
    """
    eos, x_top, x_bot, active = args
    u, w, y = state
    n_seg = x_top.shape[0]
    k = jnp.clip(jnp.floor(sigma).astype(jnp.int32), 0, n_seg - 1)
    j = n_seg - 1 - k
    width = x_top[j] - x_bot[j]
    xi = x_top[j] - (sigma - k) * width
    dt = -2.0 * xi * width  # dt / d sigma
    eps, p, lam = eos(xi * xi, j)
    de_dt = (1.0 - lam) * EPS_T
    a = w + FOUR_PI * p
    f = 1.0 - 2.0 * w * u
    d = -f / (u * a)
    du = -2.0 * f * lam / a
    dw = (FOUR_PI * eps - 3.0 * w) * d * lam
    big_f = (1.0 + FOUR_PI * u * (p - eps)) / f
    r2q0 = FOUR_PI * u * (5.0 * eps + 9.0 * p) / f - 6.0 / f - 4.0 * (u * a) ** 2 / f**2
    dy = -(y * y + y * big_f + r2q0) * d * lam - FOUR_PI * u * de_dt * d / f
    # an inactive star (invalid EoS or central pressure off the table) has a zero field,
    # so it costs one step instead of max_steps of rejections
    return tuple(jnp.where(active, x * dt, 0.0) for x in (du, dw, dy))


def _initial_state(eos: EoSTable, t_c: Array, tau: Array, segment: Array) -> tuple[Array, Array, Array]:
    """Regular central series at t = t_c - tau (tau small, inside the central segment).

    u by the midpoint rule on du/dtau = 2 f lam / A (error O(tau^3)),
    w = 4 pi [eps_c / 3 + (eps - eps_c) / 5] and
    y = 2 - (4 pi / 7) [(eps_c / 3 + 11 p_c) u + 2 (eps_c - eps) / A_c]
    (the (eps + p)/c_s^2 r^2 term written as 2 Delta eps / A_c), both O(tau^2).
    """
    eps_c, p_c, lam_c = eos(t_c, segment)
    eps_h, p_h, lam_h = eos(t_c - 0.5 * tau, segment)
    eps_0, _, _ = eos(t_c - tau, segment)
    a_c = FOUR_PI * (eps_c / 3.0 + p_c)
    w_h = FOUR_PI * (eps_c / 3.0 + (eps_h - eps_c) / 5.0)
    u_h = lam_c * tau / a_c
    u0 = tau * 2.0 * (1.0 - 2.0 * w_h * u_h) * lam_h / (w_h + FOUR_PI * p_h)
    w0 = FOUR_PI * (eps_c / 3.0 + (eps_0 - eps_c) / 5.0)
    y0 = 2.0 - FOUR_PI / 7.0 * ((eps_c / 3.0 + 11.0 * p_c) * u0 + 2.0 * (eps_c - eps_0) / a_c)
    return u0, w0, y0


def _integrate_one(eos: EoSTable, t_c: Array, config: SolverConfig):
    """Integrate one star from near the centre to the surface; returns (u, w, y) there."""
    sol, active = _solve_one(eos, t_c, config, diffrax.SaveAt(t1=True))
    ok = active & (sol.result == diffrax.RESULTS.successful)
    return tuple(jnp.where(ok, x[-1], jnp.nan) for x in sol.ys)


def _solve_one(eos: EoSTable, t_c: Array, config: SolverConfig, saveat: diffrax.SaveAt):
    """The diffrax solution of one star, saved at ``saveat``, and whether the star is active.

    The knots of the EoS sit at integer values of the ODE variable sigma (see ``_rhs``),
    declared to diffrax as jump times: the step before a knot ends just before it and
    the next starts just after, without reusing the last stage, so the right-hand side is
    smooth inside every step; as the knots do not move with the EoS parameters, gradients
    through the solve are those of a smooth problem. The centre is a regular singular
    point (perturbations decay like tau^-3/2 and tau^-5/2) where the adaptive controller
    starts with small steps; so it does after a transition at small radius.
    """
    n_seg = eos.t_bounds.shape[0] - 1
    active = eos.valid & (t_c > 0) & (t_c < eos.t_max)
    t_c = jnp.where(active, t_c, 1.0)
    # knots within KNOT_REL_MIN of the centre count as above it (a core that thin has no
    # effect and would make the start ill-conditioned)
    below = eos.knots < t_c * (1.0 - KNOT_REL_MIN)
    j_c = jnp.sum(below)
    t_knot = jnp.max(jnp.where(below, eos.knots, 0.0), initial=0.0)
    tau0 = jnp.minimum(config.s_start * t_c, 0.5 * (t_c - t_knot))
    x_start = jnp.sqrt(t_c - tau0)
    xb = safe_sqrt(eos.t_bounds)
    x_top = jnp.minimum(x_start, xb[1:])
    x_bot = jnp.minimum(x_start, xb[:-1])
    sigma0 = (n_seg - 1 - j_c).astype(t_c.dtype)
    width = x_top[j_c] - x_bot[j_c]
    # the step sizes are not differentiated (nor are diffrax's own step-size factors)
    dt0 = jax.lax.stop_gradient(jnp.clip(tau0 / (2.0 * x_start * jnp.maximum(width, 1e-300)), 1e-8, 1.0))
    dt0 = jnp.where(active, dt0, 1.0)
    inner = diffrax.PIDController(rtol=config.rtol, atol=config.atol)
    jumps = jnp.arange(1.0, n_seg) if n_seg > 1 else None
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_rhs),
        config.solver,
        t0=sigma0,
        t1=float(n_seg),
        dt0=dt0,
        y0=jax.tree_util.tree_map(lambda a: jnp.where(active, a, 1.0), _initial_state(eos, t_c, tau0, j_c)),
        args=(eos, x_top, x_bot, active),
        stepsize_controller=diffrax.ClipStepSizeController(KnotSnapController(inner), jump_ts=jumps),
        saveat=saveat,
        max_steps=config.max_steps,
        adjoint=config.adjoint,
        throw=False,
    )
    return sol, active


def _integrate(eos: EoSTable, t_c: Float[Array, " B"], config: SolverConfig):
    """Integrate a batch of stars with central structure variables ``t_c``."""
    return jax.vmap(_integrate_one, in_axes=(None, 0, None))(eos, t_c, config)


def _stars_from_t(eos: EoSTable, t_c: Float[Array, " B"], config: SolverConfig) -> Stars:
    u, w, y = _integrate(eos, t_c, config)
    r = jnp.sqrt(u)
    m = w * u * r
    eps_s = eos.eps[0, 0]
    y = y - FOUR_PI * r**3 * eps_s / m  # density jump at the surface (zero for a crust)
    c = m / r
    k2 = love_number_k2(c, y)
    lam_tidal = 2.0 / 3.0 * k2 / c**5
    first_acausal = jnp.min(jnp.where(eos.causal, jnp.inf, eos.t_nodes))
    ok = eos.valid & (t_c <= first_acausal) & jnp.isfinite(m) & jnp.isfinite(lam_tidal)
    _, p_c, _ = eos(t_c)
    return Stars(p_c=p_c, M=m / units.MSUN_KM, R=r, Lambda=lam_tidal, k2=k2, valid=ok)


@functools.partial(jax.jit, static_argnames=("config",))
def solve_tov(
    eos: EoSTable,
    p_c: Float[Array, "*b"],
    config: SolverConfig = DEFAULT,
) -> Stars:
    """Mass, radius and tidal deformability of stars with central pressures ``p_c``.

    Args:
        eos: the equation of state (one table; ``jax.vmap`` over a batched table for many).
        p_c: central pressures [km^-2] (use :data:`bayesqcd.units.MEV_FM3_TO_KM2` to convert),
            any shape; above the top of the table the result is NaN.
        config: integration settings (:data:`DEFAULT`; :data:`FAST` for large batches,
            :data:`TIGHT` for references).

    Returns:
        :class:`Stars` with the shape of ``p_c``: M [M_sun], R [km], Lambda, k2, valid.

    Compiled with ``jax.jit`` (``config`` static): a new shape or config compiles once.
    Needs float64 (:func:`bayesqcd.enable_x64`).
    """
    require_x64("bayesqcd.tov.solve_tov")
    p_c = jnp.asarray(p_c)
    flat = p_c.reshape(-1)
    stars = _stars_from_t(eos, eos.t_of_p(flat), config)
    return jax.tree_util.tree_map(lambda x: x.reshape(p_c.shape), stars)


class MRCurve(eqx.Module):
    """A mass-radius-Lambda sequence and the numbers derived from it.

    Attributes:
        stars: the sequence, on log-spaced central pressures (the unstable part beyond
            the maximum mass included, masked by ``stable``).
        stable: stars on the stable branch (central pressure up to that of M_TOV).
        M_max: maximum mass M_TOV [M_sun]: the heaviest solved star, after zooming into the
            bracket around the grid maximum; the knot pressures are candidates too.
        R_at_M_max: radius of the maximum-mass star [km].
        p_c_max: central pressure of the maximum-mass star [km^-2].
        max_reached: False when the mass still grows at the top of the table (M_max is
            then only a lower bound and flagged invalid).
        valid: the EoS is valid and causal up to the centre of the maximum-mass star.
    """

    stars: Stars
    stable: Bool[Array, " N"]
    M_max: Float[Array, ""]
    R_at_M_max: Float[Array, ""]
    p_c_max: Float[Array, ""]
    max_reached: Bool[Array, ""]
    valid: Bool[Array, ""]

    def at_mass(self, mass: float | Array, quantity: Literal["R", "Lambda", "p_c"] = "R") -> Array:
        """R [km], Lambda or p_c [km^-2] of the stable star of mass ``mass`` [M_sun] (NaN if none).

        Cubic Lagrange interpolation in log p_c on the four sequence points around the
        crossing (Lambda and p_c interpolated in log).
        """
        if quantity not in ("R", "Lambda", "p_c"):
            raise ValueError(f"quantity = {quantity!r}; valid choices are 'R', 'Lambda', 'p_c'")
        return _at_mass(self, jnp.asarray(mass), quantity)

    def _in_range(self, mass) -> Array:
        m = jnp.where(self.stable, self.stars.M, jnp.nan)
        # up to the heaviest stable star that is valid (causal to its centre); when the
        # table ends before the maximum, M_max is a lower bound but lighter stars are fine
        ok_to = jnp.where(self.stable & self.stars.valid, self.stars.M, -jnp.inf)
        return (mass >= jnp.nanmin(m)) & (mass <= jnp.max(ok_to))


@functools.partial(jax.jit, static_argnames="quantity")
def _at_mass(curve: MRCurve, mass: Array, quantity: str) -> Array:
    """:meth:`MRCurve.at_mass` (jitted, so that a model tracing it many times, under ``vmap`` and
    ``jvp``, traces it once per input shape)."""
    x = jnp.log(curve.stars.p_c)
    m = jnp.where(curve.stable, curve.stars.M, -jnp.inf)
    n = x.shape[0]
    i = jnp.clip(jnp.searchsorted(jnp.maximum.accumulate(m), mass) - 1, 1, n - 3)
    xs = jax.lax.dynamic_slice(x, (i - 1,), (4,))
    ms = jax.lax.dynamic_slice(curve.stars.M, (i - 1,), (4,))
    # Newton on the cubic M(x) = mass, from the linear estimate in the bracket [1, 2]
    x_est = xs[1] + (mass - ms[1]) / (ms[2] - ms[1]) * (xs[2] - xs[1])
    for _ in range(4):
        val, slope = _lagrange(xs, ms, x_est)
        x_est = x_est - (val - mass) / slope
    if quantity == "p_c":
        return jnp.where(curve._in_range(mass), jnp.exp(x_est), jnp.nan)
    ys = jax.lax.dynamic_slice(getattr(curve.stars, quantity), (i - 1,), (4,))
    if quantity == "Lambda":
        out = jnp.exp(_lagrange(xs, jnp.log(ys), x_est)[0])
    else:
        out = _lagrange(xs, ys, x_est)[0]
    return jnp.where(curve._in_range(mass), out, jnp.nan)


_OFF: np.ndarray = ~np.eye(4, dtype=bool)
"""``_OFF[j, k]``: k != j (the factors of the j-th Lagrange basis polynomial)."""
_OFF2: np.ndarray = _OFF[:, :, None] & _OFF[:, None, :] & _OFF[None, :, :]
"""``_OFF2[j, l, k]``: j, l and k all differ (the factors of d/dx of that polynomial, term l)."""


def _lagrange(xs: Array, ys: Array, x: Array) -> tuple[Array, Array]:
    """Value and derivative at ``x`` of the cubic through the four points (xs, ys).

    Written with whole-array products (a handful of operations), so that tracing it, under
    ``vmap`` and ``jvp`` inside every trace of a model, stays cheap.
    """
    d = x - xs  # (4,)
    den = jnp.prod(jnp.where(_OFF, xs[:, None] - xs[None, :], 1.0), axis=1)
    basis = jnp.prod(jnp.where(_OFF, d[None, :], 1.0), axis=1)
    dbasis = jnp.sum(jnp.prod(jnp.where(_OFF2, d[None, None, :], 1.0), axis=2), axis=1, where=_OFF)
    w = ys / den
    return jnp.dot(w, basis), jnp.dot(w, dbasis)


@functools.partial(jax.jit, static_argnames=("n_points", "config", "zoom_levels"))
def mass_radius_curve(
    eos: EoSTable,
    n_points: int = 100,
    p_c_min: float = P_C_MIN_DEFAULT,
    p_c_max: float | Array | None = None,
    config: SolverConfig = DEFAULT,
    zoom_levels: int = ZOOM_LEVELS,
) -> MRCurve:
    """The sequence of stars for log-spaced central pressures, with M_TOV and its radius.

    Args:
        eos: the equation of state (``jax.vmap`` over a batched table for many EoS).
        n_points: number of stars in the sequence.
        p_c_min: lowest central pressure [km^-2].
        p_c_max: highest central pressure [km^-2] (default: the top of the table).
        config: integration settings.
        zoom_levels: zoom levels of :data:`REFINE_POINTS` stars each around the grid
            maximum (M_max then accurate to ~1e-6 M_sun). With 0 -- cheaper, for inference
            -- M_max, its radius and central pressure come from the vertex of the parabola
            in log p_c through the three grid stars around the maximum (accurate to
            ~1e-3 M_sun with 32 stars), and knot pressures are not candidates.

    Compiled with ``jax.jit`` (``n_points``, ``config``, ``zoom_levels`` static): the first
    call for a table shape compiles (~15 s on a 2-core CPU), later ones take ~10 ms, against
    ~8 s per call run op by op. Needs float64 (:func:`bayesqcd.enable_x64`).
    """
    require_x64("bayesqcd.tov.mass_radius_curve")
    if zoom_levels < 0:
        raise ValueError(f"zoom_levels = {zoom_levels} must be >= 0")
    top = eos.p[-1, -1] * (1 - 1e-6)  # the top node itself is off the table (t_c < t_max)
    top = top if p_c_max is None else jnp.minimum(p_c_max, top)
    p_c = jnp.exp(jnp.linspace(jnp.log(p_c_min), jnp.log(top), n_points))
    if zoom_levels == 0:
        return _curve_by_parabola(solve_tov(eos, p_c, config), p_c)
    # the sequence and the stars at the knot pressures, in one solve
    both = solve_tov(eos, jnp.concatenate([p_c, jnp.clip(eos.p[1:, 0], p_c_min, top)]), config)
    stars = jax.tree_util.tree_map(lambda a: a[:n_points], both)
    knot_stars = jax.tree_util.tree_map(lambda a: a[n_points:], both)
    i = jnp.argmax(jnp.where(jnp.isfinite(stars.M), stars.M, -jnp.inf))

    def zoom(carry, _):
        # REFINE_POINTS solves across the bracket around the best star so far
        lo, hi, best = carry
        xs = jnp.linspace(lo, hi, REFINE_POINTS)
        fine = solve_tov(eos, jnp.exp(xs), config)
        k = jnp.argmax(jnp.where(jnp.isfinite(fine.M), fine.M, -jnp.inf))
        better = jnp.where(jnp.isfinite(fine.M[k]), fine.M[k], -jnp.inf) > best.M
        best = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a[k], b), fine, best)
        k = jnp.clip(k, 1, REFINE_POINTS - 2)
        return (xs[k - 1], xs[k + 1], best), None

    # The maximum: zoom ZOOM_LEVELS times into the bracket around the grid maximum; the
    # knot pressures are candidates too (a maximum can sit in the cusp where a
    # first-order transition sets in). M_max is always the mass of a solved star.
    x = jnp.log(p_c)
    cand = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[i][None], b]), stars, knot_stars)
    first = jnp.argmax(jnp.where(jnp.isfinite(cand.M), cand.M, -jnp.inf))
    start = (x[jnp.maximum(i - 1, 0)], x[jnp.minimum(i + 1, n_points - 1)],
             jax.tree_util.tree_map(lambda a: a[first], cand))
    (_, _, best), _ = jax.lax.scan(zoom, start, None, length=zoom_levels)
    p_best = best.p_c
    max_reached = i < n_points - 1
    return MRCurve(
        stars=stars,
        stable=p_c <= p_best,
        M_max=best.M,
        R_at_M_max=best.R,
        p_c_max=p_best,
        max_reached=max_reached,
        valid=best.valid & max_reached,
    )


def _curve_by_parabola(stars: Stars, p_c: Float[Array, " N"]) -> MRCurve:
    """MRCurve whose maximum is the vertex of the parabola in log p_c through three grid stars."""
    n = p_c.shape[0]
    i = jnp.argmax(jnp.where(jnp.isfinite(stars.M), stars.M, -jnp.inf))
    max_reached = (i > 0) & (i < n - 1)
    j = jnp.clip(i, 1, n - 2)
    x = jnp.log(p_c)
    x0, h = x[j], x[j + 1] - x[j]
    m_l, m_0, m_r = stars.M[j - 1], stars.M[j], stars.M[j + 1]
    curv = m_l - 2 * m_0 + m_r  # < 0 at a maximum
    safe = jnp.where(curv < 0, curv, -1.0)
    s = jnp.clip(0.5 * (m_l - m_r) / safe, -1.0, 1.0)  # vertex offset in grid steps

    def at_vertex(y: Array) -> Array:
        return y[j] + 0.5 * s * (y[j + 1] - y[j - 1]) + 0.5 * s**2 * (y[j + 1] - 2 * y[j] + y[j - 1])

    x_best = x0 + s * h
    return MRCurve(
        stars=stars,
        stable=x <= x_best,
        M_max=at_vertex(stars.M),
        R_at_M_max=at_vertex(stars.R),
        p_c_max=jnp.exp(x_best),
        max_reached=max_reached,
        valid=stars.valid[j] & max_reached,
    )


def summarize(curve: MRCurve) -> dict:
    """Headline numbers and the stable branch of one (unbatched) :class:`MRCurve` as plain Python.

    Returns M_max [M_sun], R_at_M_max [km], R_1.4 [km], Lambda_1.4 and the lists M [M_sun],
    R [km], Lambda of the finite stable stars (not for use under jit).
    """
    stable = np.asarray(curve.stable) & np.isfinite(np.asarray(curve.stars.M))
    return {
        "M_max": float(curve.M_max),
        "R_at_M_max": float(curve.R_at_M_max),
        "R_1.4": float(curve.at_mass(1.4, "R")),
        "Lambda_1.4": float(curve.at_mass(1.4, "Lambda")),
        "M": np.asarray(curve.stars.M)[stable].tolist(),
        "R": np.asarray(curve.stars.R)[stable].tolist(),
        "Lambda": np.asarray(curve.stars.Lambda)[stable].tolist(),
    }

"""Training sets for neural regression of the EoS from neutron-star observations, with
observational data augmentation (Fujimoto, Fukushima & Murase, PRD 98, 023019 (2018);
JHEP 03 (2021) 273).

1. EoS from the prior of the speed-of-sound parametrization (:mod:`bayesqcd.eos.sound_speed`):
   c_s^2 ~ U(0, 1) in each of K segments.
2. Each EoS solved with :mod:`bayesqcd.tov` in large jitted batches -- the same forward model
   (tables, solver settings, 32-star curves) as the Bayesian model
   (:mod:`bayesqcd.models.neutron_star`) -- split across devices with ``jax.shard_map`` when
   several are present. EoS whose curve fails (no valid star above ``m_min + 0.1``) are
   dropped and counted.
3. Per EoS, ``n_stars`` stars with masses uniform between ``m_min`` and the heaviest stable
   star, radii from the curve.
4. Observational data augmentation: copy ``c`` of EoS ``i`` shifts every star by Gaussian
   noise, M_obs = M + sigma_M z, R_obs = R + sigma_R z', with sigma_M [M_sun] and sigma_R [km]
   drawn per star from uniform ranges; the sigmas are inputs too. The noise of a copy is a
   pure function of (key, i, c), so ``n_copies`` is a fixed, finite set of noisy copies per
   EoS (``n_copies = 1``: no augmentation, one noisy realization per EoS).

Network inputs per data set: the stars sorted by observed mass, flattened as
``[M_obs (N), R_obs (N), sigma_M (N), sigma_R (N)]`` (M [M_sun], R and sigma_R [km]).
Targets: the K values of c_s^2.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from jaxtyping import Array, Float, PRNGKeyArray
from tqdm.auto import tqdm

from bayesqcd.data import ObservationSet
from bayesqcd.eos import sound_speed
from bayesqcd.models.neutron_star import TABLE_NODES, derived_quantities
from bayesqcd.tov import INFERENCE, SolverConfig, mass_radius_curve

CURVE_POINTS: int = 32
"""Stars per mass-radius curve (as in the Bayesian model)."""


@dataclass(frozen=True)
class ObservationModel:
    """How mock observations of a training EoS are made.

    Attributes:
        n_stars: stars per data set (the real data: 5 NICER sources).
        m_min: lowest mass [M_sun] of a drawn star (masses uniform up to the heaviest star).
        sigma_m: range [M_sun] of the uniform distribution of each star's mass uncertainty.
        sigma_r: range [km] of the uniform distribution of each star's radius uncertainty.

    The default ranges cover the 68% half-widths of the shipped NICER sources
    (0.04-0.16 M_sun, 0.3-1.2 km; :mod:`bayesqcd.data`).
    """

    n_stars: int = 5
    m_min: float = 1.0
    sigma_m: tuple[float, float] = (0.02, 0.2)
    sigma_r: tuple[float, float] = (0.2, 1.4)

    def __post_init__(self) -> None:
        if self.n_stars < 1:
            raise ValueError(f"n_stars = {self.n_stars} must be >= 1")
        if not 0.5 <= self.m_min <= 2.0:
            raise ValueError(f"m_min = {self.m_min} M_sun must lie in [0.5, 2.0]")
        for name, (lo, hi) in (("sigma_m", self.sigma_m), ("sigma_r", self.sigma_r)):
            if not 0.0 <= lo <= hi:
                raise ValueError(f"{name} = ({lo}, {hi}) must satisfy 0 <= low <= high")

    @property
    def n_features(self) -> int:
        """Length 4 N of one input vector."""
        return 4 * self.n_stars


class EoSSet(eqx.Module):
    """Solved training EoS with their true stars.

    Attributes:
        cs2: c_s^2 per segment, ``(n, K)``.
        M, R: true masses [M_sun] and radii [km] of the drawn stars, ``(n, N)``.
        M_TOV: maximum masses [M_sun], ``(n,)``.
        R_of_M: radii [km] on :data:`bayesqcd.models.neutron_star.M_GRID`, NaN above M_TOV, ``(n, G)``.
    """

    cs2: Float[Array, "n K"]
    M: Float[Array, "n N"]
    R: Float[Array, "n N"]
    M_TOV: Float[Array, " n"]
    R_of_M: Float[Array, "n G"]

    @property
    def size(self) -> int:
        return int(self.cs2.shape[0])


@dataclass(frozen=True)
class GenerationReport:
    """What :func:`generate_eos_set` did: EoS drawn, kept and dropped, wall time [s] (and
    that of the first batch, which includes the compilation), EoS solved per second after
    the first batch, devices used."""

    n_drawn: int
    n_kept: int
    n_dropped: int
    wall_time_s: float
    first_batch_s: float
    eos_per_second: float
    n_devices: int


def _solve_one(cs2: Array, u: Array, m_min: Array, config: SolverConfig) -> dict[str, Array]:
    """Curve of one EoS and its stars at mass fractions ``u`` in [0, 1] of [m_min, M_top]."""
    eos = sound_speed(cs2, n_grid=TABLE_NODES)
    curve = mass_radius_curve(eos, CURVE_POINTS, config=config, zoom_levels=0)
    d = derived_quantities(eos, curve)
    stable = curve.stable & curve.stars.valid & jnp.isfinite(curve.stars.M)
    m_top = jnp.max(jnp.where(stable, curve.stars.M, -jnp.inf))
    masses = m_min + u * (m_top - m_min)
    radii = jax.vmap(lambda m: curve.at_mass(m, "R"))(masses)
    ok = eos.valid & (m_top > m_min + 0.1) & jnp.all(jnp.isfinite(radii)) & jnp.isfinite(d["M_TOV"])
    return {"M": masses, "R": radii, "M_TOV": d["M_TOV"], "R_of_M": d["R_of_M"], "ok": ok}


def solve_batch(cs2: Float[Array, "B K"], u: Float[Array, "B N"], m_min: float,
                config: SolverConfig = INFERENCE) -> dict[str, Array]:
    """Solve a batch of EoS, sharded over all local devices when there are several.

    The batch is padded to a multiple of the device count, split along its first axis
    with ``jax.shard_map`` (each device solves its share; no communication), and the
    padding dropped again. Returns ``M``, ``R`` ``(B, N)``, ``M_TOV`` ``(B,)``,
    ``R_of_M`` ``(B, G)`` and ``ok`` ``(B,)``.
    """
    n_dev = jax.local_device_count()
    b = cs2.shape[0]
    pad = (-b) % n_dev
    if pad:
        cs2 = jnp.concatenate([cs2, jnp.repeat(cs2[-1:], pad, axis=0)])
        u = jnp.concatenate([u, jnp.repeat(u[-1:], pad, axis=0)])
    fn, sharding = _compiled_solver(config, n_dev)
    args = (cs2, u, jnp.full(cs2.shape[0], m_min, cs2.dtype))
    if sharding is not None:
        args = jax.device_put(args, sharding)
    out = fn(*args)
    return jax.tree_util.tree_map(lambda a: a[:b], out)


@functools.lru_cache(maxsize=8)
def _compiled_solver(config: SolverConfig, n_dev: int):
    """The jitted (and, for several devices, shard-mapped) batch solver, built once, and the
    sharding its inputs need (``None`` on one device)."""
    fn = jax.vmap(lambda c, v, m: _solve_one(c, v, m, config))
    if n_dev == 1:
        return jax.jit(fn), None
    mesh = jax.make_mesh((n_dev,), ("eos",), devices=jax.local_devices(), axis_types=(AxisType.Auto,))
    spec = PartitionSpec("eos")
    fn = jax.shard_map(fn, mesh=mesh, in_specs=(spec, spec, spec), out_specs=spec,
                       check_vma=False)  # the solver's error checks (lax.cond) carry no varying-axis types
    return jax.jit(fn), NamedSharding(mesh, spec)


def generate_eos_set(
    key: PRNGKeyArray,
    n_eos: int,
    n_segments: int = 5,
    obs_model: ObservationModel = ObservationModel(),
    *,
    batch_size: int = 256,
    config: SolverConfig = INFERENCE,
    progress: bool = True,
) -> tuple[EoSSet, GenerationReport]:
    """Draw ``n_eos`` EoS from the c_s^2 prior, solve them, keep the valid ones.

    Args:
        key: PRNG key.
        n_eos: EoS to draw (``>= 1``); the returned set has ``n_eos - n_dropped``.
        n_segments: K, segments of c_s^2 (equal widths from 1.1 n_0 to 8 n_0).
        obs_model: number of stars and the mass range.
        batch_size: EoS per jitted call (fixed, so one compilation serves all batches).
        config: TOV settings (default: those of the Bayesian model).
        progress: tqdm progress bar.
    """
    if n_eos < 1:
        raise ValueError(f"n_eos = {n_eos} must be >= 1")
    if n_segments < 1:
        raise ValueError(f"n_segments = {n_segments} must be >= 1")
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size} must be >= 1")
    k_cs2, k_u = jax.random.split(key)
    cs2_all = jax.random.uniform(k_cs2, (n_eos, n_segments))
    u_all = jax.random.uniform(k_u, (n_eos, obs_model.n_stars))
    bs = min(batch_size, n_eos)
    times: list[float] = []
    start = time.perf_counter()

    def solve(c: Array, v: Array) -> dict[str, Array]:
        out = solve_batch(c, v, obs_model.m_min, config)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - start)
        return out

    cat = _map_batches(solve, (cs2_all, u_all), bs, progress, "solving training EoS")
    wall, first = times[-1], times[0]  # the first batch includes the compilation
    ok = cat["ok"]
    eos_set = EoSSet(cs2=jnp.asarray(np.asarray(cs2_all)[ok]), M=jnp.asarray(cat["M"][ok]),
                     R=jnp.asarray(cat["R"][ok]), M_TOV=jnp.asarray(cat["M_TOV"][ok]),
                     R_of_M=jnp.asarray(cat["R_of_M"][ok]))
    n_kept = int(ok.sum())
    if n_kept == 0:
        raise ValueError(f"all {n_eos} drawn EoS were invalid (check m_min = {obs_model.m_min})")
    rate = (n_eos - bs) / (wall - first) if n_eos > bs else n_eos / wall
    report = GenerationReport(n_eos, n_kept, n_eos - n_kept, wall, first, rate, jax.local_device_count())
    return eos_set, report


def observe(key: PRNGKeyArray, masses: Float[Array, " N"], radii: Float[Array, " N"],
            obs_model: ObservationModel) -> Float[Array, " F"]:
    """One noisy observation of N stars as a network input ``(4 N,)`` (module docstring)."""
    k_sm, k_sr, k_z = jax.random.split(key, 3)
    n = masses.shape[0]
    sm = jax.random.uniform(k_sm, (n,), minval=obs_model.sigma_m[0], maxval=obs_model.sigma_m[1])
    sr = jax.random.uniform(k_sr, (n,), minval=obs_model.sigma_r[0], maxval=obs_model.sigma_r[1])
    z = jax.random.normal(k_z, (2, n))
    return features(masses + sm * z[0], radii + sr * z[1], sm, sr)


def features(m_obs: Array, r_obs: Array, sigma_m: Array, sigma_r: Array) -> Float[Array, " F"]:
    """Network input: the stars sorted by observed mass, ``[M (N), R (N), sigma_M (N), sigma_R (N)]``."""
    order = jnp.argsort(m_obs)
    return jnp.concatenate([m_obs[order], r_obs[order], sigma_m[order], sigma_r[order]])


class AugmentedSet(eqx.Module):
    """A training set with ``n_copies`` noisy copies per EoS, generated on the fly.

    Implements the data interface of :mod:`bayesqcd.inference.regression`:
    ``batch(key, size)`` (pure JAX) and ``arrays()`` (all rows materialized).
    """

    eos: EoSSet
    noise_key: PRNGKeyArray
    n_copies: int = eqx.field(static=True)
    obs_model: ObservationModel = eqx.field(static=True)

    def __check_init__(self) -> None:
        if self.n_copies < 1:
            raise ValueError(f"n_copies = {self.n_copies} must be >= 1")

    @property
    def size(self) -> int:
        """Rows in the set: EoS times copies."""
        return self.eos.size * self.n_copies

    def _rows(self, idx: Array, copy: Array) -> tuple[Array, Array]:
        def one(i, c):
            k = jax.random.fold_in(jax.random.fold_in(self.noise_key, i), c)
            return observe(k, self.eos.M[i], self.eos.R[i], self.obs_model)

        return jax.vmap(one)(idx, copy), self.eos.cs2[idx]

    def batch(self, key: PRNGKeyArray, size: int) -> tuple[Float[Array, "b F"], Float[Array, "b K"]]:
        """``size`` random rows (EoS and copy drawn uniformly, with replacement)."""
        k_i, k_c = jax.random.split(key)
        idx = jax.random.randint(k_i, (size,), 0, self.eos.size)
        copy = jax.random.randint(k_c, (size,), 0, self.n_copies)
        return self._rows(idx, copy)

    def arrays(self) -> tuple[Float[Array, "n F"], Float[Array, "n K"]]:
        """All ``size`` rows, EoS-major."""
        idx = jnp.repeat(jnp.arange(self.eos.size), self.n_copies)
        copy = jnp.tile(jnp.arange(self.n_copies), self.eos.size)
        return _rows_jit(self, idx, copy)


@eqx.filter_jit
def _rows_jit(data: AugmentedSet, idx: Array, copy: Array) -> tuple[Array, Array]:
    return data._rows(idx, copy)


def observed_inputs(obs: ObservationSet, n_stars: int | None = None) -> Float[np.ndarray, " F"]:
    """Network input from real observations: per mass-radius source, the median mass and
    radius and the half-widths of the 68% intervals as sigma_M [M_sun] and sigma_R [km]
    (sample-based sources: median and half the 16-84% range of the samples).

    Raises:
        ValueError: if the number of sources differs from ``n_stars``.
    """
    rows = []
    for src in obs.mr:
        if hasattr(src, "region"):
            m_lo, m_hi, r_lo, r_hi = src.region(0.6827)
            med = {r.quantity: r.median for r in src.rows} if src.rows else {}
            m = med.get("M", 0.5 * (m_lo + m_hi))
            r = med.get("R", 0.5 * (r_lo + r_hi))
        else:
            m, r = float(np.median(src.M)), float(np.median(src.R))
            m_lo, m_hi = np.percentile(src.M, [15.87, 84.13])
            r_lo, r_hi = np.percentile(src.R, [15.87, 84.13])
        rows.append((m, r, 0.5 * (m_hi - m_lo), 0.5 * (r_hi - r_lo)))
    if n_stars is not None and len(rows) != n_stars:
        names = ", ".join(s.name for s in obs.mr)
        raise ValueError(f"the networks take {n_stars} mass-radius sources; the data have "
                         f"{len(rows)} ({names})")
    a = np.asarray(rows, dtype=float).T
    return np.asarray(features(*(jnp.asarray(x) for x in a)))


def input_noise_draws(key: PRNGKeyArray, x: Float[Array, " F"], n_draws: int) -> Float[Array, "d F"]:
    """``n_draws`` re-observations of an observed input: each star's (M, R) shifted by its own
    sigmas (the observation's uncertainty propagated through the regressor), re-sorted."""
    n = x.shape[0] // 4
    m, r, sm, sr = x[:n], x[n:2 * n], x[2 * n:3 * n], x[3 * n:]

    def one(k):
        z = jax.random.normal(k, (2, n))
        return features(m + sm * z[0], r + sr * z[1], sm, sr)

    return jax.vmap(one)(jax.random.split(key, n_draws))


def derived_batch(cs2: Float[Array, "B K"], config: SolverConfig = INFERENCE,
                  batch_size: int = 512) -> dict[str, np.ndarray]:
    """:func:`~bayesqcd.models.neutron_star.derived_quantities` for a batch of c_s^2 vectors.

    Vectors outside [0, 1] give an invalid EoS and NaN quantities (nothing is clipped).
    """
    cs2 = jnp.asarray(cs2)
    return _map_batches(_compiled_derived(config), (cs2,), min(batch_size, cs2.shape[0]))


def _map_batches(fn: Callable[..., dict[str, Array]], arrays: tuple[Array, ...], size: int,
                 progress: bool = False, desc: str = "") -> dict[str, np.ndarray]:
    """``fn`` over consecutive row blocks of ``arrays``, outputs concatenated (numpy). Every
    block has ``size`` rows -- the last one padded with copies of its final row and the
    padding dropped -- so one compilation serves all blocks."""
    n = arrays[0].shape[0]
    parts = []
    for i in tqdm(range(0, n, size), desc=desc, disable=not progress):
        block = [a[i:i + size] for a in arrays]
        short = size - block[0].shape[0]
        if short:
            block = [jnp.concatenate([b, jnp.repeat(b[-1:], short, axis=0)]) for b in block]
        parts.append({k: np.asarray(v)[:size - short] for k, v in fn(*block).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@functools.lru_cache(maxsize=4)
def _compiled_derived(config: SolverConfig):
    def one(c: Array) -> dict[str, Array]:
        eos = sound_speed(c, n_grid=TABLE_NODES)
        return derived_quantities(eos, mass_radius_curve(eos, CURVE_POINTS, config=config, zoom_levels=0))

    return jax.jit(jax.vmap(one))


def mr_errors(true_r_of_m: np.ndarray, true_m_tov: np.ndarray, pred: dict[str, np.ndarray]) -> dict[str, float]:
    """Errors of reconstructed mass-radius curves against the true ones.

    Returns the RMS radius difference [km] over the grid masses below both maximum masses,
    the RMS |Delta M_TOV| [M_sun], and the fraction of predicted EoS that are invalid
    (those are excluded from the RMS values). Curves on the common mass grid
    :data:`~bayesqcd.models.neutron_star.M_GRID`, NaN above each M_TOV.
    """
    ok = np.isfinite(pred["M_TOV"])
    both = np.isfinite(true_r_of_m) & np.isfinite(pred["R_of_M"]) & ok[:, None]
    dr = (pred["R_of_M"] - true_r_of_m)[both]
    dm = (pred["M_TOV"] - true_m_tov)[ok]
    return {
        "rms_R_km": float(np.sqrt(np.mean(dr**2))) if dr.size else float("nan"),
        "rms_M_TOV": float(np.sqrt(np.mean(dm**2))) if dm.size else float("nan"),
        "invalid_fraction": float(1.0 - ok.mean()),
    }

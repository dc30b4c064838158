"""Training sets for neural regression of the EoS from neutron-star observations, with
observational data augmentation (Fujimoto, Fukushima & Murase, PRD 98, 023019 (2018);
JHEP 03 (2021) 273).

The simulator is a NumPyro model, :func:`star_model`, and the sets are drawn from it by the
generic :func:`bayesqcd.inference.simulate` (:func:`simulate_eos`):

1. EoS from the prior of the speed-of-sound parametrization (:mod:`bayesqcd.eos.sound_speed`):
   c_s^2 ~ U(0, 1) in each of K segments.
2. Each EoS solved with :mod:`bayesqcd.tov` -- the same forward model (tables, solver
   settings, 32-star curves) as the Bayesian model (:mod:`bayesqcd.models.neutron_star`) --
   in jitted batches sharded over all devices of all processes. EoS whose curve fails (no
   valid star above ``m_min + 0.1``) are dropped and counted.
3. Per EoS, ``n_stars`` stars with masses uniform between ``m_min`` and the heaviest stable
   star, radii from the curve.
4. Observations (:class:`StarObservations`): every star shifted by Gaussian noise,
   M_obs = M + sigma_M z, R_obs = R + sigma_R z', with sigma_M [M_sun] and sigma_R [km] drawn
   per star from uniform ranges; the sigmas are inputs too. Observational data augmentation
   re-draws them: for the regression, copy ``c`` of EoS ``i`` is a pure function of
   (key, i, c) (:class:`AugmentedSet`; ``n_copies`` fixed noisy copies per EoS,
   ``n_copies = 1``: no augmentation); for neural posterior estimation, the generic
   augmentation of :mod:`bayesqcd.inference.amortized` re-draws the model's own ``stars``
   site given the true stars.

Network inputs per data set: the stars sorted by observed mass, flattened as
``[M_obs (N), R_obs (N), sigma_M (N), sigma_R (N)]`` (M [M_sun], R and sigma_R [km]).
Targets: the K values of c_s^2.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray
from numpyro.distributions import constraints

from bayesqcd.data import ObservationSet
from bayesqcd.eos import sound_speed
from bayesqcd.inference.results import map_batches
from bayesqcd.inference.simulation import Simulations, simulate
from bayesqcd.models.neutron_star import TABLE_NODES, SoundSpeedPrior, derived_quantities
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


class StarObservations(dist.Distribution):
    """Noisy observations of N stars as one network input ``(4 N,)`` (:func:`observe`): per star
    sigma_M ~ U(obs_model.sigma_m), sigma_R ~ U(obs_model.sigma_r), M_obs ~ N(M, sigma_M),
    R_obs ~ N(R, sigma_R), sorted by observed mass, ``[M_obs, R_obs, sigma_M, sigma_R]``.

    A simulator: it samples (so :func:`bayesqcd.inference.simulate` and the augmentation of
    :mod:`bayesqcd.inference.amortized` can draw it); it has no density (``log_prob`` raises).
    """

    arg_constraints = {"masses": constraints.real_vector, "radii": constraints.real_vector}
    support = constraints.real_vector
    pytree_data_fields = ("masses", "radii")
    pytree_aux_fields = ("obs_model",)

    def __init__(self, masses: Array, radii: Array, obs_model: ObservationModel, *, validate_args: bool | None = None):
        self.masses, self.radii, self.obs_model = masses, radii, obs_model
        super().__init__(batch_shape=(), event_shape=(4 * masses.shape[-1],), validate_args=validate_args)

    def sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = ()) -> Array:
        n = int(np.prod(sample_shape, dtype=int))
        keys = jax.random.split(key, n)
        draws = jax.vmap(lambda k: observe(k, self.masses, self.radii, self.obs_model))(keys)
        return draws.reshape(*sample_shape, *self.event_shape)

    def log_prob(self, value: Array) -> Array:
        raise NotImplementedError("StarObservations is a simulator (sorted noisy stars with random errors): "
                                  "it has no density; use it with simulate / fit_npe / fit_regression")


def star_model(n_segments: int = 5, obs_model: ObservationModel = ObservationModel(),
               config: SolverConfig = INFERENCE) -> None:
    """The simulator of the training sets as a NumPyro model (sampling only).

    Sites: ``cs2`` (K,) ~ U(0, 1) (:class:`~bayesqcd.models.neutron_star.SoundSpeedPrior`);
    the deterministic quantities of the Bayesian model
    (:func:`~bayesqcd.models.neutron_star.derived_quantities`: ``M_TOV``, ``R_1.4``, ...);
    ``mass_fraction`` (N,) ~ U(0, 1), the stars' masses as fractions of [m_min, M_top] (M_top
    the heaviest stable star of the 32-star curve); the true stars ``M_star`` [M_sun] and
    ``R_star`` [km] (N,), as latent point masses (``Delta``) so that re-observing them (the
    augmentation) needs no TOV solve; and the data ``stars`` (4 N,)
    (:class:`StarObservations`). An EoS whose curve has no valid star above ``m_min + 0.1``
    gets NaN stars (``simulate`` drops and counts it).
    """
    eos = SoundSpeedPrior(n_segments)()
    curve = mass_radius_curve(eos, CURVE_POINTS, config=config, zoom_levels=0)
    d = derived_quantities(eos, curve)
    for name, value in d.items():
        numpyro.deterministic(name, value)
    stable = curve.stable & curve.stars.valid & jnp.isfinite(curve.stars.M)
    m_top = jnp.max(jnp.where(stable, curve.stars.M, -jnp.inf))
    u = numpyro.sample("mass_fraction", dist.Uniform(0.0, 1.0).expand([obs_model.n_stars]).to_event(1))
    masses = obs_model.m_min + u * (m_top - obs_model.m_min)
    radii = jax.vmap(lambda m: curve.at_mass(m, "R"))(masses)
    ok = eos.valid & (m_top > obs_model.m_min + 0.1) & jnp.all(jnp.isfinite(radii)) & jnp.isfinite(d["M_TOV"])
    bad = jnp.where(ok, 0.0, jnp.nan)
    m_star = numpyro.sample("M_star", dist.Delta(masses + bad, event_dim=1))
    r_star = numpyro.sample("R_star", dist.Delta(radii + bad, event_dim=1))
    numpyro.sample("stars", StarObservations(m_star, r_star, obs_model))


class EoSSet(eqx.Module):
    """Solved training EoS with their true stars (a view of the simulations' arrays).

    Attributes:
        cs2: c_s^2 per segment, ``(n, K)``.
        M, R: true masses [M_sun] and radii [km] of the drawn stars, ``(n, N)``.
    """

    cs2: Float[Array, "n K"]
    M: Float[Array, "n N"]
    R: Float[Array, "n N"]

    @classmethod
    def of(cls, sims: Simulations) -> EoSSet:
        """The EoS and stars of simulations of :func:`star_model`."""
        return cls(jnp.asarray(sims.targets["cs2"]), jnp.asarray(sims.latents["M_star"]),
                   jnp.asarray(sims.latents["R_star"]))

    @property
    def size(self) -> int:
        return int(self.cs2.shape[0])


@dataclass(frozen=True)
class GenerationReport:
    """What :func:`simulate_eos` did: EoS drawn, kept and dropped, the wall time [s] and the
    EoS drawn per second (compilation included), devices and processes that shared the work."""

    n_drawn: int
    n_kept: int
    n_dropped: int
    wall_time_s: float
    eos_per_second: float
    n_devices: int
    n_processes: int


def simulate_eos(key: PRNGKeyArray, n_eos: int, n_segments: int = 5, obs_model: ObservationModel = ObservationModel(),
                 *, batch_size: int = 256, config: SolverConfig = INFERENCE,
                 progress: bool = True) -> tuple[Simulations, GenerationReport]:
    """Draw ``n_eos`` EoS with their stars and observations from :func:`star_model`, keep the valid ones.

    :func:`bayesqcd.inference.simulate` does the work: jitted batches of ``batch_size``,
    sharded over all devices of all processes (every process receives all simulations).

    Args:
        key: PRNG key.
        n_eos: EoS to draw (``>= 1``); ``n_dropped`` invalid ones are dropped.
        n_segments: K, segments of c_s^2 (equal widths from 1.1 n_0 to 8 n_0).
        obs_model: number of stars, the mass range and the observational errors.
        batch_size: EoS per jitted call.
        config: TOV settings (default: those of the Bayesian model).
        progress: progress bar.

    Returns:
        The :class:`~bayesqcd.inference.Simulations` (target ``cs2``; observed ``stars``;
        latents ``mass_fraction``, ``M_star``, ``R_star``) and a :class:`GenerationReport`.
    """
    if n_eos < 1:
        raise ValueError(f"n_eos = {n_eos} must be >= 1")
    if n_segments < 1:
        raise ValueError(f"n_segments = {n_segments} must be >= 1")
    start = time.perf_counter()
    try:
        sims = simulate(star_model, key, n_eos, n_segments, obs_model, config, targets=["cs2"], observed=["stars"],
                        batch_size=batch_size, progress=progress)
    except ValueError as err:
        if "non-finite" in str(err):
            raise ValueError(f"all {n_eos} drawn EoS were invalid (check m_min = {obs_model.m_min})") from None
        raise
    wall = time.perf_counter() - start
    report = GenerationReport(n_eos, sims.n, sims.n_dropped, wall, n_eos / wall, jax.device_count(),
                              jax.process_count())
    return sims, report


@dataclass(frozen=True)
class SimulationSets:
    """The simulations of a study, drawn by one :func:`simulate_eos` call and split in order.

    Attributes:
        train_val: training and validation simulations, the first ``n_train`` for training.
        held_out: simulations used for nothing but calibration.
        generation: the :class:`GenerationReport` of the one call.
    """

    train_val: Simulations
    n_train: int
    held_out: Simulations
    generation: GenerationReport

    @property
    def train(self) -> Simulations:
        return self.train_val.split(self.n_train)[0]

    @property
    def val(self) -> Simulations:
        """Validation simulations (early stopping, validation errors)."""
        return self.train_val.split(self.n_train)[1]


def simulation_sets(key: PRNGKeyArray, n_train: int, n_val: int, n_held_out: int, n_segments: int = 5,
                    obs_model: ObservationModel = ObservationModel(), *, batch_size: int = 256,
                    config: SolverConfig = INFERENCE, progress: bool = True) -> SimulationSets:
    """``n_train + n_val + n_held_out`` EoS drawn in one :func:`simulate_eos` call (one
    compilation); the kept ones split in order and in proportion to the three sizes."""
    sizes = np.array([n_train, n_val, n_held_out])
    if np.any(sizes < 1):
        raise ValueError(f"n_train, n_val, n_held_out = {tuple(sizes.tolist())} must all be >= 1")
    sims, report = simulate_eos(key, int(sizes.sum()), n_segments, obs_model, batch_size=batch_size,
                                config=config, progress=progress)
    a, b = (int(v) for v in np.round(sims.n * np.cumsum(sizes)[:2] / sizes.sum()))
    if not 0 < a < b < sims.n:
        raise ValueError(f"only {sims.n} of {sizes.sum()} EoS were valid: too few to split into "
                         f"{tuple(sizes.tolist())}")
    train_val, held_out = sims.split(b)
    return SimulationSets(train_val, a, held_out, report)


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
                  batch_size: int = 256) -> dict[str, np.ndarray]:
    """:func:`~bayesqcd.models.neutron_star.derived_quantities` for a batch of c_s^2 vectors.

    The vectors are solved in blocks of ``batch_size`` (the last one padded), so that one
    compilation (about 15 s on a CPU core) serves every number of vectors; a few vectors cost
    a whole block of solves, far less than a compilation. Pass ``batch_size=1`` to time a
    single EoS.
    Vectors outside [0, 1] give an invalid EoS and NaN quantities (nothing is clipped).

    Raises:
        ValueError: for ``batch_size < 1``.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size = {batch_size} must be >= 1")
    return map_batches(_compiled_derived(config), jnp.asarray(cs2), int(batch_size))


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

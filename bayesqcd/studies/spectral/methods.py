"""The six reconstruction methods, one function each, registered in :data:`METHODS`.

Every method has the signature ``(mock, config, *, key, prior=None, progress=True)`` and returns
:class:`arviz.InferenceData` with ``posterior["rho"]`` on the grid and ``attrs["wall_time_s"]``
(MAP searches and chain starts included):

* ``nuts`` (:func:`gp_nuts`): NUTS on :func:`bayesqcd.models.spectral.gp_model` (GP prior on
  ``log rho``), the amplitude fixed at its value of maximal evidence
  (:func:`~.gp.gp_empirical_bayes`, empirical Bayes: a free amplitude makes ``(a, z)`` a curved
  ridge), sampled in the data-informed coordinates of
  :func:`bayesqcd.models.spectral.data_informed_model` about the MAP; chains start at
  ``N(0, I)`` draws in those coordinates, halved towards the MAP until inside the support.
* ``nn`` (:func:`nn_nuts`): NUTS on the Bayesian ``rho = w softplus(NN(w))`` of
  :func:`bayesqcd.models.spectral.nn_model`, in weight space, every chain from its own MAP
  (best of ``nn_map_starts`` L-BFGS runs from its own prior draws,
  :func:`bayesqcd.inference.optimize.map_estimate`), because the weights' posterior has many
  modes (permutations and signs of hidden units, and more): the chains are pooled with equal
  weight, and R-hat on ``rho`` measures how much they disagree (R-hat over weights means
  nothing here). (Data-informed coordinates would straighten these chains too, but the
  network's Newton solves and its 321-dimensional least-squares MAP cost minutes per chain on
  a CPU.)
* ``score`` (:func:`score_sampler`): :func:`bayesqcd.inference.score_posterior.sample_posterior`
  with the diffusion prior trained on a family of peaks (:mod:`bayesqcd.spectral.prior`),
  Tweedie guidance with the isotropic ``Sigma_t`` and the ``x_0`` prediction thresholded at 5
  standard deviations (the score-Jacobian covariance overflows with the learned score, and
  without thresholding some draws run away at noise <= 1e-4; see
  :class:`~bayesqcd.inference.score_posterior.TweedieGuidedScore`) or DPS; Euler steps by
  :func:`score_steps` from the noise level (800 down to a relative noise of 1e-4); a draw that
  ends beyond :data:`RUNAWAY` of the thresholding box (``|x| > 0.8 x0_clip`` in the
  prior's standardized coordinates: the x_0 predictions stop at its walls, and draws pinned
  there ran away) is drawn again with 4, then 16 times the steps (``runaway_radius`` of
  ``sample_posterior``).
* ``diffusion-prior`` (:func:`diffusion_prior_nuts`): NUTS on the posterior with the same
  trained score as a :class:`~bayesqcd.diffusion.distribution.DiffusionPrior` (exact
  probability-flow likelihood), ``dp_chains`` chains, each in the data-informed coordinates of
  :func:`~bayesqcd.models.spectral.data_informed_model` about its own start: the best (by the
  exact log posterior) of ``dp_init_draws`` draws of the guided score sampler.
* ``mem`` (:func:`mem_band`): the classic Maximum Entropy Method (:mod:`bayesqcd.spectral.mem`),
  with a band from redrawn data; the MEM maximum is ``constant_data["rho_map"]``.
* ``br`` (:func:`br_band`): the Bayesian Reconstruction of Burnier and Rothkopf
  (:mod:`bayesqcd.spectral.br`: their prior, ``alpha`` integrated out, MAP in the full omega
  space), with a band from redrawn data as MEM's; the MAP is ``constant_data["rho_map"]``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from bayesqcd import spectral as sp
from bayesqcd.diffusion.distribution import DiffusionPrior
from bayesqcd.inference.optimize import map_estimate, run_nuts_chains
from bayesqcd.inference.results import DiagnosticsWarning, from_draws, set_attrs
from bayesqcd.inference.score_posterior import sample_posterior
from bayesqcd.models.spectral import SpectralMLP, data_informed_model, gp_basis, nn_model
from bayesqcd.spectral.br import br
from bayesqcd.spectral.mem import mem

from .config import NEEDS_PRIOR, Config
from .gp import gp_empirical_bayes, gp_prior_scale, gp_rho
from .prior import SpectralPrior, to_default_float

Method = Callable[..., az.InferenceData]
"""``(mock, config, *, key, prior=None, progress=True) -> InferenceData``."""


def _require_prior(prior: SpectralPrior | None, method: str) -> SpectralPrior:
    if prior is None:
        raise ValueError(f"method {method!r} needs a trained prior (train_prior)")
    return prior


def _nuts_from_starts(chains: list, start: float, attrs: dict[str, Any], *, key: jax.Array,
                      **nuts_kwargs: Any) -> az.InferenceData:
    """:func:`~bayesqcd.inference.optimize.run_nuts_chains`, with the time since ``start`` (the
    search for the starts) added to the wall time and ``attrs`` stored on every group."""
    t_init = time.perf_counter() - start
    idata = run_nuts_chains(chains, key=key, **nuts_kwargs)
    set_attrs(idata, {**attrs, "wall_time_s": idata.posterior.attrs["wall_time_s"] + t_init})
    return idata


def _in_support(model: Callable[[], None], k: int, u: jax.Array, max_halvings: int = 30) -> jax.Array:
    """A start ``(eta, t) = (u[:k], u[k:])`` of a :func:`~bayesqcd.models.spectral.data_informed_model`,
    halved towards the expansion point ``0`` until its density is positive.

    Not every ``(eta, t)`` is the image of a parameter: with ``rho > 0`` the data-informed
    residuals ``eta`` cannot take every value once ``t`` has moved the rest of ``rho`` (up to 2.5% of
    ``N(0, I)`` draws at eps 1e-2 .. 1e-5 on the mocks have no solution: the least-squares
    solution runs off to ``|s| ~ 1e3`` prior units); a chain must start inside the support."""
    from numpyro.infer.util import log_density

    density = jax.jit(lambda v: log_density(model, (), {}, {"eta": v[:k], "t": v[k:]})[0])
    for _ in range(int(max_halvings)):
        if np.isfinite(float(density(u))):
            return u
        u = 0.5 * u
    return jnp.zeros_like(u)  # the expansion point itself


def gp_nuts(mock: sp.MockData, config: Config, *, key: jax.Array, prior: SpectralPrior | None = None,
            progress: bool = True) -> az.InferenceData:
    """GP-prior NUTS at the empirical-Bayes amplitude, in data-informed coordinates (module doc)."""
    start = time.perf_counter()
    k_init, k_run = jax.random.split(key)
    basis = gp_basis(mock.omega, config.gp_length_scale, min(config.gp_modes, config.n_omega))
    eb = gp_empirical_bayes(mock.A, mock.cov, mock.omega, basis, mock.data)
    rho_fn = partial(gp_rho(mock.omega, basis), a=eb.amplitude)
    scale = jnp.asarray(gp_prior_scale(basis.shape[1]))
    model, k = data_informed_model(rho_fn, scale, eb.theta, mock.A, mock.cov, mock.data)
    chains = []
    for c in range(config.num_chains):  # one expansion point (the EB MAP), dispersed starts
        u = _in_support(model, k, jax.random.normal(jax.random.fold_in(k_init, c), (eb.theta.shape[0],)))
        chains.append((model, {"eta": u[:k], "t": u[k:]}))
    attrs = {"gp_amplitude": eb.amplitude, "map_chi2_per_point": [eb.chi2_per_point],
             "map_converged": int(eb.converged)}
    return _nuts_from_starts(chains, start, attrs, key=k_run, num_warmup=config.num_warmup,
                             num_samples=config.num_samples, max_tree_depth=config.max_tree_depth,
                             progress=progress)


def nn_nuts(mock: sp.MockData, config: Config, *, key: jax.Array, prior: SpectralPrior | None = None,
            progress: bool = True) -> az.InferenceData:
    """Bayesian-network NUTS, every chain from its own multi-start MAP (module doc)."""
    start = time.perf_counter()
    k_init, k_run = jax.random.split(key)
    net = SpectralMLP(config.nn_width, config.nn_depth, config.omega_max, key=jax.random.key(0))
    args = (mock.A, mock.cov, mock.omega, net)
    kw = {"data": mock.data, "prior_scale": config.nn_prior_scale}
    model = partial(nn_model, *args, **kw)
    chains, attrs = [], {"map_chi2_per_point": []}
    for c in range(config.num_chains):  # the weights' posterior is multimodal
        values = map_estimate(nn_model, *args, key=jax.random.fold_in(k_init, c),
                              n_starts=config.nn_map_starts, max_iter=config.nn_map_iter, **kw).values()
        attrs["map_chi2_per_point"].append(sp.chi2_per_point(values["rho"], mock))
        chains.append((model, {n: v for n, v in values.items() if n != "rho"}))
    return _nuts_from_starts(chains, start, attrs, key=k_run, num_warmup=config.num_warmup,
                             num_samples=config.num_samples, max_tree_depth=config.max_tree_depth,
                             progress=progress)


RUNAWAY: float = 0.8
"""A score draw with an entry beyond this fraction of ``x0_clip`` has run away and is drawn
again with more steps. Measured with 300 draws each (``--quick`` prior, ``x0_clip = 5``): the
draws that ran away by the study's criterion (a peak above 10 times the truth's) had max |x|
5.0-21 on transport at eps 1e-5 and 4.3 on the threshold continuum at 1e-4; the others at most
1.9-3.6 on bw2, transport and thermal, and 4.12 on the threshold continuum (outside the
prior's family of peaks). At 0.9, 0.7-2.3% of the draws were drawn again and one threshold draw
(4.3) stayed run away; at 0.8 none did, with 5% of the threshold draws drawn again."""
SCORE_STEPS: int = 800
"""Euler steps of the score sampler down to a relative noise of :data:`SCORE_STEPS_EPS`."""
SCORE_STEPS_EPS: float = 1e-4
"""Relative noise below which :func:`score_steps` adds steps."""


def relative_noise(mock: sp.MockData) -> float:
    """The data's relative noise: the median of ``sqrt(C_ii) / |D_i|`` (``eps`` of a mock)."""
    sd = np.sqrt(np.diag(np.asarray(mock.cov)))
    return float(np.median(sd / np.maximum(np.abs(np.asarray(mock.data)), 1e-300)))


def score_steps(eps: float) -> int:
    """Euler steps of the reverse SDE for relative noise ``eps``: :data:`SCORE_STEPS` for
    ``eps >= 1e-4``, ``SCORE_STEPS * (1e-4 / eps)^0.6`` below (3200 at 1e-5), rounded up to 100.

    The guided drift stiffens as the likelihood sharpens: at eps = 1e-5 with 800 steps about
    1% of the draws ran away (bw1 and bw2, 300 draws each), with 3200 none did (bw1).
    """
    if not eps > 0:
        raise ValueError(f"eps = {eps} must be > 0")
    n = SCORE_STEPS * max(1.0, SCORE_STEPS_EPS / eps) ** 0.6
    return int(np.ceil(n / 100.0) * 100)


def guided_draws(prior: SpectralPrior, mock: sp.MockData, config: Config, key: jax.Array,
                 n_samples: int, progress: bool = True) -> az.InferenceData:
    """``n_samples`` draws of the score-based posterior sampler with the trained ``prior`` and
    ``config``'s guidance settings (float64), as InferenceData with ``x`` and ``rho``."""
    score, rep = to_default_float(prior.score), to_default_float(prior.representation)
    A = jnp.asarray(mock.A)
    return sample_posterior(score, prior.sde, lambda x: A @ rep.to_rho(x), mock.data, mock.cov,
                            key, shape=(rep.dim,), n_samples=n_samples, guidance=config.guidance,
                            solver=config.solver, covariance=config.covariance, x0_clip=config.x0_clip,
                            n_steps=config.sampler_steps or score_steps(relative_noise(mock)),
                            zeta=config.dps_zeta, rtol=1e-4, atol=1e-4,
                            runaway_radius=None if config.x0_clip is None else RUNAWAY * config.x0_clip,
                            transform=lambda x: {"rho": rep.to_rho(x)}, progress=progress,
                            batch_size=100)


def score_sampler(mock: sp.MockData, config: Config, *, key: jax.Array, prior: SpectralPrior | None = None,
                  progress: bool = True) -> az.InferenceData:
    """``config.score_samples`` draws of the guided score sampler (module doc)."""
    return guided_draws(_require_prior(prior, "score"), mock, config, key, config.score_samples, progress)


def diffusion_prior_nuts(mock: sp.MockData, config: Config, *, key: jax.Array,
                         prior: SpectralPrior | None = None, progress: bool = True) -> az.InferenceData:
    """NUTS with the exact diffusion-prior density, chains from guided draws (module doc).

    The learned density is concentrated near the family's low-dimensional manifold and absurd
    off it (log p ~ -1e21 at the MEM solution's representation, -1e49 at a Gaussian-prior fit):
    the chains start at the best (exact log posterior) of a few draws of the guided score
    sampler, which stay near the manifold, and each chain is sampled in data-informed
    coordinates about its own start."""
    prior = _require_prior(prior, "diffusion-prior")
    score, rep = to_default_float(prior.score), to_default_float(prior.representation)
    dp = DiffusionPrior(score, prior.sde, (rep.dim,), rtol=config.dp_rtol, atol=config.dp_rtol)
    A, Li = jnp.asarray(mock.A), jnp.linalg.inv(jnp.linalg.cholesky(jnp.asarray(mock.cov)))
    start = time.perf_counter()
    k_init, k_run = jax.random.split(key)
    guided = guided_draws(prior, mock, config, k_init, config.dp_init_draws, progress=False)
    xs = jnp.asarray(guided.posterior["x"].values[0])

    def log_post(x):
        r = Li @ (jnp.asarray(mock.data) - A @ rep.to_rho(x))
        return dp.log_prob(x) - 0.5 * jnp.sum(r**2)

    lp = np.asarray(jax.jit(jax.vmap(log_post))(xs))
    order = np.argsort(-np.where(np.isfinite(lp), lp, -np.inf))
    best = [int(order[c % len(order)]) for c in range(config.dp_chains)]
    chains = []
    for i in best:
        model, k = data_informed_model(rep.to_rho, 1.0, xs[i], mock.A, mock.cov, mock.data,
                                       log_prior=dp.log_prob)
        chains.append((model, {"eta": jnp.zeros(k), "t": jnp.zeros(rep.dim - k)}))
    attrs = {"start_log_posterior": [float(lp[i]) for i in best]}
    return _nuts_from_starts(chains, start, attrs, key=k_run, num_warmup=config.dp_warmup,
                             num_samples=config.dp_samples, max_tree_depth=config.dp_tree_depth,
                             target_accept=0.9, progress=progress)


def mem_band(mock: sp.MockData, config: Config, *, key: jax.Array | None = None,
             prior: SpectralPrior | None = None, progress: bool = True) -> az.InferenceData:
    """Classic MEM; the band from ``config.mem_samples`` redrawn data sets (seeded by
    ``config.seed``; ``key`` is unused). ``constant_data["rho_map"]`` is the MEM maximum."""
    start = time.perf_counter()
    res = mem(mock.A, mock.data, mock.cov, mock.weights, n_samples=config.mem_samples, seed=config.seed)
    return _redrawn_band(res, mock, time.perf_counter() - start,
                         {"engine": "mem", "alpha": res.alpha, "chi2": res.chi2, "converged": int(res.converged)})


def br_band(mock: sp.MockData, config: Config, *, key: jax.Array | None = None,
            prior: SpectralPrior | None = None, progress: bool = True) -> az.InferenceData:
    """The BR MAP (``alpha`` integrated out); the band from ``config.mem_samples`` redrawn data
    sets (seeded by ``config.seed``; ``key`` is unused), as :func:`mem_band`.
    ``constant_data["rho_map"]`` is the MAP."""
    start = time.perf_counter()
    res = br(mock.A, mock.data, mock.cov, mock.weights, n_samples=config.mem_samples, seed=config.seed)
    return _redrawn_band(res, mock, time.perf_counter() - start,
                         {"engine": "br", "alpha_mean": res.alpha_mean, "alpha_sd": res.alpha_sd,
                          "alpha_in_range": int(res.alpha_in_range), "chi2": res.chi2,
                          "converged": int(res.converged), "newton_iterations": res.n_iter})


def _redrawn_band(res: Any, mock: sp.MockData, wall: float, attrs: dict[str, Any]) -> az.InferenceData:
    """InferenceData of a MAP method (MEM, BR): the MAPs of the redrawn data sets as draws (the
    MAP itself when there are none), the MAP as ``constant_data["rho_map"]``."""
    samples = res.samples if res.samples.shape[0] else res.rho[None]
    idata = from_draws({"rho": samples[None]}, observed_data={"D": np.asarray(mock.data)},
                       attrs={**attrs, "wall_time_s": wall})
    idata.add_groups(constant_data=xr.Dataset({"rho_map": (("omega",), res.rho)}))
    return idata


METHODS: dict[str, Method] = {
    "nuts": gp_nuts,
    "nn": nn_nuts,
    "score": score_sampler,
    "diffusion-prior": diffusion_prior_nuts,
    "mem": mem_band,
    "br": br_band,
}
"""Method name -> ``(mock, config, *, key, prior=None, progress=True) -> InferenceData``."""


def run_method(method: str, mock: sp.MockData, config: Config, *, key: jax.Array,
               prior: SpectralPrior | None = None, progress: bool = True) -> az.InferenceData:
    """Run ``METHODS[method]`` on ``mock``; convergence warnings are silenced (:func:`.evaluate`
    reports the diagnostics instead). Returns InferenceData with ``posterior["rho"]``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    if method in NEEDS_PRIOR:
        _require_prior(prior, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        return METHODS[method](mock, config, key=key, prior=prior, progress=progress)

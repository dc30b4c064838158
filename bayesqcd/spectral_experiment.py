"""Spectral reconstruction experiments: one mock problem, five methods, one summary.

Methods (every one returns :class:`arviz.InferenceData` with ``posterior["rho"]`` on the grid
and ``attrs["wall_time_s"]``):

* ``nuts``: NUTS on :func:`bayesqcd.models.spectral.gp_model` (GP prior on ``log rho``), the
  amplitude fixed at its value of maximal evidence (:func:`gp_empirical_bayes`, empirical Bayes:
  a free amplitude makes ``(a, z)`` a curved ridge), sampled in the data-informed coordinates
  of :func:`bayesqcd.models.spectral.data_informed_model` about the MAP; chains start at
  ``N(0, I)`` draws in those coordinates; MAP by :func:`least_squares_solver`.
* ``nn``: NUTS on the Bayesian ``rho = w softplus(NN(w))`` of
  :func:`bayesqcd.models.spectral.nn_model`, in weight space, every chain from its own MAP
  (best of ``nn_map_starts`` L-BFGS runs from its own prior draws, :func:`_map_estimate`),
  because the weights' posterior has many modes (permutations and signs of hidden units, and
  more): the chains are pooled with equal weight, and R-hat on ``rho`` measures how much they
  disagree (R-hat over weights means nothing here). (Data-informed coordinates would
  straighten these chains too, but the network's Newton solves and its 321-dimensional
  least-squares MAP cost minutes per chain on a CPU.)
  The MAP searches' time is included in the wall time of both.
* ``score``: :func:`bayesqcd.inference.score_posterior.sample_posterior` with a diffusion prior
  trained on a family of peaks (:mod:`bayesqcd.spectral_prior`), Tweedie guidance with the
  isotropic ``Sigma_t`` and the ``x_0`` prediction thresholded at 5 standard deviations (the
  score-Jacobian covariance overflows with the learned score, and without thresholding
  some draws run away at noise <= 1e-4; see
  :class:`~bayesqcd.inference.score_posterior.TweedieGuidedScore`) or DPS; 800 Euler steps.
* ``diffusion-prior``: NUTS on the posterior of
  :func:`bayesqcd.models.spectral.diffusion_prior_model` (the same trained score as a
  :class:`~bayesqcd.diffusion.distribution.DiffusionPrior`, exact probability-flow
  likelihood), ``dp_chains`` chains, each in the data-informed coordinates of
  :func:`~bayesqcd.models.spectral.data_informed_model` about its own start: the best (by the
  exact log posterior) of ``dp_init_draws`` draws of the guided score sampler (their time is
  included).
* ``mem``: the classic Maximum Entropy Method (:mod:`bayesqcd.spectral_mem`), with a band from
  redrawn data.

Metrics (:func:`bayesqcd.spectral.metrics`): MSE and KL of the point estimate (posterior mean;
the MEM maximum for ``mem``) and coverage of the pointwise 95% band.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from bayesqcd import spectral as sp

METHODS = ("nuts", "nn", "score", "diffusion-prior", "mem")


@dataclass
class SpectralConfig:
    """Settings of one experiment (defaults: Wang-Shi-Zhou's grid and momenta)."""

    mock: str = "bw1"
    eps: float = 1e-3
    n_omega: int = 500
    omega_max: float = 20.0
    n_data: int = 25
    kernel: str = "kallen-lehmann"
    noise: str = "relative"
    correlation: float = 0.0
    seed: int = 0
    # NUTS (GP and NN models)
    num_warmup: int = 300
    num_samples: int = 300
    num_chains: int = 2
    max_tree_depth: int = 10
    gp_length_scale: float = 1.0
    gp_modes: int = 48
    nn_width: int = 16
    nn_depth: int = 2
    nn_prior_scale: float = 2.0
    nn_map_starts: int = 8  # L-BFGS starts per chain (nn)
    nn_map_iter: int = 3000
    # diffusion prior
    prior_k: int = 64
    prior_width: int = 256
    prior_steps: int = 20000
    prior_family: int = 20000
    score_samples: int = 300
    guidance: str = "tweedie"
    solver: str = "sde"
    covariance: str = "isotropic"
    x0_clip: float | None = 5.0
    sampler_steps: int = 800
    dps_zeta: float = 0.5
    dp_warmup: int = 100
    dp_samples: int = 100
    dp_tree_depth: int = 6
    dp_chains: int = 2
    dp_init_draws: int = 16  # guided score draws the chains start from
    dp_rtol: float = 1e-3
    # MEM
    mem_samples: int = 50

    def __post_init__(self) -> None:
        if self.mock not in sp.MOCKS:
            raise ValueError(f"mock must be one of {sp.MOCKS}, got {self.mock!r}")
        if not self.eps > 0:
            raise ValueError(f"eps (noise level) must be > 0, got {self.eps}")
        if self.guidance not in ("tweedie", "dps"):
            raise ValueError(f"guidance must be 'tweedie' or 'dps', got {self.guidance!r}")
        for name in ("num_samples", "num_chains", "score_samples", "dp_samples", "dp_chains", "prior_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def make_problem(cfg: SpectralConfig) -> sp.MockData:
    """The mock problem of ``cfg`` (noise drawn with ``seed``)."""
    return sp.make_mock(jax.random.key(cfg.seed), cfg.mock, eps=cfg.eps, n_omega=cfg.n_omega,
                        omega_max=cfg.omega_max, kernel=cfg.kernel, n_data=cfg.n_data,
                        noise=cfg.noise, correlation=cfg.correlation)


class SpectralPrior(eqx.Module):
    """A trained diffusion prior: score network and representation (VP SDE of Song et al.)."""

    score: Any
    representation: Any
    sde: Any


def train_prior(omega: Any, cfg: SpectralConfig, *, key: jax.Array, checkpoint: str | None = None,
                progress: bool = True) -> tuple[SpectralPrior, dict[str, Any]]:
    """Train the score on ``cfg.prior_family`` spectra of :func:`sample_family` (float32)."""
    from bayesqcd.diffusion.score import train_score
    from bayesqcd.diffusion.sde import VP
    from bayesqcd.nn.score_nets import MLPScore
    from bayesqcd.spectral_prior import fit_representation, sample_family

    k_fam, k_net, k_train = jax.random.split(key, 3)
    family = sample_family(k_fam, cfg.prior_family, omega)
    rep = fit_representation(omega, family, cfg.prior_k)
    x = rep.encode(family).astype(jnp.float32)
    sde = VP()
    net = MLPScore(cfg.prior_k, cfg.prior_width, 3, key=k_net)
    start = time.perf_counter()
    res = train_score(net, sde, x, k_train, n_steps=cfg.prior_steps, batch_size=256,
                      checkpoint=checkpoint, progress=progress, eval_every=500)
    info = {"train_time_s": time.perf_counter() - start, "steps": res.steps,
            "final_val_loss": res.history["val_loss"][-1] if res.history["val_loss"] else None}
    return SpectralPrior(res.model, rep, sde), info


def _f64(tree: Any) -> Any:
    """Cast floating leaves to the default float dtype (float64 under x64)."""
    dt = jnp.zeros(()).dtype
    return jax.tree_util.tree_map(lambda a: a.astype(dt) if eqx.is_inexact_array(a) else a, tree)


@dataclass
class LeastSquaresMAP:
    """A MAP found by :func:`least_squares_solver`.

    Attributes:
        theta: the MAP ``(d,)``.
        chi2_per_point: ``chi^2 / n_data`` of ``rho_fn(theta)``.
        log_evidence: ``log p(D)`` in the Gauss-Newton Laplace approximation, up to a constant
            that depends only on the shapes: ``-|r|^2 / 2 - log det(J^T J) / 2``.
        converged: whether scipy's solver met its tolerance.
    """

    theta: np.ndarray
    chi2_per_point: float
    log_evidence: float
    converged: bool


def least_squares_solver(rho_fn: Any, prior_scale: Any, A: Any, cov: Any, data: Any, *,
                         max_nfev: int = 2000):
    """MAP search for ``rho = rho_fn(theta, *args)``, ``theta ~ N(0, diag(prior_scale^2))``,
    ``D ~ N(A rho, C)``: ``solve(theta_init, *args) -> LeastSquaresMAP``.

    The potential is ``|r|^2 / 2`` with ``r = [L^{-1} (D - A rho); theta / prior_scale]``
    (``C = L L^T``), a nonlinear least-squares problem; scipy's dogleg trust-region
    Gauss-Newton (``dogbox``; ``trf`` needs 10-50 times longer here) with the exact Jacobian
    (``jax.jacfwd``, compiled once for all calls) solves it to convergence. (A generic L-BFGS
    on the potential stops far from the optimum at low noise, where the Hessian spans ``1e10``;
    a Laplace or data-informed expansion about such a point is wrong by orders of magnitude.)"""
    from scipy.optimize import least_squares

    A = jnp.asarray(A, dtype=float)
    Li = jnp.asarray(np.linalg.inv(np.linalg.cholesky(np.asarray(cov, float))))
    G, Dw = Li @ A, Li @ jnp.asarray(data, dtype=float)
    n = int(A.shape[0])

    def residual(x, *args):
        scale = jnp.broadcast_to(jnp.asarray(prior_scale, dtype=x.dtype), x.shape)
        return jnp.concatenate([Dw - G @ rho_fn(scale * x, *args), x])

    r, jac = jax.jit(residual), jax.jit(jax.jacfwd(residual))

    def solve(theta_init: Any, *args: Any) -> LeastSquaresMAP:
        scale = np.broadcast_to(np.asarray(prior_scale, float), np.shape(theta_init))
        res = least_squares(lambda x: np.asarray(r(jnp.asarray(x), *args)),
                            np.asarray(theta_init, float) / scale,
                            jac=lambda x: np.asarray(jac(jnp.asarray(x), *args)), method="dogbox",
                            x_scale="jac", xtol=1e-10, ftol=1e-12, gtol=1e-10, max_nfev=int(max_nfev))
        logdet = np.linalg.slogdet(res.jac.T @ res.jac)[1]
        return LeastSquaresMAP(res.x * scale, float(np.sum(res.fun[:n] ** 2)) / n,
                               -0.5 * float(res.fun @ res.fun) - 0.5 * float(logdet), bool(res.status > 0))

    return solve


@dataclass
class GPEvidence:
    """The GP amplitude of maximal evidence and the MAP at it (:func:`gp_empirical_bayes`).

    Attributes:
        amplitude: the chosen GP amplitude ``a`` (units of ``log rho``).
        theta: the MAP of ``(mu, z)`` at ``amplitude``.
        amplitudes, log_evidence: the scanned grid and ``log p(a | D)`` (up to a constant).
        chi2_per_point: ``chi^2 / n_data`` of the MAP.
        converged: whether every least-squares solve met its tolerance.
    """

    amplitude: float
    theta: np.ndarray
    amplitudes: np.ndarray
    log_evidence: np.ndarray
    chi2_per_point: float
    converged: bool


def gp_rho(omega: Any, basis: Any):
    """``(theta, a) -> rho = w exp(mu + a basis z)`` with ``theta = (mu, z)``
    (:func:`bayesqcd.models.spectral.gp_model` at a fixed amplitude)."""
    omega, basis = jnp.asarray(omega, dtype=float), jnp.asarray(basis, dtype=float)
    return lambda theta, a: omega * jnp.exp(theta[0] + a * (basis @ theta[1:]))


GP_MU_SCALE = 3.0
"""Prior standard deviation of ``mu`` in :func:`bayesqcd.models.spectral.gp_model`."""


def gp_empirical_bayes(A: Any, cov: Any, omega: Any, basis: Any, data: Any, *,
                       amplitudes: Any = None) -> GPEvidence:
    """Empirical Bayes for :func:`bayesqcd.models.spectral.gp_model`: the amplitude ``a`` of
    maximal evidence (as MEM chooses its ``alpha``) and the MAP of ``(mu, z)`` at it.

    The evidence is the Gauss-Newton Laplace approximation of :func:`least_squares_solver` plus
    the ``HalfNormal(2)`` hyperprior, ``log p(a | D) = log p(D | a) - a^2 / 8`` (+ const).
    ``amplitudes`` (default ``geomspace(0.1, 30, 16)``) are scanned upwards, each solve starting
    from the previous MAP with ``a z`` held fixed (continuation: from the flat start the solver
    fails at large ``a``); the scan stops once the evidence has fallen 10 below its maximum."""
    A, w, B, D = (np.asarray(v, float) for v in (A, omega, basis, data))
    amps = np.geomspace(0.1, 30.0, 16) if amplitudes is None else np.sort(np.asarray(amplitudes, float))
    if amps.ndim != 1 or amps.size < 1 or np.any(amps <= 0):
        raise ValueError(f"amplitudes must be a 1-D grid of positive numbers, got {amps}")
    if B.ndim != 2 or B.shape[0] != A.shape[1] or w.shape != (A.shape[1],) or D.shape != (A.shape[0],):
        raise ValueError(f"shapes do not match A {A.shape}: omega {w.shape}, basis {B.shape}, data {D.shape}")
    scale = np.concatenate([[GP_MU_SCALE], np.ones(B.shape[1])])
    solve = least_squares_solver(gp_rho(w, B), scale, A, cov, D)
    g = A @ w
    theta = np.concatenate([[np.log(max(g @ D, 1e-300) / (g @ g))], np.zeros(B.shape[1])])
    sols, logev, prev = [], [], None
    for a in amps:
        if prev is not None:
            theta = np.concatenate([theta[:1], theta[1:] * prev / a])
        sol = solve(theta, a)
        theta, prev = sol.theta, a
        sols.append(sol)
        logev.append(sol.log_evidence - a**2 / 8.0)
        if logev[-1] < max(logev) - 10.0:
            break
    best = int(np.argmax(logev))
    return GPEvidence(float(amps[best]), sols[best].theta, amps[: len(logev)], np.asarray(logev),
                      sols[best].chi2_per_point, all(s.converged for s in sols))


def _map_estimate(model: Any, *args: Any, key: jax.Array, n_starts: int = 4, max_iter: int = 1000,
                  init_strategy: Any = None, **kwargs: Any):
    """Best of ``n_starts`` L-BFGS minimisations (from ``init_strategy``, default NumPyro's
    uniform draws, vectorized) of the model's potential; returns ``(z_map, potential_fn,
    postprocess_fn)`` in NumPyro's unconstrained space."""
    import optax
    from numpyro.infer import init_to_uniform
    from numpyro.infer.util import initialize_model

    infos = [initialize_model(jax.random.fold_in(key, i), model, model_args=args, model_kwargs=kwargs,
                              init_strategy=init_strategy or init_to_uniform)
             for i in range(int(n_starts))]
    pot, post = infos[0].potential_fn, infos[0].postprocess_fn
    z0 = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[inf.param_info.z for inf in infos])
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(pot)

    def run(z):
        def step(carry, _):
            z, state = carry
            value, grad = vg(z, state=state)
            updates, state = opt.update(grad, state, z, value=value, grad=grad, value_fn=pot)
            return (optax.apply_updates(z, updates), state), None

        (z, _), _ = jax.lax.scan(step, (z, opt.init(z)), None, length=int(max_iter))
        return z, pot(z)

    zs, vals = jax.jit(jax.vmap(run))(z0)
    vals = np.where(np.isfinite(np.asarray(vals)), np.asarray(vals), np.inf)
    if not np.isfinite(vals.min()):
        raise RuntimeError("MAP search failed from every start")
    return jax.tree_util.tree_map(lambda a: a[int(np.argmin(vals))], zs), pot, post


def _chains(models_and_inits: list[tuple[Any, dict[str, Any]]], nuts_kw: dict[str, Any]):
    """One NUTS chain per ``(model, initial values)``, run one after the other and joined into
    one InferenceData (``chain`` = list index). Sequential single chains: each may have its own
    model, and the data-informed models' small LAPACK solves never run batched (``vmap``), which
    can deadlock XLA's CPU thread pool (see :mod:`bayesqcd.inference.score_posterior`)."""
    import arviz as az
    from numpyro.infer import init_to_value

    from bayesqcd.inference.nuts import run_nuts

    key = nuts_kw["key"]
    runs = [run_nuts(model, init_strategy=init_to_value(values=init),
                     **{**nuts_kw, "key": jax.random.fold_in(key, c), "num_chains": 1, "check": False})
            for c, (model, init) in enumerate(models_and_inits)]
    idata = az.concat(*runs, dim="chain") if len(runs) > 1 else runs[0]
    wall = float(sum(r.posterior.attrs["wall_time_s"] for r in runs))
    for group in idata.groups():
        getattr(idata, group).attrs.update(runs[0].posterior.attrs)
        getattr(idata, group).attrs.update(num_chains=len(runs), wall_time_s=wall)
    return idata


def _guided_draws(prior: SpectralPrior, mock: sp.MockData, cfg: SpectralConfig, key: jax.Array,
                  n_samples: int, progress: bool):
    """``n_samples`` draws of the score-based posterior sampler with the trained ``prior`` and
    ``cfg``'s guidance settings (float64), as InferenceData with ``x`` and ``rho``."""
    from bayesqcd.inference.score_posterior import sample_posterior

    score, rep = _f64(prior.score), _f64(prior.representation)
    A = jnp.asarray(mock.A)
    return sample_posterior(score, prior.sde, lambda x: A @ rep.to_rho(x), mock.data, mock.cov,
                            key, shape=(rep.dim,), n_samples=n_samples, guidance=cfg.guidance,
                            solver=cfg.solver, covariance=cfg.covariance, x0_clip=cfg.x0_clip,
                            n_steps=cfg.sampler_steps, zeta=cfg.dps_zeta, rtol=1e-4, atol=1e-4,
                            transform=lambda x: {"rho": rep.to_rho(x)}, progress=progress,
                            batch_size=100)


def run_method(method: str, mock: sp.MockData, cfg: SpectralConfig, *, key: jax.Array,
               prior: SpectralPrior | None = None, progress: bool = True):
    """Run one method on ``mock``; returns InferenceData with ``posterior["rho"]``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method in ("score", "diffusion-prior") and prior is None:
        raise ValueError(f"method {method!r} needs a trained prior (train_prior)")
    import warnings

    from bayesqcd.inference.results import DiagnosticsWarning, from_draws, set_attrs

    nuts_kw = dict(key=key, num_warmup=cfg.num_warmup, num_samples=cfg.num_samples,
                   num_chains=cfg.num_chains, progress=progress, max_tree_depth=cfg.max_tree_depth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # diagnostics are reported instead
        if method in ("nuts", "nn"):
            from bayesqcd.models.spectral import SpectralMLP, data_informed_model, gp_basis

            start = time.perf_counter()
            k_init, k_run = jax.random.split(key)
            if method == "nuts":  # one expansion point (the EB MAP), dispersed starts
                basis = gp_basis(mock.omega, cfg.gp_length_scale, min(cfg.gp_modes, cfg.n_omega))
                eb = gp_empirical_bayes(mock.A, mock.cov, mock.omega, basis, mock.data)
                rho_fn = partial(gp_rho(mock.omega, basis), a=eb.amplitude)
                scale = jnp.concatenate([jnp.array([GP_MU_SCALE]), jnp.ones(basis.shape[1])])
                model, k = data_informed_model(rho_fn, scale, eb.theta, mock.A, mock.cov, mock.data)
                attrs = {"gp_amplitude": eb.amplitude, "map_chi2_per_point": [eb.chi2_per_point],
                         "map_converged": int(eb.converged)}
                chains = []
                for c in range(cfg.num_chains):
                    u = jax.random.normal(jax.random.fold_in(k_init, c), (eb.theta.shape[0],))
                    chains.append((model, {"eta": u[:k], "t": u[k:]}))
            else:  # every chain from its own MAP (the weights' posterior is multimodal)
                from bayesqcd.models.spectral import nn_model

                net = SpectralMLP(cfg.nn_width, cfg.nn_depth, cfg.omega_max, key=jax.random.key(0))
                args = (mock.A, mock.cov, mock.omega, net)
                kw = {"data": mock.data, "prior_scale": cfg.nn_prior_scale}
                model = partial(nn_model, *args, **kw)
                chains, attrs = [], {"map_chi2_per_point": []}
                for c in range(cfg.num_chains):
                    z, _, post = _map_estimate(nn_model, *args, key=jax.random.fold_in(k_init, c),
                                               n_starts=cfg.nn_map_starts, max_iter=cfg.nn_map_iter, **kw)
                    values = post(z)
                    attrs["map_chi2_per_point"].append(sp.chi2_per_point(values["rho"], mock))
                    chains.append((model, {n: v for n, v in values.items() if n != "rho"}))
            t_init = time.perf_counter() - start
            idata = _chains(chains, {**nuts_kw, "key": k_run})
            attrs["wall_time_s"] = idata.posterior.attrs["wall_time_s"] + t_init
            set_attrs(idata, attrs)
            return idata
        if method == "score":
            return _guided_draws(prior, mock, cfg, key, cfg.score_samples, progress)
        if method == "diffusion-prior":
            from bayesqcd.diffusion.distribution import DiffusionPrior
            from bayesqcd.models.spectral import data_informed_model

            score, rep = _f64(prior.score), _f64(prior.representation)
            dp = DiffusionPrior(score, prior.sde, (rep.dim,), rtol=cfg.dp_rtol, atol=cfg.dp_rtol)
            A, Li = jnp.asarray(mock.A), jnp.linalg.inv(jnp.linalg.cholesky(jnp.asarray(mock.cov)))
            # The learned density is concentrated near the family's low-dimensional manifold and
            # absurd off it (log p ~ -1e21 at the MEM solution's representation, -1e49 at a
            # Gaussian-prior fit): the chains start at the best (exact log posterior) of a few
            # draws of the guided score sampler, which stay near the manifold, and each chain is
            # sampled in data-informed coordinates about its own start.
            start = time.perf_counter()
            k_init, k_run = jax.random.split(key)
            guided = _guided_draws(prior, mock, cfg, k_init, cfg.dp_init_draws, progress=False)
            xs = jnp.asarray(guided.posterior["x"].values[0])

            def log_post(x):
                r = Li @ (jnp.asarray(mock.data) - A @ rep.to_rho(x))
                return dp.log_prob(x) - 0.5 * jnp.sum(r**2)

            lp = np.asarray(jax.jit(jax.vmap(log_post))(xs))
            order = np.argsort(-np.where(np.isfinite(lp), lp, -np.inf))
            chains = []
            for c in range(cfg.dp_chains):
                model, k = data_informed_model(rep.to_rho, 1.0, xs[order[c % len(order)]], mock.A, mock.cov,
                                               mock.data, log_prior=dp.log_prob)
                chains.append((model, {"eta": jnp.zeros(k), "t": jnp.zeros(rep.dim - k)}))
            t_init = time.perf_counter() - start
            idata = _chains(chains, dict(key=k_run, num_warmup=cfg.dp_warmup, num_samples=cfg.dp_samples,
                                         progress=progress, max_tree_depth=cfg.dp_tree_depth,
                                         target_accept=0.9))
            set_attrs(idata, {"wall_time_s": idata.posterior.attrs["wall_time_s"] + t_init,
                              "start_log_posterior": [float(lp[order[c % len(order)]])
                                                      for c in range(cfg.dp_chains)]})
            return idata
    # mem
    from bayesqcd.spectral_mem import mem

    start = time.perf_counter()
    res = mem(mock.A, mock.data, mock.cov, mock.weights, n_samples=cfg.mem_samples, seed=cfg.seed)
    wall = time.perf_counter() - start
    samples = res.samples if res.samples.shape[0] else res.rho[None]
    idata = from_draws({"rho": samples[None]}, observed_data={"D": np.asarray(mock.data)},
                       attrs={"engine": "mem", "wall_time_s": wall, "alpha": res.alpha,
                              "chi2": res.chi2, "converged": int(res.converged)})
    import xarray as xr

    idata.add_groups(constant_data=xr.Dataset({"rho_map": (("omega",), res.rho)}))  # the MEM solution
    return idata


def evaluate(idata: Any, mock: sp.MockData) -> dict[str, Any]:
    """Metrics of ``posterior["rho"]`` against the truth, wall time and (MCMC) diagnostics.

    The point estimate is the posterior mean, or ``constant_data["rho_map"]`` when present
    (MEM's maximum)."""
    rho = np.asarray(idata.posterior["rho"].values).reshape(-1, mock.rho.shape[0])
    out = sp.metrics(rho, mock)
    if "constant_data" in idata.groups() and "rho_map" in idata.constant_data:
        point = np.asarray(idata.constant_data["rho_map"].values).reshape(-1)
        out["mse"] = sp.mse(point, mock.rho)
        out["kl"] = sp.kl_divergence(mock.rho, point, mock.weights)
        out["chi2_per_point"] = sp.chi2_per_point(point, mock)
    out["wall_time_s"] = float(idata.posterior.attrs.get("wall_time_s", np.nan))
    out["n_draws"] = int(rho.shape[0])
    out["positive"] = bool(np.all(rho > 0))
    # draws that ran away (peak above 10x the truth's maximum): reported, never dropped
    out["runaway_fraction"] = float(np.mean(rho.max(axis=1) > 10 * float(np.max(mock.rho))))
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        from bayesqcd.inference.results import diagnostics

        names = [n for n in idata.posterior.data_vars if n != "rho"]
        d, d_rho = diagnostics(idata, names), diagnostics(idata, ["rho"])
        out.update(divergences=d["divergences"], max_rhat=d["max_rhat"], min_ess_bulk=d["min_ess_bulk"],
                   max_rhat_rho=d_rho["max_rhat"], min_ess_bulk_rho=d_rho["min_ess_bulk"])
    return out


def run_one(method: str, mock: sp.MockData, cfg: SpectralConfig, *, key: jax.Array,
            prior: SpectralPrior | None = None, progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """:func:`run_method` then :func:`evaluate`; a failure is reported, not raised."""
    try:
        idata = run_method(method, mock, cfg, key=key, prior=prior, progress=progress)
    except (FloatingPointError, np.linalg.LinAlgError, RuntimeError) as err:
        return None, {"failed": f"{type(err).__name__}: {err}"}
    return idata, evaluate(idata, mock)


def plot_bands(results: dict[str, Any], mock: sp.MockData, path: str | Path, title: str = "") -> None:
    """Posterior mean and 95% band of each method over the truth (PNG, written atomically)."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesqcd.report import credible_band

    omega = np.asarray(mock.omega)
    names = [m for m, r in results.items() if r is not None]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.2 * max(len(names), 1), 3.0),
                             sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        rho = np.asarray(results[name].posterior["rho"].values).reshape(-1, omega.shape[0])
        lo, hi = credible_band(rho, levels=(0.95,))[0.95]
        ax.fill_between(omega, lo, hi, alpha=0.35, label="95% band")
        ax.plot(omega, rho.mean(0), lw=1.2, label="mean")
        ax.plot(omega, np.asarray(mock.rho), "k--", lw=1.0, label="truth")
        ax.set_title(name, fontsize="small")
        ax.set_xlim(0, min(10.0, omega[-1]))
        ax.set_xlabel(r"$\omega$")
    axes[0][0].set_ylabel(r"$\rho(\omega)$")
    axes[0][0].legend(fontsize="x-small")
    if title:
        fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)

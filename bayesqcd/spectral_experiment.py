"""Spectral reconstruction experiments: one mock problem, five methods, one summary.

Methods (every one returns :class:`arviz.InferenceData` with ``posterior["rho"]`` on the grid
and ``attrs["wall_time_s"]``):

* ``nuts``: NUTS on :func:`bayesqcd.models.spectral.gp_model` (GP prior on ``log rho``).
* ``nn``: NUTS on :func:`bayesqcd.models.spectral.nn_model` (Bayesian ``rho = w NN(w)``).
  Both start at a MAP found by L-BFGS (:func:`map_init`). For the GP, by default
  (``whiten=True``), the amplitude is then fixed at its joint-MAP value (empirical Bayes: the
  product ``a z`` of a free amplitude is a curved ridge on which the chains stall) and NUTS runs
  in the coordinates of the Laplace approximation at the MAP (:func:`laplace_whitened`; the
  time of both MAP searches is included in the wall time).
* ``score``: :func:`bayesqcd.inference.score_posterior.sample_posterior` with a diffusion prior
  trained on a family of peaks (:mod:`bayesqcd.spectral_prior`), Tweedie guidance with the
  isotropic ``Sigma_t`` and the ``x_0`` prediction thresholded at 5 standard deviations (the
  score-Jacobian covariance overflows with the learned score, and without thresholding
  some draws run away at noise <= 1e-4; see
  :class:`~bayesqcd.inference.score_posterior.TweedieGuidedScore`) or DPS; 800 Euler steps.
* ``diffusion-prior``: NUTS on :func:`bayesqcd.models.spectral.diffusion_prior_model` with the
  same trained score as a :class:`~bayesqcd.diffusion.distribution.DiffusionPrior` (exact
  probability-flow likelihood), started at the representation of the MEM solution (its
  time is included).
* ``mem``: the classic Maximum Entropy Method (:mod:`bayesqcd.spectral_mem`), with a band from
  redrawn data.

Metrics (:func:`bayesqcd.spectral.metrics`): MSE and KL of the point estimate (posterior mean;
the MEM maximum for ``mem``) and coverage of the pointwise 95% band.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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
    whiten: bool = True  # nuts (GP): amplitude at its MAP, Laplace coordinates (laplace_whitened)
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
        for name in ("num_samples", "num_chains", "score_samples", "dp_samples", "prior_k"):
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


def map_init(model: Any, *args: Any, key: jax.Array, n_starts: int = 4, max_iter: int = 1000,
             **kwargs: Any):
    """A NumPyro ``init_to_value`` strategy at the best MAP of ``n_starts`` L-BFGS runs (from
    prior draws, vectorized) on the model's potential: at low noise the posterior is a narrow
    ridge that NUTS warm-up rarely finds from the prior."""
    from numpyro.infer import init_to_value

    z, _, post = _map_estimate(model, *args, key=key, n_starts=n_starts, max_iter=max_iter, **kwargs)
    return init_to_value(values={k: v for k, v in post(z).items() if k != "rho"})


def laplace_whitened(model: Any, *args: Any, key: jax.Array, n_starts: int = 4, max_iter: int = 1000,
                     init_strategy: Any = None, **kwargs: Any):
    """``model`` (with its arguments bound) rewritten in the coordinates of its Laplace
    approximation: ``theta = theta_MAP + V diag(lambda)^{-1/2} u`` with ``H = V diag(lambda) V^T``
    the Hessian of the potential (negative log posterior) at the MAP, in NumPyro's unconstrained
    space (eigenvalues floored at ``1e-12 max(lambda)``). ``u`` has a flat base measure and the
    potential is added as a factor, so the posterior is unchanged (the map is affine); in ``u``
    it is ``N(0, I)`` to second order. At low noise the data fix some directions ``1e4``-``1e8``
    times more tightly than others; NUTS's warm-up cannot learn such a mass matrix from a few
    hundred draws, so the chains stall (R-hat 2-3). Returns ``(whitened_model, init_strategy)``;
    the whitened model records every site of ``model`` (and ``rho``) as a deterministic."""
    import numpyro
    import numpyro.distributions as dist
    from jax.flatten_util import ravel_pytree
    from numpyro.distributions import constraints
    from numpyro.infer import init_to_value

    z, pot, post = _map_estimate(model, *args, key=key, n_starts=n_starts, max_iter=max_iter,
                                 init_strategy=init_strategy, **kwargs)
    flat, unravel = ravel_pytree(z)
    H = np.asarray(jax.hessian(lambda f: pot(unravel(f)))(flat))
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    lam = np.maximum(lam, 1e-12 * lam.max())
    W = jnp.asarray(V / np.sqrt(lam), dtype=flat.dtype)
    d = int(flat.shape[0])

    def whitened() -> None:
        u = numpyro.sample("u", dist.ImproperUniform(constraints.real_vector, (), (d,)))
        theta = unravel(flat + W @ u)
        with numpyro.handlers.block():  # the inner model's sites stay out of this trace
            log_post, values = -pot(theta), post(theta)
        numpyro.factor("log_posterior", log_post)
        for name, value in values.items():
            numpyro.deterministic(name, value)

    return whitened, init_to_value(values={"u": jnp.zeros(d, flat.dtype)})


def run_method(method: str, mock: sp.MockData, cfg: SpectralConfig, *, key: jax.Array,
               prior: SpectralPrior | None = None, progress: bool = True):
    """Run one method on ``mock``; returns InferenceData with ``posterior["rho"]``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method in ("score", "diffusion-prior") and prior is None:
        raise ValueError(f"method {method!r} needs a trained prior (train_prior)")
    import warnings

    from bayesqcd.inference.results import DiagnosticsWarning, from_draws

    nuts_kw = dict(key=key, num_warmup=cfg.num_warmup, num_samples=cfg.num_samples,
                   num_chains=cfg.num_chains, progress=progress, max_tree_depth=cfg.max_tree_depth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # diagnostics are reported instead
        if method in ("nuts", "nn"):
            from bayesqcd.inference.nuts import run_nuts
            from bayesqcd.models.spectral import SpectralMLP, gp_basis, gp_model, nn_model

            if method == "nuts":
                basis = gp_basis(mock.omega, cfg.gp_length_scale, min(cfg.gp_modes, cfg.n_omega))
                model, args, kw = gp_model, (mock.A, mock.cov, mock.omega, basis), {"data": mock.data}
            else:
                net = SpectralMLP(cfg.nn_width, cfg.nn_depth, cfg.omega_max, key=jax.random.key(0))
                model, args = nn_model, (mock.A, mock.cov, mock.omega, net)
                kw = {"data": mock.data, "prior_scale": cfg.nn_prior_scale}
            if method == "nn" or not cfg.whiten:  # from the MAP; dense mass matrix for the GP
                init = map_init(model, *args, key=key, **kw)
                return run_nuts(model, *args, dense_mass=method == "nuts", init_strategy=init, **kw,
                                **nuts_kw)
            start = time.perf_counter()
            from numpyro.infer import init_to_value

            z, _, post = _map_estimate(model, *args, key=key, **kw)  # empirical Bayes: the GP
            values = post(z)                                        # amplitude at its joint MAP
            kw["amplitude"] = float(values["amplitude"])
            whitened, init = laplace_whitened(model, *args, key=key, n_starts=1, **kw,
                                              init_strategy=init_to_value(values={k: values[k] for k in ("mu", "z")}))
            t_init = time.perf_counter() - start
            idata = run_nuts(whitened, init_strategy=init, **nuts_kw)
            for group in idata.groups():
                getattr(idata, group).attrs["wall_time_s"] += t_init
            return idata
        if method == "score":
            from bayesqcd.inference.score_posterior import sample_posterior

            score, rep = _f64(prior.score), _f64(prior.representation)
            A = jnp.asarray(mock.A)
            return sample_posterior(score, prior.sde, lambda x: A @ rep.to_rho(x), mock.data, mock.cov,
                                    key, shape=(rep.dim,), n_samples=cfg.score_samples,
                                    guidance=cfg.guidance, solver=cfg.solver,
                                    covariance=cfg.covariance, x0_clip=cfg.x0_clip,
                                    n_steps=cfg.sampler_steps, zeta=cfg.dps_zeta, rtol=1e-4, atol=1e-4,
                                    transform=lambda x: {"rho": rep.to_rho(x)}, progress=progress,
                                    batch_size=100)
        if method == "diffusion-prior":
            from bayesqcd.diffusion.distribution import DiffusionPrior
            from bayesqcd.inference.nuts import run_nuts
            from bayesqcd.models.spectral import diffusion_prior_model
            from numpyro.infer import init_to_value

            from bayesqcd.spectral_mem import mem

            score, rep = _f64(prior.score), _f64(prior.representation)
            dp = DiffusionPrior(score, prior.sde, (rep.dim,), rtol=cfg.dp_rtol, atol=cfg.dp_rtol)
            # start at the representation of the MEM solution: it already fits the data
            start = time.perf_counter()
            x0 = rep.encode(jnp.asarray(mem(mock.A, mock.data, mock.cov, mock.weights).rho))
            t_init = time.perf_counter() - start
            idata = run_nuts(diffusion_prior_model, mock.A, mock.cov, dp, rep, data=mock.data,
                             key=key, num_warmup=cfg.dp_warmup, num_samples=cfg.dp_samples,
                             num_chains=1, progress=progress, max_tree_depth=cfg.dp_tree_depth,
                             target_accept=0.9, init_strategy=init_to_value(values={"x": x0}))
            for group in idata.groups():
                getattr(idata, group).attrs["wall_time_s"] += t_init
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
        d = diagnostics(idata, names)
        out.update(divergences=d["divergences"], max_rhat=d["max_rhat"], min_ess_bulk=d["min_ess_bulk"])
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

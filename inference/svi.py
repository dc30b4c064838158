"""Stochastic variational inference for any NumPyro model, returning :class:`arviz.InferenceData`.

Guides (NumPyro autoguides, fitted by maximizing the ELBO with Adam):

* ``"diag"``: mean-field Gaussian in the unconstrained space;
* ``"fullrank"``: Gaussian with a full covariance (captures linear correlations);
* ``"flow"``: block neural autoregressive flow (De Cao et al. 2019), for curved,
  non-Gaussian posteriors.

The returned posterior holds draws from the fitted guide (one chain) together with the
model's deterministic sites; ``sample_stats.log_weight`` holds log p(x, z) - log q(z) of
each draw; the group ``elbo`` holds the loss (negative ELBO) trace.
``attrs["pareto_k"]`` is the Pareto-smoothed importance-sampling shape of the weights
p(x, z) / q(z) over the draws (Yao et al. 2018, ICML): below 0.7 the guide is a usable
approximation of the posterior; above it, trust NUTS instead.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import arviz as az
import jax
import numpy as np
import optax
import xarray as xr
from jax.typing import ArrayLike
from numpyro import handlers
from numpyro.infer import SVI, Predictive, Trace_ELBO, init_to_median
from numpyro.infer.autoguide import AutoBNAFNormal, AutoDiagonalNormal, AutoMultivariateNormal
from numpyro.infer.util import log_density

from .results import DiagnosticsWarning, add_posterior_predictive, from_draws, set_attrs

GUIDES: dict[str, Callable[..., Any]] = {
    "diag": lambda m: AutoDiagonalNormal(m, init_loc_fn=init_to_median(num_samples=15)),
    "fullrank": lambda m: AutoMultivariateNormal(m, init_loc_fn=init_to_median(num_samples=15)),
    "flow": lambda m: AutoBNAFNormal(
        m, num_flows=1, hidden_factors=[8, 8], init_loc_fn=init_to_median(num_samples=15)
    ),
}
"""Guide name -> constructor taking the model."""

PARETO_K_MAX = 0.7


def _sites(model: Callable, args: tuple, kwargs: dict) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """(latent sample sites, deterministic sites, observed values) of ``model``."""
    tr = handlers.trace(handlers.seed(model, 0)).get_trace(*args, **kwargs)
    latent = [n for n, s in tr.items() if s["type"] == "sample" and not s["is_observed"]]
    determ = [n for n, s in tr.items() if s["type"] == "deterministic"]
    obs = {n: np.asarray(s["value"]) for n, s in tr.items() if s["type"] == "sample" and s["is_observed"]}
    return latent, determ, obs


def run_svi(
    model: Callable[..., Any],
    *model_args: Any,
    key: ArrayLike,
    guide: str = "fullrank",
    num_steps: int = 3000,
    learning_rate: float = 1e-2,
    num_particles: int = 1,
    num_draws: int = 2000,
    progress: bool = True,
    check: bool = True,
    posterior_predictive: bool = False,
    **model_kwargs: Any,
) -> az.InferenceData:
    """Fit a variational guide to the posterior of ``model`` and draw from it.

    Args:
        model: a NumPyro model; ``model_args`` / ``model_kwargs`` are passed to it.
        key: a ``jax.random`` key.
        guide: one of :data:`GUIDES` (``"diag"``, ``"fullrank"``, ``"flow"``).
        num_steps: Adam steps on the ELBO.
        learning_rate: Adam step size (decayed by a cosine schedule to 1% of it; gradients
            clipped to global norm 10).
        num_particles: Monte-Carlo samples per ELBO gradient.
        num_draws: posterior draws returned from the fitted guide.
        progress: show a progress bar.
        check: warn with :class:`DiagnosticsWarning` when the Pareto k of the importance
            weights exceeds 0.7 or the final ELBO is not finite.
        posterior_predictive: also draw the observed sites given each posterior draw
            (group ``posterior_predictive``).

    Returns:
        InferenceData with ``posterior`` (latent and deterministic sites, one chain),
        ``sample_stats`` (``log_weight``), ``observed_data``, and the ``elbo`` group (``loss`` per step); ``attrs`` hold the
        guide, ``wall_time_s``, ``final_loss`` and ``pareto_k``.
    """
    if guide not in GUIDES:
        raise ValueError(f"guide = {guide!r}; choose one of {sorted(GUIDES)}")
    for name, value in (("num_steps", num_steps), ("num_draws", num_draws),
                        ("num_particles", num_particles)):
        if int(value) < 1:
            raise ValueError(f"{name} = {value} must be >= 1")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate = {learning_rate} must be > 0")
    k_fit, k_draw = jax.random.split(key)
    auto = GUIDES[guide](model)
    schedule = optax.cosine_decay_schedule(learning_rate, int(num_steps), alpha=0.01)
    svi = SVI(model, auto, optax.chain(optax.clip_by_global_norm(10.0), optax.adam(schedule)), Trace_ELBO(num_particles=int(num_particles)))
    start = time.perf_counter()
    result = svi.run(k_fit, int(num_steps), *model_args, progress_bar=progress, **model_kwargs)
    latent, determ, obs = _sites(model, model_args, model_kwargs)
    log_w, z = _guide_draws(model, auto, result.params, k_draw, int(num_draws), latent, model_args, model_kwargs)
    if determ:
        z = {**z, **Predictive(model, posterior_samples=z, return_sites=determ)(k_draw, *model_args, **model_kwargs)}
    z = jax.block_until_ready(z)
    wall = time.perf_counter() - start
    k_hat = _pareto_k(log_w)
    losses = np.asarray(result.losses)
    idata = from_draws(
        {n: np.asarray(v)[None] for n, v in z.items()},
        sample_stats={"log_weight": np.asarray(log_w)[None]},
        observed_data=obs,
    )
    idata.add_groups({"elbo": xr.Dataset({"loss": ("step", losses)})}, warn_on_custom_groups=False)
    if posterior_predictive:
        add_posterior_predictive(idata, model, jax.random.fold_in(key, 1), model_args, model_kwargs)
    set_attrs(
        idata,
        {
            "engine": "svi",
            "guide": guide,
            "num_steps": int(num_steps),
            "learning_rate": float(learning_rate),
            "wall_time_s": float(wall),
            "final_loss": float(np.mean(losses[-max(1, len(losses) // 20):])),
            "pareto_k": float(k_hat),
        },
    )
    if check:
        if not np.isfinite(losses[-1]):
            warnings.warn(f"final ELBO loss is {losses[-1]}: the fit failed", DiagnosticsWarning, stacklevel=2)
        if not k_hat <= PARETO_K_MAX:
            warnings.warn(
                f"Pareto k = {k_hat:.2f} > {PARETO_K_MAX}: the {guide!r} guide is a poor "
                "approximation of this posterior; use a richer guide or NUTS",
                DiagnosticsWarning,
                stacklevel=2,
            )
    return idata


def _guide_draws(model, guide, params, key, n, latent, args, kwargs):
    """``n`` draws z ~ q from the fitted guide and their log weights log p(x, z) - log q(z)."""

    def one(k: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        lq, tr = log_density(handlers.seed(guide, k), args, kwargs, params)
        z = {name: tr[name]["value"] for name in latent}
        lp, _ = log_density(model, args, kwargs, z)
        return lp - lq, z

    return jax.lax.map(one, jax.random.split(key, n), batch_size=256)


def _pareto_k(log_w: jax.Array) -> float:
    """Pareto-smoothed importance-sampling shape k of the log weights (inf if none is finite)."""
    lw = np.asarray(log_w, dtype=float)
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    if not np.isfinite(lw).any():
        return float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, k = az.psislw(lw - lw[np.isfinite(lw)].max())
    return float(k)

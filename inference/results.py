"""Posterior containers and diagnostics shared by every engine.

Every engine of :mod:`bayesqcd.inference` returns an :class:`arviz.InferenceData`. Engines
that do not run NumPyro MCMC (variational guides, score-based samplers, flows, ensembles)
build it with :func:`from_draws`; :func:`diagnostics` and :func:`check_diagnostics` read
convergence measures back from any of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import arviz as az
import jax
import numpy as np
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer import Predictive, log_likelihood
from numpyro.primitives import Messenger

#: Default thresholds of :func:`check_diagnostics` (Vehtari et al. 2021, Bayesian Analysis 16, 667).
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100


class DiagnosticsWarning(UserWarning):
    """A posterior failed a convergence check (divergences, R-hat or effective sample size)."""


def from_draws(
    posterior: Mapping[str, Any],
    *,
    sample_stats: Mapping[str, Any] | None = None,
    observed_data: Mapping[str, Any] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    coords: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> az.InferenceData:
    """InferenceData from arrays of draws shaped ``(chain, draw, ...)``.

    Args:
        posterior: variable name -> array ``(chain, draw, *shape)``; use ``chain = 1`` for
            engines without chains (guides, ensembles, independent samplers).
        sample_stats: per-draw statistics, same leading ``(chain, draw)`` shape.
        observed_data: variable name -> observed array.
        dims, coords: ArviZ dimension names and coordinates of the non-sample axes.
        attrs: metadata stored on every group (engine name, wall time, settings).

    Raises:
        ValueError: when a posterior array has fewer than two axes or the variables
            disagree on ``(chain, draw)``.
    """
    post = {k: np.asarray(v) for k, v in posterior.items()}
    if not post:
        raise ValueError("posterior must contain at least one variable")
    shapes = {k: v.shape[:2] for k, v in post.items()}
    for name, arr in post.items():
        if arr.ndim < 2:
            raise ValueError(
                f"posterior[{name!r}] has shape {arr.shape}; expected (chain, draw, ...) with 2+ axes"
            )
    if len(set(shapes.values())) != 1:
        raise ValueError(f"posterior variables disagree on (chain, draw): {shapes}")
    groups: dict[str, Any] = {"posterior": post}
    if sample_stats:
        groups["sample_stats"] = {k: np.asarray(v) for k, v in sample_stats.items()}
    if observed_data:
        groups["observed_data"] = {k: np.asarray(v) for k, v in observed_data.items()}
    idata = az.from_dict(**groups, dims=dict(dims or {}), coords=dict(coords or {}))
    if attrs:
        set_attrs(idata, attrs)
    return idata


def set_attrs(idata: az.InferenceData, attrs: Mapping[str, Any]) -> None:
    """Store ``attrs`` (JSON-like metadata) on every group of ``idata``."""
    for group in idata.groups():
        getattr(idata, group).attrs.update(dict(attrs))


def diagnostics(idata: az.InferenceData, var_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Convergence summary of the posterior group.

    Returns a dict with ``max_rhat`` (rank-normalized split R-hat; NaN with one chain),
    ``min_ess_bulk`` and ``min_ess_tail`` over every scalar component of ``var_names``
    (default: every posterior variable), ``divergences`` (count, 0 when the engine has
    none), ``divergent_fraction``, ``n_chains`` and ``n_draws``.

    Results whose ``attrs["draws_independent"]`` is set (ensembles, regression, NPE: their
    chains are ensemble members, not Markov chains) get no R-hat or ESS (NaN), so
    :func:`check_diagnostics` applies no mixing checks to them; ``draws_independent`` is
    reported.
    """
    post = idata.posterior
    names = list(var_names) if var_names is not None else list(post.data_vars)
    n_chains, n_draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    independent = bool(post.attrs.get("draws_independent", 0))
    out: dict[str, Any] = {"n_chains": n_chains, "n_draws": n_draws, "draws_independent": int(independent)}
    finite = [] if independent else [n for n in names if np.all(np.isfinite(post[n].values))]
    if n_chains > 1 and finite:
        rhat = az.rhat(post, var_names=finite)
        out["max_rhat"] = float(max(np.nanmax(rhat[n].values) for n in finite))
    else:
        out["max_rhat"] = float("nan")
    if finite and n_draws >= 4:
        bulk = az.ess(post, var_names=finite, method="bulk")
        tail = az.ess(post, var_names=finite, method="tail")
        out["min_ess_bulk"] = float(min(np.nanmin(bulk[n].values) for n in finite))
        out["min_ess_tail"] = float(min(np.nanmin(tail[n].values) for n in finite))
    else:
        out["min_ess_bulk"] = out["min_ess_tail"] = float("nan")
    div = 0
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    out["divergences"] = div
    out["divergent_fraction"] = div / max(n_chains * n_draws, 1)
    return out


def check_diagnostics(
    idata: az.InferenceData,
    var_names: Sequence[str] | None = None,
    *,
    rhat_max: float = RHAT_MAX,
    ess_per_chain_min: float = ESS_PER_CHAIN_MIN,
) -> dict[str, Any]:
    """:func:`diagnostics`, warning with :class:`DiagnosticsWarning` for each failed check.

    Checks: no divergent transitions; R-hat <= ``rhat_max``; bulk and tail ESS >=
    ``ess_per_chain_min`` times the number of chains. Returns the diagnostics dict.
    """
    d = diagnostics(idata, var_names)
    if d["divergences"]:
        warnings.warn(
            f"{d['divergences']} divergent transitions ({100 * d['divergent_fraction']:.2f}% of draws): "
            "the posterior may be biased; raise target_accept or reparametrize",
            DiagnosticsWarning,
            stacklevel=2,
        )
    if np.isfinite(d["max_rhat"]) and d["max_rhat"] > rhat_max:
        warnings.warn(
            f"max R-hat = {d['max_rhat']:.4f} > {rhat_max}: chains have not mixed; run longer",
            DiagnosticsWarning,
            stacklevel=2,
        )
    ess_min = ess_per_chain_min * d["n_chains"]
    low = min(d["min_ess_bulk"], d["min_ess_tail"])
    if np.isfinite(low) and low < ess_min:
        warnings.warn(
            f"min effective sample size = {low:.0f} < {ess_min:.0f} ({ess_per_chain_min:.0f} per chain): "
            "intervals are unreliable; draw more samples",
            DiagnosticsWarning,
            stacklevel=2,
        )
    return d


def _observed_sites(model: Callable[..., Any], values: Mapping[str, Any], model_args: Sequence[Any],
                    model_kwargs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Observed sample sites of ``model`` (factors excluded) with the latent sites set to ``values``.

    The model is traced abstractly (``jax.eval_shape``: no numerics, no compilation of what it
    calls); only an observed value computed inside the model needs the model run for real."""
    def observed() -> dict[str, Any]:
        tr = handlers.trace(handlers.seed(handlers.substitute(model, data=dict(values)), 0)).get_trace(
            *model_args, **model_kwargs)
        return {name: site["value"] for name, site in tr.items()
                if site["type"] == "sample" and site["is_observed"] and not isinstance(site["fn"], dist.Unit)}

    found: dict[str, Any] = {}
    jax.eval_shape(lambda: found.update(observed()))
    if any(isinstance(v, jax.core.Tracer) for v in found.values()):
        found = observed()
    return {name: np.asarray(v) for name, v in found.items()}


def map_batches(fn: Callable[[Any], Mapping[str, Any]], tree: Any, size: int) -> dict[str, np.ndarray]:
    """``fn`` over consecutive blocks of ``size`` rows of ``tree`` (a pytree of arrays with a
    common first axis), outputs concatenated as numpy arrays. Every block has ``size`` rows --
    the last one padded with copies of its final row, the padding dropped -- so that one
    compilation of ``fn`` serves all blocks."""
    n = jax.tree.leaves(tree)[0].shape[0]
    parts = []
    for start in range(0, n, size):
        block = jax.tree.map(lambda a: a[start:start + size], tree)
        short = size - jax.tree.leaves(block)[0].shape[0]
        if short:
            block = jax.tree.map(lambda a: np.concatenate([a, np.repeat(a[-1:], short, axis=0)]), block)
        parts.append({k: np.asarray(v)[:size - short] for k, v in fn(block).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def postprocess_program(postprocess: Callable[[Any], dict[str, Any]], draw: Mapping[str, Any],
                        batch_size: int) -> jax.stages.Lowered:
    """The lowered program mapping ``batch_size`` unconstrained draws to their constrained and
    deterministic sites (``postprocess`` vmapped); ``draw``: site -> one draw's array or
    ``jax.ShapeDtypeStruct``. Compile it (``.compile()``) ahead of time, e.g. while sampling
    starts, and hand it to :func:`idata_from_samples`."""
    avals = {k: jax.ShapeDtypeStruct((int(batch_size), *v.shape), v.dtype) for k, v in draw.items()}
    return jax.jit(jax.vmap(postprocess)).lower(avals)


def idata_from_samples(model: Callable[..., Any], postprocess: Callable[[Any], dict[str, Any]],
                       z: Mapping[str, np.ndarray], sample_stats: Mapping[str, np.ndarray],
                       model_args: Sequence[Any] = (), model_kwargs: Mapping[str, Any] | None = None,
                       batch_size: int = 256, program: Callable[[Any], dict[str, Any]] | None = None,
                       ) -> az.InferenceData:
    """InferenceData of an MCMC run from its unconstrained draws ``z`` (site -> ``(chain, draw, ...)``).

    ``postprocess`` maps one unconstrained draw to the constrained sample and deterministic
    sites (NumPyro's ``kernel.postprocess_fn(args, kwargs)``); it runs compiled on batches of
    ``batch_size`` draws (the last one padded), through ``program`` when given (the compiled
    :func:`postprocess_program` of that batch size). Adds ``observed_data`` and
    ``log_likelihood`` (per observed site) when the model has observed sites.
    """
    model_kwargs = dict(model_kwargs or {})
    shape = next(iter(z.values())).shape[:2]
    n = int(np.prod(shape))
    flat = {k: np.asarray(v).reshape(n, *v.shape[2:]) for k, v in z.items()}
    if program is None:
        batch_size = min(int(batch_size), n)
        program = postprocess_program(postprocess, {k: v[0] for k, v in flat.items()}, batch_size).compile()
    constrained = map_batches(program, flat, batch_size)
    posterior = {k: v.reshape(*shape, *v.shape[1:]) for k, v in constrained.items()}
    first = {k: v[0] for k, v in constrained.items()}
    observed = _observed_sites(model, first, model_args, model_kwargs)
    groups: dict[str, Any] = {"posterior": posterior, "sample_stats": dict(sample_stats)}
    if observed:
        groups["observed_data"] = observed
        loglik = log_likelihood(model, constrained, *model_args, batch_ndims=1, **model_kwargs)
        groups["log_likelihood"] = {k: np.asarray(v).reshape(*shape, *v.shape[1:])
                                    for k, v in loglik.items() if k in observed}
    return az.from_dict(**groups)


class _Unobserve(Messenger):
    """Effect handler that samples the observed sites instead of returning their data."""

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "sample" and msg["is_observed"] and not isinstance(msg["fn"], dist.Unit):
            msg["is_observed"] = False
            msg["value"] = None


def add_posterior_predictive(idata: az.InferenceData, model: Callable[..., Any], key: jax.Array,
                             model_args: Sequence[Any] = (), model_kwargs: Mapping[str, Any] | None = None) -> None:
    """Add the group ``posterior_predictive`` to ``idata``: the observed sites of ``model`` drawn
    anew given each posterior draw (the same data-generating process, fresh noise)."""
    post = idata.posterior
    shape = (int(post.sizes["chain"]), int(post.sizes["draw"]))
    samples = {k: post[k].values.reshape(-1, *post[k].shape[2:]) for k in post.data_vars}
    observed = _observed_sites(model, {k: v[0] for k, v in samples.items()}, model_args, dict(model_kwargs or {}))
    if not observed:
        raise ValueError("the model has no observed sites: there is nothing to predict")
    pred = Predictive(_Unobserve(model), posterior_samples=samples, return_sites=list(observed))
    out = pred(key, *model_args, **dict(model_kwargs or {}))
    idata.add_groups({"posterior_predictive": {k: np.asarray(v).reshape(*shape, *np.shape(v)[1:])
                                               for k, v in out.items()}})

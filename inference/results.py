"""Posterior containers and diagnostics shared by every engine.

Every engine of :mod:`bayesqcd.inference` returns an :class:`arviz.InferenceData`. Engines
that do not run NumPyro MCMC (variational guides, score-based samplers, flows, ensembles)
build it with :func:`from_draws`; :func:`diagnostics` and :func:`check_diagnostics` read
convergence measures back from any of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import arviz as az
import numpy as np

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
    """
    post = idata.posterior
    names = list(var_names) if var_names is not None else list(post.data_vars)
    n_chains, n_draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    out: dict[str, Any] = {"n_chains": n_chains, "n_draws": n_draws}
    finite = [n for n in names if np.all(np.isfinite(post[n].values))]
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

"""Prior-predictive simulations of any NumPyro model: the training data of amortized inference.

:func:`simulate` draws ``n`` joint samples (parameters, data) from a model with
:class:`numpyro.infer.Predictive` in jitted batches (sharded over the local devices when
there are several), keeps the named *targets* (latent or deterministic sites, curves
included) and *observed* sites, and drops (and counts) draws with non-finite values.

A :class:`Simulations` remembers the model, so the observed sites can be re-drawn from the
model's own likelihood given the same latent values (:meth:`Simulations.resampler`): this is
the observational data augmentation of :mod:`bayesqcd.inference.amortized`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, PRNGKeyArray
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.infer import Predictive
from tqdm.auto import tqdm

from .distributed import gather, global_mesh, shard_like

Resampler = Callable[[PRNGKeyArray, Mapping[str, Array]], dict[str, Array]]
"""``resample(key, latents) -> observed``: observed sites of one simulation re-drawn given its latents."""


@dataclass(frozen=True)
class Simulations:
    """Joint prior draws of a model: targets, observed data and the latent values behind them.

    Attributes:
        targets: site name -> ``(n, *site_shape)`` (the quantities to infer).
        observed: site name -> ``(n, *site_shape)`` (the data).
        latents: every sampled site that is not observed -> ``(n, *site_shape)``; fixing them
            and re-running the model re-draws the data (augmentation).
        supports: target name -> support of its prior (``constraints.real`` for deterministic
            sites), read from a trace of the model.
        n_requested: draws made; ``n_dropped`` of them had non-finite values and were dropped.
        model, model_args, model_kwargs: the model and how it was called (``None`` after
            :meth:`load` without a model: then no re-simulation).
    """

    targets: dict[str, np.ndarray]
    observed: dict[str, np.ndarray]
    latents: dict[str, np.ndarray]
    supports: dict[str, Any]
    n_requested: int
    n_dropped: int
    model: Callable[..., Any] | None = field(default=None, repr=False)
    model_args: tuple[Any, ...] = field(default=(), repr=False)
    model_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """Number of kept simulations."""
        return int(next(iter(self.targets.values())).shape[0])

    def data(self, i: int) -> dict[str, np.ndarray]:
        """The observed sites of simulation ``i`` (a data set as ``fit``-ted methods take it)."""
        return {k: v[i] for k, v in self.observed.items()}

    def split(self, n_first: int) -> tuple[Simulations, Simulations]:
        """The first ``n_first`` simulations and the rest (e.g. training and held-out sets)."""
        if not 0 < n_first < self.n:
            raise ValueError(f"n_first = {n_first} must lie in [1, {self.n - 1}] (n = {self.n})")

        def part(sl: slice) -> Simulations:
            take = lambda d: {k: v[sl] for k, v in d.items()}  # noqa: E731
            return replace(self, targets=take(self.targets), observed=take(self.observed),
                           latents=take(self.latents))

        return part(slice(0, n_first)), part(slice(n_first, None))

    def resampler(self) -> Resampler:
        """``resample(key, latents)``: the observed sites re-drawn from the model's likelihood
        given one simulation's latent values (pure JAX; vmap it over simulations)."""
        if self.model is None:
            raise ValueError("these Simulations carry no model (loaded without one): pass the model to "
                             "Simulations.load, or give a noise function")
        names = list(self.observed)
        model, args, kwargs = self.model, self.model_args, self.model_kwargs

        def resample(key: PRNGKeyArray, latents: Mapping[str, Array]) -> dict[str, Array]:
            conditioned = handlers.substitute(handlers.seed(model, key), data=dict(latents))
            tr = handlers.trace(conditioned).get_trace(*args, **kwargs)
            return {k: tr[k]["value"] for k in names}

        return resample

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the arrays and counts to an ``.npz`` file (the model is not saved)."""
        arrays = {f"{group}/{k}": v for group in ("targets", "observed", "latents")
                  for k, v in getattr(self, group).items()}
        np.savez(path, n_requested=self.n_requested, n_dropped=self.n_dropped, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str], model: Callable[..., Any] | None = None, *model_args: Any,
             **model_kwargs: Any) -> Simulations:
        """Read :meth:`save`'s file; with the model (and its arguments) the supports are
        re-read from its trace and re-simulation works again."""
        with np.load(path) as f:
            groups: dict[str, dict[str, np.ndarray]] = {"targets": {}, "observed": {}, "latents": {}}
            for key in f.files:
                if "/" in key:
                    g, name = key.split("/", 1)
                    groups[g][name] = f[key]
            counts = int(f["n_requested"]), int(f["n_dropped"])
        supports = {k: constraints.real for k in groups["targets"]}
        if model is not None:
            supports = _site_info(model, model_args, model_kwargs, list(groups["targets"]),
                                  list(groups["observed"]))[0]
        return cls(groups["targets"], groups["observed"], groups["latents"], supports, *counts,
                   model=model, model_args=tuple(model_args), model_kwargs=dict(model_kwargs))


def _site_info(model: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], targets: Sequence[str],
               observed: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Supports of the targets and the names of the latent sample sites, from one trace."""
    with numpyro.validation_enabled(False):  # a draw may be invalid (NaN); simulate drops those
        tr = handlers.trace(handlers.seed(model, jax.random.key(0))).get_trace(*args, **kwargs)
    for name in [*targets, *observed]:
        if name not in tr:
            sites = sorted(k for k, s in tr.items() if s["type"] in ("sample", "deterministic"))
            raise ValueError(f"site {name!r} is not in the model; its sites are {sites}")
    for name in observed:
        if tr[name]["type"] != "sample" or tr[name].get("is_observed"):
            raise ValueError(f"observed site {name!r} must be a sample site drawn by the model: call the model "
                             f"with its data argument set to None")
    supports = {}
    for name in targets:
        s = tr[name]
        supports[name] = s["fn"].support if s["type"] == "sample" else constraints.real
    latents = [k for k, s in tr.items() if s["type"] == "sample" and not s.get("is_observed") and k not in observed]
    return supports, latents


def simulate(model: Callable[..., Any], key: PRNGKeyArray, n: int, *model_args: Any, targets: Sequence[str],
             observed: Sequence[str], batch_size: int = 1024, progress: bool = True,
             **model_kwargs: Any) -> Simulations:
    """``n`` prior-predictive simulations of ``model``: targets and observed data.

    Args:
        model: a NumPyro model, called as ``model(*model_args, **model_kwargs)``; its
            observed sites must be sampled (pass its data argument as ``None``).
        key: PRNG key (batch ``b`` draws with ``fold_in(key, b)``: the same key, ``n`` and
            ``batch_size`` give the same simulations).
        n: number of draws requested (>= 1).
        targets: sites to infer: latent sample sites or deterministic sites (curves too).
        observed: sample sites that make up the data.
        batch_size: draws per jitted call (rounded up to a multiple of the device count;
            the batch is sharded over the devices when there are several -- those of all
            processes after :func:`bayesqcd.inference.distributed.initialize`, every process
            then receiving all simulations).
        progress: show a progress bar over batches.

    Returns:
        :class:`Simulations`, draws with any non-finite target, observed or latent value
        dropped (``n_dropped``).

    Raises:
        ValueError: for ``n`` or ``batch_size`` < 1, empty or overlapping site lists, or
            sites the model does not have.
    """
    if n < 1:
        raise ValueError(f"n = {n} must be >= 1")
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size} must be >= 1")
    targets, observed = list(targets), list(observed)
    if not targets or not observed:
        raise ValueError(f"targets = {targets} and observed = {observed} must both name at least one site")
    if set(targets) & set(observed):
        raise ValueError(f"sites {sorted(set(targets) & set(observed))} are both targets and observed")
    supports, latents = _site_info(model, model_args, model_kwargs, targets, observed)
    sites = sorted(set(targets) | set(observed) | set(latents))
    n_dev = jax.device_count()
    size = -(-min(batch_size, n) // n_dev) * n_dev
    draw = _batch_fn(model, model_args, model_kwargs, sites, n_dev)
    parts = []
    for i in tqdm(range(0, n, size), desc="simulating", disable=not progress or jax.process_index() > 0):
        out = gather(draw(jax.random.fold_in(key, i // size), size))
        parts.append({k: np.asarray(v)[:min(size, n - i)] for k, v in out.items()})
    allv = {k: np.concatenate([p[k] for p in parts]) for k in sites}
    ok = np.ones(n, bool)
    for v in allv.values():
        ok &= np.all(np.isfinite(v.reshape(n, -1)), axis=1)
    pick = lambda names: {k: allv[k][ok] for k in names}  # noqa: E731
    if not ok.any():
        raise ValueError(f"all {n} simulations had non-finite values; check the model's sites {sites}")
    return Simulations(pick(targets), pick(observed), pick(latents), supports, n, int(n - ok.sum()),
                       model=model, model_args=tuple(model_args), model_kwargs=dict(model_kwargs))


def _batch_fn(model: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], sites: list[str],
              n_dev: int) -> Callable[[PRNGKeyArray, int], dict[str, Array]]:
    """``draw(key, size)``: one jitted, vmapped batch of prior-predictive draws (sharded over
    a 1-D device mesh when ``n_dev > 1``)."""
    predictive = Predictive(model, num_samples=1, return_sites=sites)

    def one(k: PRNGKeyArray) -> dict[str, Array]:
        return {s: v[0] for s, v in predictive(k, *args, **kwargs).items()}

    fn = jax.jit(jax.vmap(one))
    sharding = None
    if n_dev > 1:
        mesh = global_mesh(n_dev, "sims")
        sharding = NamedSharding(mesh, PartitionSpec("sims"))

    def draw(key: PRNGKeyArray, size: int) -> dict[str, Array]:
        keys = jax.random.split(key, size)
        if jax.process_count() > 1:  # every process holds all keys and hands over its shards
            keys = shard_like(keys, mesh, PartitionSpec("sims"))
        elif sharding is not None:
            keys = jax.device_put(keys, sharding)
        return fn(keys)

    return draw


def stack_rows(values: Mapping[str, Array], names: Sequence[str]) -> Array:
    """Sites ``(n, *shape)`` flattened and concatenated to ``(n, F)`` in the order of ``names``."""
    return jnp.concatenate([jnp.reshape(values[k], (jnp.shape(values[k])[0], -1)) for k in names], axis=1)

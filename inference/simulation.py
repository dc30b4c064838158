"""Prior-predictive simulations of any NumPyro model: the training data of amortized inference.

:func:`simulate` draws ``n`` joint samples (parameters, data) from a model with
:class:`numpyro.infer.Predictive` in jitted batches (sharded over the devices when there are
several, those of all processes after :func:`~bayesqcd.inference.distributed.initialize`), keeps the named *targets* (latent or deterministic sites, curves
included) and *observed* sites, and drops (and counts) draws with non-finite values. With
``checkpoint_dir`` every completed batch is kept on disk, and a killed run resumes from there
with the same result as an uninterrupted one.

A :class:`Simulations` remembers the model, so the observed sites can be re-drawn from the
model's own likelihood given the same latent values (:meth:`Simulations.resampler`): this is
the observational data augmentation of :mod:`bayesqcd.inference.amortized`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
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

from .distributed import broadcast_from_main, gather, global_mesh, shard_like

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
               observed: Sequence[str]) -> tuple[dict[str, Any], list[str], dict[str, jax.ShapeDtypeStruct]]:
    """Supports of the targets, the names of the latent sample sites and the shape and dtype
    of every sample and deterministic site (one draw), from one trace.

    The model is traced abstractly (``jax.eval_shape``: nothing is compiled or run, which for
    a model with an ODE solve inside saves a compilation); only when a target's support
    is not concrete there (bounds computed inside the model) is the model run once eagerly.
    """

    def trace(key: PRNGKeyArray) -> Any:
        with numpyro.validation_enabled(False):  # a draw may be invalid (NaN); simulate drops those
            return handlers.trace(handlers.seed(model, key)).get_trace(*args, **kwargs)

    found: dict[str, Any] = {}

    def abstract(key: PRNGKeyArray) -> int:
        found["trace"] = trace(key)
        return 0

    jax.eval_shape(abstract, jax.random.key(0))
    tr = found["trace"]
    if any(_has_tracer(tr[name]["fn"].support) for name in targets
           if name in tr and tr[name]["type"] == "sample"):
        tr = trace(jax.random.key(0))
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
    shapes = {k: jax.ShapeDtypeStruct(jnp.shape(s["value"]), jnp.result_type(s["value"])) for k, s in tr.items()
              if s["type"] in ("sample", "deterministic")}
    return supports, latents, shapes


def _has_tracer(obj: Any, depth: int = 4) -> bool:
    """Whether a (constraint) object holds a JAX tracer among its attributes, nested ones included."""
    if isinstance(obj, jax.core.Tracer):
        return True
    if depth == 0:
        return False
    return any(_has_tracer(v, depth - 1) for v in jax.tree_util.tree_leaves(getattr(obj, "__dict__", {})))


def simulate(model: Callable[..., Any], key: PRNGKeyArray, n: int, *model_args: Any, targets: Sequence[str],
             observed: Sequence[str], batch_size: int = 1024, progress: bool = True,
             checkpoint_dir: str | os.PathLike[str] | None = None, **model_kwargs: Any) -> Simulations:
    """``n`` prior-predictive simulations of ``model``: targets and observed data.

    Args:
        model: a NumPyro model, called as ``model(*model_args, **model_kwargs)``; its
            observed sites must be sampled (pass its data argument as ``None``).
        key: PRNG key. Batch ``b`` (rows ``b * batch_size`` onwards) draws with
            ``split(fold_in(key, b), batch_size)``, whatever the devices, processes or
            resumed batches: the same key, ``n`` and ``batch_size`` give the same simulations.
        n: number of draws requested (>= 1).
        targets: sites to infer: latent sample sites or deterministic sites (curves too).
        observed: sample sites that make up the data.
        batch_size: draws per jitted call (at most ``n``; padded to a multiple of the device
            count, the padding discarded; the batch is sharded over the devices when there
            are several -- those of all processes after
            :func:`bayesqcd.inference.distributed.initialize`, every process then receiving
            all simulations).
        progress: show a progress bar over batches.
        checkpoint_dir: a folder that keeps every completed batch (``batch-000000.npz``,
            ... with all its draws, non-finite ones included) next to ``settings.json``;
            ``done.json`` is added at the end. A run given a folder that already has batches
            computes only the missing ones (a killed run resumes where it stopped) and
            returns the set of an uninterrupted run. Only process 0 reads and writes it
            (on its own host's disk; the others receive what it read); files are written
            to a temporary name and renamed; nothing in it is ever deleted.

    Returns:
        :class:`Simulations`, draws with any non-finite target, observed or latent value
        dropped (``n_dropped``).

    Raises:
        ValueError: for ``n`` or ``batch_size`` < 1, empty or overlapping site lists, sites
            the model does not have, or a ``checkpoint_dir`` that holds something else: a
            non-empty folder without ``settings.json``, or one made with other settings
            (model, model arguments, ``n``, ``batch_size``, key, sites, float64), which
            are named.
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
    supports, latents, row_spec = _site_info(model, model_args, model_kwargs, targets, observed)
    sites = sorted(set(targets) | set(observed) | set(latents))
    size = min(batch_size, n)
    n_batches = -(-n // size)
    draw = _batch_fn(model, model_args, model_kwargs, sites, jax.device_count(), size)
    allv = {k: np.zeros((n, *row_spec[k].shape), row_spec[k].dtype) for k in sites}
    done = np.zeros(n_batches, bool)
    store = None
    if checkpoint_dir is not None:
        settings = {"model": _qualified_name(model), "model_arguments": _arguments_digest(model_args, model_kwargs),
                    "n": n, "batch_size": size, "key": _key_record(key), "targets": targets,
                    "observed": observed, "sites": sites, "float64": bool(jax.config.jax_enable_x64)}
        store = _BatchStore(Path(checkpoint_dir), settings)
        done = store.resume(allv, size)
    bar = tqdm(total=n_batches, initial=int(done.sum()), desc="simulating",
               disable=not progress or jax.process_index() > 0)
    todo = [int(b) for b in np.flatnonzero(~done)]
    pending = draw(jax.random.fold_in(key, todo[0])) if todo else None
    with bar:
        for i, b in enumerate(todo):
            rows = slice(b * size, min(n, (b + 1) * size))
            current = pending
            if i + 1 < len(todo):  # the next batch runs while this one is copied out and stored
                pending = draw(jax.random.fold_in(key, todo[i + 1]))
            out = gather(current)
            for k in sites:
                allv[k][rows] = np.asarray(out[k])[:rows.stop - rows.start]
            if store is not None:
                store.write(int(b), {k: allv[k][rows] for k in sites})
            bar.update()
    ok = np.ones(n, bool)
    for v in allv.values():
        ok &= np.all(np.isfinite(v.reshape(n, -1)), axis=1)
    if store is not None:
        store.finish(n, int(n - ok.sum()))
    pick = lambda names: {k: allv[k][ok] for k in names}  # noqa: E731
    if not ok.any():
        raise ValueError(f"all {n} simulations had non-finite values; check the model's sites {sites}")
    return Simulations(pick(targets), pick(observed), pick(latents), supports, n, int(n - ok.sum()),
                       model=model, model_args=tuple(model_args), model_kwargs=dict(model_kwargs))


def _batch_fn(model: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], sites: list[str],
              n_dev: int, size: int) -> Callable[[PRNGKeyArray], dict[str, Array]]:
    """``draw(batch_key)``: one jitted, vmapped batch of ``size`` prior-predictive draws from
    ``split(batch_key, size)`` (padded to a multiple of ``n_dev`` by repeating the last key,
    sharded over a 1-D device mesh when ``n_dev > 1``); dispatched asynchronously."""
    predictive = Predictive(model, num_samples=1, return_sites=sites)

    def one(k: PRNGKeyArray) -> dict[str, Array]:
        return {s: v[0] for s, v in predictive(k, *args, **kwargs).items()}

    fn = jax.jit(jax.vmap(one))
    padded = -(-size // n_dev) * n_dev
    take = np.minimum(np.arange(padded), size - 1)
    mesh = global_mesh(n_dev, "sims") if n_dev > 1 else None

    def draw(key: PRNGKeyArray) -> dict[str, Array]:
        keys = jax.random.split(key, size)
        if padded > size:
            keys = keys[take]
        if jax.process_count() > 1:  # every process holds all keys and hands over its shards
            keys = shard_like(keys, mesh, PartitionSpec("sims"))
        elif mesh is not None:
            keys = jax.device_put(keys, NamedSharding(mesh, PartitionSpec("sims")))
        return fn(keys)

    return draw


def _typed(keys: Any) -> bool:
    return jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)


# ----------------------------------------------------------------------------- checkpoints


def _qualified_name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _arguments_digest(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """SHA-256 (16 hex digits) of the model's arguments: array and number values, strings and
    dataclasses by their repr, the names of functions, the types of anything else, and the
    tree structure."""
    leaves, tree = jax.tree.flatten((tuple(args), dict(kwargs)))
    h = hashlib.sha256(str(tree).encode())
    for leaf in leaves:
        if isinstance(leaf, (np.ndarray, jax.Array, np.generic, int, float, complex, bool)):
            a = np.asarray(jax.random.key_data(leaf) if isinstance(leaf, jax.Array) and _typed(leaf) else leaf)
            h.update(f"{a.dtype}{a.shape}".encode() + a.tobytes())
        elif isinstance(leaf, str) or leaf is None or dataclasses.is_dataclass(leaf):
            h.update(repr(leaf).encode())
        else:
            h.update(_qualified_name(leaf).encode() if callable(leaf) else type(leaf).__name__.encode())
    return h.hexdigest()[:16]


def _key_record(key: PRNGKeyArray) -> dict[str, Any]:
    data = jax.random.key_data(key) if _typed(key) else key
    return {"impl": str(jax.random.key_impl(key)), "data": np.asarray(data).tolist()}


class _BatchStore:
    """The checkpoint folder of :func:`simulate`: ``settings.json``, ``batch-NNNNNN.npz``,
    ``done.json``. Process 0 reads and writes; the other processes get what it read."""

    SETTINGS, DONE = "settings.json", "done.json"

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path, self.settings = path, json.loads(json.dumps(settings))
        self.main = jax.process_index() == 0

    def batch_file(self, b: int) -> Path:
        return self.path / f"batch-{b:06d}.npz"

    def resume(self, allv: dict[str, np.ndarray], size: int) -> np.ndarray:
        """Fill ``allv`` with the batches found (the others' rows stay zero) and return which
        batches are done; refuse a folder made with other settings (on every process)."""
        n = self.settings["n"]
        done = np.zeros(-(-n // size), bool)
        message = ""
        if self.main:
            try:
                self._open()
                for b in range(done.size):
                    if self.batch_file(b).exists():
                        self._load(b, allv, slice(b * size, min(n, (b + 1) * size)))
                        done[b] = True
            except (ValueError, OSError) as err:
                message = str(err)
        if jax.process_count() > 1:
            raw = np.zeros(4096, np.uint8)
            text = message.encode()[:4096]
            raw[:len(text)] = np.frombuffer(text, np.uint8)
            message = bytes(broadcast_from_main(raw)).rstrip(b"\0").decode(errors="replace")
        if message:
            raise ValueError(message if self.main else f"process 0 refused checkpoint_dir: {message}")
        if jax.process_count() > 1:
            done = broadcast_from_main(done)
            if done.any():
                allv.update(broadcast_from_main(allv))
        return done

    def _open(self) -> None:
        """Create the folder with ``settings.json``, or check the one recorded there."""
        where = f"checkpoint_dir = {str(self.path)!r}"
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{where} is a file, not a folder")
        found = self.path / self.SETTINGS
        if found.exists():
            old = json.loads(found.read_text())
            diff = [f"{k} ({old.get(k)!r} there, {v!r} here)" for k, v in self.settings.items() if old.get(k) != v]
            if diff:
                raise ValueError(f"{where} holds simulations made with other settings: {'; '.join(diff)}. "
                                 "Resume with the same settings, or give another folder")
            return
        if self.path.exists() and any(self.path.iterdir()):
            raise ValueError(f"{where} is not empty and has no {self.SETTINGS}: it holds no simulations of "
                             "simulate(); give a new or empty folder")
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(found, (json.dumps(self.settings, indent=1) + "\n").encode())

    def _load(self, b: int, allv: dict[str, np.ndarray], rows: slice) -> None:
        with np.load(self.batch_file(b)) as f:
            for k, v in allv.items():
                want = (rows.stop - rows.start, *v.shape[1:])
                if k not in f.files or f[k].shape != want or f[k].dtype != v.dtype:
                    raise ValueError(f"{self.batch_file(b)} does not hold site {k!r} as {want} {v.dtype}: "
                                     "not a batch of these settings")
                v[rows] = f[k]

    def write(self, b: int, arrays: dict[str, np.ndarray]) -> None:
        if self.main:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            _atomic_write(self.batch_file(b), buf.getvalue())

    def finish(self, n: int, n_dropped: int) -> None:
        if self.main:
            record = {"n_requested": n, "n_dropped": n_dropped, "n_kept": n - n_dropped}
            _atomic_write(self.path / self.DONE, (json.dumps(record) + "\n").encode())


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it to ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # ours: made just above
        raise


def stack_rows(values: Mapping[str, Array], names: Sequence[str]) -> Array:
    """Sites ``(n, *shape)`` flattened and concatenated to ``(n, F)`` in the order of ``names``."""
    return jnp.concatenate([jnp.reshape(values[k], (jnp.shape(values[k])[0], -1)) for k in names], axis=1)

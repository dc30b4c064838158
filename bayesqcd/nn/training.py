"""One optax training loop for every network in bayesqcd.

:func:`train` runs jitted chunks of optimisation steps (``lax.scan`` inside one compiled
call, so small networks train fast on CPU), shows a tqdm progress bar, evaluates an
optional validation loss, stops early on a patience criterion, and checkpoints
``(model, optimiser state, step, history)`` with :func:`equinox.tree_serialise_leaves`.
A re-run with the same checkpoint path resumes where it stopped; because the key of
step ``i`` is ``jax.random.fold_in(key, i)``, a resumed run gives the same numbers as an
uninterrupted one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree
from tqdm.auto import tqdm

LossFn = Callable[[Any, Any, PRNGKeyArray], Array]
"""``loss_fn(model, batch, key) -> scalar``."""
BatchFn = Callable[[PRNGKeyArray], Any]
"""``batch_fn(key) -> batch``: pure JAX (it is traced inside the compiled loop)."""


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite (usually: the learning rate is too large)."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (the best validation model when early stopping is on).
        history: ``{"step": [...], "train_loss": [...], "val_loss": [...]}`` at every evaluation.
        steps: the number of optimisation steps taken in total (resumed ones included).
        stopped_early: whether the patience criterion ended training.
        resumed_step: the step a checkpoint was resumed from (0: trained from scratch).
    """

    model: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    steps: int = 0
    stopped_early: bool = False
    resumed_step: int = 0


def minibatch(data: PyTree, batch_size: int) -> BatchFn:
    """A ``batch_fn`` drawing ``batch_size`` rows (with replacement) from arrays sharing axis 0."""
    n = jax.tree_util.tree_leaves(data)[0].shape[0]

    def batch_fn(key: PRNGKeyArray) -> PyTree:
        idx = jax.random.randint(key, (batch_size,), 0, n)
        return jax.tree_util.tree_map(lambda a: a[idx], data)

    return batch_fn


def _save(path: Path, model: Any, opt_state: Any, meta: dict[str, Any]) -> None:
    """Write the checkpoint atomically: leaves to ``path``, step and history to ``path.json``."""
    tmp = path.with_name(path.name + ".tmp")
    eqx.tree_serialise_leaves(tmp, (model, opt_state))
    tmp_meta = path.with_name(path.name + ".json.tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp, path)
    os.replace(tmp_meta, path.with_name(path.name + ".json"))


def train(
    model: Any,
    loss_fn: LossFn,
    batch_fn: BatchFn,
    optimizer: optax.GradientTransformation,
    n_steps: int,
    key: PRNGKeyArray,
    *,
    val_loss: Callable[[Any], Array] | None = None,
    eval_every: int = 100,
    patience: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = True,
    desc: str = "training",
    steps_per_call: int | None = None,
    settings: dict[str, Any] | None = None,
) -> TrainResult:
    """Minimise ``loss_fn`` over ``n_steps`` optimiser steps.

    Args:
        model: an Equinox module (any pytree whose inexact-array leaves are trained).
        loss_fn: ``loss_fn(model, batch, key) -> scalar`` (pure JAX).
        batch_fn: ``batch_fn(key) -> batch`` (pure JAX), e.g. :func:`minibatch`.
        optimizer: an optax transformation.
        n_steps: total number of steps (a resumed run counts the steps already done).
        key: PRNG key; step ``i`` uses ``fold_in(key, i)``.
        val_loss: optional ``val_loss(model) -> scalar`` evaluated every ``eval_every`` steps.
        eval_every: steps between evaluations, checkpoints and progress updates.
        patience: stop after this many evaluations without a better validation loss, and
            return the best model (requires ``val_loss``).
        checkpoint: file to save to every ``eval_every`` steps and to resume from.
        progress: show a tqdm progress bar.
        desc: label of the progress bar.
        steps_per_call: optimiser steps per compiled call. ``None``: all the steps between two
            evaluations in one call (a ``lax.scan``; best for small dense networks, whose steps
            cost less than a call). An integer k: k steps per call, unrolled (best for
            convolutional networks on CPU, where XLA runs a convolution inside a loop body
            1.7-4.5x slower than in a call of its own, measured here). The same keys and
            batches either way.
        settings: JSON-ready description of what is trained (data, model, optimiser). Stored
            in the checkpoint; resuming a checkpoint made with other settings raises
            ``ValueError`` before any step, instead of silently reusing another model.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDiverged: when the mean training loss of an evaluation window is not finite
            (nothing of that window is checkpointed).
        ValueError: for a checkpoint of other ``settings`` or one that cannot be read.
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")
    if steps_per_call is not None and steps_per_call < 1:
        raise ValueError(f"steps_per_call must be None or >= 1, got {steps_per_call}")
    if patience is not None and val_loss is None:
        raise ValueError("patience needs a val_loss to watch")

    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_loss": []}
    step, best, best_params, bad_evals = 0, float("inf"), params, 0
    resumed_step = 0

    mine = None if settings is None else json.loads(json.dumps(settings, default=str))
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        try:
            meta = json.loads(ckpt.with_name(ckpt.name + ".json").read_text())
            params, opt_state = eqx.tree_deserialise_leaves(ckpt, (params, opt_state))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise ValueError(f"checkpoint {ckpt} cannot be read ({type(err).__name__}: {err}); it is truncated "
                             "or from another model: delete it or pass another checkpoint path") from None
        if mine is not None and meta.get("settings") not in (None, mine):
            raise ValueError(f"checkpoint {ckpt} was made with other settings ({meta['settings']}, now "
                             f"{mine}); pass another checkpoint path or delete it to retrain")
        step, history, bad_evals = meta["step"], meta["history"], meta["bad_evals"]
        resumed_step = step
        best = meta["best"] if meta["best"] is not None else float("inf")
        best_params = params
        best_file = ckpt.with_name(ckpt.name + ".best")
        if best_file.exists():
            best_params = eqx.tree_deserialise_leaves(best_file, params)

    def one_step(carry, i):
        p, s = carry
        k_batch, k_loss = jax.random.split(jax.random.fold_in(key, i))
        batch = batch_fn(k_batch)
        loss, grads = jax.value_and_grad(lambda q: loss_fn(eqx.combine(q, static), batch, k_loss))(p)
        updates, s = optimizer.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), loss

    @eqx.filter_jit
    def run_chunk(p, s, start, length_marker):
        steps = start + jnp.arange(length_marker.shape[0])
        if steps_per_call is None:
            (p, s), losses = jax.lax.scan(one_step, (p, s), steps)
            return p, s, jnp.sum(losses)
        total = jnp.zeros(())  # unrolled: straight-line code, no loop for XLA to run
        for i in range(length_marker.shape[0]):
            (p, s), loss = one_step((p, s), steps[i])
            total = total + loss
        return p, s, total

    val_jit = eqx.filter_jit(lambda p: val_loss(eqx.combine(p, static))) if val_loss else None
    stopped = False
    bar = tqdm(total=n_steps, initial=min(step, n_steps), desc=desc, disable=not progress)
    while step < n_steps and not stopped:
        length = min(eval_every, n_steps - step)
        loss_sum, done = 0.0, 0
        while done < length:
            n = length - done if steps_per_call is None else min(steps_per_call, length - done)
            params, opt_state, chunk_sum = run_chunk(params, opt_state, jnp.asarray(step + done),
                                                     jnp.zeros(n))
            loss_sum, done = loss_sum + chunk_sum, done + n
        train_l = loss_sum / length
        if not bool(jnp.isfinite(train_l)):
            bar.close()
            raise TrainingDiverged(f"{desc}: the training loss became {float(train_l)} between steps {step} "
                                   f"and {step + length}; lower the learning rate (nothing of these steps "
                                   "was checkpointed)")
        step += length
        history["step"].append(step)
        history["train_loss"].append(float(train_l))
        if val_jit is not None:
            v = float(val_jit(params))
            history["val_loss"].append(v)
            if v < best:
                best, best_params, bad_evals = v, params, 0
                if ckpt is not None:
                    eqx.tree_serialise_leaves(ckpt.with_name(ckpt.name + ".best"), params)
            else:
                bad_evals += 1
            stopped = patience is not None and bad_evals >= patience
            bar.set_postfix(loss=f"{float(train_l):.4g}", val=f"{v:.4g}")
        else:
            bar.set_postfix(loss=f"{float(train_l):.4g}")
        bar.update(length)
        if ckpt is not None:
            meta = {"step": step, "history": history, "bad_evals": bad_evals,
                    "best": best if best < float("inf") else None, "settings": mine}
            _save(ckpt, params, opt_state, meta)
    bar.close()
    final = best_params if patience is not None else params
    return TrainResult(model=eqx.combine(final, static), history=history, steps=step,
                       stopped_early=stopped, resumed_step=resumed_step)

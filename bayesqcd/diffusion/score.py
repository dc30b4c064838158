"""Denoising score matching with the ``g(t)^2`` weighting (the Girsanov / KL bound).

    L(theta) = E_{t, x_0, z} [ g(t)^2 |s_theta(alpha_t x_0 + sigma_t z, t) + z / sigma_t|^2 ],

with ``z ~ N(0, I)`` and ``t`` uniform in the schedule's window ``[t_min, T]`` (the paper:
``t`` on a grid in ``[0.01, 1]``), the window in which sampling and likelihood use the score. Up to a theta-independent constant, ``(1/2) int_0^T`` of this weighted error
is the KL divergence between the data path measure and the model's (the path-integral
loss), which makes ``g^2`` the natural weight for likelihood.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd.diffusion.sde import LinearSDE
from bayesqcd.nn.training import TrainResult, minibatch, train


def dsm_loss(model: Any, sde: LinearSDE, x0: Float[Array, "B ..."], key: PRNGKeyArray,
             t_lo: float | None = None) -> Float[Array, ""]:
    """Monte-Carlo estimate of the ``g^2``-weighted DSM loss on a batch ``x0``
    (sum over dimensions, mean over the batch; one ``t`` and ``z`` per point).

    ``t`` is uniform in ``[t_lo, T]``; ``t_lo=None`` (the rule) is the schedule's ``t_min``, so
    the score is trained where it is used. A ``t_lo`` other than ``t_min`` trains on another
    window than the one sampling and likelihood use (kept for callers that want that).
    """
    t_lo = sde.t_min if t_lo is None else t_lo
    kt, kz = jax.random.split(key)
    B = x0.shape[0]
    t = jax.random.uniform(kt, (B,), x0.dtype, t_lo, sde.T)
    z = jax.random.normal(kz, x0.shape, x0.dtype)
    expand = (slice(None),) + (None,) * (x0.ndim - 1)
    a, s = sde.alpha(t)[expand], sde.sigma(t)[expand]
    xt = a * x0 + s * z
    pred = jax.vmap(model)(xt, t)
    err = jnp.sum(((pred + z / s) ** 2).reshape(B, -1), axis=1)
    return jnp.mean(sde.g2(t) * err)


def train_score(model: Any, sde: LinearSDE, data: Float[Array, "N ..."], key: PRNGKeyArray, *,
                n_steps: int, batch_size: int = 512, learning_rate: float = 1e-3,
                eval_every: int = 500, checkpoint: str | None = None,
                progress: bool = True, settings: dict[str, Any] | None = None) -> TrainResult:
    """Train ``model`` by Adam on :func:`dsm_loss` with :func:`bayesqcd.nn.train`, ``t`` uniform
    in the schedule's window ``sde.window`` (the one sampling and likelihood use).

    The checkpoint records ``batch_size``, ``learning_rate``, the window and the caller's
    ``settings`` (what the data and the model are); resuming under others is refused.

    ``history["val_loss"]`` holds the loss on a fixed draw of 4096 ``(x_0, t, z)`` triples,
    so successive evaluations are comparable.
    """
    if batch_size < 1 or not learning_rate > 0:
        raise ValueError(f"need batch_size >= 1 and learning_rate > 0, got {batch_size}, "
                         f"{learning_rate}")
    k_val, k_train, k_idx = jax.random.split(key, 3)
    idx = jax.random.randint(k_idx, (4096,), 0, data.shape[0])
    val_batch = data[idx]
    return train(
        model,
        lambda m, batch, k: dsm_loss(m, sde, batch, k),
        minibatch(data, batch_size),
        optax.adam(learning_rate),
        n_steps,
        k_train,
        val_loss=lambda m: dsm_loss(m, sde, val_batch, k_val),
        eval_every=eval_every,
        checkpoint=checkpoint,
        progress=progress,
        desc="score matching",
        settings={"batch_size": batch_size, "learning_rate": learning_rate,
                  "window": list(sde.window), **(settings or {})},
    )

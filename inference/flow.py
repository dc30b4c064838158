"""Exact sampling with a learned proposal: reverse-KL training, ESS, independence Metropolis.

A *proposal* is any object with ``sample_and_log_prob(key, n) -> (x, log_q)`` (``n`` draws and
their exact log densities, e.g. a normalizing flow or a probability-flow ODE), sampling an
unnormalised target ``log p(x) = -S(x) + const``.

* :func:`reverse_kl_loss`: ``E_q[log q(x) - log p(x)] = KL(q || p) - log Z`` estimated on ``n``
  draws of ``q`` (no training data: the target's log density is the only input); gradients
  flow through the reparametrised draws.
* :func:`train_reverse_kl`: Adam on that loss with :func:`bayesqcd.nn.training.train`.
* :func:`ess_fraction`: ``ESS/N = (sum w)^2 / (N sum w^2)``, ``w = p/q`` (1 for a perfect
  proposal, ``1/N`` at worst).
* :func:`independence_metropolis`: the Markov chain that proposes each draw of ``q`` in turn
  and accepts it with ``min(1, w_new / w_current)``; its stationary distribution is exactly
  ``p`` whatever ``q`` is (as long as ``q > 0`` where ``p > 0``).
* :func:`sample_independence_metropolis`: both, timed, as ``arviz.InferenceData``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from bayesqcd.inference.results import from_draws
from bayesqcd.nn.training import TrainResult, train

LogDensity = Callable[[Array], Array]
"""``log_p(x) -> scalar`` for one (unbatched) point."""


def reverse_kl_loss(proposal: Any, log_p: LogDensity, key: PRNGKeyArray, n: int) -> Float[Array, ""]:
    """Monte-Carlo ``mean(log q(x) - log p(x))`` over ``n`` draws ``x ~ q`` (nats)."""
    x, log_q = proposal.sample_and_log_prob(key, n)
    return jnp.mean(log_q - jax.vmap(log_p)(x))


def train_reverse_kl(proposal: Any, log_p: LogDensity, key: PRNGKeyArray, *, n_steps: int,
                     batch_size: int = 64, learning_rate: float = 1e-3, eval_every: int = 100,
                     checkpoint: str | None = None, progress: bool = True,
                     settings: dict[str, Any] | None = None) -> TrainResult:
    """Train ``proposal`` by Adam on :func:`reverse_kl_loss` (``batch_size`` draws a step).

    The checkpoint records the hyperparameters and the caller's ``settings`` (the target and
    the model); resuming under others is refused.

    ``history["train_loss"]`` is the mean loss over each chunk of ``eval_every`` steps; its
    floor is ``-log Z``.
    """
    if batch_size < 2 or not learning_rate > 0 or n_steps < 0:
        raise ValueError(f"need batch_size >= 2, learning_rate > 0, n_steps >= 0; got "
                         f"{batch_size}, {learning_rate}, {n_steps}")
    return train(proposal, lambda m, batch, k: reverse_kl_loss(m, log_p, k, batch_size),
                 lambda k: jnp.zeros(()), optax.adam(learning_rate), n_steps, key,
                 eval_every=eval_every, checkpoint=checkpoint, progress=progress,
                 desc="reverse KL",
                 settings={"batch_size": batch_size, "learning_rate": learning_rate, **(settings or {})})


def ess_fraction(log_w: Float[Array, " n"]) -> Float[Array, ""]:
    """``ESS/N = (sum w)^2 / (N sum w^2)`` from log importance weights (stable in logs)."""
    log_w = jnp.asarray(log_w)
    n = log_w.shape[0]
    return jnp.exp(2 * jax.nn.logsumexp(log_w) - jax.nn.logsumexp(2 * log_w) - jnp.log(n))


def independence_metropolis(key: PRNGKeyArray, x: Float[Array, "n ..."], log_w: Float[Array, " n"]
                            ) -> tuple[Float[Array, "n ..."], Bool[Array, " n"]]:
    """Independence Metropolis over proposals ``x`` (in order) with log weights
    ``log_w = log p(x) - log q(x)``.

    The chain starts at ``x[0]`` (accepted); draw ``i`` replaces the current state with
    probability ``min(1, exp(log_w[i] - log_w[current]))``. Returns ``(chain, accepted)``.
    """
    u = jnp.log(jax.random.uniform(key, log_w.shape, log_w.dtype))

    def step(cur, inp):
        i, lw, lu = inp
        acc = lu < lw - log_w[cur]
        cur = jnp.where(acc, i, cur)
        return cur, (cur, acc)

    n = log_w.shape[0]
    _, (idx, acc) = jax.lax.scan(step, jnp.asarray(0), (jnp.arange(1, n), log_w[1:], u[1:]))
    idx = jnp.concatenate([jnp.zeros((1,), idx.dtype), idx])
    acc = jnp.concatenate([jnp.ones((1,), bool), acc])
    return x[idx], acc


def sample_independence_metropolis(proposal: Any, log_p: LogDensity, key: PRNGKeyArray, n: int, *,
                                   batch_size: int = 1024, var_name: str = "x",
                                   progress: bool = True):
    """Draw ``n`` proposals in batches, weight them, run :func:`independence_metropolis`.

    Returns InferenceData with ``posterior[var_name]`` ``(1, n, ...)`` (the Metropolis chain),
    ``sample_stats`` ``accepted``, ``log_w``, ``log_q``; attrs ``ess_per_n`` (of the raw
    proposals), ``acceptance``, ``wall_time_s`` (proposals, weights and chain).
    """
    from tqdm.auto import tqdm

    if n < 2 or batch_size < 1:
        raise ValueError(f"need n >= 2 and batch_size >= 1, got {n}, {batch_size}")

    @eqx.filter_jit
    def draw(prop, k, m):
        x, log_q = prop.sample_and_log_prob(k, m)
        return x, log_q, jax.vmap(log_p)(x)

    k_prop, k_mh = jax.random.split(key)
    t0 = time.perf_counter()
    xs, lqs, lps = [], [], []
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    for i, m in enumerate(tqdm(sizes, desc="proposals", disable=not progress)):
        x, lq, lp = draw(proposal, jax.random.fold_in(k_prop, i), m)
        xs.append(x), lqs.append(lq), lps.append(lp)
    x, log_q, lp = jnp.concatenate(xs), jnp.concatenate(lqs), jnp.concatenate(lps)
    log_w = lp - log_q
    chain, acc = jax.jit(independence_metropolis)(k_mh, x, log_w)
    jax.block_until_ready(chain)
    wall = time.perf_counter() - t0
    return from_draws(
        {var_name: chain[None]},
        sample_stats={"accepted": acc[None], "log_w": log_w[None], "log_q": log_q[None]},
        attrs={"engine": "independence Metropolis", "wall_time_s": wall,
               "ess_per_n": float(ess_fraction(log_w)), "acceptance": float(jnp.mean(acc[1:]))},
    )

"""Hamiltonian Monte Carlo on a potential energy, many chains vectorized (NumPyro's ``HMC``).

The engine knows nothing of the physics: it samples ``p(x) ∝ exp(-U(x))`` for any
differentiable ``U`` on an array ``x`` of any shape (a lattice field, a parameter vector),
with NumPyro's HMC kernel (leapfrog, dual-averaging step-size adaptation to the target
acceptance, diagonal mass-matrix adaptation during warm-up) and ``chain_method="vectorized"``
(all chains advance in one ``vmap``-ed program on one device).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from bayesqcd.inference.results import from_draws


def run_hmc(
    potential_fn: Callable[[Array], Array],
    init: Array,
    *,
    key: PRNGKeyArray,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 4,
    step_size: float = 0.1,
    num_steps: int | None = 10,
    trajectory_length: float | None = None,
    target_accept: float = 0.8,
    adapt_mass_matrix: bool = True,
    thinning: int = 1,
    var_name: str = "x",
    batched_init: bool = False,
    progress: bool = True,
):
    """Sample ``exp(-potential_fn(x))`` with HMC; returns ``arviz.InferenceData``.

    Args:
        potential_fn: ``U(x) -> scalar``, differentiable in ``x`` (pure JAX).
        init: starting point shared by every chain (its shape is the shape of ``x``), or, with
            ``batched_init=True``, one starting point per chain (leading axis ``num_chains``).
        key: PRNG key.
        num_warmup: warm-up (adaptation) iterations per chain, discarded.
        num_samples: kept iterations per chain (before ``thinning``).
        num_chains: chains, advanced together (vectorized).
        step_size: initial leapfrog step (adapted during warm-up).
        num_steps: leapfrog steps per trajectory (fixed); or ``None`` to fix
            ``trajectory_length`` instead.
        trajectory_length: trajectory length when ``num_steps`` is ``None``.
        target_accept: target mean acceptance probability of the step-size adaptation.
        adapt_mass_matrix: adapt a diagonal inverse mass matrix during warm-up.
        thinning: keep every ``thinning``-th draw.
        var_name: name of the variable in the posterior group.
        batched_init: ``init`` carries a leading chain axis.
        progress: show NumPyro's progress bar.

    Returns:
        InferenceData with ``posterior[var_name]`` of shape ``(chain, draw, *x.shape)``,
        ``sample_stats`` (``accept_prob``, ``diverging``, ``potential_energy``) and attrs
        ``wall_time_s`` (sampling, compilation included), ``mean_accept_prob``,
        ``step_size`` (mean adapted step over chains), ``num_steps``.
    """
    from numpyro.infer import HMC, MCMC

    if num_warmup < 0 or num_samples < 1 or num_chains < 1 or thinning < 1:
        raise ValueError(f"need num_warmup >= 0, num_samples >= 1, num_chains >= 1, thinning >= 1; "
                         f"got {num_warmup}, {num_samples}, {num_chains}, {thinning}")
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    if num_steps is None and not (trajectory_length and trajectory_length > 0):
        raise ValueError(f"give num_steps >= 1 or trajectory_length > 0, got {num_steps}, "
                         f"{trajectory_length}")
    if num_steps is not None and num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not 0 < target_accept < 1:
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept}")
    init = jnp.asarray(init)
    if batched_init:
        if init.ndim == 0 or init.shape[0] != num_chains:
            raise ValueError(f"batched_init needs init with leading axis num_chains={num_chains}, "
                             f"got shape {init.shape}")
        if num_chains == 1:
            init = init[0]
    elif num_chains > 1:
        init = jnp.broadcast_to(init, (num_chains, *init.shape))
    kwargs = ({"num_steps": num_steps, "trajectory_length": None} if num_steps is not None
              else {"trajectory_length": trajectory_length})
    kernel = HMC(potential_fn=potential_fn, step_size=step_size, adapt_step_size=num_warmup > 0,
                 adapt_mass_matrix=adapt_mass_matrix and num_warmup > 0,
                 target_accept_prob=target_accept, **kwargs)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="vectorized", thinning=thinning, progress_bar=progress)
    t0 = time.perf_counter()
    mcmc.run(key, init_params=init, extra_fields=("accept_prob", "diverging", "potential_energy"))
    x = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(x)
    wall = time.perf_counter() - t0
    extra = mcmc.get_extra_fields(group_by_chain=True)
    acc = float(jnp.mean(extra["accept_prob"]))
    step = float(jnp.mean(mcmc.last_state.adapt_state.step_size))
    return from_draws(
        {var_name: x},
        sample_stats={"accept_prob": extra["accept_prob"], "diverging": extra["diverging"],
                      "potential_energy": extra["potential_energy"]},
        attrs={"engine": "numpyro.HMC", "wall_time_s": wall, "mean_accept_prob": acc,
               "step_size": step, "num_steps": -1 if num_steps is None else int(num_steps),
               "num_warmup": num_warmup, "num_chains": num_chains},
    )

"""NumPyro NUTS for any NumPyro model, returning :class:`arviz.InferenceData`.

Chains are laid out on the available devices automatically:

* one device: all chains vectorized (``vmap``) in one program;
* ``D > 1`` devices and ``C <= D`` chains: one chain per device (``pmap``);
* ``D > 1`` devices and ``C`` a multiple of ``D``: ``C / D`` vectorized chains per device.

On CPU, several host devices are made with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before JAX starts); the
same code then spreads chains over several GPUs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import arviz as az
import jax
from jax.typing import ArrayLike
from numpyro.infer import MCMC, NUTS, init_to_median

from .results import check_diagnostics, set_attrs


def chain_layout(num_chains: int, n_devices: int | None = None) -> str | Callable:
    """How :func:`run_nuts` maps ``num_chains`` chains onto ``n_devices`` devices.

    Returns ``"vectorized"``, ``"parallel"`` or a callable transform that ``pmap``s over
    devices and ``vmap``s the chains within each device.

    Raises:
        ValueError: when ``num_chains`` exceeds the device count and is not a multiple of it.
    """
    d = jax.local_device_count() if n_devices is None else n_devices
    if num_chains < 1:
        raise ValueError(f"num_chains = {num_chains} must be >= 1")
    if d == 1 or num_chains == 1:
        return "vectorized"
    if num_chains <= d:
        return "parallel"
    if num_chains % d:
        raise ValueError(
            f"num_chains = {num_chains} cannot be split evenly over {d} devices; "
            f"use a multiple of {d} (or at most {d} chains)"
        )

    def pmap_of_vmap(fn: Callable) -> Callable:
        def mapped(args: Any) -> Any:
            split = jax.tree.map(lambda x: x.reshape(d, num_chains // d, *x.shape[1:]), args)
            out = jax.pmap(jax.vmap(fn))(split)
            return jax.tree.map(lambda x: x.reshape(num_chains, *x.shape[2:]), out)

        return mapped

    return pmap_of_vmap


def run_nuts(
    model: Callable[..., Any],
    *model_args: Any,
    key: ArrayLike,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 4,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    forward_mode: bool = False,
    init_strategy: Callable | None = None,
    progress: bool = True,
    check: bool = True,
    var_names: Sequence[str] | None = None,
    **model_kwargs: Any,
) -> az.InferenceData:
    """Sample the posterior of a NumPyro ``model`` with NUTS.

    Args:
        model: a NumPyro model (a plain function with ``numpyro.sample`` sites).
        model_args, model_kwargs: passed to ``model``.
        key: a ``jax.random`` key.
        num_warmup, num_samples: adaptation and kept iterations per chain.
        num_chains: independent chains (see the module docstring for the device layout).
        target_accept: NUTS target acceptance probability (raise it to remove divergences).
        max_tree_depth: maximal tree depth (at most ``2**max_tree_depth`` leapfrog steps).
        dense_mass: adapt a dense mass matrix instead of a diagonal one.
        forward_mode: differentiate the potential in forward mode (``jax.jacfwd``); needed
            when the model differentiates an ODE solve in forward mode, and cheaper when
            the parameters are few.
        init_strategy: NumPyro init strategy (default: the prior median).
        progress: show NumPyro's progress bar.
        check: warn with :class:`~bayesqcd.inference.results.DiagnosticsWarning` on
            divergences, R-hat > 1.01 or small ESS (over ``var_names``, default all sampled sites).
        var_names: variables the convergence checks look at (default: the sampled sites).

    Returns:
        InferenceData with ``posterior`` (sampled and deterministic sites),
        ``sample_stats`` (``diverging``, ``lp``, tree depth, step size, ...),
        ``observed_data`` and ``log_likelihood``; ``attrs`` hold the engine settings,
        ``wall_time_s`` (including compilation) and the diagnostics.
    """
    for name, value, low in (("num_warmup", num_warmup, 0), ("num_samples", num_samples, 1)):
        if int(value) < low:
            raise ValueError(f"{name} = {value} must be >= {low}")
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept = {target_accept} must lie in (0, 1)")
    kernel = NUTS(
        model,
        target_accept_prob=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
        forward_mode_differentiation=forward_mode,
        init_strategy=init_strategy or init_to_median(num_samples=15),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=int(num_warmup),
        num_samples=int(num_samples),
        num_chains=int(num_chains),
        chain_method=chain_layout(int(num_chains)),
        progress_bar=progress,
    )
    start = time.perf_counter()
    mcmc.run(key, *model_args, extra_fields=("diverging", "num_steps"), **model_kwargs)
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - start
    idata = az.from_numpyro(mcmc)
    if var_names is None:  # the sampled sites (the keys of the unconstrained state)
        var_names = sorted(mcmc.last_state.z)
    set_attrs(
        idata,
        {
            "engine": "nuts",
            "num_chains": int(num_chains),
            "num_warmup": int(num_warmup),
            "num_samples": int(num_samples),
            "target_accept": float(target_accept),
            "wall_time_s": float(wall),
            "n_devices": int(min(jax.local_device_count(), num_chains)),
        },
    )
    if check:
        diag = check_diagnostics(idata, var_names)
        set_attrs(idata, {f"diag_{k}": v for k, v in diag.items()})
    return idata

